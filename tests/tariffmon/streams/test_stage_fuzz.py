"""Generative: any record on any input topic is processed or dead-lettered, exactly once.

The records go through the real decode-and-dispatch path of both agents (the stages the
Faust agents call, and the late path's measurement on the ticks the stage saw), with any
bytes, any key, any Kafka timestamp (the whole signed 64-bit range) and any partition,
mixed with valid ticks whose prices jump anywhere inside the sane bands and with tariff
headlines.  The invariant: no stage raises; no record gets two dead letters; a record the
decoder refuses gets exactly one, with the decoder's reason (never ``internal_error``);
every published record has a timestamp a Kafka client can send and a value that decodes
under its topic's contract, so every number in it is finite.

``make test`` runs them all: the generative cases, and (marked slow) 25,000 generated records.
The volume is bounded by Hypothesis's generation, not by the stages (which take a sixth of
the time): the real worker's 100,000 hostile messages are
``tests/reliability/test_hostile_input.py``.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tariffmon.assembly import core_setup
from tariffmon.contract import MAX_TS_MS, MESSAGE_TYPES, DeadLetter
from tariffmon.errors import ContractError
from tariffmon.settings import load_settings
from tariffmon.streams.late import LatePath
from tariffmon.streams.records import InputDecoder, InRecord, OutRecord
from tariffmon.streams.stages import HeadlineStage, ReactionStage
from tests.tariffmon.streams.market import T0

SETTINGS = load_settings()
#: built once (loading the rules is set-up, not what is tested); stages keep their own state
CORE = core_setup(SETTINGS)
#: records generated so far in this session (the slow test goes on until it passed 25,000)
GENERATED = [0]
TOPICS = SETTINGS.topics
NOW = T0 / 1000 + 86_400.0
STREAM_OF = {getattr(TOPICS, name): name for name in TOPICS.all_topics()}
BANDS = SETTINGS.price_bands()

symbols = st.sampled_from(sorted(BANDS))
any_key = st.one_of(st.none(), st.binary(max_size=12),
                    symbols.map(str.encode), st.sampled_from([b"", b"usdjpy", b"\xff"]))
any_ts = st.one_of(st.integers(-(2**63), 2**63 - 1), st.integers(T0 - 3_600_000, T0 + 7_200_000))
json_junk = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**80), 2**80), st.floats(),
              st.text(max_size=8)),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.text(max_size=6), inner, max_size=3)),
    max_leaves=12,
)


def _json(obj: Any) -> bytes:
    """JSON as a sloppy producer writes it: NaN, Infinity and integers of any size."""
    return json.dumps(obj, allow_nan=True, ensure_ascii=False).encode("utf-8", "surrogatepass")


@st.composite
def tick_value(draw: st.DrawFn) -> tuple[bytes, bytes | None]:
    """A tick, valid or one field broken, with the key it is sent under."""
    sym = draw(symbols)
    lo, hi = BANDS[sym]
    obj: dict[str, Any] = {
        "v": 1, "symbol": sym, "ts": draw(st.integers(T0 - 3_600_000, T0 + 7_200_000)),
        "price": draw(st.one_of(st.floats(lo, hi), st.sampled_from([lo, hi]),
                                st.floats(allow_nan=False), st.sampled_from([1e308, 1e-300]))),
        "source": "fuzz",
    }
    if draw(st.booleans()):
        obj[draw(st.sampled_from(sorted(obj)))] = draw(json_junk)
    key = sym.encode() if draw(st.integers(0, 4)) else draw(any_key)
    return _json(obj), key


@st.composite
def headline_value(draw: st.DrawFn) -> tuple[bytes, bytes | None]:
    """A headline (often a tariff one), valid or one field broken."""
    obj: dict[str, Any] = {
        "v": 1, "id": draw(st.sampled_from(["h1", "h2", "h3", "h4"])),
        "ts": draw(st.integers(T0 - 3_600_000, T0 + 7_200_000)), "source": "fuzz",
        "title": draw(st.sampled_from([
            "US imposes 24% reciprocal tariffs on Japan", "Trump pauses tariffs for 90 days",
            "Japan's envoy meets Trump on tariffs and autos", "Weather in Tokyo"])),
    }
    if draw(st.integers(0, 3)) == 0:
        obj[draw(st.sampled_from(sorted(obj)))] = draw(json_junk)
    return _json(obj), draw(any_key)


def raw_value() -> st.SearchStrategy[tuple[bytes | None, bytes | None]]:
    """Bytes that may be anything, deep nesting included."""
    deep = st.integers(900, 1100).map(lambda n: b'{"v":' + b"[" * n + b"]" * n + b"}")
    junk = json_junk.map(_json)
    return st.tuples(st.one_of(st.none(), st.binary(max_size=64), deep, junk), any_key)


@st.composite
def market(draw: st.DrawFn) -> list[tuple[str, tuple[bytes | None, bytes | None], int, int]]:
    """Valid USDJPY minutes around a tariff headline, prices anywhere in the band (jumps
    from edge to edge included), so that reactions and sharp moves are measured."""
    lo, hi = BANDS["USDJPY"]
    prices = draw(st.lists(st.one_of(st.floats(lo, hi), st.sampled_from([lo, hi])),
                           min_size=300, max_size=300))
    flat = draw(st.booleans())  # a dead-flat baseline: sigma 0, then a jump
    start = T0 - 2 * 3_600_000
    out = []
    for i, p in enumerate(prices):
        ts = start + i * 60_000
        price = prices[0] if flat and ts < T0 else p
        value = _json({"v": 1, "symbol": "USDJPY", "ts": ts, "price": price, "source": "m"})
        out.append(("ticks", (value, b"USDJPY"), ts, 1))
    head = _json({"v": 1, "id": "h-market", "ts": T0, "source": "m",
                  "title": "US imposes 24% reciprocal tariffs on Japan"})
    out.insert(120, ("headlines", (head, b"h-market"), T0, 0))
    return out


records = st.lists(
    st.tuples(
        st.sampled_from(["ticks", "ticks", "ticks", "headlines", "requests"]),
        st.one_of(tick_value(), headline_value(), raw_value()),
        any_ts,
        st.integers(0, 2),
    ),
    min_size=1, max_size=60,
)
batches = st.tuples(market(), records, st.randoms()).map(
    lambda m: _shuffled_in(m[0], m[1], m[2]))


def _shuffled_in(base: list[Any], extra: list[Any], rnd: Any) -> list[Any]:
    out = list(base)
    for item in extra:
        out.insert(rnd.randrange(len(out) + 1), item)
    return out


def check_published(out: list[OutRecord]) -> None:
    """Every published record is sendable and decodes under its topic's contract."""
    for o in out:
        assert 0 <= o.timestamp_ms <= MAX_TS_MS, o
        MESSAGE_TYPES[STREAM_OF[o.topic]].decode(o.value)  # finite numbers, valid fields


