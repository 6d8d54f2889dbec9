"""Reaction of one symbol to one headline over one horizon (docs/ARCHITECTURE.md, "Reaction").

``p0`` = last price at or before ``t0``; ``p1`` = last price at or before ``t1 = t_start + h``;
``ret = ln(p1/p0)``; ``z = ret / (sigma_1m * sqrt(h / 1 min))`` with ``sigma_1m`` from
:func:`~tariffmon.core.volatility.realised_sigma_1m` ending at ``t0``; ``max_up`` /
``max_down`` the largest log moves from ``p0`` over the ticks after ``p0`` up to ``t1`` (for a
gap reaction that includes the reopening tick at ``t_start``: the gap is part of the move).
For a gap reaction the volatility baseline ends at ``p0``'s tick, the last trading before
the close.

When the market is closed at ``t0`` (by its calendar, or because the last tick is older than
the staleness bound plus the bar length, e.g. a holiday), the horizon starts at the first tick
after ``t0`` (the reopen) and the reaction is flagged ``gap``: it then measures the move from
the last price before the headline to the reopen plus the horizon.

A reaction is final, and only then computed, once a tick newer than ``t1`` exists: ticks never
go back in time, so nothing that arrives later can change it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from tariffmon.contract import Reaction, ReactionRequest
from tariffmon.core.params import EngineParams, SymbolParams
from tariffmon.core.series import TickSeries
from tariffmon.core.volatility import realised_sigma_1m


@dataclass(frozen=True, slots=True)
class Start:
    """Where a reaction's horizon starts, once that is known."""

    i0: int  # index of p0 in the series views
    t_start: int
    gap: bool


def log_return(p0: float, p1: float) -> float:
    """``ln(p1 / p0)`` for positive finite prices, finite whatever their magnitudes.

    The ratio itself overflows or underflows for prices far apart (1e308 against 1e-16);
    the difference of logs never does.  The contract's price bands keep real input well
    inside the range where both agree.
    """
    r = p1 / p0
    if 0.0 < r < math.inf:
        return math.log(r)
    return math.log(p1) - math.log(p0)


def horizon_start(series: TickSeries, t0: int, sym: SymbolParams) -> Start | None:
    """The p0 tick and the horizon's start, or None while the ticks cannot yet tell."""
    latest = series.latest_ts
    if latest is None or latest <= t0:
        return None
    i0 = series.index_at_or_before(t0)
    if i0 < 0:
        return None
    ts = series.ts
    p0_ts = int(ts[i0])
    stale_limit = sym.staleness_ms + int(series.interval[i0])
    closed = not sym.calendar.is_open(t0) or t0 - p0_ts > stale_limit
    if not closed:
        return Start(i0, t0, False)
    return Start(i0, int(ts[i0 + 1]), True)  # latest > t0, so a tick after t0 exists


def baseline_volatility(
    series: TickSeries, t0: int, start: Start, params: EngineParams
) -> tuple[float, int]:
    """``(sigma_1m or NaN, returns used)`` before a headline; the same for all its horizons."""
    # a closed market's baseline is the trading before it closed, not the silence since
    vol_end = int(series.ts[start.i0]) if start.gap else t0
    sigma_arr, n_arr = realised_sigma_1m(
        series.ts, series.price, series.interval, np.array([vol_end], dtype=np.int64),
        params.baseline_ms, params.min_baseline_steps,
    )
    return float(sigma_arr[0]), int(n_arr[0])


def measure(
    series: TickSeries,
    req: ReactionRequest,
    horizon_ms: int,
    start: Start,
    params: EngineParams,
    baseline: tuple[float, int] | None = None,
) -> Reaction | None:
    """The reaction over ``horizon_ms``, or None until a tick newer than its end exists.

    ``baseline`` is :func:`baseline_volatility`'s answer when the caller already has it.
    """
    t1 = start.t_start + horizon_ms
    latest = series.latest_ts
    if latest is None or latest <= t1:
        return None
    ts, price = series.ts, series.price
    i0 = start.i0
    i1 = series.index_at_or_before(t1)
    p0, p1 = float(price[i0]), float(price[i1])
    ret = log_return(p0, p1)
    if i1 > i0:
        window = price[i0 + 1 : i1 + 1]
        max_up = max(0.0, log_return(p0, float(window.max())))
        max_down = min(0.0, log_return(p0, float(window.min())))
    else:
        max_up = max_down = 0.0
    sigma, n_returns = baseline if baseline is not None else baseline_volatility(
        series, req.t0, start, params
    )
    flags: list[str] = []
    z: float | None = None
    if n_returns == 0 or not math.isfinite(sigma) or sigma <= 0.0:
        flags.append("no_baseline")
        sigma_out: float | None = None
    else:
        sigma_out = sigma
        z = ret / (sigma * math.sqrt(horizon_ms / 60_000))
        if not math.isfinite(z):
            # a baseline too quiet to scale by (sigma underflowing): no z, rather than inf
            z, sigma_out = None, None
            flags.append("no_baseline")
        elif n_returns < params.min_baseline_returns:
            flags.append("sparse_baseline")
    n_ticks = i1 - i0
    if n_ticks == 0:
        flags.append("no_ticks_in_horizon")
    significant = (
        z is not None and abs(z) >= params.significance_z and abs(ret) >= params.significance_ret
    )
    return Reaction(
        headline_id=req.headline_id,
        cluster_id=req.cluster_id,
        symbol=req.symbol,
        horizon_s=horizon_ms // 1_000,
        t0=req.t0,
        t_start=start.t_start,
        t1=t1,
        p0=p0,
        p0_ts=int(ts[i0]),
        p1=p1,
        p1_ts=int(ts[i1]),
        ret=ret,
        z=z,
        sigma_1m=sigma_out,
        max_up=max_up,
        max_down=max_down,
        significant=significant,
        gap=start.gap,
        n_ticks=n_ticks,
        flags=tuple(flags),
        direction=req.direction,
        tags=req.tags,
        title=req.title,
    )
