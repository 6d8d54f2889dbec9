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

A gap reaction's z compares its move with past gaps of the same kind (overnight, weekend,
holiday, lunch break, data hole: :mod:`tariffmon.core.gaps`) rather than with intraday
volatility: ``gap_ret = ln(p_reopen / p0)``, ``gap_z = gap_ret / gap_sigma``, and the whole
horizon's ``z = ret / sqrt(gap_sigma^2 + sigma_1m^2 * h / 1 min)`` (the gap and the intraday
move after the reopen, independent, each with its own baseline).  With fewer past gaps than
``gap_min_count`` there is no z (flag ``few_past_gaps``) and significance rests on the return
threshold alone; otherwise a gap reaction is significant when ``|z| >= gap_significance_z``
(past gaps are short-tailed: see docs/ARCHITECTURE.md, "Gap reactions").  Every headline
of one closed window gets the same ``confound_id``.

A reaction is final, and only then computed, once a tick newer than ``t1`` exists: ticks never
go back in time, so nothing that arrives later can change it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from tariffmon.contract import Reaction, ReactionRequest
from tariffmon.core.gaps import GapBaseline, GapHistory, gap_kind
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


def gap_baseline(series: TickSeries, start: Start, sym: SymbolParams, gaps: GapHistory,
                 params: EngineParams) -> GapBaseline | None:
    """The past gaps a gap reaction is measured against (None for an open-market start)."""
    if not start.gap:
        return None
    close_ts = int(series.ts[start.i0])
    kind = gap_kind(sym.calendar, close_ts, start.t_start)
    return gaps.baseline(kind, close_ts, params.gap_memory_ms, params.gap_min_count,
                         params.gap_max_count)


def measure(
    series: TickSeries,
    req: ReactionRequest,
    horizon_ms: int,
    start: Start,
    params: EngineParams,
    baseline: tuple[float, int] | None = None,
    gap_base: GapBaseline | None = None,
) -> Reaction | None:
    """The reaction over ``horizon_ms``, or None until a tick newer than its end exists.

    ``baseline`` is :func:`baseline_volatility`'s answer when the caller already has it;
    ``gap_base`` is :func:`gap_baseline`'s for a gap start (without it a gap reaction has
    no past gaps to compare with, hence no z).
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
    gap_fields: dict[str, object] = {}
    if start.gap:
        z, gap_fields = _gap_z(series, req, start, ret, sigma_out, horizon_ms, gap_base, flags)
    if start.gap and z is None:
        # too few past gaps to judge it against: the return threshold alone decides
        significant = abs(ret) >= params.significance_ret
    elif start.gap:
        significant = (z is not None and abs(z) >= params.gap_significance_z
                       and abs(ret) >= params.significance_ret)
    else:
        significant = (z is not None and abs(z) >= params.significance_z
                       and abs(ret) >= params.significance_ret)
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
        **gap_fields,  # type: ignore[arg-type]
    )


def _gap_z(
    series: TickSeries, req: ReactionRequest, start: Start, ret: float,
    sigma_1m: float | None, horizon_ms: int, gap_base: GapBaseline | None, flags: list[str],
) -> tuple[float | None, dict[str, object]]:
    """A gap reaction's z and its gap fields (see the module text)."""
    i0 = start.i0
    p0, p_reopen = float(series.price[i0]), float(series.price[i0 + 1])
    gap_ret = log_return(p0, p_reopen)
    fields: dict[str, object] = {
        "gap_ret": gap_ret,
        "confound_id": f"gap:{req.symbol}:{int(series.ts[i0])}",
    }
    if gap_base is None:
        flags.append("few_past_gaps")
        return None, fields
    fields["gap_kind"] = gap_base.kind
    fields["gap_count"] = gap_base.n
    if gap_base.sigma is None:
        flags.append("few_past_gaps")
        return None, fields
    gap_z = gap_ret / gap_base.sigma
    intraday_var = 0.0 if sigma_1m is None else sigma_1m * sigma_1m * horizon_ms / 60_000
    z = ret / math.sqrt(gap_base.sigma * gap_base.sigma + intraday_var)
    if not (math.isfinite(gap_z) and math.isfinite(z)):
        flags.append("few_past_gaps")
        return None, fields
    fields["gap_sigma"] = gap_base.sigma
    fields["gap_z"] = gap_z
    return z, fields
