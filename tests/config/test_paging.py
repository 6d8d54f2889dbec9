"""A page that reaches a receiver: real worker -> real Prometheus -> real Alertmanager -> webhook.

The project's worker runs as a child process on the real broker and is fed a tariff headline
(the 90-day pause) and then USD/JPY ticks with a sharp climb a minute after it.  Debian's
``prometheus`` scrapes the worker every second and evaluates config/prometheus/rules as they
are (SharpYenMove's ``for: 1m`` included, so the test takes a little over a minute);
``prometheus-alertmanager`` runs config/alertmanager/alertmanager.yml with only its webhook
address changed to a receiver this test serves on 127.0.0.1.  The notification that arrives
on the pager route must carry, as annotations, the symbol, the move in basis points equal to
the alert the worker wrote to Kafka, and the attributed headline's title.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from tariffmon.contract import Alert
from tests.conftest import MakeSettings
from tests.dashboard_queries import RULES
from tests.kafka_helpers import consume_all, produce_messages, wait_until
from tests.prometheus_harness import (
    alertmanager_binary,
    prometheus_binary,
    running_alertmanager,
    running_prometheus,
)
from tests.tariffmon.streams.market import PAUSE_TITLE, T0, pause_headline, ticks
from tests.worker_process import WorkerProcess

ROOT = Path(__file__).resolve().parents[2]
ALERTMANAGER_CONFIG = ROOT / "config" / "alertmanager" / "alertmanager.yml"
WORKER_JOB = "tariffmon-worker"

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.skipif(prometheus_binary() is None or alertmanager_binary() is None,
                       reason="needs prometheus and prometheus-alertmanager (CI installs them)"),
]


class Receiver:
    """A webhook receiver on 127.0.0.1: keeps every JSON body POSTed, by path."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, Any]]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.received.append((self.path, json.loads(body)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return  # the test reads what arrived, not an access log

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def alertmanager_config(tmp_path: Path, receiver_port: int) -> Path:
    """The project's Alertmanager config, its webhooks pointed at the test's receiver."""
    config = yaml.safe_load(ALERTMANAGER_CONFIG.read_text())
    changed = 0
    for rec in config["receivers"]:
        for hook in rec.get("webhook_configs", []):
            assert hook["url"].startswith("http://127.0.0.1:5001/"), hook["url"]
            hook["url"] = hook["url"].replace("127.0.0.1:5001", f"127.0.0.1:{receiver_port}")
            changed += 1
    assert changed == len(config["receivers"])
    path = tmp_path / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def pages(receiver: Receiver, alertname: str) -> Iterator[dict[str, Any]]:
    """The firing alerts named ``alertname`` that reached the pager route."""
    for path, body in list(receiver.received):
        if path != "/tariffmon/pager":
            continue
        for alert in body.get("alerts", []):
            if alert["labels"].get("alertname") == alertname and alert["status"] == "firing":
                yield alert


def test_sharp_yen_move_pages_with_symbol_move_and_headline_titles(
    make_settings: MakeSettings, tmp_path: Path
) -> None:
    settings = make_settings()
    headline = pause_headline(ts=T0)
    # two hours of quiet baseline, then a steep climb over the minute after T0 + 60 s (the
    # alerts fire at its onset, on the z threshold for the shortest window)
    tick_list = ticks("USDJPY", T0 - 7_200_000, 7_200 + 600, seed=11, jump_at=T0 + 60_000)

    with (
        Receiver() as receiver,
        running_alertmanager(alertmanager_config(tmp_path, receiver.port),
                             workdir=tmp_path) as am,
        WorkerProcess(settings, tmp_path / "worker.log") as worker,
        running_prometheus(
            {WORKER_JOB: [f"127.0.0.1:{worker.metrics_port}"]}, rule_files=[RULES],
            alertmanagers=[f"127.0.0.1:{am.port}"], workdir=tmp_path / "prom",
        ) as prom,
    ):
        def alive() -> None:
            if not worker.running():
                raise AssertionError(f"worker exited: {worker.log_tail()}")

        # the sharp-move counter must be scraped at zero first, or increase() sees nothing
        prom.wait_for('tariffmon_sharp_moves_total{symbol="USDJPY"}', timeout_s=30)
        produce_messages(settings, settings.topics.headlines, [headline])
        wait_until(lambda: prom.value("sum(tariffmon_tariff_headlines_total)") or 0, 60,
                   "the tariff headline classified", alive=alive)
        produce_messages(settings, settings.topics.ticks, tick_list)
        wait_until(lambda: prom.value('sum(tariffmon_sharp_moves_total{symbol="USDJPY"})') or 0,
                   120, "a sharp USD/JPY move counted", alive=alive)

        # for: 1m in the rules, then Alertmanager's group_wait of the pager route
        wait_until(lambda: list(pages(receiver, "SharpYenMove")), 150,
                   "a SharpYenMove page at the receiver", alive=alive, poll_s=1.0)
        time.sleep(2)  # the rest of the group, if Alertmanager sent it in several posts
        paged = list(pages(receiver, "SharpYenMove"))

    alerts = [Alert.decode(r.value) for r in consume_all(settings, settings.topics.alerts)]
    by_window = {str(a.window_s): a for a in alerts if a.symbol == "USDJPY"}
    assert by_window, "the worker wrote no alert"
    assert paged
    print("\npages:", json.dumps([p["annotations"] for p in paged], indent=1))
    for page in paged:
        labels, notes = page["labels"], page["annotations"]
        assert labels["severity"] == "critical"
        assert notes["symbol"] == "USDJPY" == labels["symbol"]
        alert = by_window[labels["window"]]
        assert float(notes["move_bp"]) == pytest.approx(alert.ret * 1e4, abs=0.06)
        assert notes["move_bp"] in notes["summary"]
        titles = notes["headlines"].split(" | ")
        assert PAUSE_TITLE in titles, notes["headlines"]
        assert titles == [h.title for h in alert.headlines][: len(titles)]
        assert notes["runbook_url"] == "docs/runbooks/SharpYenMove.md"
        assert labels["direction"] == alert.direction
