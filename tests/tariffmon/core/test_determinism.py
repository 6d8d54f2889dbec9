"""Outputs depend on the events alone, not on how headlines and ticks interleave on arrival."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tariffmon.contract import ReactionRequest
from tariffmon.core.engine import EngineOutput, ReactionEngine
from tests.tariffmon.core.engine_helpers import MIN, SEC, WED, params, request

N_TICKS = 1_500
STEP = 5 * SEC
HOUR = 3_600 * SEC

Series = dict[str, tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class Market:
    """Ticks per symbol, the tariff headlines fanned out to them, and the lateness bound."""

    series: Series
    requests: list[ReactionRequest]
    lateness_ms: int


def _market() -> tuple[Series, list[ReactionRequest]]:
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


def _closures_market() -> tuple[Series, list[ReactionRequest]]:
    """A weekend: both markets close on Friday and reopen (USD/JPY Sunday, Nikkei Monday)."""
    rng = np.random.default_rng(7)
    step = 30 * SEC
    fri = WED + 2 * 24 * HOUR

    def span(a: float, b: float) -> np.ndarray:
        return fri + int(a * HOUR) + step * np.arange(int((b - a) * HOUR // step), dtype=np.int64)

    series = {}
    for sym, parts, vol in (("USDJPY", [(18, 21), (69, 71.5)], 2e-4),
                            ("N225", [(3.5, 6.5), (72, 74.5)], 4e-4)):
        ts = np.concatenate([span(a, b) for a, b in parts])
        rets = rng.normal(0, vol, len(ts))
        rets[int(np.searchsorted(ts, fri + parts[1][0] * HOUR))] = 0.01  # the reopen gap
        series[sym] = (ts, 100 * np.exp(np.cumsum(rets)))
    reqs = []
    # Friday open, Saturday, Sunday just before the FX reopen (may arrive after it), Monday
    for i, hours in enumerate((19.0, 36.0, 68.5, 72.5)):
        for sym in ("USDJPY", "N225"):
            reqs.append(request(f"c{i}", fri + int(hours * HOUR) + 777, sym))
    return series, reqs


MARKETS = {
    "open": Market(*_market(), lateness_ms=2 * HOUR),
    # a weekend far longer than the retention; a Sunday headline may come after the reopen
    "closures": Market(*_closures_market(), lateness_ms=2 * HOUR),
}


def _run(market: Market, order: list[tuple[str, Any]]
         ) -> tuple[dict[str, Any], dict[str, Any], int]:
    eng = ReactionEngine(params(lateness_ms=market.lateness_ms))
    out = EngineOutput()
    for kind, item in order:
        if kind == "req":
            out.extend(eng.on_request(item))
        else:
            sym, a, b = item
            ts, px = market.series[sym]
            out.extend(eng.on_ticks(sym, ts[a:b], px[a:b], np.zeros(b - a, dtype=np.int64)))
    reactions = {r.key: r for r in out.reactions}
    alerts = {a.key: a for a in out.all_alerts()}  # the last value per key is the answer
    assert not out.rejected
    return reactions, alerts, len(out.reactions)


def _canonical(market: Market) -> list[tuple[str, Any]]:
    """Strict event-time order, one tick at a time per symbol run."""
    events: list[tuple[int, int, str, Any]] = []
    for sym, (ts, _) in market.series.items():
        for i, t in enumerate(ts.tolist()):
            events.append((t, 1, "tick", (sym, i, i + 1)))
    for r in market.requests:
        events.append((r.t0, 0, "req", r))
    events.sort(key=lambda e: (e[0], e[1]))
    return [(k, item) for _, _, k, item in events]


EXPECTED = {name: _run(m, _canonical(m)) for name, m in MARKETS.items()}


def interleaving(market: Market, rnd: random.Random) -> list[tuple[str, Any]]:
    """Random batch cuts per symbol, each headline delivered anywhere within lateness."""
    big = rnd.choice([1, 20, 600])  # from tick-at-a-time to large batches
    order: list[tuple[str, Any]] = []
    cursors = dict.fromkeys(market.series, 0)
    sizes = {sym: len(ts) for sym, (ts, _) in market.series.items()}
    pending = list(market.requests)
    while any(c < sizes[s] for s, c in cursors.items()) or pending:
        live = [s for s, c in cursors.items() if c < sizes[s]]
        choices = (["tick"] if live else []) + (["req"] if pending else [])
        if rnd.choice(choices) == "req":
            order.append(("req", pending.pop(rnd.randrange(len(pending)))))
            continue
        sym = rnd.choice(live)
        a = cursors[sym]
        ts = market.series[sym][0]
        # never let a symbol's ticks run more than the lateness bound past a pending headline
        limit = min([r.t0 + market.lateness_ms for r in pending if r.symbol == sym],
                    default=None)
        max_b = sizes[sym] if limit is None else int(np.searchsorted(ts, limit, side="right"))
        if max_b <= a:
            order.append(("req", pending.pop(next(
                i for i, r in enumerate(pending) if r.symbol == sym))))
            continue
        b = rnd.randint(a + 1, min(max_b, a + big))
        order.append(("tick", (sym, a, b)))
        cursors[sym] = b
    return order


@pytest.mark.parametrize("name", sorted(MARKETS))
@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**32))
def test_any_interleaving_and_batching_gives_identical_outputs(name: str, seed: int) -> None:
    # the seed drives a whole delivery schedule: a few thousand decisions per example
    market = MARKETS[name]
    order = interleaving(market, random.Random(seed))
    reactions, alerts, count = _run(market, order)
    exp_reactions, exp_alerts, exp_count = EXPECTED[name]
    assert reactions == exp_reactions
    assert count == exp_count == len(exp_reactions)  # each key emitted exactly once
    assert alerts == exp_alerts


def test_expected_outputs_are_not_trivial() -> None:
    reactions, alerts, _ = EXPECTED["open"]
    assert len(reactions) == len(MARKETS["open"].requests) * 2
    assert any(r.significant for r in reactions.values())
    assert alerts and any(a.headlines for a in alerts.values())
    closures, _, _ = EXPECTED["closures"]
    gaps = [r for r in closures.values() if r.gap]
    assert gaps and all(r.sigma_1m is not None for r in gaps)  # the pre-close baseline
    assert any(not r.gap for r in closures.values())
