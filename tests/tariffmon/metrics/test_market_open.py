"""tariffmon_market_open{symbol}: the calendar's answer for the clock's now, at each scrape."""

from __future__ import annotations

import datetime as dt

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from tariffmon.metrics.worker import WorkerMetrics
from tariffmon.settings import load_settings


def _s(text: str) -> float:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC).timestamp()


@pytest.mark.parametrize(("now", "usdjpy", "n225"), [
    ("2025-04-28 01:00", 1.0, 1.0),   # Monday morning in Tokyo
    ("2025-04-29 01:00", 1.0, 0.0),   # Showa Day: Tokyo closed, FX trading
    ("2025-05-06 05:00", 1.0, 0.0),   # substitute holiday of Golden Week
    ("2025-04-28 02:45", 1.0, 0.0),   # Tokyo's lunch break
    ("2025-05-03 12:00", 0.0, 0.0),   # Saturday
    ("2025-05-07 00:30", 1.0, 1.0),   # Tokyo reopens after Golden Week
])
def test_market_open_follows_the_exchange_calendar(now: str, usdjpy: float, n225: float
                                                   ) -> None:
    registry = CollectorRegistry()
    clock = {"now": _s("2025-01-06 00:30")}
    WorkerMetrics.from_settings(registry, load_settings(), clock=lambda: clock["now"])
    clock["now"] = _s(now)  # read at scrape time, not when the metrics were built
    get = registry.get_sample_value
    assert get("tariffmon_market_open", {"symbol": "USDJPY"}) == usdjpy
    assert get("tariffmon_market_open", {"symbol": "N225"}) == n225
    assert b'tariffmon_market_open{symbol="N225"}' in generate_latest(registry)


def test_without_a_clock_the_gauge_is_not_exported() -> None:
    registry = CollectorRegistry()
    WorkerMetrics.from_settings(registry, load_settings())
    assert registry.get_sample_value("tariffmon_market_open", {"symbol": "N225"}) is None
