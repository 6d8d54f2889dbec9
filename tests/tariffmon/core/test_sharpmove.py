"""Sharp moves: thresholds, cool-down, attribution and batch-size independence."""

from __future__ import annotations

import math

import numpy as np

from tariffmon.core.engine import ReactionEngine
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
