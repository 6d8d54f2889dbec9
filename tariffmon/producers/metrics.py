"""Prometheus metrics of the producers, on a registry the caller owns.

No module-level registry: each process (or test) builds :class:`ProducerMetrics` on its own
``CollectorRegistry`` and serves it with :func:`serve_metrics`.  Labels are bounded: topics
and sources come from the settings, error kinds from a fixed vocabulary.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server


class ProducerMetrics:
    """Counters and gauges every producer updates."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.messages_sent = Counter(
            "tariffmon_producer_messages_sent_total",
            "Messages acknowledged by Kafka, by topic.",
            ["topic"], registry=registry,
        )
        self.send_errors = Counter(
            "tariffmon_producer_send_errors_total",
            "Messages Kafka did not acknowledge (or could not be sent), by topic and error kind.",
            ["topic", "kind"], registry=registry,
        )
        self.source_last_success = Gauge(
            "tariffmon_source_last_success_timestamp_seconds",
            "Unix time of the last successful fetch from a source.",
            ["source"], registry=registry,
        )
        self.source_errors = Counter(
            "tariffmon_source_errors_total",
            "Failed fetches or unusable data from a source, by error kind.",
            ["source", "kind"], registry=registry,
        )
        self.source_fetches = Counter(
            "tariffmon_source_fetches_total",
            "Fetch attempts (polls, stream connections, file reads) per source.",
            ["source"], registry=registry,
        )

    def fetch_ok(self, source: str, now_s: float) -> None:
        """Record a successful fetch at unix time ``now_s``."""
        self.source_fetches.labels(source=source).inc()
        self.source_last_success.labels(source=source).set(now_s)

    def fetch_failed(self, source: str, kind: str) -> None:
        """Record a failed fetch of kind ``kind``."""
        self.source_fetches.labels(source=source).inc()
        self.source_errors.labels(source=source, kind=kind).inc()


def serve_metrics(port: int, host: str, registry: CollectorRegistry) -> Any:
    """Serve ``registry`` on http://host:port/metrics; returns the server (call ``shutdown``)."""
    result = start_http_server(port, addr=host, registry=registry)
    # prometheus_client >= 0.20 returns (server, thread); older versions return None
    return result[0] if isinstance(result, tuple) else result
