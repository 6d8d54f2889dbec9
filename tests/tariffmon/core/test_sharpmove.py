"""Sharp moves: thresholds, cool-down, attribution and batch-size independence."""

from __future__ import annotations

import math

import numpy as np

from tariffmon.core.engine import ReactionEngine
from tariffmon.core.volatility import realised_sigma_1m
from tests.tariffmon.core.engine_helpers import MIN, SEC, WED, params, request, ticks


def _quiet_then_jump(n_quiet: int, jump: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    prices = [100.0 * math.exp(1e-5 * (i % 2)) for i in range(n_quiet)]
    prices += [prices[-1] * math.exp(jump)] * 10
    return ticks(WED + 3_600_000, len(prices), 10 * SEC, prices)


def test_move_beyond_bp_threshold_alerts_once_per_cooldown() -> None:
    eng = ReactionEngine(params())
    ts, px, iv = _quiet_then_jump(200, 0.0025)  # 25 bp against a 20 bp one-minute threshold
    out = eng.on_ticks("USDJPY", ts, px, iv)
    one_min = [a for a in out.alerts if a.window_s == 60]
    assert len(one_min) == 1
    a = one_min[0]
    assert a.ts == int(ts[200]) and a.direction == "up"
    assert math.isclose(a.ret, 0.0025, abs_tol=2e-5)
    assert a.threshold_bp == 20.0
    # a second jump inside the cool-down stays quiet; one after it alerts again
    level = float(px[-1])
    t = int(ts[-1])
    path = [level] * 20 + [level * math.exp(-0.003)] * 60 + [level * math.exp(-0.006)] * 5
    ts2, px2, iv2 = ticks(t + 10 * SEC, len(path), 10 * SEC, path)
    out2 = eng.on_ticks("USDJPY", ts2, px2, iv2)
    got = [(x.window_s, x.ts) for x in out2.alerts if x.window_s == 60]
    assert got == [(60, int(ts2[80]))]  # the drop at ts2[20] fell inside the cool-down
    assert int(ts2[20]) < a.ts + 600 * SEC <= int(ts2[80])


def test_small_move_does_not_alert() -> None:
    eng = ReactionEngine(params())
    out = eng.on_ticks("USDJPY", *_quiet_then_jump(200, 0.0005))
    assert out.alerts == []


def test_reopening_gap_is_not_a_sharp_move() -> None:
    eng = ReactionEngine(params())
    eng.on_ticks("USDJPY", *ticks(WED, 10, MIN, [100.0] * 10))
    out = eng.on_ticks("USDJPY", *ticks(WED + 5 * 3_600_000, 2, MIN, [103.0, 103.0]))
    assert out.alerts == []


def test_attribution_lists_lookback_headlines_most_recent_first() -> None:
    eng = ReactionEngine(params())
    ts, px, iv = _quiet_then_jump(200, 0.0025)
    jump_ts = int(ts[200])
    eng.on_ticks("USDJPY", ts[:150], px[:150], iv[:150])
    eng.on_request(request("old", jump_ts - 3_600_000))  # outside the 30-min look-back
    eng.on_request(request("a", jump_ts - 20 * MIN))
    eng.on_request(request("b", jump_ts - 5 * MIN))
    out = eng.on_ticks("USDJPY", ts[150:], px[150:], iv[150:])
    alert = next(a for a in out.alerts if a.window_s == 60)
    assert [h.id for h in alert.headlines] == ["b", "a"]


def test_late_headline_reissues_alert_with_full_attribution() -> None:
    eng = ReactionEngine(params())
    ts, px, iv = _quiet_then_jump(200, 0.0025)
    first = next(a for a in eng.on_ticks("USDJPY", ts, px, iv).alerts if a.window_s == 60)
    assert first.headlines == ()
    out = eng.on_request(request("late", first.ts - 2 * MIN))
    assert out.alerts == []  # not a new sharp move: the same one, re-issued
    again = next(a for a in out.reissued if a.window_s == 60)
    assert again.key == first.key and [h.id for h in again.headlines] == ["late"]


def test_same_alerts_whatever_the_batch_sizes() -> None:
    rng = np.random.default_rng(7)
    n = 3_000
    rets = rng.normal(0, 2e-4, n)
    rets[1_000] = 0.004
    rets[2_000] = -0.005
    px = 100 * np.exp(np.cumsum(rets))
    ts, px, iv = ticks(WED + 3_600_000, n, 5 * SEC, px)
    whole = ReactionEngine(params()).on_ticks("USDJPY", ts, px, iv).alerts
    eng = ReactionEngine(params())
    pieces = []
    cuts = sorted(set(rng.integers(1, n, 40).tolist()))
    for a, b in zip([0, *cuts], [*cuts, n], strict=True):
        pieces.extend(eng.on_ticks("USDJPY", ts[a:b], px[a:b], iv[a:b]).alerts)
    assert whole and pieces == whole


def test_same_z_alerts_one_tick_at_a_time_as_in_one_batch() -> None:
    """Moves below the bp threshold that alert by z depend on the volatility baseline, which
    a tick at a time is computed once per minute and reused: the answers must not change,
    also with several ticks at one timestamp (the newest minute's baseline is not final)."""
    rng = np.random.default_rng(11)
    n = 4_000
    steps = rng.choice([0, 1_000, 2_000, 7_000], n, p=[0.15, 0.45, 0.3, 0.1])
    ts = WED + 3_600_000 + np.cumsum(steps).astype(np.int64)
    rets = rng.normal(0, 2e-5, n)
    for at in (1_200, 2_300, 3_400):  # ~13 bp within a minute: over the z floor, under 20 bp
        rets[at:at + 10] += 0.0013 / 10
    px = 100 * np.exp(np.cumsum(rets))
    iv = np.zeros(n, dtype=np.int64)
    whole = ReactionEngine(params()).on_ticks("USDJPY", ts, px, iv).alerts
    by_z = [a for a in whole if abs(a.ret) < 0.002]
    assert by_z, "the data must give alerts that only the z rule raises"
    one = ReactionEngine(params())
    singles = [a for i in range(n)
               for a in one.on_ticks("USDJPY", ts[i:i + 1], px[i:i + 1], iv[i:i + 1]).alerts]
    assert singles == whole
    # cuts also inside runs of equal timestamps
    cuts = sorted(set(rng.integers(1, n, 300).tolist()))
    eng = ReactionEngine(params())
    pieces = [a for lo, hi in zip([0, *cuts], [*cuts, n], strict=True)
              for a in eng.on_ticks("USDJPY", ts[lo:hi], px[lo:hi], iv[lo:hi]).alerts]
    assert pieces == whole


def test_the_baseline_kept_between_ticks_is_the_one_computed_afresh() -> None:
    """White-box check of the detector's per-minute baseline: after every tick, including
    runs of ticks at one timestamp on a minute boundary, the sigma it holds for any minute
    end equals :func:`realised_sigma_1m` over the whole series at that moment."""
    rng = np.random.default_rng(5)
    p = params()
    eng = ReactionEngine(p)
    t = WED + 3_600_000
    checked = 0
    for i in range(2_500):
        # a third of the ticks land on a minute boundary, often several at once
        t += int(rng.choice([0, 0, 1_000, 3_000, 60_000 - t % 60_000]))
        px = 100 * math.exp(rng.normal(0, 5e-4))
        eng.on_ticks("USDJPY", np.array([t], dtype=np.int64), np.array([px]),
                     np.zeros(1, dtype=np.int64))
        state = eng.state("USDJPY")
        series, kept = state.series, state.detector._sigma_cache
        if kept and i % 5 == 0:
            checked += 1
            ends = np.array(sorted(kept), dtype=np.int64)
            fresh, _ = realised_sigma_1m(series.ts, series.price, series.interval, ends,
                                         p.baseline_ms, p.min_baseline_steps)
            np.testing.assert_array_equal(np.array([kept[e] for e in ends.tolist()]), fresh)
    assert checked > 50
