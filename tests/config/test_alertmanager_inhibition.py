"""config/alertmanager/alertmanager.yml in a real Alertmanager: which alerts a TargetDown mutes."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.prometheus_harness import alertmanager_binary, running_alertmanager

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "config" / "alertmanager" / "alertmanager.yml"

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(alertmanager_binary() is None,
                       reason="prometheus-alertmanager is not installed; CI installs it"),
]

STALE_USDJPY = {"alertname": "StaleFeed", "job": "tariffmon-worker", "symbol": "USDJPY",
                "severity": "warning"}
TICK_SOURCE = {"alertname": "SourceFetchFailing", "job": "tariffmon-tick-producer",
               "instance": "tick:9465", "source": "yfinance", "severity": "warning"}
FEED_SOURCE = {"alertname": "SourceFetchFailing", "job": "tariffmon-headline-producer",
               "instance": "head:9465", "source": "googlenews", "severity": "warning"}


def target_down(job: str, instance: str) -> dict[str, str]:
    return {"alertname": "TargetDown", "job": job, "instance": instance, "severity": "critical"}


@pytest.mark.parametrize(("down", "suppressed", "active"), [
    # the worker (one of the job's instances) is down: its stale symbols are explained
    (target_down("tariffmon-worker", "w1:9464"), [STALE_USDJPY], [TICK_SOURCE, FEED_SOURCE]),
    # the tick producer is down: every stale symbol and its own source alert are explained
    (target_down("tariffmon-tick-producer", "tick:9465"), [STALE_USDJPY, TICK_SOURCE],
     [FEED_SOURCE]),
    # the headline producer being down explains its own source only, not stale ticks
    (target_down("tariffmon-headline-producer", "head:9465"), [FEED_SOURCE],
     [STALE_USDJPY, TICK_SOURCE]),
], ids=["worker-down", "tick-producer-down", "headline-producer-down"])
def test_target_down_inhibits_what_it_explains(
    tmp_path: Path, down: dict[str, str], suppressed: list[dict[str, str]],
    active: list[dict[str, str]],
) -> None:
    with running_alertmanager(CONFIG, workdir=tmp_path) as am:
        am.post_alerts([{"labels": labels} for labels in (down, STALE_USDJPY, TICK_SOURCE,
                                                          FEED_SOURCE)])
        states = am.states_once_settled(len(suppressed))
        # whatever should stay active has had the same time to be (wrongly) muted
    assert states[tuple(sorted(down.items()))] == "active"
    for labels in suppressed:
        assert states[tuple(sorted(labels.items()))] == "suppressed", labels
    for labels in active:
        assert states[tuple(sorted(labels.items()))] == "active", labels
