"""The message contract: every type round-trips; every rule rejects with field, value, rule."""

from __future__ import annotations

import contextlib
import dataclasses
import math
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tariffmon.contract as contract
from tariffmon.contract import (
    MESSAGE_TYPES,
    Alert,
    AttributedHeadline,
    ClassifiedHeadline,
    DeadLetter,
    Headline,
    Message,
    Reaction,
    ReactionRequest,
    Tick,
    dumps,
    reaction_key,
)
from tariffmon.errors import ContractError
from tests.tariffmon.contract.strategies import (
    EXAMPLES,
    LIMITS,
    TS,
    any_message,
    headline_obj,
    rejects,
    tick_obj,
)

# --------------------------------------------------------------------------- round trips


@settings(max_examples=300, deadline=None)
@given(any_message)
def test_every_message_type_round_trips_through_json(msg: Message) -> None:
    data = msg.encode()
    assert isinstance(data, bytes)
    data.decode("utf-8")  # valid UTF-8
    back = type(msg).decode(data, LIMITS)
    assert back == msg
    assert back.encode() == data  # byte-identical: a replay produces the same records
    assert back.key == msg.key  # type: ignore[attr-defined]


def test_every_stream_has_a_message_type_covered_here() -> None:
    assert set(MESSAGE_TYPES.values()) == {
        Tick, Headline, ClassifiedHeadline, ReactionRequest, Reaction, Alert, DeadLetter,
    }


def test_wire_form_matches_the_design() -> None:
    tick = Tick(symbol="USDJPY", ts=TS, price=144.952, source="yfinance")
    assert orjson.loads(tick.encode()) == {
        "v": 1, "symbol": "USDJPY", "ts": TS, "price": 144.952, "source": "yfinance",
        "kind": "quote",
    }
    assert tick.key == "USDJPY"
    head = Headline(id="abc", ts=TS, source="rss", title="Tariffs")
    assert orjson.loads(head.encode()) == {
        "v": 1, "id": "abc", "ts": TS, "source": "rss", "title": "Tariffs",
    }
    assert head.key == "abc"
    assert reaction_key("abc", "N225", 300) == "abc|N225|300"


def test_integral_float_timestamp_is_accepted_as_int() -> None:
    tick = Tick.from_dict(
        {"v": 1, "symbol": "N225", "ts": float(TS), "price": 1.0, "source": "s"}, LIMITS
    )
    assert tick.ts == TS and type(tick.ts) is int


# --------------------------------------------------------------------------- validation


# names imported from ``tariffmon.contract`` across the repository (and the old module's)
_PUBLIC = (
    "Alert", "AttributedHeadline", "ClassifiedHeadline", "DIRECTIONS", "DeadLetter", "Direction",
    "Headline", "Limits", "MAX_MESSAGE_BYTES", "MAX_SOURCE_CHARS", "MAX_SUMMARY_CHARS",
    "MAX_TITLE_CHARS", "MAX_TS_MS", "MAX_URL_CHARS", "MESSAGE_TYPES", "MIN_TS_MS",
    "MOVE_DIRECTIONS", "Message", "Reaction", "ReactionRequest", "SCHEMA_VERSION", "Tick", "dumps",
    "loads", "reaction_key", "DEFAULT_LIMITS", "DEFAULT_SYMBOLS", "FUTURE_SLACK_MS",
    "MAX_ATTRIBUTED", "MAX_ID_CHARS", "MAX_TAGS", "TICK_KINDS", "TickKind", "MoveDirection",
    "check_version", "check_ts", "check_price", "check_number", "check_text", "check_symbol",
    "check_choice", "check_bool", "check_positive_int", "check_tags",
)


def test_the_package_exports_every_name_of_the_old_module() -> None:
    missing = [n for n in _PUBLIC if not hasattr(contract, n)]
    assert missing == []
    assert set(_PUBLIC) <= set(contract.__all__)


@pytest.mark.parametrize("cls", MESSAGE_TYPES.values())
def test_wire_fields_are_the_dataclass_fields_and_the_version(cls: type[Message]) -> None:
    wire = cls.FIELDS
    assert wire == {"v", *(f.name for f in dataclasses.fields(cls))}  # type: ignore[arg-type]
    assert "KIND" not in wire and "FIELDS" not in wire


