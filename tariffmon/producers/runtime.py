"""What every producer command does around its loop: settings, topics, metrics, shutdown."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from prometheus_client import CollectorRegistry

from tariffmon.kafkaclient import ensure_topics
from tariffmon.producers.kafka_producer import StopFlag, TopicProducer
from tariffmon.producers.metrics import ProducerMetrics, serve_metrics
from tariffmon.settings import Settings

log = logging.getLogger(__name__)


def ensure_stream_topics(settings: Settings, streams: list[str]) -> None:
    """Create the topics of these logical streams unless they exist."""
    topics = settings.topics
    names = topics.all_topics()
    ensure_topics(settings, {names[s]: topics.partitions_of(s) for s in streams})


@contextmanager
def producer_runtime(
    settings: Settings, *, metrics_port: int | None
) -> Iterator[tuple[TopicProducer, ProducerMetrics, StopFlag]]:
    """A producer, its metrics (served on ``metrics_port`` unless None/0) and a stop flag.

    SIGINT/SIGTERM set the flag; on leaving, the producer is flushed and closed, and a final
    summary is logged.
    """
    registry = CollectorRegistry()
    metrics = ProducerMetrics(registry)
    server: Any = None
    if metrics_port:
        server = serve_metrics(metrics_port, settings.metrics.host, registry)
        log.info("metrics on http://%s:%d/metrics", settings.metrics.host, metrics_port)
    stop = StopFlag()
    try:
        producer = TopicProducer(settings, metrics)  # fails fast on a bad cluster or login
        with stop.installed():
            try:
                yield producer, metrics, stop
            finally:
                producer.close()
                log.info("producer closed: %s", producer.summary())
    finally:
        if server is not None:
            server.shutdown()
