"""realised_sigma_1m (tariffmon/core/volatility.py) against its definition.

docs/ARCHITECTURE.md, "Realised volatility": for an end time ``e``, sample the last price at
or before each point of the grid ``e, e-g, e-2g, ...`` (``g`` one minute, or the bar length
when bars are longer); a step's log return counts only when a tick fell inside the step and
the price at its start was itself fresh; ``sigma_1m = sqrt(mean(r^2) * 60 s / g)``; the window
stretches to at least ``min_steps`` steps; only ticks at or before ``e`` are read.

A loop-per-step reference implementation of that text is compared with the vectorised one
on random tick streams, and the invariants the definition promises are checked directly.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tariffmon.core.series import F64, I64
from tariffmon.core.volatility import MINUTE_MS, realised_sigma_1m

T0 = 1_743_465_600_000  # 2025-04-01 00:00 UTC
HOUR = 60 * MINUTE_MS
DAY = 24 * HOUR
BARS = (0, 15 * MINUTE_MS, HOUR, DAY)


def reference(ts: I64, price: F64, interval: I64, end_times: I64, baseline_ms: int,
              min_steps: int = 20) -> tuple[list[float], list[int]]:
    """The definition, one end time and one step at a time."""
    times = ts.tolist()

    def at_or_before(t: int) -> int:
        i = -1
        for j, x in enumerate(times):
            if x <= t:
                i = j
        return i

    sigmas: list[float] = []
    counts: list[int] = []
    for e in end_times.tolist():
        i_end = at_or_before(e)
        bar = int(interval[i_end]) if i_end >= 0 and len(times) >= 2 else 0
        g = max(MINUTE_MS, bar)
        k = max(baseline_ms, min_steps * g) // g
        r2: list[float] = []
        for j in range(k if len(times) >= 2 else 0):
            start, end_ = e - (j + 1) * g, e - j * g
            newer, older = at_or_before(end_), at_or_before(start)
            fresh = older >= 0 and times[older] > start - g
            if newer > older and fresh:
                r2.append(math.log(price[newer] / price[older]) ** 2)
        counts.append(len(r2))
        sigmas.append(math.sqrt(sum(r2) / len(r2) * MINUTE_MS / g) if r2 else math.nan)
    return sigmas, counts


@st.composite
def tick_streams(draw: st.DrawFn, max_ticks: int = 120) -> tuple[I64, F64, I64]:
    """Sorted ticks with equal times, sub-minute steps and gaps of many steps; one bar length
    (or none) per stream, as a symbol's source gives."""
    n = draw(st.integers(0, max_ticks))
    steps = draw(st.lists(
        st.one_of(st.integers(0, 90_000), st.integers(90_000, 6 * HOUR)), min_size=n, max_size=n))
    bar = draw(st.sampled_from(BARS))
    if bar:  # bar closes: times on the bar grid, some bars missing
        steps = [bar * (1 + s % 3) for s in steps]
    ts = T0 + np.cumsum(np.asarray(steps, dtype=np.int64))
    rets = draw(st.lists(st.floats(-0.05, 0.05, allow_nan=False), min_size=n, max_size=n))
    price = 150.0 * np.exp(np.cumsum(np.asarray(rets, dtype=np.float64)))
    return ts.astype(np.int64), price, np.full(n, bar, dtype=np.int64)


