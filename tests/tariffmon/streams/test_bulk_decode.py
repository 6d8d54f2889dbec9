"""Generative: the bulk decode of a fetch equals the per-record decode, record by record.

The live path decodes a whole fetch of ticks at once (:meth:`InputDecoder.ticks`): an inline
check for the usual shape, the prices and bands of each symbol's run at once, and the
per-record decoder for everything else.  Whatever the records hold (valid ticks of every
kind, one field broken, any bytes, any key), every record must come out exactly as the
per-record decoder has it: accepted with the same tick, or refused with the same reason and
message; and the runs keep each symbol's arrival order.  The stage built on it must then
dead-letter and measure exactly what the per-record stage does.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tariffmon.contract import DeadLetter, Tick
from tariffmon.errors import ContractError
from tariffmon.streams.records import InputDecoder, InRecord, _decode_ticks_columnar
from tariffmon.streams.stages import ReactionStage
from tests.tariffmon.streams.market import T0
from tests.tariffmon.streams.test_stage_fuzz import (
    BANDS,
    CORE,
    NOW,
    SETTINGS,
    TOPICS,
    _json,
    any_key,
    json_junk,
    raw_value,
    symbols,
    tick_value,
)


@st.composite
def shaped_tick(draw: st.DrawFn) -> tuple[bytes | None, bytes | None]:
    """Ticks of every shape the contract allows, and near misses of each."""
    sym = draw(st.one_of(symbols, st.sampled_from(["XXX", "usdjpy", ""])))
    lo, hi = BANDS.get(sym, (1.0, 2.0))
    kind = draw(st.sampled_from([None, "quote", "trade", "bar_close", "bar", 3]))
    obj: dict[str, Any] = {
        "v": draw(st.sampled_from([1, 1, 1, 2, 1.0, True])),
        "symbol": sym,
        "ts": draw(st.one_of(st.integers(T0 - 3_600_000, T0 + 7_200_000),
                             st.sampled_from([631_152_000_000, 631_151_999_999, 2**63,
                                              int(NOW * 1000) + 86_400_000 * 2]),
                             st.floats(T0, T0 + 1e6))),
        "price": draw(st.one_of(st.floats(lo, hi), st.sampled_from([lo, hi, 0.0, -lo]),
                                st.integers(int(lo), int(hi) + 1),
                                st.floats(allow_nan=False, allow_infinity=False))),
        "source": draw(st.sampled_from(["feed", " ", "", "x" * 200, "x" * 201, 7])),
    }
    if kind is not None:
        obj["kind"] = kind
    if draw(st.booleans()):
        obj["interval_s"] = draw(st.sampled_from([60, 900, 0, -60, None, True, 1.5]))
    if draw(st.integers(0, 5)) == 0:
        obj["volume"] = draw(st.sampled_from([0, 10.5, -1, None, "x"]))
    if draw(st.integers(0, 6)) == 0:
        obj[draw(st.sampled_from(["extra", "v", "symbol", "ts", "price", "source"]))] = \
            draw(json_junk)
    if draw(st.integers(0, 8)) == 0:
        del obj[draw(st.sampled_from(sorted(obj)))]
    key = sym.encode() if draw(st.integers(0, 4)) else draw(any_key)
    return _json(obj), key


values = st.one_of(shaped_tick(), shaped_tick(), tick_value(), raw_value())
batches = st.lists(st.tuples(values, st.integers(T0 - 3_600_000, T0 + 7_200_000)),
                   min_size=0, max_size=80)


def _records(batch: list[Any]) -> list[InRecord]:
    return [InRecord(TOPICS.ticks, 0, i, ts, key, value)
            for i, ((value, key), ts) in enumerate(batch)]


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(batches)
def test_bulk_decode_equals_the_per_record_decode(batch: list[Any]) -> None:
    _check_bulk_equals_per_record(batch)


def _check_bulk_equals_per_record(batch: list[Any]) -> None:
    decoder = InputDecoder(SETTINGS, clock=lambda: NOW)
    limits = decoder.limits()
    recs = _records(batch)
    want: dict[int, Tick | tuple[str, str]] = {}
    for i, rec in enumerate(recs):
        try:
            want[i] = decoder.tick(rec, limits)
        except ContractError as exc:
            want[i] = (exc.reason, str(exc))
    # the decoder's choice (by size), and the columnar path itself whenever it takes a batch
    columnar = _decode_ticks_columnar(recs, limits)
    for bulk in (decoder.ticks(recs, limits), *([columnar] if columnar is not None else [])):
        got: dict[int, Tick | tuple[str, str]] = {i: (e.reason, str(e)) for i, e in bulk.errors}
        for run in bulk.runs:
            assert run.index == sorted(run.index)  # each symbol's arrival order is kept
            assert len(run.ts) == len(run.price) == len(run.interval_ms) == len(run)
            for j, i in enumerate(run.index):
                tick = run.tick(j)
                assert i not in got
                got[i] = tick
                assert tick.symbol == run.symbol
                assert (int(run.ts[j]), float(run.price[j]), int(run.interval_ms[j])) == (
                    tick.ts, tick.price, (tick.interval_s or 0) * 1000)
        assert got == want
        assert [e[0] for e in bulk.errors] == sorted(e[0] for e in bulk.errors)


@st.composite
def healthy_tick(draw: st.DrawFn) -> tuple[bytes, bytes]:
    """A point tick as the project's producers encode it, checks passing."""
    sym = draw(symbols)
    lo, hi = BANDS[sym]
    tick = Tick(sym, draw(st.integers(T0 - 3_600_000, T0 + 7_200_000)),
                draw(st.floats(lo, hi)), draw(st.sampled_from(["feed", "replay", "x" * 200])),
                kind=draw(st.sampled_from(["quote", "trade"])))
    return tick.encode(), sym.encode()


