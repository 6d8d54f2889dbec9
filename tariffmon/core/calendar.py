"""Weekly trading calendars in UTC: when a market is open, and when it next reopens.

A calendar is a set of weekly open intervals, written in the settings as
``"Sun 21:00 - Fri 21:00"`` (one span across days, FX) or ``"Mon-Fri 00:00-02:30"`` (the
same hours on each day of a range, Tokyo's morning session).  ``"always"`` is open around the
clock.

An exchange's own sessions (holidays, half days, changed hours) come from a maintained
calendar library: :mod:`tariffmon.assembly` turns exchange-calendars' schedule (``XTKS`` for
Tokyo) into explicit open intervals over the library's range, and :meth:`with_sessions`
puts them in front of the weekly hours, which still answer outside that range.  The core
never imports the library: it sees plain millisecond intervals.  The staleness bound (no
tick for longer than it) still marks the market closed for anything neither knows.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from tariffmon.errors import ConfigError

MS_PER_MIN = 60_000
MS_PER_DAY = 86_400_000
MS_PER_WEEK = 7 * MS_PER_DAY
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
#: The Unix epoch fell on a Thursday: this shifts epoch milliseconds so weeks start on Monday.
_EPOCH_TO_MONDAY_MS = 3 * MS_PER_DAY

_SPAN = re.compile(r"^\s*(\w{3})\s+(\d{1,2}):(\d{2})\s*-\s*(\w{3})\s+(\d{1,2}):(\d{2})\s*$")
_DAILY = re.compile(
    r"^\s*(\w{3})(?:\s*-\s*(\w{3}))?\s+(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$"
)


def _day(name: str, spec: str) -> int:
    try:
        return DAYS.index(name.lower())
    except ValueError:
        raise ConfigError("calendar", f"unknown day {name!r} in {spec!r}") from None


def _minute(h: str, m: str, spec: str) -> int:
    hh, mm = int(h), int(m)
    if hh > 24 or mm > 59 or (hh == 24 and mm):
        raise ConfigError("calendar", f"bad time {h}:{m} in {spec!r}")
    return hh * 60 + mm


def _week_ms(epoch_ms: int) -> tuple[int, int]:
    """(start of the Monday-based UTC week containing ``epoch_ms``, offset within it)."""
    shifted = epoch_ms + _EPOCH_TO_MONDAY_MS
    offset = shifted % MS_PER_WEEK
    return epoch_ms - offset, offset


@dataclass(frozen=True, slots=True)
class TradingCalendar:
    """Open intervals within a Monday-00:00-UTC-based week, in milliseconds, sorted, disjoint."""

    intervals: tuple[tuple[int, int], ...]
    #: explicit open intervals as flat sorted boundaries ``(open, close, open, close, ...)``
    #: in epoch ms, authoritative within ``[sessions_from, sessions_to)``
    sessions: tuple[int, ...] = ()
    sessions_from: int = 0
    sessions_to: int = 0

    def with_sessions(self, bounds: Sequence[tuple[int, int]], lo: int, hi: int
                      ) -> TradingCalendar:
        """This calendar with explicit sessions ``[(open, close), ...]`` governing
        ``[lo, hi)``; the weekly intervals answer outside it."""
        flat: list[int] = []
        for a, b in sorted(bounds):
            if b <= a:
                continue
            if flat and a <= flat[-1]:
                flat[-1] = max(flat[-1], b)
            else:
                flat.extend((a, b))
        return TradingCalendar(self.intervals, tuple(flat), lo, hi)

    def _in_sessions(self, ts_ms: int) -> bool:
        return self.sessions_from <= ts_ms < self.sessions_to

    @staticmethod
    def always() -> TradingCalendar:
        """A market that never closes."""
        return TradingCalendar(((0, MS_PER_WEEK),))

    @staticmethod
    def parse(specs: str | Sequence[str]) -> TradingCalendar:
        """Build a calendar from the settings' strings; raises ConfigError on a bad one."""
        if isinstance(specs, str):
            specs = [specs]
        raw: list[tuple[int, int]] = []
        for spec in specs:
            if spec.strip().lower() == "always":
                return TradingCalendar.always()
            raw.extend(_parse_one(spec))
        if not raw:
            raise ConfigError("calendar", "no open interval given")
        return TradingCalendar(tuple(_merge(raw)))

    def is_open(self, ts_ms: int) -> bool:
        """Whether the market is open at ``ts_ms``."""
        if self._in_sessions(ts_ms):
            return bisect.bisect_right(self.sessions, ts_ms) % 2 == 1
        _, off = _week_ms(ts_ms)
        starts = [s for s, _ in self.intervals]
        i = bisect.bisect_right(starts, off) - 1
        return i >= 0 and off < self.intervals[i][1]

    def next_open(self, ts_ms: int) -> int:
        """The first instant at or after ``ts_ms`` when the market is open."""
        if self.is_open(ts_ms):
            return ts_ms
        if self._in_sessions(ts_ms):
            i = bisect.bisect_right(self.sessions, ts_ms)
            if i < len(self.sessions) and self.sessions[i] < self.sessions_to:
                return self.sessions[i]
            return self._weekly_next_open(self.sessions_to)
        return self._weekly_next_open(ts_ms)

    def _weekly_next_open(self, ts_ms: int) -> int:
        week0, off = _week_ms(ts_ms)
        for s, _ in self.intervals:
            if s > off:
                return week0 + s
        return week0 + MS_PER_WEEK + self.intervals[0][0]

    def open_ms_between(self, a_ms: int, b_ms: int) -> int:
        """Milliseconds of open market within ``[a_ms, b_ms)`` (volatility per open minute)."""
        if b_ms <= a_ms:
            return 0
        if self.sessions:
            # explicit sessions inside their range, weekly hours on either side of it
            lo, hi = max(a_ms, self.sessions_from), min(b_ms, self.sessions_to)
            if hi > lo:
                inside = 0
                i = max(0, bisect.bisect_right(self.sessions, lo) - 1)
                i -= i % 2
                while i < len(self.sessions) and self.sessions[i] < hi:
                    s, e = max(lo, self.sessions[i]), min(hi, self.sessions[i + 1])
                    inside += max(0, e - s)
                    i += 2
                return (inside + self._weekly_open_ms(a_ms, min(b_ms, lo))
                        + self._weekly_open_ms(max(a_ms, hi), b_ms))
        return self._weekly_open_ms(a_ms, b_ms)

    def _weekly_open_ms(self, a_ms: int, b_ms: int) -> int:
        if b_ms <= a_ms:
            return 0
        total = 0
        week0, _ = _week_ms(a_ms)
        while week0 < b_ms:
            for s, e in self.intervals:
                lo, hi = max(a_ms, week0 + s), min(b_ms, week0 + e)
                if hi > lo:
                    total += hi - lo
            week0 += MS_PER_WEEK
        return total


