"""The message contract: every type round-trips; every rule rejects with field, value, rule."""

from __future__ import annotations

import contextlib
import math
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tariffmon.contract import (
    MAX_MESSAGE_BYTES,
    MAX_TITLE_CHARS,
    MAX_TS_MS,
    MESSAGE_TYPES,
    MIN_TS_MS,
    Alert,
    AttributedHeadline,
    ClassifiedHeadline,
    DeadLetter,
    Headline,
    Limits,
    Message,
    Reaction,
    ReactionRequest,
    Tick,
    dumps,
    loads,
    reaction_key,
)
from tariffmon.errors import ContractError

LIMITS = Limits(frozenset({"USDJPY", "N225"}))
TS = 1_743_624_000_000  # 2025-04-02T20:00:00Z

# --------------------------------------------------------------------------- strategies

ts_ms = st.integers(min_value=MIN_TS_MS, max_value=MAX_TS_MS)
prices = st.floats(min_value=1e-6, max_value=1e9, allow_nan=False, allow_infinity=False)
numbers = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)
symbols = st.sampled_from(sorted(LIMITS.symbols))
directions = st.sampled_from(["escalation", "de-escalation", "neutral"])


def text(max_size: int) -> st.SearchStrategy[str]:
    """Non-blank text (any Unicode, including non-BMP and JSON-hostile characters)."""
    return st.text(min_size=1, max_size=max_size).filter(lambda s: s.strip() != "")


tags = st.lists(text(20), max_size=5).map(tuple)
optional_text = st.none() | text(50)

ticks = st.one_of(
    st.builds(Tick, symbol=symbols, ts=ts_ms, price=prices, source=text(20),
              kind=st.sampled_from(["trade", "quote"]),
              volume=st.none() | st.floats(min_value=0, max_value=1e12)),
    st.builds(Tick, symbol=symbols, ts=ts_ms, price=prices, source=text(20),
              kind=st.just("bar_close"), interval_s=st.sampled_from([60, 900, 3600, 86400])),
)
headlines = st.builds(
    Headline, id=text(40), ts=ts_ms, source=text(20), title=text(200), url=optional_text,
    summary=optional_text, ts_estimated=st.none() | st.booleans(),
)
classified = st.builds(
    ClassifiedHeadline, id=text(40), ts=ts_ms, source=text(20), title=text(200),
    is_tariff=st.booleans(), score=numbers, tags=tags, direction=directions,
    cluster_id=text(40), duplicate=st.booleans(), url=optional_text, summary=optional_text,
)
requests = st.builds(
    ReactionRequest, headline_id=text(40), cluster_id=text(40), symbol=symbols, t0=ts_ms,
    title=text(100), tags=tags, direction=directions, score=numbers,
)
reactions = st.builds(
    Reaction, headline_id=text(40), cluster_id=text(40), symbol=symbols,
    horizon_s=st.sampled_from([60, 300, 900, 3600]), t0=ts_ms, t_start=ts_ms, t1=ts_ms,
    p0=prices, p0_ts=ts_ms, p1=prices, p1_ts=ts_ms, ret=numbers, z=st.none() | numbers,
    sigma_1m=st.none() | numbers, max_up=numbers, max_down=numbers,
    significant=st.booleans(), gap=st.booleans(), n_ticks=st.integers(0, 10_000),
    flags=tags, direction=directions, tags=tags, title=st.text(max_size=100),
)
alerts = st.builds(
    Alert, symbol=symbols, window_s=st.sampled_from([60, 300, 900]), ts=ts_ms,
    start_ts=ts_ms, p_start=prices, p_end=prices, ret=numbers, z=st.none() | numbers,
    direction=st.sampled_from(["up", "down"]), threshold_bp=numbers, threshold_z=numbers,
    headlines=st.lists(
        st.builds(AttributedHeadline, id=text(40), ts=ts_ms, title=text(100),
                  direction=directions),
        max_size=5,
    ).map(tuple),
)
dead_letters = st.builds(
    DeadLetter, topic=text(50), partition=st.integers(0, 1000),
    offset=st.integers(0, 2**62), ts=st.integers(0, MAX_TS_MS), reason=text(30),
    error=text(200), stage=text(20), value_b64=st.text("ABCD+/=", max_size=40),
    value_size=st.integers(0, 10**9), key_b64=st.none() | st.text("ABCD", max_size=8),
    value_text=st.none() | st.text(max_size=50),
)

