"""Producer metrics: names and labels as the observability issue expects, served over HTTP."""

from __future__ import annotations

import urllib.request

from prometheus_client import CollectorRegistry

from tariffmon.producers.metrics import ProducerMetrics, serve_metrics
from tests.kafka_helpers import free_port


def test_metrics_are_served_on_the_given_registry() -> None:
    registry = CollectorRegistry()
    m = ProducerMetrics(registry)
    m.messages_sent.labels(topic="tariffmon.ticks").inc(3)
    m.send_errors.labels(topic="tariffmon.ticks", kind="KafkaTimeoutError").inc()
    m.fetch_ok("yfinance_bars:USDJPY", 1_743_624_000.0)
    m.fetch_failed("wire", "parse")
    port = free_port()
    server = serve_metrics(port, "127.0.0.1", registry)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            text = resp.read().decode()
    finally:
        server.shutdown()
    for line in (
        'tariffmon_producer_messages_sent_total{topic="tariffmon.ticks"} 3.0',
        'tariffmon_producer_send_errors_total{kind="KafkaTimeoutError",'
        'topic="tariffmon.ticks"} 1.0',
        'tariffmon_source_last_success_timestamp_seconds{source="yfinance_bars:USDJPY"} '
        "1.743624e+09",
        'tariffmon_source_errors_total{kind="parse",source="wire"} 1.0',
        'tariffmon_source_fetches_total{source="wire"} 1.0',
    ):
        assert line in text, line
