"""Outputs depend on the events alone, not on how headlines and ticks interleave on arrival."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tariffmon.contract import ReactionRequest
from tariffmon.core.engine import EngineOutput, ReactionEngine
from tests.tariffmon.core.engine_helpers import MIN, SEC, WED, params, request

N_TICKS = 1_500
STEP = 5 * SEC


def _market() -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], list[ReactionRequest]]:
    rng = np.random.default_rng(2025)
    start = WED + 60 * MIN  # Wednesday 01:00 UTC: both calendars open
    series = {}
    for sym, vol in (("USDJPY", 3e-4), ("N225", 5e-4)):
        rets = rng.normal(0, vol, N_TICKS)
        rets[[400, 900, 1_200]] = [0.006, -0.008, 0.005]
        ts = start + STEP * np.arange(N_TICKS, dtype=np.int64)
        series[sym] = (ts, 100 * np.exp(np.cumsum(rets)))
    reqs = []
    for i, k in enumerate((380, 395, 880, 1_190, 1_300)):
        for sym in ("USDJPY", "N225"):
            reqs.append(request(f"h{i}", start + k * STEP + 1_234, sym))
    return series, reqs


SERIES, REQUESTS = _market()


def _run(order: list[tuple[str, Any]]) -> tuple[dict[str, Any], dict[str, Any], int]:
    eng = ReactionEngine(params(lateness_ms=2 * 3_600 * SEC))
    out = EngineOutput()
    for kind, item in order:
        if kind == "req":
            out.extend(eng.on_request(item))
        else:
            sym, a, b = item
            ts, px = SERIES[sym]
            out.extend(eng.on_ticks(sym, ts[a:b], px[a:b], np.zeros(b - a, dtype=np.int64)))
    reactions = {r.key: r for r in out.reactions}
    alerts = {a.key: a for a in out.alerts}  # the last value per key is the answer
    assert not out.rejected
    return reactions, alerts, len(out.reactions)


def _canonical() -> list[tuple[str, Any]]:
    """Strict event-time order, one tick at a time per symbol run."""
    events: list[tuple[int, int, str, Any]] = []
    for sym, (ts, _) in SERIES.items():
        for i, t in enumerate(ts.tolist()):
            events.append((t, 1, "tick", (sym, i, i + 1)))
    for r in REQUESTS:
        events.append((r.t0, 0, "req", r))
    events.sort(key=lambda e: (e[0], e[1]))
    return [(k, item) for _, _, k, item in events]


EXPECTED = _run(_canonical())


def interleaving(rnd: random.Random) -> list[tuple[str, Any]]:
    """Random batch cuts per symbol, each headline delivered anywhere within lateness."""
    big = rnd.choice([1, 20, 600])  # from tick-at-a-time to large batches
    order: list[tuple[str, Any]] = []
    cursors = {sym: 0 for sym in SERIES}
    pending = list(REQUESTS)
    while any(c < N_TICKS for c in cursors.values()) or pending:
        live = [s for s, c in cursors.items() if c < N_TICKS]
        choices = (["tick"] if live else []) + (["req"] if pending else [])
        if rnd.choice(choices) == "req":
            order.append(("req", pending.pop(rnd.randrange(len(pending)))))
            continue
        sym = rnd.choice(live)
        a = cursors[sym]
        ts = SERIES[sym][0]
        # never let a symbol's ticks run more than the lateness bound past a pending headline
        limit = min([r.t0 + 2 * 3_600 * SEC for r in pending if r.symbol == sym], default=None)
        max_b = N_TICKS if limit is None else int(np.searchsorted(ts, limit, side="right"))
        if max_b <= a:
            order.append(("req", pending.pop(next(
                i for i, r in enumerate(pending) if r.symbol == sym))))
            continue
        b = rnd.randint(a + 1, min(max_b, a + big))
        order.append(("tick", (sym, a, b)))
        cursors[sym] = b
    return order


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32))
def test_any_interleaving_and_batching_gives_identical_outputs(seed: int) -> None:
    # the seed drives a whole delivery schedule: a few thousand decisions per example
    order = interleaving(random.Random(seed))
    reactions, alerts, count = _run(order)
    exp_reactions, exp_alerts, exp_count = EXPECTED
    assert reactions == exp_reactions
    assert count == exp_count == len(exp_reactions)  # each key emitted exactly once
    assert alerts == exp_alerts


def test_expected_outputs_are_not_trivial() -> None:
    reactions, alerts, _ = EXPECTED
    assert len(reactions) == len(REQUESTS) * 2
    assert any(r.significant for r in reactions.values())
    assert alerts and any(a.headlines for a in alerts.values())