#: a healthy feed's batch, with at most one record of any other kind at any place: the
#: columnar path takes the first, and must hand the second to the per-record loop whole
healthy_batches = st.tuples(
    st.lists(st.tuples(healthy_tick(), st.integers(T0 - 3_600_000, T0 + 7_200_000)),
             min_size=1, max_size=100),
    st.one_of(st.none(), st.tuples(values, st.integers(T0 - 3_600_000, T0 + 7_200_000))),
    st.integers(0, 99),
).map(lambda b: b[0] if b[1] is None else [*b[0][:b[2]], b[1], *b[0][b[2]:]])


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(healthy_batches)
def test_bulk_decode_of_a_healthy_feed_equals_the_per_record_decode(batch: list[Any]) -> None:
    _check_bulk_equals_per_record(batch)


@settings(max_examples=50, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(healthy_tick(), min_size=1, max_size=60))
def test_a_healthy_feed_is_decoded_by_columns(batch: list[tuple[bytes, bytes]]) -> None:
    """The fast path is the one taken for what producers send (not only the fallback)."""
    recs = [InRecord(TOPICS.ticks, 0, i, T0, key, value) for i, (value, key) in enumerate(batch)]
    limits = InputDecoder(SETTINGS, clock=lambda: NOW).limits()
    assert _decode_ticks_columnar(recs, limits) is not None


def _outcome(stage_out: list[Any]) -> tuple[dict[tuple[int, int], str], dict[str, bytes]]:
    dead = {}
    other = {}
    for o in stage_out:
        if o.topic == TOPICS.deadletter:
            d = DeadLetter.decode(o.value)
            assert (d.partition, d.offset) not in dead, "two dead letters for one record"
            dead[(d.partition, d.offset)] = d.reason
        else:
            other[o.key] = o.value
    return dead, other


ticks_batch = st.lists(
    st.tuples(st.one_of(tick_value(), shaped_tick(), raw_value()),
              st.integers(T0 - 3_600_000, T0 + 7_200_000), st.integers(0, 2)),
    max_size=120)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(ticks_batch, st.integers(1, 40))
def test_bulk_stage_dead_letters_and_measures_as_the_per_record_stage(
    batch: list[Any], cuts: int
) -> None:
    recs = [InRecord(TOPICS.ticks, p, i, ts, key, value)
            for i, ((value, key), ts, p) in enumerate(batch)]
    one = ReactionStage(SETTINGS, clock=lambda: NOW, core=CORE)
    per_record = one.process_batch(recs)
    bulk_stage = ReactionStage(SETTINGS, clock=lambda: NOW, core=CORE)
    bulk_out = []
    # any cutting into fetches gives the same as one batch through the per-record path
    for k in range(0, len(recs), cuts):
        res = bulk_stage.process_bulk([], recs[k:k + cuts])
        assert not res.failed
        bulk_out += res.records
    assert _outcome(bulk_out) == _outcome(per_record.records)
    assert bulk_stage.processed == one.processed