@pytest.mark.parametrize("cls", MESSAGE_TYPES.values())
def test_every_type_checks_the_envelope_first(cls: type[Message]) -> None:
    rejects(cls, {"v": 2, "zzz": 1}, "v", "schema version 1")
    rejects(cls, {"v": 1, "zzz": 1}, "zzz", f" {cls.KIND} message")
    rejects(cls, {"v": 1, "zzz": 1}, "zzz", "is not a field of a")
    with pytest.raises(ContractError) as info:
        cls.from_dict([1, 2], LIMITS)  # type: ignore[arg-type]
    assert info.value.field == "$" and info.value.reason == "bad_json"


def test_unknown_fields_of_an_attributed_headline_are_rejected_by_their_full_name() -> None:
    obj = {**EXAMPLES[Alert], "headlines": [{"id": "h", "ts": TS, "title": "t", "url": "u"}]}
    rejects(Alert, obj, "headlines.url", "is not a field of an attributed headline message")
    rejects(Alert, {**obj, "headlines": [{"ts": TS, "title": "t"}]}, "headlines.id",
            "is required")


def test_unknown_field_is_rejected() -> None:
    err = rejects(Tick, tick_obj(bid=146.4), "bid", "is not a field of a tick message")
    assert err.value == 146.4 and err.reason == "unknown_field"


def test_bar_close_needs_its_interval_and_others_must_not_have_one() -> None:
    rejects(Tick, tick_obj(kind="bar_close"), "interval_s", "positive integer")
    rejects(Tick, tick_obj(kind="bar_close", interval_s=0), "interval_s", "positive integer")
    rejects(Tick, tick_obj(kind="quote", interval_s=60), "interval_s", "only allowed on bar_close")
    rejects(Tick, tick_obj(kind="candle"), "kind", "must be one of")
    rejects(Tick, tick_obj(volume=-1), "volume", "must not be negative")


@pytest.mark.parametrize(
    ("cls", "obj", "field", "rule"),
    [
        (ClassifiedHeadline,
         {**headline_obj(), "is_tariff": "yes", "score": 1.0, "tags": [], "direction": "neutral",
          "cluster_id": "h1"}, "is_tariff", "true or false"),
        (ClassifiedHeadline,
         {**headline_obj(), "is_tariff": True, "score": 1.0, "tags": [], "direction": "sideways",
          "cluster_id": "h1"}, "direction", "must be one of"),
        (ReactionRequest,
         {"v": 1, "headline_id": "h", "cluster_id": "h", "symbol": "XXX", "t0": TS,
          "title": "t"}, "symbol", "must be one of"),
        (Alert,
         {"v": 1, "symbol": "USDJPY", "window_s": 60, "ts": TS, "start_ts": TS - 60_000,
          "p_start": 146.0, "p_end": math.nan, "ret": 0.0, "direction": "up",
          "threshold_bp": 20.0, "threshold_z": 6.0}, "p_end", "finite"),
        (DeadLetter,
         {"v": 1, "topic": "t", "partition": -1, "offset": 0, "ts": 0, "reason": "r",
          "error": "e", "stage": "s", "value_b64": ""}, "partition", "non-negative"),
    ],
)
def test_other_message_types_validate_too(
    cls: type[Message], obj: dict[str, Any], field: str, rule: str
) -> None:
    rejects(cls, obj, field, rule)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_escape_as_another_exception(data: bytes) -> None:
    for cls in MESSAGE_TYPES.values():
        with contextlib.suppress(ContractError):
            cls.decode(data, LIMITS)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from([*sorted(Tick.FIELDS), "x"]),
                       st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
                       max_size=8))
def test_arbitrary_objects_validate_or_raise_contract_error(obj: dict[str, Any]) -> None:
    try:
        tick = Tick.from_dict(obj, LIMITS)
    except ContractError as err:
        assert err.field and err.rule
    else:
        assert Tick.decode(tick.encode(), LIMITS) == tick


# --------------------------------------------------------------------------- hostile values


def test_every_type_has_an_example_with_every_field() -> None:
    assert set(EXAMPLES) == set(MESSAGE_TYPES.values())
    for cls, obj in EXAMPLES.items():
        assert set(obj) == cls.FIELDS
        assert cls.from_dict(obj, LIMITS).to_dict() == obj


