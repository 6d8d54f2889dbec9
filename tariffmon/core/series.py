"""One symbol's recent ticks as sorted columnar arrays, appended in batches, evicted by time.

Every question the core asks of prices ("last price at or before t", "first tick after t",
"extremes within a span") is a binary search over these arrays, so a batch of a million ticks
costs a handful of numpy calls rather than a Python loop per tick.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]

_INITIAL_CAPACITY = 4_096


class TickSeries:
    """Append-only (until evicted) arrays of event time (ms), price and bar length (ms).

    ``interval`` is 0 for point observations (quotes, trades) and the bar length for bar
    closes, whose time is the bar's end.  Event times never decrease.
    """

    __slots__ = ("_interval", "_n", "_price", "_start", "_ts")

    def __init__(self) -> None:
        self._ts = np.empty(_INITIAL_CAPACITY, dtype=np.int64)
        self._price = np.empty(_INITIAL_CAPACITY, dtype=np.float64)
        self._interval = np.empty(_INITIAL_CAPACITY, dtype=np.int64)
        self._start = 0
        self._n = 0

    def __len__(self) -> int:
        return self._n - self._start

    @property
    def ts(self) -> I64:
        """Event times (a view; do not keep it across appends)."""
        return self._ts[self._start : self._n]

    @property
    def price(self) -> F64:
        """Prices aligned with :attr:`ts`."""
        return self._price[self._start : self._n]

    @property
    def interval(self) -> I64:
        """Bar lengths in ms (0 for point observations), aligned with :attr:`ts`."""
        return self._interval[self._start : self._n]

    @property
    def latest_ts(self) -> int | None:
        """The newest event time held, if any."""
        return int(self._ts[self._n - 1]) if self._n > self._start else None

    @property
    def oldest_ts(self) -> int | None:
        """The oldest event time held, if any."""
        return int(self._ts[self._start]) if self._n > self._start else None

    def append(self, ts: I64, price: F64, interval: I64) -> None:
        """Append a batch whose times are sorted and not older than :attr:`latest_ts`."""
        k = len(ts)
        if k == 0:
            return
        if self._n + k > len(self._ts):
            self._grow(k)
        self._ts[self._n : self._n + k] = ts
        self._price[self._n : self._n + k] = price
        self._interval[self._n : self._n + k] = interval
        self._n += k

    def _grow(self, extra: int) -> None:
        live = self._n - self._start
        cap = len(self._ts)
        # compact in place when eviction freed at least half; otherwise double
        new_cap = cap if live + extra <= cap // 2 else max(2 * cap, live + extra)
        for name in ("_ts", "_price", "_interval"):
            old = getattr(self, name)
            new = np.empty(new_cap, dtype=old.dtype) if new_cap != cap else old
            new[:live] = old[self._start : self._n]
            setattr(self, name, new)
        self._start, self._n = 0, live
        if live + extra > len(self._ts):  # compaction alone was not enough
            self._grow(extra)

    def evict_before(self, ts: int) -> None:
        """Forget ticks older than ``ts``, but always keep the last one before it (a p0)."""
        i = int(np.searchsorted(self.ts, ts, side="left")) - 1
        if i > 0:
            self._start += i

    def index_at_or_before(self, t: int) -> int:
        """Index (into the current views) of the last tick at or before ``t``, or -1."""
        return int(np.searchsorted(self.ts, t, side="right")) - 1

    def indices_at_or_before(self, t: I64) -> I64:
        """Vectorised :meth:`index_at_or_before`."""
        return np.searchsorted(self.ts, t, side="right").astype(np.int64) - 1
