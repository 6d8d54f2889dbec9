"""``tariffmon worker``: build everything from the settings and run the Faust worker."""

from __future__ import annotations

import logging
import time

import faust
from prometheus_client import CollectorRegistry

from tariffmon import topic_reader
from tariffmon.kafkaclient import ensure_topics
from tariffmon.metrics import consumer as consumer_metrics
from tariffmon.metrics.worker import WorkerMetrics, serve
from tariffmon.settings import Settings
from tariffmon.streams.agents import Pipeline
from tariffmon.streams.app import build_app

log = logging.getLogger(__name__)


def run_worker(settings: Settings, *, loglevel: str = "WARNING") -> None:
    """Create the topics if needed, serve /metrics, and run until SIGINT/SIGTERM."""
    ensure_topics(settings)
    registry = CollectorRegistry()
    metrics = WorkerMetrics.from_settings(registry, settings, clock=time.time)
    server = None
    if settings.metrics.enabled:
        server = serve(registry, settings.metrics.host, settings.metrics.worker_port)
        log.warning("metrics on http://%s:%d/metrics", server.host, server.port)
    try:
        app = build_app(settings)
        pipeline = Pipeline(settings, app, metrics)
        # lag, rebalances, commit latency, processing rate (a daemon thread and a sensor)
        consumer_metrics.install(app, settings, registry, topic_reader)
        worker = faust.Worker(app, loglevel=loglevel, quiet=True, override_logging=False)
        try:
            worker.execute_from_commandline()
        finally:
            pipeline.close()
    finally:
        if server is not None:
            server.close()