any_message = st.one_of(ticks, headlines, classified, requests, reactions, alerts,
                         dead_letters)


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


def test_dumps_is_key_order_independent() -> None:
    assert dumps({"b": 1, "a": 2}) == dumps({"a": 2, "b": 1}) == b'{"a":2,"b":1}'


# --------------------------------------------------------------------------- validation


def _tick(**changes: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {"v": 1, "symbol": "USDJPY", "ts": TS, "price": 146.5, "source": "t"}
    obj.update(changes)
    return {k: v for k, v in obj.items() if v is not _DROP}


def _headline(**changes: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {"v": 1, "id": "h1", "ts": TS, "source": "rss", "title": "Tariffs"}
    obj.update(changes)
    return {k: v for k, v in obj.items() if v is not _DROP}


_DROP = object()


def _rejects(cls: type[Message], obj: dict[str, Any], field: str, rule: str,
             limits: Limits = LIMITS) -> ContractError:
    with pytest.raises(ContractError) as info:
        cls.from_dict(obj, limits)
    err = info.value
    assert err.field == field
    assert rule in err.rule
    assert str(err).startswith(f"{field}=")
    assert rule in str(err)
    return err


@pytest.mark.parametrize(
    ("price", "rule", "reason"),
    [
        (math.nan, "finite", "not_finite"),
        (math.inf, "finite", "not_finite"),
        (-math.inf, "finite", "not_finite"),
        (0, "positive", "not_positive"),
        (0.0, "positive", "not_positive"),
        (-146.5, "positive", "not_positive"),
        ("146.5", "number", "bad_type"),
        (True, "number", "bad_type"),
        (None, "number", "bad_type"),
    ],
)
def test_price_must_be_finite_and_positive(price: Any, rule: str, reason: str) -> None:
    err = _rejects(Tick, _tick(price=price), "price", rule)
    assert err.reason == reason
    assert repr(price) in str(err)  # the value is named


@pytest.mark.parametrize(
    ("ts", "rule"),
    [
        (0, "before 1990"),  # 1970
        (MIN_TS_MS - 1, "before 1990"),
        (4_102_444_800_001, "must not be after"),  # just past 2100-01-01
        (TS + 0.5, "integer epoch milliseconds"),
        ("2025-04-02", "integer epoch milliseconds"),
        (None, "integer epoch milliseconds"),
    ],
)
def test_ts_must_be_integer_ms_in_a_sane_range(ts: Any, rule: str) -> None:
    _rejects(Tick, _tick(ts=ts), "ts", rule)


def test_ts_beyond_the_callers_ceiling_is_rejected() -> None:
    now = TS
    limits = Limits.from_now(now, LIMITS.symbols)
    Tick.from_dict(_tick(ts=now + 86_400_000), limits)  # a day ahead is fine
    err = _rejects(Tick, _tick(ts=now + 86_400_001), "ts", "must not be after", limits)
    assert str(now + 86_400_000) in str(err)


def test_unknown_symbol_is_rejected_naming_the_known_ones() -> None:
    err = _rejects(Tick, _tick(symbol="EURUSD"), "symbol", "must be one of")
    assert "'EURUSD'" in str(err) and "USDJPY" in str(err)
    assert err.reason == "unknown_symbol"
    # a configured extra symbol is known
    Tick.from_dict(_tick(symbol="NKD"), Limits(frozenset({"USDJPY", "NKD"})))


@pytest.mark.parametrize("title", ["", "   ", "\n\t"])
def test_required_text_must_not_be_empty(title: str) -> None:
    err = _rejects(Headline, _headline(title=title), "title", "must not be empty")
    assert err.reason == "empty_text"


def test_text_has_a_maximum_length() -> None:
    err = _rejects(Headline, _headline(title="x" * (MAX_TITLE_CHARS + 1)), "title",
                   f"at most {MAX_TITLE_CHARS} characters")
    assert err.reason == "too_long"
    Headline.from_dict(_headline(title="x" * MAX_TITLE_CHARS), LIMITS)


@pytest.mark.parametrize("version", [0, 2, "1", 1.0, None])
def test_schema_version_must_be_known(version: Any) -> None:
    err = _rejects(Tick, _tick(v=version), "v", "schema version 1")
    assert err.reason == "bad_version"


def test_missing_version_is_rejected() -> None:
    _rejects(Tick, _tick(v=_DROP), "v", "is required")


@pytest.mark.parametrize("missing", ["symbol", "ts", "price", "source"])
def test_missing_required_field_is_named(missing: str) -> None:
    err = _rejects(Tick, _tick(**{missing: _DROP}), missing, "is required")
    assert err.reason == "missing_field"


def test_unknown_field_is_rejected() -> None:
    err = _rejects(Tick, _tick(bid=146.4), "bid", "is not a field of a tick message")
    assert err.value == 146.4 and err.reason == "unknown_field"


def test_bar_close_needs_its_interval_and_others_must_not_have_one() -> None:
    _rejects(Tick, _tick(kind="bar_close"), "interval_s", "positive integer")
    _rejects(Tick, _tick(kind="bar_close", interval_s=0), "interval_s", "positive integer")
    _rejects(Tick, _tick(kind="quote", interval_s=60), "interval_s", "only allowed on bar_close")
    _rejects(Tick, _tick(kind="candle"), "kind", "must be one of")
    _rejects(Tick, _tick(volume=-1), "volume", "must not be negative")


@pytest.mark.parametrize(
    ("data", "rule"),
    [
        (b"{not json", "must be UTF-8 JSON"),
        (b"", "must be UTF-8 JSON"),
        (b'{"v":1,"ts":1', "must be UTF-8 JSON"),
        (b"\xff\xfe{}", "must be UTF-8 JSON"),  # invalid UTF-8
        (b'{"title":"\xc3\x28"}', "must be UTF-8 JSON"),  # invalid continuation byte
        (b"[1,2]", "must be a JSON object"),
        (b'"text"', "must be a JSON object"),
        (b"NaN", "must be UTF-8 JSON"),
    ],
)
def test_bad_bytes_are_rejected_as_the_whole_message(data: bytes, rule: str) -> None:
    with pytest.raises(ContractError) as info:
        Tick.decode(data, LIMITS)
    assert info.value.field == "$"
    assert rule in str(info.value)
    assert info.value.reason == "bad_json"


def test_too_large_message_is_rejected_before_parsing() -> None:
    data = b'{"v":1,"title":"' + b"x" * MAX_MESSAGE_BYTES + b'"}'
    with pytest.raises(ContractError) as info:
        loads(data)
    assert info.value.field == "$" and info.value.reason == "too_large"
    assert f"at most {MAX_MESSAGE_BYTES} bytes" in str(info.value)
    assert f"<{len(data)} bytes>" in str(info.value)


def test_long_values_are_shortened_in_the_message() -> None:
    err = _rejects(Headline, _headline(title="y" * 5000), "title", "at most")
    assert len(str(err)) < 300


@pytest.mark.parametrize(
    ("cls", "obj", "field", "rule"),
    [
        (ClassifiedHeadline,
         {**_headline(), "is_tariff": "yes", "score": 1.0, "tags": [], "direction": "neutral",
          "cluster_id": "h1"}, "is_tariff", "true or false"),
        (ClassifiedHeadline,
         {**_headline(), "is_tariff": True, "score": 1.0, "tags": [], "direction": "sideways",
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
    _rejects(cls, obj, field, rule)


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