def _end_times(ts: I64, offsets: list[int]) -> I64:
    base = int(ts[0]) if len(ts) else T0
    span = int(ts[-1] - ts[0]) if len(ts) else 0
    ticks = ts[:: max(1, len(ts) // 5)].tolist()  # on ticks, as reactions and alerts ask
    others = [base + o % (span + 2 * HOUR) for o in offsets]
    return np.asarray([base, *ticks, *others], dtype=np.int64)


baselines = st.sampled_from([5 * MINUTE_MS, 30 * MINUTE_MS, HOUR])
offsets = st.lists(st.integers(0, 10 * DAY), max_size=5)


@settings(max_examples=150, deadline=None)
@given(stream=tick_streams(), offs=offsets, baseline=baselines, min_steps=st.integers(1, 25))
def test_matches_the_definition_step_by_step(
    stream: tuple[I64, F64, I64], offs: list[int], baseline: int, min_steps: int
) -> None:
    ts, price, interval = stream
    ends = _end_times(ts, offs)
    sigma, counts = realised_sigma_1m(ts, price, interval, ends, baseline, min_steps)
    want_sigma, want_counts = reference(ts, price, interval, ends, baseline, min_steps)
    assert counts.tolist() == want_counts
    assert np.isnan(sigma).tolist() == [c == 0 for c in want_counts]
    np.testing.assert_allclose(sigma, want_sigma, rtol=1e-9, atol=1e-15)


@settings(max_examples=60, deadline=None)
@given(stream=tick_streams(), offs=offsets, baseline=baselines)
def test_one_call_for_many_end_times_equals_one_call_each(
    stream: tuple[I64, F64, I64], offs: list[int], baseline: int
) -> None:
    ts, price, interval = stream
    ends = _end_times(ts, offs)
    sigma, counts = realised_sigma_1m(ts, price, interval, ends, baseline)
    for i, e in enumerate(ends.tolist()):
        s1, c1 = realised_sigma_1m(ts, price, interval, np.array([e], dtype=np.int64), baseline)
        assert c1[0] == counts[i]
        np.testing.assert_array_equal(s1, sigma[i : i + 1])


@settings(max_examples=60, deadline=None)
@given(stream=tick_streams(), offs=offsets, baseline=baselines,
       level=st.floats(0.01, 1e6))
def test_a_constant_price_has_zero_sigma_or_no_estimate(
    stream: tuple[I64, F64, I64], offs: list[int], baseline: int, level: float
) -> None:
    ts, _, interval = stream
    ends = _end_times(ts, offs)
    sigma, counts = realised_sigma_1m(ts, np.full(len(ts), level), interval, ends, baseline)
    assert np.all(np.where(counts > 0, sigma == 0.0, np.isnan(sigma)))


@settings(max_examples=60, deadline=None)
@given(stream=tick_streams(), offs=offsets, baseline=baselines,
       scale=st.floats(-8.0, 8.0).filter(lambda c: abs(c) > 1e-3),
       level=st.floats(1e-3, 1e3))
def test_sigma_scales_with_the_log_returns_and_ignores_the_price_level(
    stream: tuple[I64, F64, I64], offs: list[int], baseline: int, scale: float, level: float
) -> None:
    ts, price, interval = stream
    ends = _end_times(ts, offs)
    sigma, counts = realised_sigma_1m(ts, price, interval, ends, baseline)
    # every log return times `scale` (a negative scale mirrors the path), any price level
    scaled = level * np.exp(scale * np.log(price / 150.0))
    sigma2, counts2 = realised_sigma_1m(ts, scaled, interval, ends, baseline)
    assert counts2.tolist() == counts.tolist()
    np.testing.assert_allclose(sigma2, abs(scale) * sigma, rtol=1e-7, atol=1e-12)


@settings(max_examples=60, deadline=None)
@given(stream=tick_streams(), offs=offsets, baseline=baselines,
       future=st.lists(st.tuples(st.integers(1, 3 * DAY), st.floats(0.5, 2.0)),
                       min_size=1, max_size=20))
def test_ticks_after_the_end_time_change_nothing(
    stream: tuple[I64, F64, I64], offs: list[int], baseline: int,
    future: list[tuple[int, float]],
) -> None:
    ts, price, interval = stream
    ends = _end_times(ts, offs)
    last_end = int(ends.max())
    sigma, counts = realised_sigma_1m(ts, price, interval, ends, baseline)
    # ticks strictly after every end time, with wild prices and another bar length
    later = last_end + np.cumsum(np.asarray([d for d, _ in future], dtype=np.int64))
    ts2 = np.concatenate([ts, later])
    price2 = np.concatenate([price, 150.0 * np.asarray([f for _, f in future]) * 7])
    interval2 = np.concatenate([interval, np.full(len(later), HOUR, dtype=np.int64)])
    sigma2, counts2 = realised_sigma_1m(ts2, price2, interval2, ends, baseline)
    assert counts2.tolist() == counts.tolist()
    np.testing.assert_array_equal(sigma2, sigma)


def _minutes(start: int, n: int, rets: F64) -> tuple[I64, F64]:
    ts = start + MINUTE_MS * np.arange(n, dtype=np.int64)
    return ts, 150.0 * np.exp(np.cumsum(rets[:n]))


@settings(max_examples=60, deadline=None)
@given(before=st.integers(3, 60), after=st.integers(3, 60),
       gap_steps=st.integers(2, 3 * 24 * 60), jump=st.floats(-0.2, 0.2),
       shift=st.integers(0, MINUTE_MS - 1), seed=st.integers(0, 2**32 - 1))
def test_a_gap_of_two_steps_or_more_never_counts_as_a_return(
    before: int, after: int, gap_steps: int, jump: float, shift: int, seed: int
) -> None:
    """A weekend, a lunch break, a night: whatever the price did across the gap (``jump``)
    and wherever the grid falls (``shift``), sigma and the count are those without it."""
    rets = np.random.default_rng(seed).normal(0.0, 3e-4, before + after)
    ts_a, p_a = _minutes(T0, before, rets)
    ts_b = int(ts_a[-1]) + gap_steps * MINUTE_MS + MINUTE_MS * np.arange(after, dtype=np.int64)
    p_b = p_a[-1] * np.exp(np.cumsum(rets[before:]))
    ts = np.concatenate([ts_a, ts_b]).astype(np.int64)
    interval = np.zeros(len(ts), dtype=np.int64)
    ends = ts[-1:] - np.arange(0, after * MINUTE_MS, 7_000, dtype=np.int64) + shift
    baseline = (before + gap_steps + after + 5) * MINUTE_MS  # reaches across the gap
    flat = realised_sigma_1m(ts, np.concatenate([p_a, p_b]), interval, ends, baseline)
    jumped = realised_sigma_1m(ts, np.concatenate([p_a, p_b * math.exp(jump)]), interval,
                               ends, baseline)
    assert jumped[1].tolist() == flat[1].tolist()
    np.testing.assert_allclose(jumped[0], flat[0], rtol=1e-9, atol=1e-15)


def test_the_first_return_after_a_weekend_is_not_counted() -> None:
    """Friday trading, a 5 % weekend gap, Monday trading: returns on both days only."""
    fri = T0 + 3 * DAY + 20 * HOUR  # Friday 20:00
    mon = fri + 2 * DAY + 2 * HOUR  # Sunday 22:00, the reopen
    flat = np.full(30, 1e-4)
    flat[::2] = -1e-4  # alternating +-1bp: every counted return has r^2 = 1e-8
    ts_f, p_f = _minutes(fri, 30, flat)
    ts_m, p_m = _minutes(mon, 30, flat)
    ts = np.concatenate([ts_f, ts_m]).astype(np.int64)
    price = np.concatenate([p_f, p_m * 1.05])
    ends = np.array([int(ts_m[-1])], dtype=np.int64)
    sigma, counts = realised_sigma_1m(ts, price, np.zeros(len(ts), np.int64), ends,
                                      baseline_ms=3 * DAY)
    assert counts.tolist() == [29 + 29]  # 30 ticks give 29 returns each side of the gap
    assert sigma[0] == pytest.approx(1e-4, rel=1e-6)  # the 4.9 % gap is not in it


@pytest.mark.parametrize("bar", [15 * MINUTE_MS, HOUR, DAY], ids=["15m", "1h", "1d"])
@given(rets=st.lists(st.floats(-0.03, 0.03, allow_nan=False), min_size=25, max_size=60))
@settings(max_examples=40, deadline=None)
def test_coarse_bars_scale_by_the_square_root_of_time(bar: int, rets: list[float]) -> None:
    """The same returns as one-minute points and as bars of length L: the bars' sigma is the
    minutes' times sqrt(1 min / L), over the same number of steps; the window stretches to
    ``min_steps`` bars however short the baseline."""
    r = np.asarray(rets, dtype=np.float64)
    n = len(r)
    price = 150.0 * np.exp(np.cumsum(r))
    steps = 20
    ts_1m = T0 + MINUTE_MS * np.arange(n, dtype=np.int64)
    ts_bar = T0 + bar * np.arange(1, n + 1, dtype=np.int64)  # a bar's time is its end
    s_1m, c_1m = realised_sigma_1m(ts_1m, price, np.zeros(n, np.int64), ts_1m[-1:],
                                   baseline_ms=steps * MINUTE_MS)
    s_bar, c_bar = realised_sigma_1m(ts_bar, price, np.full(n, bar, np.int64), ts_bar[-1:],
                                     baseline_ms=5 * MINUTE_MS, min_steps=steps)
    assert c_1m.tolist() == c_bar.tolist() == [steps]
    np.testing.assert_allclose(s_bar, s_1m * math.sqrt(MINUTE_MS / bar), rtol=1e-9, atol=1e-15)


def test_no_estimate_from_too_few_ticks_or_before_the_first() -> None:
    one = np.array([T0], dtype=np.int64)
    ends = np.array([T0 - 1, T0, T0 + HOUR], dtype=np.int64)
    sigma, counts = realised_sigma_1m(one, np.array([150.0]), np.zeros(1, np.int64), ends, HOUR)
    assert np.isnan(sigma).all() and counts.tolist() == [0, 0, 0]
    ts = T0 + MINUTE_MS * np.arange(10, dtype=np.int64)
    sigma, counts = realised_sigma_1m(ts, np.linspace(150, 151, 10), np.zeros(10, np.int64),
                                      np.array([T0 - 1], dtype=np.int64), HOUR)
    assert np.isnan(sigma[0]) and counts[0] == 0
    sigma, counts = realised_sigma_1m(ts, np.linspace(150, 151, 10), np.zeros(10, np.int64),
                                      np.array([], dtype=np.int64), HOUR)
    assert len(sigma) == len(counts) == 0
