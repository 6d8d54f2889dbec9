"""Reaction definitions checked against values computed by hand."""

from __future__ import annotations

import math

import numpy as np

from tariffmon.core.engine import ReactionEngine
from tests.tariffmon.core.engine_helpers import MIN, SEC, WED, params, request, ticks


def _alternating(n: int, base: float, r: float) -> np.ndarray:
    """Prices whose one-minute log returns alternate +r, -r (sigma_1m = r exactly)."""
    out = [base]
    for i in range(1, n):
        out.append(out[-1] * math.exp(r if i % 2 else -r))
    return np.array(out)


def test_return_z_and_extremes_match_hand_computation() -> None:
    eng = ReactionEngine(params())
    t_open = WED + 10 * 3_600_000
    # 40 minutes of one-minute ticks with one-minute log returns of exactly +-1 bp
    ts, px, iv = ticks(t_open, 41, MIN, _alternating(41, 145.0, 1e-4))
    eng.on_ticks("USDJPY", ts, px, iv)
    t0 = int(ts[-1]) + 30 * SEC  # headline 30 s after the last tick
    p0 = float(px[-1])
    out = eng.on_request(request("h1", t0))
    assert out.reactions == []  # nothing covers the horizon yet
    # after t0: +0.5% at 20 s, -0.2% at 40 s, +0.3% at 70 s, then flat
    path = [(20, 0.005), (40, -0.002), (70, 0.003), (400, 0.003)]
    ts2 = np.array([t0 + s * SEC for s, _ in path], dtype=np.int64)
    px2 = np.array([p0 * math.exp(r) for _, r in path])
    out = eng.on_ticks("USDJPY", ts2, px2, np.zeros(4, dtype=np.int64))
    got = {r.horizon_s: r for r in out.reactions}
    assert set(got) == {60, 300}
    r60 = got[60]
    assert r60.p0 == p0 and r60.p0_ts == int(ts[-1])
    assert math.isclose(r60.ret, -0.002, abs_tol=1e-12)  # last price at or before t0+60 s
    assert math.isclose(r60.sigma_1m or 0, 1e-4, rel_tol=1e-9)
    assert math.isclose(r60.z or 0, -0.002 / 1e-4, rel_tol=1e-9)
    assert math.isclose(r60.max_up, 0.005, abs_tol=1e-12)
    assert math.isclose(r60.max_down, -0.002, abs_tol=1e-12)
    assert r60.significant and not r60.gap and r60.n_ticks == 2
    r300 = got[300]
    assert math.isclose(r300.ret, 0.003, abs_tol=1e-12)
    assert math.isclose(r300.z or 0, 0.003 / (1e-4 * math.sqrt(5)), rel_tol=1e-9)
    assert r300.key == "h1|USDJPY|300"


def test_bar_close_after_t0_never_leaks_into_p0() -> None:
    eng = ReactionEngine(params())
    bar = 15 * MIN
    start = WED + 6 * 3_600_000
    # 15-minute bars stamped at their end; a bar closing 10 min after t0 must not be p0
    ends = start + bar * np.arange(1, 31, dtype=np.int64)
    px = 145.0 + 0.01 * np.arange(30)
    t0 = int(ends[19]) + 5 * MIN  # 5 min into the bar that closes at ends[20]
    eng.on_ticks("USDJPY", ends[:21], px[:21], np.full(21, bar, dtype=np.int64))
    out = eng.on_request(request("bar", t0))
    out.extend(eng.on_ticks("USDJPY", ends[21:], px[21:], np.full(9, bar, dtype=np.int64)))
    r = {x.horizon_s: x for x in out.reactions}[60]
    assert r.p0_ts == int(ends[19]) and r.p0 == px[19]
    assert r.p1_ts == int(ends[19])  # no bar closed within 60 s of t0
    assert r.ret == 0.0 and "no_ticks_in_horizon" in r.flags
    assert r.sigma_1m is not None  # 15-minute bars still give a per-minute volatility


def test_gap_reaction_when_market_closed_at_t0() -> None:
    eng = ReactionEngine(params())
    fri_close = WED + 2 * 86_400_000 + 21 * 3_600_000  # Friday 21:00 UTC
    ts, px, iv = ticks(fri_close - 40 * MIN, 40, MIN, np.linspace(145, 146, 40))
    eng.on_ticks("USDJPY", ts, px, iv)
    t0 = fri_close + 5 * 3_600_000  # Saturday 02:00: FX is closed
    eng.on_request(request("weekend", t0))
    sun_open = fri_close + 48 * 3_600_000
    ts2, px2, iv2 = ticks(sun_open + 30 * SEC, 12, MIN, np.full(12, 147.0))
    out = eng.on_ticks("USDJPY", ts2, px2, iv2)
    r = {x.horizon_s: x for x in out.reactions}[60]
    assert r.gap and r.t_start == int(ts2[0]) and r.t1 == int(ts2[0]) + 60 * SEC
    assert r.p0 == px[-1] and r.p1 == 147.0
    assert math.isclose(r.ret, math.log(147.0 / px[-1]))
    # the baseline is Friday's trading before the close, not the silent weekend
    steps = np.diff(np.log(px[-31:]))
    assert r.sigma_1m is not None
    assert math.isclose(r.sigma_1m, math.sqrt(float(np.mean(steps**2))), rel_tol=1e-9)


