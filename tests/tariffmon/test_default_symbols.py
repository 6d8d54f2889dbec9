"""The default symbols: the Nikkei futures' weekly UTC calendar against CME's Chicago hours."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tariffmon.settings import CME_GLOBEX_CALENDAR, Settings, load_settings

CHICAGO = ZoneInfo("America/Chicago")


def cme_globex_open(t: datetime) -> bool:
    """CME Globex equity futures: Sunday-Friday 17:00-16:00 Chicago time (holidays aside)."""
    local = t.astimezone(CHICAGO)
    day, minute = local.weekday(), local.hour * 60 + local.minute  # Monday = 0
    if day == 5:  # Saturday
        return False
    if day == 6:  # Sunday: opens at 17:00
        return minute >= 17 * 60
    if day == 4:  # Friday: closes at 16:00
        return minute < 16 * 60
    return not 16 * 60 <= minute < 17 * 60  # the daily halt


def test_nikkei_futures_are_a_default_symbol_with_the_index_band() -> None:
    s = load_settings()
    niy, n225 = s.symbol("NIY"), s.symbol("N225")
    assert niy.yahoo == "NIY=F" and niy.calendar == list(CME_GLOBEX_CALENDAR)
    assert (niy.price_min, niy.price_max) == (n225.price_min, n225.price_max)
    # the file of the repository states the same defaults as the code
    assert [x.model_dump() for x in s.symbols] == [
        x.model_dump() for x in Settings.model_fields["symbols"].default_factory()  # type: ignore[misc]
    ]


@pytest.mark.parametrize("year", [2025, 2026])
def test_futures_calendar_never_says_open_while_cme_is_shut(year: int) -> None:
    calendar = load_settings().symbol("NIY").trading_calendar()
    t = datetime(year, 1, 1, tzinfo=UTC)
    end = datetime(year + 1, 1, 1, tzinfo=UTC)
    step = 5  # minutes; every open, close and halt falls on a whole hour
    missed_by_day: dict[object, int] = {}
    cme_minutes = 0
    while t < end:
        ours = calendar.is_open(int(t.timestamp() * 1000))
        theirs = cme_globex_open(t)
        assert not (ours and not theirs), f"calendar open while CME is shut at {t}"
        if theirs:
            cme_minutes += step
            if not ours:
                missed_by_day[t.date()] = missed_by_day.get(t.date(), 0) + step
        t += timedelta(minutes=step)
    # the price of a calendar without daylight saving: at most the one hour a day that
    # Chicago's summer time shifts, and nearly 24-hour trading otherwise kept
    assert max(missed_by_day.values()) <= 60
    assert sum(missed_by_day.values()) < 0.05 * cme_minutes
