"""Trading calendars: FX weekend close, Tokyo lunch break, the next reopen."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tariffmon.core.calendar import MS_PER_WEEK, TradingCalendar
from tariffmon.errors import ConfigError

FX = TradingCalendar.parse(["Sun 21:00 - Fri 21:00"])
TOKYO = TradingCalendar.parse(["Mon-Fri 00:00-02:30", "Mon-Fri 03:30-06:30"])


def ms(text: str) -> int:
    """Epoch ms of an ISO UTC time, e.g. '2025-04-04 20:59'."""
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


# 2025-04-04 is a Friday, 2025-04-06 a Sunday, 2025-04-07 a Monday.
@pytest.mark.parametrize(
    ("when", "is_open"),
    [
        ("2025-04-04 20:59:59", True),
        ("2025-04-04 21:00", False),  # Friday close
        ("2025-04-05 12:00", False),  # Saturday
        ("2025-04-06 20:59", False),
        ("2025-04-06 21:00", True),  # Sunday reopen (Wellington/Sydney morning)
        ("2025-04-09 17:18", True),  # mid-week: the 90-day pause announcement
    ],
)
def test_fx_closes_for_the_weekend(when: str, is_open: bool) -> None:
    assert FX.is_open(ms(when)) is is_open


def test_fx_next_open_after_the_weekend() -> None:
    assert FX.next_open(ms("2025-04-05 12:00")) == ms("2025-04-06 21:00")
    assert FX.next_open(ms("2025-04-04 21:00")) == ms("2025-04-06 21:00")
    assert FX.next_open(ms("2025-04-08 10:00")) == ms("2025-04-08 10:00")  # already open


@pytest.mark.parametrize(
    ("when", "is_open"),
    [
        ("2025-04-07 00:00", True),  # 09:00 JST open
        ("2025-04-07 02:29:59", True),
        ("2025-04-07 02:30", False),  # lunch 11:30-12:30 JST
        ("2025-04-07 03:00", False),
        ("2025-04-07 03:30", True),
        ("2025-04-07 06:29", True),
        ("2025-04-07 06:30", False),  # 15:30 JST close
        ("2025-04-06 23:59", False),  # Sunday
        ("2025-04-05 01:00", False),  # Saturday
    ],
)
def test_tokyo_sessions_with_lunch_break(when: str, is_open: bool) -> None:
    assert TOKYO.is_open(ms(when)) is is_open


def test_tokyo_next_open() -> None:
    assert TOKYO.next_open(ms("2025-04-07 02:45")) == ms("2025-04-07 03:30")  # after lunch
    assert TOKYO.next_open(ms("2025-04-07 12:00")) == ms("2025-04-08 00:00")  # next morning
    # the 2 April announcement came after Wednesday's close: gap reaction on Thursday
    assert TOKYO.next_open(ms("2025-04-02 20:00")) == ms("2025-04-03 00:00")
    assert TOKYO.next_open(ms("2025-04-04 07:00")) == ms("2025-04-07 00:00")  # over a weekend


def test_open_time_between_counts_only_sessions() -> None:
    day = TOKYO.open_ms_between(ms("2025-04-07 00:00"), ms("2025-04-08 00:00"))
    assert day == 5.5 * 3_600_000
    week = FX.open_ms_between(ms("2025-04-04 00:00"), ms("2025-04-11 00:00"))
    assert week == 5 * 86_400_000
    assert FX.open_ms_between(ms("2025-04-05 00:00"), ms("2025-04-05 12:00")) == 0


def test_always_open() -> None:
    cal = TradingCalendar.parse("always")
    assert cal.is_open(ms("2025-04-05 12:00"))
    assert cal.open_ms_between(0, MS_PER_WEEK) == MS_PER_WEEK


@pytest.mark.parametrize(
    "spec", ["Mon 25:00-26:00", "Funday 00:00-01:00", "Fri-Mon 00:00-01:00",
             "Mon 02:00-01:00", "whenever", ""],
)
def test_bad_calendar_is_a_config_error(spec: str) -> None:
    with pytest.raises(ConfigError) as info:
        TradingCalendar.parse([spec])
    assert info.value.setting == "calendar"


@given(st.integers(min_value=ms("1990-01-01 00:00"), max_value=ms("2099-12-31 00:00")))
def test_next_open_is_open_and_nothing_earlier_is(ts: int) -> None:
    for cal in (FX, TOKYO):
        nxt = cal.next_open(ts)
        assert nxt >= ts and cal.is_open(nxt)
        assert cal.open_ms_between(ts, nxt) == 0