def _with_raw(obj: dict[str, Any], field: str, raw: bytes) -> bytes:
    """``obj`` as JSON with ``field`` set to the raw JSON text ``raw``."""
    rest = dumps({k: v for k, v in obj.items() if k != field})
    return rest[:-1] + (b"," if len(rest) > 2 else b"") + dumps({field: 0})[1:-2] + raw + b"}"


_DEEP = 1_000  # deeper than Python's recursion limit, within orjson's nesting limit
_DEEP_VALUES = {
    "lists": b"[" * _DEEP + b"]" * _DEEP,
    "objects": b'{"a":' * _DEEP + b"1" + b"}" * _DEEP,
    "mixed": b'[{"a":' * (_DEEP // 2) + b"[]" + b"}]" * (_DEEP // 2),
}


@pytest.mark.parametrize("shape", sorted(_DEEP_VALUES))
@pytest.mark.parametrize("cls", MESSAGE_TYPES.values(), ids=lambda c: c.__name__)
def test_a_deeply_nested_value_in_any_field_is_a_contract_error(
    cls: type[Message], shape: str
) -> None:
    deep = _DEEP_VALUES[shape]
    for field in [*sorted(cls.FIELDS), "unknown"]:
        data = _with_raw(EXAMPLES[cls], field, deep)
        with pytest.raises(ContractError) as info:
            cls.decode(data, LIMITS)
        assert info.value.field == "$" or info.value.field.split(".")[0] == field
        assert len(str(info.value)) < 400


def test_a_deeply_nested_attributed_headline_is_a_contract_error() -> None:
    deep = _DEEP_VALUES["lists"]
    head = EXAMPLES[Alert]["headlines"][0]
    for field in [*sorted(head), "unknown"]:
        inner = _with_raw(head, field, deep)
        data = _with_raw(EXAMPLES[Alert], "headlines", b"[" + inner + b"]")
        with pytest.raises(ContractError) as info:
            Alert.decode(data, LIMITS)
        assert info.value.field.startswith("headlines")
    with pytest.raises(ContractError):
        Alert.decode(_with_raw(EXAMPLES[Alert], "headlines", b"[" + deep + b"]"), LIMITS)


@pytest.mark.parametrize("depth", [1_024, 1_025, 5_000])
def test_nesting_beyond_the_parsers_limit_is_bad_json(depth: int) -> None:
    for cls in MESSAGE_TYPES.values():
        data = _with_raw(EXAMPLES[cls], "v", b"[" * depth + b"]" * depth)
        with pytest.raises(ContractError) as info:
            cls.decode(data, LIMITS)
        assert info.value.reason == "bad_json" and info.value.field == "$"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                   max_size=4),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None)
@given(cls=st.sampled_from(list(MESSAGE_TYPES.values())), data=st.data(), value=json_values)
def test_any_json_value_in_any_field_decodes_or_is_a_contract_error(
    cls: type[Message], data: st.DataObject, value: Any
) -> None:
    field = data.draw(st.sampled_from([*sorted(cls.FIELDS), "unknown"]), label="field")
    raw = dumps({**EXAMPLES[cls], field: value})
    try:
        msg = cls.decode(raw, LIMITS)
    except ContractError as err:
        assert err.field and err.rule and err.reason
        str(err)
    else:
        assert cls.decode(msg.encode(), LIMITS) == msg


# --------------------------------------------------------------------------- non-finite numbers

_NON_FINITE = [math.nan, math.inf, -math.inf]


def _float_fields(cls: type[Message]) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)  # type: ignore[arg-type]
            if "float" in str(f.type)]


@pytest.mark.parametrize("bad", _NON_FINITE, ids=repr)
@pytest.mark.parametrize("cls", MESSAGE_TYPES.values(), ids=lambda c: c.__name__)
def test_encoding_refuses_a_non_finite_number_in_any_float_field(
    cls: type[Message], bad: float
) -> None:
    good = cls.from_dict(EXAMPLES[cls], LIMITS)
    for name in _float_fields(cls):
        msg = dataclasses.replace(good, **{name: bad})  # type: ignore[type-var]
        for encode in (msg.encode, msg.to_dict):
            with pytest.raises(ContractError) as info:
                encode()
            assert info.value.field == name and info.value.reason == "not_finite"
            assert info.value.rule == "must be finite"