def test_gap_reaction_keeps_its_baseline_when_the_headline_comes_after_the_reopen() -> None:
    eng = ReactionEngine(params())
    fri_close = WED + 2 * 86_400_000 + 21 * 3_600_000
    ts, px, iv = ticks(fri_close - 40 * MIN, 40, MIN, np.linspace(145, 146, 40))
    eng.on_ticks("USDJPY", ts, px, iv)
    sun_open = fri_close + 48 * 3_600_000
    # the reopen's first ticks are processed before the Sunday headline arrives (within the
    # lateness bound): the Friday baseline must still be there for its gap reaction
    out = eng.on_ticks("USDJPY", *ticks(sun_open + 30 * SEC, 3, MIN, [147.0] * 3))
    out.extend(eng.on_request(request("sunday", sun_open - 30 * MIN)))
    out.extend(eng.on_ticks("USDJPY", *ticks(sun_open + 30 * SEC + 3 * MIN, 9, MIN,
                                             [147.0] * 9)))
    r = {x.horizon_s: x for x in out.reactions}[300]
    assert r.gap and r.p0_ts == int(ts[-1])
    assert r.sigma_1m is not None and "no_baseline" not in r.flags


def test_stale_feed_counts_as_closed_even_when_calendar_is_open() -> None:
    eng = ReactionEngine(params())
    ts, px, iv = ticks(WED + 3_600_000, 10, MIN, np.full(10, 100.0))
    eng.on_ticks("USDJPY", ts, px, iv)
    t0 = int(ts[-1]) + 3_600_000  # an hour without ticks on a Wednesday: a holiday
    eng.on_request(request("holiday", t0))
    ts2, px2, iv2 = ticks(t0 + 10 * MIN, 3, MIN, np.full(3, 101.0))
    out = eng.on_ticks("USDJPY", ts2, px2, iv2)
    assert all(r.gap for r in out.reactions) and len(out.reactions) == 1


def test_no_baseline_gives_no_z_and_is_not_significant() -> None:
    eng = ReactionEngine(params())
    ts, px, iv = ticks(WED + 3_600_000, 2, SEC, [100.0, 100.0])
    eng.on_ticks("USDJPY", ts, px, iv)
    eng.on_request(request("cold", int(ts[-1])))
    out = eng.on_ticks("USDJPY", *ticks(int(ts[-1]) + 400 * SEC, 1, SEC, [110.0]))
    assert out.reactions and all(r.z is None and "no_baseline" in r.flags for r in out.reactions)
    assert not any(r.significant for r in out.reactions)


def test_late_headline_is_measured_at_once_and_too_late_one_rejected() -> None:
    eng = ReactionEngine(params())
    ts, px, iv = ticks(WED + 3_600_000, 120, MIN, _alternating(120, 100.0, 2e-4))
    eng.on_ticks("USDJPY", ts, px, iv)
    out = eng.on_request(request("late", int(ts[60])))
    assert len(out.reactions) == 2  # both horizons already covered
    out = eng.on_request(request("too-late", int(ts[-1]) - 2 * 3_600_000))
    assert out.reactions == [] and out.rejected[0].reason == "too_late"


def test_repeated_headline_id_is_ignored() -> None:
    eng = ReactionEngine(params())
    ts, px, iv = ticks(WED + 3_600_000, 120, MIN, _alternating(120, 100.0, 2e-4))
    eng.on_ticks("USDJPY", ts, px, iv)
    first = eng.on_request(request("dup", int(ts[60])))
    again = eng.on_request(request("dup", int(ts[61])))
    assert len(first.reactions) == 2 and not again


def test_out_of_order_tick_is_rejected_and_state_kept() -> None:
    eng = ReactionEngine(params())
    eng.on_ticks("USDJPY", *ticks(WED + 3_600_000, 5, MIN, [100.0] * 5))
    out = eng.on_ticks("USDJPY", *ticks(WED + 3_600_000, 1, MIN, [99.0]))
    assert [r.reason for r in out.rejected] == ["out_of_order"]
    assert eng.latest_ts("USDJPY") == WED + 3_600_000 + 4 * MIN


def test_headline_before_the_first_tick_is_refused_and_frees_eviction() -> None:
    eng = ReactionEngine(params())
    first = WED + 3_600_000
    eng.on_request(request("early", first - 30 * MIN))  # before any tick: pending
    out = eng.on_ticks("USDJPY", *ticks(first, 600, 10 * SEC, [100.0] * 600))
    [rej] = out.rejected
    assert rej.reason == "no_price_before_t0" and rej.request is not None
    assert out.reactions == [] and eng.pending_count() == 0
    # nothing holds old ticks any more: eviction keeps about the retention window
    out = eng.on_ticks("USDJPY", *ticks(first + 600 * 10 * SEC, 3_000, 10 * SEC,
                                        [100.0] * 3_000))
    state = eng.state("USDJPY")
    assert state.series.oldest_ts is not None
    assert state.series.oldest_ts > first + 3_600_000