def _parse_one(spec: str) -> Iterable[tuple[int, int]]:
    m = _SPAN.match(spec)
    if m:
        d0, d1 = _day(m[1], spec), _day(m[4], spec)
        a = d0 * MS_PER_DAY + _minute(m[2], m[3], spec) * MS_PER_MIN
        b = d1 * MS_PER_DAY + _minute(m[5], m[6], spec) * MS_PER_MIN
        if b > a:
            return [(a, b)]
        # wraps past the end of the week (e.g. "Sun 21:00 - Fri 21:00")
        return [(a, MS_PER_WEEK), (0, b)]
    m = _DAILY.match(spec)
    if m:
        d0 = _day(m[1], spec)
        d1 = _day(m[2], spec) if m[2] else d0
        if d1 < d0:
            raise ConfigError("calendar", f"day range runs backwards in {spec!r}")
        a, b = _minute(m[3], m[4], spec), _minute(m[5], m[6], spec)
        if b <= a:
            raise ConfigError("calendar", f"session ends before it starts in {spec!r}")
        return [
            (d * MS_PER_DAY + a * MS_PER_MIN, d * MS_PER_DAY + b * MS_PER_MIN)
            for d in range(d0, d1 + 1)
        ]
    raise ConfigError(
        "calendar",
        f"cannot read {spec!r}: use 'Sun 21:00 - Fri 21:00', 'Mon-Fri 00:00-02:30' or 'always'",
    )


def _merge(raw: list[tuple[int, int]]) -> list[tuple[int, int]]:
    raw.sort()
    out: list[tuple[int, int]] = []
    for s, e in raw:
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out
