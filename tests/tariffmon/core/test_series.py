"""TickSeries (tariffmon/core/series.py) against a plain-list model of the same ticks.

Invariants: batched appends hold exactly the concatenated ticks, through every growth and
in-place compaction of the arrays; the binary searches agree with a brute-force scan for any
sorted input (duplicate times included); ``evict_before(cut)`` keeps exactly the ticks at or
after the cut plus the last one before it (a horizon's ``p0``), and never brings one back.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tariffmon.core.series import _INITIAL_CAPACITY, F64, I64, TickSeries

#: non-decreasing event times: steps of 0 (equal times) up to a few minutes
time_steps = st.lists(st.integers(min_value=0, max_value=200_000), min_size=0, max_size=300)


def _columns(steps: list[int], start: int = 1_743_465_600_000) -> tuple[I64, F64, I64]:
    ts = start + np.cumsum(np.asarray(steps, dtype=np.int64))
    price = 100.0 + np.arange(len(ts), dtype=np.float64) / 8  # distinct: shows which tick
    interval = (np.arange(len(ts), dtype=np.int64) % 3) * 60_000
    return ts.astype(np.int64), price, interval


def _split(n: int, cuts: list[int]) -> list[tuple[int, int]]:
    bounds = sorted({0, n, *(c % (n + 1) for c in cuts)})
    return list(itertools.pairwise(bounds))


def _filled(ts: I64, price: F64, interval: I64, cuts: list[int]) -> TickSeries:
    s = TickSeries()
    for a, b in _split(len(ts), cuts):
        s.append(ts[a:b], price[a:b], interval[a:b])
    return s


def _brute_index(ts: list[int], t: int) -> int:
    found = -1
    for i, x in enumerate(ts):
        if x <= t:
            found = i
    return found


def _assert_holds(s: TickSeries, ts: list[int], price: list[float], interval: list[int]) -> None:
    assert len(s) == len(ts)
    assert s.ts.tolist() == ts
    assert s.price.tolist() == price
    assert s.interval.tolist() == interval
    assert s.latest_ts == (ts[-1] if ts else None)
    assert s.oldest_ts == (ts[0] if ts else None)


def test_an_empty_series() -> None:
    s = TickSeries()
    _assert_holds(s, [], [], [])
    assert s.index_at_or_before(0) == -1
    assert s.indices_at_or_before(np.array([0, 10], dtype=np.int64)).tolist() == [-1, -1]
    s.evict_before(10**15)  # nothing to evict
    s.append(np.array([], dtype=np.int64), np.array([]), np.array([], dtype=np.int64))
    assert len(s) == 0


@given(steps=time_steps, cuts=st.lists(st.integers(0, 400), max_size=6))
def test_batched_appends_hold_the_concatenation(steps: list[int], cuts: list[int]) -> None:
    ts, price, interval = _columns(steps)
    s = _filled(ts, price, interval, cuts)
    _assert_holds(s, ts.tolist(), price.tolist(), interval.tolist())


def test_a_batch_may_start_at_the_latest_time() -> None:
    """"Not older than latest_ts": a tick at the newest time held is accepted."""
    s = TickSeries()
    s.append(np.array([5, 7], dtype=np.int64), np.array([1.0, 2.0]), np.zeros(2, np.int64))
    s.append(np.array([7, 9], dtype=np.int64), np.array([3.0, 4.0]), np.zeros(2, np.int64))
    assert s.ts.tolist() == [5, 7, 7, 9]
    assert s.index_at_or_before(7) == 2  # the last of equal times
    assert s.price[s.index_at_or_before(8)] == 3.0


@given(steps=time_steps, cuts=st.lists(st.integers(0, 400), max_size=4),
       probes=st.lists(st.integers(-300_000, 60_300_000), max_size=30))
def test_searches_agree_with_a_brute_force_scan(
    steps: list[int], cuts: list[int], probes: list[int]
) -> None:
    ts, price, interval = _columns(steps)
    s = _filled(ts, price, interval, cuts)
    start = 1_743_465_600_000
    times = ts.tolist()
    # probe around every tick (equal, one before, one after) and at arbitrary offsets
    queries = [start + p for p in probes] + [t + d for t in times for d in (-1, 0, 1)]
    expected = [_brute_index(times, q) for q in queries]
    assert [s.index_at_or_before(q) for q in queries] == expected
    vector = s.indices_at_or_before(np.asarray(queries, dtype=np.int64))
    assert vector.dtype == np.int64
    assert vector.tolist() == expected


@given(steps=time_steps, cut_offset=st.integers(-100_000, 60_100_000))
def test_eviction_keeps_the_ticks_at_or_after_the_cut_and_one_before(
    steps: list[int], cut_offset: int
) -> None:
    ts, price, interval = _columns(steps)
    s = _filled(ts, price, interval, [])
    cut = 1_743_465_600_000 + cut_offset
    times = ts.tolist()
    before = [i for i, t in enumerate(times) if t < cut]
    first = before[-1] if before else 0  # the last tick before the cut stays as a p0
    s.evict_before(cut)
    _assert_holds(s, times[first:], price.tolist()[first:], interval.tolist()[first:])
    assert all(t >= cut for t in s.ts.tolist()[1:])
    # an older cut afterwards brings nothing back; the same cut again changes nothing
    s.evict_before(cut - 10**9)
    s.evict_before(cut)
    _assert_holds(s, times[first:], price.tolist()[first:], interval.tolist()[first:])


@dataclass
class _Model:
    ts: list[int] = field(default_factory=list)
    price: list[float] = field(default_factory=list)
    interval: list[int] = field(default_factory=list)

    def evict_before(self, cut: int) -> None:
        before = [i for i, t in enumerate(self.ts) if t < cut]
        first = before[-1] if before else 0
        self.ts, self.price, self.interval = (
            self.ts[first:], self.price[first:], self.interval[first:])


# an operation: ("append", batch size, time step) or ("evict", how far behind the newest)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("append"), st.integers(0, 3 * _INITIAL_CAPACITY // 2),
                  st.integers(0, 3)),
        st.tuples(st.just("evict"), st.integers(-5, 2 * _INITIAL_CAPACITY), st.just(0)),
    ),
    min_size=1, max_size=12,
)


@settings(max_examples=60, deadline=None)
@given(ops=operations)
def test_appends_and_evictions_through_growth_and_compaction(
    ops: list[tuple[str, int, int]]
) -> None:
    """Batches larger than the capacity, and evictions that free more or less than half of
    it, exercise both doubling and in-place compaction; the ticks held stay the model's."""
    s = TickSeries()
    model = _Model()
    now = 0
    serial = 0
    for kind, n, step in ops:
        if kind == "append":
            ts = now + step * np.arange(n, dtype=np.int64)
            price = serial + np.arange(n, dtype=np.float64)
            interval = np.full(n, step, dtype=np.int64)
            s.append(ts, price, interval)
            model.ts += ts.tolist()
            model.price += price.tolist()
            model.interval += interval.tolist()
            serial += n
            if n:
                now = int(ts[-1])
        else:
            cut = now - n
            s.evict_before(cut)
            model.evict_before(cut)
        _assert_holds(s, model.ts, model.price, model.interval)


def test_compaction_in_place_and_doubling() -> None:
    """The two growth paths, pinned: a full array whose front was evicted is compacted in
    place (same capacity); one that stays more than half full doubles."""
    cap = _INITIAL_CAPACITY
    s = TickSeries()
    ts = np.arange(cap, dtype=np.int64)
    s.append(ts, ts.astype(np.float64), np.zeros(cap, np.int64))
    s.evict_before(cap - 100)  # keeps 101: the cut's p0 and the 100 after it
    s.append(np.arange(cap, cap + 1_000, dtype=np.int64), np.zeros(1_000),
             np.zeros(1_000, np.int64))
    assert len(s._ts) == cap  # compacted, not reallocated
    assert s.ts.tolist() == list(range(cap - 101, cap + 1_000))
    assert s.price.tolist()[:101] == [float(t) for t in range(cap - 101, cap)]
    s.append(np.arange(cap + 1_000, 2 * cap, dtype=np.int64), np.zeros(cap - 1_000),
             np.zeros(cap - 1_000, np.int64))
    assert len(s._ts) == 2 * cap  # live + extra above half the capacity: doubled
    assert s.ts.tolist() == list(range(cap - 101, 2 * cap))
