"""Builders shared by the core's tests: parameters, requests and tick arrays."""

from __future__ import annotations

import numpy as np

from tariffmon.contract import ReactionRequest
from tariffmon.core.calendar import TradingCalendar
from tariffmon.core.params import EngineParams, SymbolParams

#: Wednesday 2025-04-09 00:00:00 UTC
WED = 1_744_156_800_000
MIN = 60_000
SEC = 1_000


def params(**overrides: object) -> EngineParams:
    """Small, readable parameters: FX calendar for USDJPY, always-open for N225."""
    symbols = {
        "USDJPY": SymbolParams(
            "USDJPY", TradingCalendar.parse("Sun 21:00 - Fri 21:00"), 300 * SEC,
            {60 * SEC: 0.002, 300 * SEC: 0.004},
        ),
        "N225": SymbolParams(
            "N225", TradingCalendar.parse(["Mon-Fri 00:00-02:30", "Mon-Fri 03:30-06:30"]),
            300 * SEC, {60 * SEC: 0.003, 300 * SEC: 0.006},
        ),
    }
    base: dict[str, object] = {
        "symbols": symbols,
        "horizons_ms": (60 * SEC, 300 * SEC),
        "baseline_ms": 30 * MIN,
        "lateness_ms": 3_600 * SEC,
        "sharp_windows_ms": (60 * SEC, 300 * SEC),
        "cooldown_ms": 600 * SEC,
        "lookback_ms": 1_800 * SEC,
        "min_baseline_returns": 10,
    }
    base.update(overrides)
    return EngineParams(**base)  # type: ignore[arg-type]


def request(hid: str, t0: int, symbol: str = "USDJPY", direction: str = "escalation"
            ) -> ReactionRequest:
    """A tariff headline fanned out to ``symbol``."""
    return ReactionRequest(hid, hid, symbol, t0, f"headline {hid}", ("tariff",),
                           direction, 5.0)  # type: ignore[arg-type]


def ticks(start: int, n: int, step: int, prices: list[float] | np.ndarray
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` point ticks every ``step`` ms from ``start`` with the given prices."""
    ts = start + step * np.arange(n, dtype=np.int64)
    px = np.asarray(prices, dtype=np.float64)
    assert len(px) == n
    return ts, px, np.zeros(n, dtype=np.int64)
