"""Realised volatility per minute, from whatever sampling the ticks have.

Definition (one implementation, used by reactions and sharp moves alike): for an end time
``e``, sample the last price at or before each point of a grid ``e, e-g, e-2g, ...`` reaching
back over the baseline window, with ``g`` one minute, or the bar length when bars are longer.
A step's log return counts only when a tick fell inside the step and the price at its start
was itself fresh (so a weekend or lunch-break gap never counts as one step's move).
``sigma_1m = sqrt(mean(r^2) * 60 s / g)``: the standard deviation of one-minute log returns,
scaled by the square-root-of-time rule when the sampling is coarser.  The baseline stretches
to at least ``min_steps`` steps so hourly or daily bars still give an estimate.
Only ticks at or before ``e`` are read: no look-ahead.
"""

from __future__ import annotations

import numpy as np

from tariffmon.core.series import F64, I64

MINUTE_MS = 60_000


def realised_sigma_1m(
    ts: I64,
    price: F64,
    interval: I64,
    end_times: I64,
    baseline_ms: int,
    min_steps: int = 20,
) -> tuple[F64, I64]:
    """Per end time: (sigma of one-minute log returns or NaN, number of returns used)."""
    m = len(end_times)
    sigma = np.full(m, np.nan)
    counts = np.zeros(m, dtype=np.int64)
    if m == 0 or len(ts) < 2:
        return sigma, counts
    i_end = np.searchsorted(ts, end_times, side="right") - 1
    bar = np.where(i_end >= 0, interval[np.clip(i_end, 0, None)], 0)
    step = np.maximum(MINUTE_MS, bar)
    for g in np.unique(step):
        sel = np.nonzero(step == g)[0]
        g_int = int(g)
        k = max(baseline_ms, min_steps * g_int) // g_int
        if k < 1:
            continue
        offsets = np.arange(0, k + 2, dtype=np.int64) * g_int  # k returns need k+2 points
        grid = end_times[sel, None] - offsets[None, :]  # newest first along axis 1
        idx = np.searchsorted(ts, grid, side="right") - 1
        safe = np.clip(idx, 0, None)
        p = price[safe]
        t_at = ts[safe]
        newer, older = idx[:, :-2], idx[:, 1:-1]
        # a tick inside the step, and a fresh price at its start
        valid = (newer > older) & (older >= 0) & (t_at[:, 1:-1] > grid[:, 2:])
        with np.errstate(divide="ignore", invalid="ignore"):
            r = np.log(p[:, :-2] / p[:, 1:-1])
        r2 = np.where(valid, r * r, 0.0)
        n = valid.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            var_step = r2.sum(axis=1) / n
        sigma[sel] = np.where(n > 0, np.sqrt(var_step * (MINUTE_MS / g_int)), np.nan)
        counts[sel] = n
    return sigma, counts
