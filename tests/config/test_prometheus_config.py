"""config/prometheus and config/alertmanager: checked by promtool and amtool, rule by rule.

CI installs Debian's prometheus and prometheus-alertmanager, so these run there; on a machine
without the binaries they skip, saying which binary is missing.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tariffmon.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]
PROM_DIR = ROOT / "config" / "prometheus"
RULES = PROM_DIR / "rules" / "tariffmon.rules.yml"
RULE_TESTS = sorted((PROM_DIR / "tests").glob("*.yml"))
ALERTMANAGER = ROOT / "config" / "alertmanager" / "alertmanager.yml"
SEVERITIES = {"critical", "warning", "info"}
REQUIRED_ALERTS = {
    "SharpYenMove", "SignificantTariffReaction", "StaleFeed", "DeadLettersRising",
    "EventLagHigh", "TargetDown",
}


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (apt-get install prometheus "
                    "prometheus-alertmanager); CI installs it")
    return path


def run(*cmd: str | Path) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=120,
                            check=False)
    assert result.returncode == 0, f"{cmd}:\n{result.stdout}\n{result.stderr}"
    return result


def alert_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for g in groups for rule in g["rules"] if "alert" in rule]


def test_promtool_check_config_local() -> None:
    out = run(tool("promtool"), "check", "config", PROM_DIR / "prometheus.yml")
    assert "1 rule files found" in out.stdout


def test_promtool_check_config_docker_with_the_rules(tmp_path: Path) -> None:
    config = yaml.safe_load((PROM_DIR / "prometheus.docker.yml").read_text())
    assert config["rule_files"] == ["/etc/prometheus/rules/*.rules.yml"]
    # the container's path, pointed at the files docker-compose.yml mounts there
    config["rule_files"] = [str(PROM_DIR / "rules" / "*.rules.yml")]
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    out = run(tool("promtool"), "check", "config", path)
    assert "1 rule files found" in out.stdout


def test_promtool_check_rules() -> None:
    run(tool("promtool"), "check", "rules", *sorted((PROM_DIR / "rules").glob("*.yml")))


def test_promtool_test_rules() -> None:
    assert RULE_TESTS
    out = run(tool("promtool"), "test", "rules", *RULE_TESTS)
    assert out.stdout.count("SUCCESS") == len(RULE_TESTS)


def test_required_alerts_exist_with_for_severity_and_annotations() -> None:
    rules = alert_rules()
    assert {r["alert"] for r in rules} >= REQUIRED_ALERTS
    for rule in rules:
        assert "for" in rule, rule["alert"]
        assert rule["labels"]["severity"] in SEVERITIES, rule["alert"]
        assert rule["annotations"]["summary"].strip(), rule["alert"]
        assert rule["annotations"]["description"].strip(), rule["alert"]


RUNBOOK_SECTIONS = ("## What it means", "## How to check", "## What to do")


def test_every_alert_links_a_runbook_of_its_own_with_real_content() -> None:
    seen: set[Path] = set()
    for rule in alert_rules():
        url = rule["annotations"].get("runbook_url", "")
        assert url == f"docs/runbooks/{rule['alert']}.md", (rule["alert"], url)
        path = ROOT / url
        assert path.is_file(), f"{rule['alert']}: {url} does not exist"
        assert path not in seen
        seen.add(path)
        text = path.read_text()
        assert text.startswith(f"# {rule['alert']}"), url
        for section in RUNBOOK_SECTIONS:
            assert section in text, f"{url} lacks {section!r}"
        # every section says something: more than its heading
        for part in text.split("\n## ")[1:]:
            body = part.split("\n", 1)[1].strip() if "\n" in part else ""
            assert len(body) > 80, f"{url}: section {part.splitlines()[0]!r} is empty"
    runbooks = set((ROOT / "docs" / "runbooks").glob("*.md")) - {
        ROOT / "docs" / "runbooks" / "README.md"}
    assert runbooks == seen, f"runbooks without an alert: {sorted(runbooks - seen)}"


def test_stale_feed_threshold_is_the_workers_exported_setting() -> None:
    """StaleFeed compares with tariffmon_feed_stale_after_seconds, never with a number."""
    (rule,) = [r for r in alert_rules() if r["alert"] == "StaleFeed"]
    expr = " ".join(rule["expr"].split())
    assert "tariffmon_feed_stale_after_seconds" in expr
    assert "and on (symbol) tariffmon_market_open == 1" in expr
    assert not re.search(r"[<>]=? ?\d", expr), f"a literal threshold in {expr!r}"


def test_every_alert_has_a_firing_and_a_not_firing_unit_test() -> None:
    firing: set[str] = set()
    silent: set[str] = set()
    for path in RULE_TESTS:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                (firing if check.get("exp_alerts") else silent).add(check["alertname"])
    names = {r["alert"] for r in alert_rules()}
    assert names <= firing, f"no firing test for {sorted(names - firing)}"
    assert names <= silent, f"no not-firing test for {sorted(names - silent)}"


def test_local_scrape_targets_match_the_metrics_settings() -> None:
    settings = load_settings()
    config = yaml.safe_load((PROM_DIR / "prometheus.yml").read_text())
    targets = {
        job["job_name"]: job["static_configs"][0]["targets"]
        for job in config["scrape_configs"]
    }
    assert targets["tariffmon-worker"] == [f"127.0.0.1:{settings.metrics.worker_port}"]
    assert targets["tariffmon-tick-producer"] == [f"127.0.0.1:{settings.metrics.producer_port}"]
    assert "tariffmon-headline-producer" in targets


def test_amtool_check_config() -> None:
    out = run(tool("amtool"), "check-config", ALERTMANAGER)
    assert "SUCCESS" in out.stdout


@pytest.mark.parametrize(("severity", "receiver"), [
    ("critical", "pager"), ("warning", "ops"), ("info", "desk"), ("", "ops"),
])
def test_alertmanager_routes_by_severity(severity: str, receiver: str) -> None:
    labels = ["alertname=SharpYenMove", "symbol=USDJPY"]
    if severity:
        labels.append(f"severity={severity}")
    run(tool("amtool"), "config", "routes", "test", f"--config.file={ALERTMANAGER}",
        f"--verify.receivers={receiver}", *labels)


def test_alertmanager_groups_by_alertname_and_symbol_and_inhibits_stale_feed() -> None:
    config = yaml.safe_load(ALERTMANAGER.read_text())
    assert config["route"]["group_by"] == ["alertname", "symbol"]
    stale_sources = [
        rule for rule in config["inhibit_rules"]
        if any("StaleFeed" in m for m in rule["target_matchers"])
        and 'alertname="TargetDown"' in rule["source_matchers"]
    ]
    assert stale_sources, "StaleFeed must be inhibited while its target is down"
