"""The PromQL market hours of the alert rules agree with the settings' trading calendars.

Each ``tariffmon:market_open`` recording rule's expression is evaluated by a real Prometheus
at every half hour of a week and at the minutes around each open and close, and compared
with :class:`tariffmon.core.calendar.TradingCalendar` for the same symbol.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tariffmon.settings import load_settings
from tests.prometheus_harness import prometheus_binary, running_prometheus

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "config" / "prometheus" / "rules" / "tariffmon.rules.yml"
WEEK_START_S = 1_743_984_000  # Monday 2025-04-07T00:00:00Z, the week after "Liberation Day"

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(prometheus_binary() is None,
                       reason="prometheus is not installed; CI installs it"),
]


def market_open_rules() -> dict[str, str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return {
        r["labels"]["symbol"]: r["expr"]
        for g in groups for r in g["rules"] if r.get("record") == "tariffmon:market_open"
    }


def test_every_configured_symbol_has_market_hours() -> None:
    assert set(market_open_rules()) == load_settings().symbol_names()


def test_promql_market_hours_match_the_calendars(tmp_path: Path) -> None:
    settings = load_settings()
    times = {WEEK_START_S + k * 1800 for k in range(7 * 48)}
    for symbol in settings.symbols:
        for start_ms, end_ms in symbol.trading_calendar().intervals:
            for edge_s in (start_ms // 1000, end_ms // 1000):
                times |= {WEEK_START_S + edge_s + d for d in (-60, 0, 60)}
    with running_prometheus({}, workdir=tmp_path) as prom:
        for name, expr in market_open_rules().items():
            calendar = settings.symbol(name).trading_calendar()
            wrong = []
            for t in sorted(times):
                (sample,) = prom.query(expr, at=t)
                if (float(sample["value"][1]) == 1.0) != calendar.is_open(t * 1000):
                    wrong.append(t)
            assert not wrong, f"{name}: PromQL and the calendar disagree at {wrong[:5]}"
