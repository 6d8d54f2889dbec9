"""StaleFeed stays silent on a Tokyo holiday, when the worker's tariffmon_market_open says closed.

promtool's clock starts at 1970-01-01 00:00 UTC (and this promtool has no start time setting),
so the series stand for three hours from 00:00 UTC of a day: the worker's gauge over them is
what the settings' N225 calendar (tariffmon.assembly, XTKS) answers for 29 April 2025, Showa
Day, and, as the control, for Monday 28 April 2025, with the staleness threshold the worker
exports from the settings: a dead feed on the holiday must page
nobody, the same dead feed on the trading day must page.  A copy of the rules without the
worker's gate shows that the holiday would page without it.
"""

from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tariffmon.assembly import trading_calendar
from tariffmon.settings import load_settings
from tests.config.test_prometheus_config import RULES, tool

STEP_S = 300
STEPS = 36  # three hours
JOB = 'job="tariffmon-worker",instance="127.0.0.1:9464"'


def _day_ms(day: str) -> int:
    return int(dt.datetime.fromisoformat(day).replace(tzinfo=dt.UTC).timestamp() * 1000)


def market_open_values(day: str) -> list[int]:
    """The worker's gauge for N225 every 5 minutes from 00:00 UTC of ``day``."""
    cal = trading_calendar(load_settings().symbol("N225"))
    start = _day_ms(day)
    return [int(cal.is_open(start + k * STEP_S * 1000)) for k in range(STEPS + 1)]


def rule_test(values: list[int]) -> dict[str, Any]:
    """A promtool test group: the N225 feed dead from 0, the worker's gauge as given."""
    stale_after = load_settings().symbol("N225").staleness_s
    return {
        "interval": "5m",
        "input_series": [
            {"series": f'tariffmon_last_tick_timestamp_seconds{{{JOB},symbol="N225"}}',
             "values": f"0x{STEPS}"},
            {"series": f'tariffmon_feed_stale_after_seconds{{{JOB},symbol="N225"}}',
             "values": f"{stale_after}x{STEPS}"},
            {"series": f'tariffmon_market_open{{{JOB},symbol="N225"}}',
             "values": " ".join(str(v) for v in values)},
        ],
    }


def run_promtool(tmp_path: Path, rules: Path, values: list[int], expect_firing: bool
                 ) -> subprocess.CompletedProcess[str]:
    firing = 'ALERTS{alertname="StaleFeed",alertstate="firing",symbol="N225"}'
    test = rule_test(values)
    test["promql_expr_test"] = [
        {"expr": f"count({firing}) or vector(0)", "eval_time": t,
         "exp_samples": [{"labels": "{}", "value": 1 if expect_firing else 0}]}
        for t in ("30m", "1h", "2h")
    ]
    if not expect_firing:
        test["alert_rule_test"] = [
            {"eval_time": t, "alertname": "StaleFeed", "exp_alerts": []}
            for t in ("30m", "1h", "2h")
        ]
    path = tmp_path / "holiday.test.yml"
    path.write_text(yaml.safe_dump({
        "rule_files": [str(rules)], "evaluation_interval": "5m", "tests": [test],
    }))
    return subprocess.run([tool("promtool"), "test", "rules", str(path)], capture_output=True,
                          text=True, timeout=120, check=False)


def test_the_worker_calendar_closes_tokyo_on_showa_day_and_opens_it_the_day_before() -> None:
    holiday, trading = market_open_values("2025-04-29"), market_open_values("2025-04-28")
    assert set(holiday) == {0}
    assert trading[:30] == [1] * 30 and trading[30] == 0  # 02:30, lunch


def test_stalefeed_is_silent_on_a_tokyo_holiday(tmp_path: Path) -> None:
    out = run_promtool(tmp_path, RULES, market_open_values("2025-04-29"), expect_firing=False)
    assert out.returncode == 0, out.stdout + out.stderr


def test_stalefeed_pages_for_the_same_dead_feed_on_a_trading_day(tmp_path: Path) -> None:
    out = run_promtool(tmp_path, RULES, market_open_values("2025-04-28"), expect_firing=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_without_the_gate_the_holiday_would_page(tmp_path: Path) -> None:
    rules = yaml.safe_load(RULES.read_text())
    stale = [r for g in rules["groups"] for r in g["rules"] if r.get("alert") == "StaleFeed"]
    expr = stale[0]["expr"] if len(stale) == 1 else ""
    gate = "and on (symbol)\n  tariffmon_market_open == 1"
    flat = "\n".join(line.strip() for line in expr.strip().splitlines())
    assert gate.replace("\n  ", "\n") in flat, expr
    stale[0]["expr"] = flat.replace(gate.replace("\n  ", "\n"), "")
    ungated = tmp_path / "ungated.rules.yml"
    ungated.write_text(yaml.safe_dump(rules))
    (tmp_path / "t").mkdir()
    out = run_promtool(tmp_path / "t", ungated, market_open_values("2025-04-29"),
                       expect_firing=True)
    assert out.returncode == 0, out.stdout + out.stderr

