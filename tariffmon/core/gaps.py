"""Past close-to-reopen gaps of a symbol, by kind, as the baseline of gap reactions.

A **gap** is the move between two consecutive ticks of a symbol between which a headline
would get a gap reaction (:func:`tariffmon.core.reaction.horizon_start`): the calendar closes
in between, or the later tick comes more than the staleness bound (plus the bar length) after
the earlier one.  Its return is ``ln(p_reopen / p_close)``.  Its kind (:func:`gap_kind`) comes
from the UTC dates of the close and the reopen and the calendar:

- ``stale``: the calendar is open throughout (a hole in the data, not a close);
- ``holiday``: a weekday with no trading lies between the two dates (an exchange holiday,
  a golden week: a holiday that touches a weekend is still a holiday);
- ``weekend``: a Saturday or Sunday lies between them, or the close is on a Friday and
  the reopen after it (FX: Friday 21:00 to Sunday 21:00);
- ``break``: the same date (Tokyo's lunch);
- ``overnight``: consecutive dates.

The baseline of a gap reaction whose close is at ``c``: the gaps of the same kind that the
engine saw in the ticks with their close in ``[c - memory, c)``, plus the gaps of the
seed (daily bars) of that kind whose reopen day began at or before ``c`` and that no seen
gap covers, the ``max_count`` most recent of them.  ``sigma`` is their sample standard
deviation; with fewer than ``min_count`` there is none.  Only the ticks in
``[c - memory, c]`` and the seed decide it, so a state rebuilt from those ticks, or a late
headline measured on ticks read back that far, gets the same answer as the live engine.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from tariffmon.contract import GAP_KINDS
from tariffmon.core.calendar import MS_PER_DAY, TradingCalendar

__all__ = ["GAP_KINDS", "Gap", "GapBaseline", "GapHistory", "SeedGap", "first_of_overlaps",
           "gap_kind", "seed_from_daily"]
_NOON_MS = MS_PER_DAY // 2
#: 1970-01-01 was a Thursday: weekday (Monday = 0) of a UTC day number
_THURSDAY = 3


def weekday(day: int) -> int:
    """Monday = 0 ... Sunday = 6 for a UTC day number (days since the epoch)."""
    return (day + _THURSDAY) % 7


def gap_kind_by_days(close_day: int, reopen_day: int) -> str:
    """The kind of a real close between two UTC day numbers (see the module text)."""
    if reopen_day == close_day:
        return "break"
    between = range(close_day + 1, reopen_day)
    if any(weekday(d) < 5 for d in between):
        return "holiday"
    if any(weekday(d) >= 5 for d in between) or weekday(close_day) == 4:
        return "weekend"
    return "overnight"


def gap_kind(calendar: TradingCalendar, close_ts: int, reopen_ts: int) -> str:
    """The kind of the gap between a tick at ``close_ts`` and the next at ``reopen_ts``."""
    if calendar.open_ms_between(close_ts, reopen_ts) >= reopen_ts - close_ts:
        return "stale"
    return gap_kind_by_days(close_ts // MS_PER_DAY, reopen_ts // MS_PER_DAY)


@dataclass(frozen=True, slots=True)
class Gap:
    """One past gap: its kind, close and reopen times (ms) and log return."""

    kind: str
    close_ts: int
    reopen_ts: int
    ret: float


@dataclass(frozen=True, slots=True)
class SeedGap:
    """A gap read from daily bars: between the bars of UTC days ``close_day`` < ``reopen_day``.

    It counts for a close at or after the start of ``reopen_day`` (its open was known
    then) and stands for any seen gap reopening within ``[close_day + 1, reopen_day + 1)``.
    """

    kind: str
    close_day: int
    reopen_day: int
    ret: float

    @property
    def known_from(self) -> int:
        """The start of the reopen day (ms)."""
        return self.reopen_day * MS_PER_DAY

    def covers(self, reopen_ts: int) -> bool:
        """Whether a seen gap reopening at ``reopen_ts`` is this one."""
        return (self.close_day + 1) * MS_PER_DAY <= reopen_ts < (self.reopen_day + 1) * MS_PER_DAY


def seed_from_daily(
    calendar: TradingCalendar, bars: Iterable[tuple[int, float, float]]
) -> tuple[SeedGap, ...]:
    """Seed gaps from daily bars ``(UTC day number, open, close)``, sorted by day.

    Two consecutive bars make a gap when the calendar closes somewhere between noon UTC of
    the first day and noon UTC of the second: a daily bar says nothing of its hours, and
    noon to noon spans the night of Tokyo, London and New York alike, while FX, open around
    the clock from Sunday to Friday, has only its weekend gaps.
    """
    rows = sorted(bars)
    out: list[SeedGap] = []
    for (d0, _o0, c0), (d1, o1, _c1) in itertools.pairwise(rows):
        if d1 <= d0 or c0 <= 0 or o1 <= 0:
            continue
        a, b = d0 * MS_PER_DAY + _NOON_MS, d1 * MS_PER_DAY + _NOON_MS
        if calendar.open_ms_between(a, b) >= b - a:
            continue
        out.append(SeedGap(gap_kind_by_days(d0, d1), d0, d1, math.log(o1 / c0)))
    return tuple(out)


@dataclass(frozen=True, slots=True)
class GapBaseline:
    """The standard deviation of past gaps of one kind (None with too few) and their count."""

    kind: str
    sigma: float | None
    n: int


class GapHistory:
    """The gaps one symbol's engine has seen, with the seed from daily history."""

    __slots__ = ("_closes", "_seen", "seed")

    def __init__(self, seed: Sequence[SeedGap] = ()) -> None:
        self.seed = tuple(sorted(seed, key=lambda g: g.reopen_day))
        self._seen: list[Gap] = []
        self._closes: list[int] = []

    def __len__(self) -> int:
        return len(self._seen)

    @property
    def oldest_close(self) -> int | None:
        """The close time of the oldest gap remembered (what a rebuild must read from)."""
        return self._seen[0].close_ts if self._seen else None

    def add(self, gap: Gap) -> None:
        """Record a gap seen in the ticks (they come in time order)."""
        self._seen.append(gap)
        self._closes.append(gap.close_ts)

    def forget_before(self, close_ts: int) -> None:
        """Forget seen gaps whose close came before ``close_ts``."""
        i = bisect.bisect_left(self._closes, close_ts)
        if i:
            del self._seen[:i]
            del self._closes[:i]

    @property
    def seen(self) -> tuple[Gap, ...]:
        """The gaps remembered from the ticks, oldest first."""
        return tuple(self._seen)

    def baseline(self, kind: str, close_ts: int, memory_ms: int, min_count: int,
                 max_count: int) -> GapBaseline:
        """The baseline for a gap of ``kind`` whose close is at ``close_ts``."""
        # gaps do not overlap: every seen gap closing before this one reopened before it
        lo = bisect.bisect_left(self._closes, close_ts - memory_ms)
        hi = bisect.bisect_left(self._closes, close_ts)
        seen = self._seen[lo:hi]
        rets = [(g.reopen_ts, g.ret) for g in seen if g.kind == kind]
        for s in self.seed:
            if s.known_from > close_ts:
                break
            if s.kind == kind and not any(s.covers(g.reopen_ts) for g in seen):
                rets.append((s.known_from, s.ret))
        rets.sort()
        values = [r for _, r in rets[-max_count:]] if max_count > 0 else []
        n = len(values)
        if n < max(min_count, 2):
            return GapBaseline(kind, None, n)
        mean = sum(values) / n
        var = sum((v - mean) ** 2 for v in values) / (n - 1)
        sigma = math.sqrt(var)
        return GapBaseline(kind, sigma if sigma > 0 and math.isfinite(sigma) else None, n)


def first_of_overlaps(t0s: Sequence[tuple[int, str]], window_ms: int) -> list[str]:
    """The ids that open a run of headlines less than ``window_ms`` apart, in time order.

    ``t0s`` are ``(t0, id)`` pairs of one symbol; a headline within ``window_ms`` after the
    previous one belongs to that one's run (a chain: three headlines ten minutes apart are
    one run with a 15-minute window).  Their reactions overlap, so averages count a run once,
    by its first headline.  A function of the set of headlines, not of their arrival order.
    """
    out: list[str] = []
    last: int | None = None
    for t0, hid in sorted(t0s):
        if last is None or t0 - last >= window_ms:
            out.append(hid)
        last = t0
    return out