def test_every_type_with_numbers_is_covered_by_the_non_finite_check() -> None:
    covered = {c for c in MESSAGE_TYPES.values() if _float_fields(c)}
    assert covered == {Tick, ClassifiedHeadline, ReactionRequest, Reaction, Alert}


@pytest.mark.parametrize("bad", _NON_FINITE, ids=repr)
def test_encoding_refuses_a_non_finite_number_even_where_the_type_says_int(bad: float) -> None:
    # nothing type-checks at run time: a nan computed into an int field must not pass either
    good = Alert.from_dict(EXAMPLES[Alert], LIMITS)
    head = dataclasses.replace(good.headlines[0], ts=bad)  # type: ignore[arg-type]
    for msg, field in ((dataclasses.replace(good, ts=bad), "ts"),  # type: ignore[arg-type]
                       (dataclasses.replace(good, headlines=(head,)), "headlines.ts")):
        with pytest.raises(ContractError) as info:
            msg.encode()
        assert info.value.field == field and info.value.reason == "not_finite"


@pytest.mark.parametrize(
    ("cls", "field"),
    [(Reaction, f) for f in ("p0", "p1", "ret", "z", "sigma_1m", "max_up", "max_down",
                             "gap_ret", "gap_sigma", "gap_z")]
    + [(Alert, f) for f in ("p_start", "p_end", "ret", "z", "threshold_bp", "threshold_z")]
    + [(Tick, "price"), (Tick, "volume"), (ClassifiedHeadline, "score"),
       (ReactionRequest, "score")],
)
@pytest.mark.parametrize("bad", _NON_FINITE, ids=repr)
def test_decoding_refuses_non_finite_numbers(cls: type[Message], field: str, bad: float) -> None:
    err = rejects(cls, {**EXAMPLES[cls], field: bad}, field, "finite")
    assert err.reason == "not_finite"


def test_a_reaction_without_the_gap_fields_still_decodes_and_encodes_the_same() -> None:
    old = {k: v for k, v in EXAMPLES[Reaction].items()
           if k not in ("gap_kind", "gap_ret", "gap_sigma", "gap_count", "gap_z", "confound_id")}
    r = Reaction.from_dict(old, LIMITS)
    assert r.gap_kind is None and r.confound_id is None and r.gap_count is None
    assert r.to_dict() == old


@pytest.mark.parametrize(("field", "bad"), [("gap_kind", "lunch"), ("gap_count", -1),
                                            ("gap_count", 1.5), ("confound_id", "")])
def test_bad_gap_fields_are_refused_by_name(field: str, bad: object) -> None:
    with pytest.raises(ContractError) as info:
        Reaction.from_dict({**EXAMPLES[Reaction], field: bad}, LIMITS)
    assert info.value.field == field


@pytest.mark.parametrize("field", ["p0", "p1"])
def test_reaction_prices_must_be_positive(field: str) -> None:
    err = rejects(Reaction, {**EXAMPLES[Reaction], field: 0.0}, field, "positive")
    assert err.reason == "not_positive"


@pytest.mark.parametrize("field", ["p_start", "p_end"])
def test_alert_prices_must_be_positive(field: str) -> None:
    err = rejects(Alert, {**EXAMPLES[Alert], field: -1.0}, field, "positive")
    assert err.reason == "not_positive"


# --------------------------------------------------------------------------- alerts from moves


@pytest.mark.parametrize(("ret", "z"), [(0.0031, 7.5), (-0.0042, None), (0.0, 0.0)])
def test_alert_from_move_is_the_alert_the_engine_builds(ret: float, z: float | None) -> None:
    from tariffmon.core.engine import ReactionEngine
    from tariffmon.core.sharpmove import SharpMove
    from tests.tariffmon.core.engine_helpers import params

    p = params()
    move = SharpMove(symbol="USDJPY", window_ms=300_000, ts=TS, start_ts=TS - 300_000,
                     p_start=146.0, p_end=146.0 * math.exp(ret), ret=ret, z=z,
                     threshold=0.004)
    engine_alert = ReactionEngine(p).state("USDJPY")._alert(move)
    assert Alert.from_move(move, threshold_z=p.sharp_z) == engine_alert
    heads = (AttributedHeadline(id="h", ts=TS - 1, title="t", direction="neutral"),)
    assert Alert.from_move(move, threshold_z=p.sharp_z, headlines=iter(heads)).headlines == heads