def run(batch: list[tuple[str, tuple[bytes | None, bytes | None], int, int]]) -> int:
    """Check the invariant on one batch; returns how many reactions were published."""
    heads = HeadlineStage(SETTINGS, clock=lambda: NOW, core=CORE)
    react = ReactionStage(SETTINGS, clock=lambda: NOW, core=CORE)
    GENERATED[0] += len(batch)
    decoder = InputDecoder(SETTINGS, clock=lambda: NOW)
    limits = decoder.limits()
    published: list[OutRecord] = []
    expected: dict[tuple[str, int, int], str] = {}
    symbol_records: list[InRecord] = []
    for offset, (stream, (value, key), ts, partition) in enumerate(batch):
        topic = getattr(TOPICS, stream)
        rec = InRecord(topic, partition if stream != "headlines" else 0, offset, ts, key, value)
        decode = {"ticks": decoder.tick, "headlines": decoder.headline,
                  "requests": decoder.request}[stream]
        try:
            decode(rec, limits)
        except ContractError as exc:
            expected[(topic, rec.partition, offset)] = exc.reason
        if stream == "headlines":
            res = heads.process(rec)
            published += res.records
            # the requests it fans out go on to the react stage, as through Kafka
            for i, o in enumerate(r for r in res.records if r.topic == TOPICS.requests):
                # (the market's USDJPY ticks are on partition 1: the request meets them)
                part = 1 if o.key == "USDJPY" else 2
                symbol_records.append(InRecord(o.topic, part, 10_000 + 100 * offset + i,
                                               o.timestamp_ms, o.key.encode(), o.value))
        else:
            symbol_records.append(rec)
    result = react.process_batch(symbol_records)
    assert not result.failed, "the engine failed on valid input"
    published += result.records
    late = LatePath(react.params, lambda p, sym, f, t0: [])
    for lr, res in late.measure(result.late):
        published += react.late_result(lr, res)
    check_published(published)
    letters = [DeadLetter.decode(o.value) for o in published if o.topic == TOPICS.deadletter]
    coords = Counter((d.topic, d.partition, d.offset) for d in letters)
    assert not [c for c, n in coords.items() if n > 1], coords
    got = {(d.topic, d.partition, d.offset): d.reason for d in letters}
    for c, reason in expected.items():
        assert got.get(c) == reason, (c, reason, got.get(c))
    assert "internal_error" not in got.values(), [d.error for d in letters
                                                  if d.reason == "internal_error"][:3]
    return sum(1 for o in published if o.topic == TOPICS.reactions)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(batches)
def test_any_record_is_processed_or_dead_lettered_once(batch: Any) -> None:
    assert run(batch) >= 0


@settings(max_examples=4_000, deadline=None, suppress_health_check=list(HealthCheck))
@given(records)
def _generated_batches(batch: Any) -> None:
    run(batch)


@pytest.mark.slow
def test_25k_generated_records_are_processed_or_dead_lettered_once(
        caplog: pytest.LogCaptureFixture) -> None:
    # tens of thousands of dead letters, each logged: keep only errors
    caplog.set_level(logging.ERROR)
    start = GENERATED[0]
    while GENERATED[0] - start < 25_000:
        _generated_batches()
    print(f"{GENERATED[0] - start} generated records")


def test_the_generated_markets_publish_reactions() -> None:
    # the invariant above must be checked on published reactions, not only dead letters
    seen: list[int] = []

    @settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
    @given(batches)
    def probe(batch: Any) -> None:
        seen.append(run(batch))

    probe()
    assert sum(seen) > 0
