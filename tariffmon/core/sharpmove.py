"""Sharp-move detection on rolling windows, with a cool-down per symbol and window.

At each tick at time ``t`` and for each window ``w`` the rolling return is
``ln(p(t) / p(t - w))`` with ``p(t - w)`` the last price at or before ``t - w``; a reference
older than ``w`` plus the staleness bound (the market was closed) gives no rolling return, so
reopening gaps are left to the gap reactions.  A move is sharp when ``|ret|`` reaches the
window's threshold, or when its z (against :func:`realised_sigma_1m` at the last whole minute)
reaches ``sharp_z`` and ``|ret|`` is at least ``sharp_z_floor_ratio`` of the threshold.
After an alert, the same symbol and window stay quiet for the cool-down.

Everything per tick is vectorised; only the (few) candidates walk the cool-down in Python, so
the outcome is the same whether ticks come one at a time or a million at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tariffmon.core.params import EngineParams, SymbolParams
from tariffmon.core.series import F64, I64, TickSeries
from tariffmon.core.volatility import MINUTE_MS, realised_sigma_1m


@dataclass(frozen=True, slots=True)
class SharpMove:
    """A detected move, before attribution."""

    symbol: str
    window_ms: int
    ts: int
    start_ts: int
    p_start: float
    p_end: float
    ret: float
    z: float | None
    threshold: float


class SharpMoveDetector:
    """Per-symbol state: when each window last alerted."""

    __slots__ = ("_last_alert", "_sigma_cache", "_thresholds", "_windows", "params", "sym")

    def __init__(self, sym: SymbolParams, params: EngineParams) -> None:
        self.sym = sym
        self.params = params
        self._last_alert: dict[int, int] = {}
        #: the baseline sigma at minute ends that no later tick can change (see _sigma_at)
        self._sigma_cache: dict[int, float] = {}
        # the windows that have a threshold, in the configured order, and those thresholds
        pairs = [(w, sym.sharp_thresholds[w]) for w in params.sharp_windows_ms
                 if w in sym.sharp_thresholds]
        self._windows = np.array([w for w, _ in pairs], dtype=np.int64)
        self._thresholds = np.array([t for _, t in pairs], dtype=np.float64)

    def last_rolling(self, series: TickSeries) -> dict[int, float]:
        """The rolling return of each window at the newest tick (for gauges)."""
        out: dict[int, float] = {}
        if len(series) == 0:
            return out
        ts, price = series.ts, series.price
        t = int(ts[-1])
        for w in self.params.sharp_windows_ms:
            j = series.index_at_or_before(t - w)
            if j >= 0 and int(ts[j]) >= t - w - self.sym.staleness_ms:
                out[w] = float(np.log(price[-1] / price[j]))
        return out

    def detect(self, series: TickSeries, first_new: int) -> list[SharpMove]:
        """Sharp moves at the ticks from index ``first_new`` on (already in ``series``)."""
        ts, price = series.ts, series.price
        new_ts = ts[first_new:]
        new_p = price[first_new:]
        if len(new_ts) == 0:
            return []
        moves: list[SharpMove] = []
        p = self.params
        windows, thresholds = self._windows, self._thresholds
        if len(windows) == 0:
            return []
        # pass 1: every window's rolling return at every new tick, as one (windows x ticks)
        # array: a tick at a time, the numpy calls' fixed cost is most of the work, so one
        # call for all windows rather than one per window
        start = new_ts[None, :] - windows[:, None]
        ref = series.indices_at_or_before(start)
        ok = ref >= 0
        ref_c = np.clip(ref, 0, None)
        ok &= ts[ref_c] >= start - self.sym.staleness_ms
        with np.errstate(divide="ignore", invalid="ignore"):
            ret = np.where(ok, np.log(new_p[None, :] / price[ref_c]), 0.0)
        # candidates: |ret| at or above the window's z floor
        is_cand = np.abs(ret) >= (thresholds * p.sharp_z_floor_ratio)[:, None]
        if not is_cand.any():
            return []
        found: list[tuple[int, float, I64, F64, I64, I64]] = []
        for wi in np.nonzero(is_cand.any(axis=1))[0]:
            cand = np.nonzero(is_cand[wi])[0]
            minute = (new_ts[cand] // MINUTE_MS) * MINUTE_MS
            found.append((int(windows[wi]), float(thresholds[wi]), ref_c[wi], ret[wi], cand,
                          minute))
        if not found:
            return []
        # one baseline per distinct minute, shared by every window's candidates in it
        # (sigma at an end time depends on that end time alone)
        ends = np.unique(np.concatenate([f[5] for f in found]))
        sigma_end = self._sigma_at(series, ends)
        # pass 2: z, thresholds and the cool-down, window by window
        for w, threshold, ref_c, ret, cand, minute in found:
            sigma = sigma_end[np.searchsorted(ends, minute)]
            c_ret = ret[cand]
            with np.errstate(divide="ignore", invalid="ignore"):
                z = c_ret / (sigma * np.sqrt(w / MINUTE_MS))
            z_ok = np.isfinite(z)
            hit = (np.abs(c_ret) >= threshold) | (z_ok & (np.abs(z) >= p.sharp_z))
            hits = np.nonzero(hit)[0]
            last = self._last_alert.get(w)
            hit_ts = new_ts[cand[hits]]
            k = 0
            while k < len(hits):
                t = int(hit_ts[k])
                if last is not None and t < last + p.cooldown_ms:
                    k = int(np.searchsorted(hit_ts, last + p.cooldown_ms, side="left"))
                    continue
                c = int(cand[hits[k]])
                r = int(ref_c[c])
                zk = float(z[hits[k]])
                moves.append(
                    SharpMove(
                        symbol=self.sym.name,
                        window_ms=w,
                        ts=t,
                        start_ts=int(ts[r]),
                        p_start=float(price[r]),
                        p_end=float(new_p[c]),
                        ret=float(ret[c]),
                        z=zk if np.isfinite(zk) else None,
                        threshold=threshold,
                    )
                )
                last = t
                k += 1
            if last is not None:
                self._last_alert[w] = last
        moves.sort(key=lambda m: (m.ts, m.window_ms))
        return moves

    def _sigma_at(self, series: TickSeries, ends: I64) -> F64:
        """:func:`realised_sigma_1m` at each of ``ends`` (sorted), computed once per end.

        A tick at a time, the same minute's baseline would be computed again at every tick
        of the minute.  The sigma at an end before the newest tick is final (it reads only
        ticks at or before its end, and no tick older than the newest is accepted), so it is
        kept until the minute is over; one at the newest tick's time is not.
        """
        cache = self._sigma_cache
        missing = [e for e in ends.tolist() if e not in cache]
        fresh: dict[int, float] = {}
        if missing:
            p = self.params
            sigma, _ = realised_sigma_1m(series.ts, series.price, series.interval,
                                         np.array(missing, dtype=np.int64), p.baseline_ms,
                                         p.min_baseline_steps)
            fresh = dict(zip(missing, sigma.tolist(), strict=True))
            newest = int(series.ts[-1])
            cache.update((e, v) for e, v in fresh.items() if e < newest)
        out = np.array([cache[e] if e in cache else fresh[e] for e in ends.tolist()],
                       dtype=np.float64)
        # later ticks are never older than the newest, so earlier minutes are never asked for
        current = int(series.ts[-1]) // MINUTE_MS * MINUTE_MS
        for e in [e for e in cache if e < current]:
            del cache[e]
        return out

    def forget_before(self, ts: int) -> None:
        """Drop cool-down marks that can no longer matter."""
        for w, t in list(self._last_alert.items()):
            if t + self.params.cooldown_ms < ts:
                del self._last_alert[w]
