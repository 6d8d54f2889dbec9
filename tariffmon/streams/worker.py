"""``tariffmon worker``: build everything from the settings and run the Faust worker."""

from __future__ import annotations

import gc
import logging
import signal
import time
from types import FrameType
from typing import Any

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


class _EarlySigterm:
    """Notes a SIGTERM that comes before Faust's worker has installed its own handler.

    Faust installs its signal handlers only once it starts; a supervisor's stop during
    start-up (topic creation, with /metrics already served) would otherwise kill the process
    by the signal's default action, without an exit status or a clean leave of the group.
    """

    def __init__(self) -> None:
        self.seen = False
        signal.signal(signal.SIGTERM, self._note)

    def _note(self, signum: int, frame: FrameType | None) -> None:
        self.seen = True


class _Worker(faust.Worker):
    """Faust's worker, stopping once started if a SIGTERM came while the process was starting.

    The stop waits for the end of start-up: stopped in the middle of it, Faust goes on
    starting the app's services (the react service among them) after it has stopped the
    producer they send through.
    """

    def __init__(self, *args: Any, early_sigterm: _EarlySigterm, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._early_sigterm = early_sigterm

    async def on_startup_finished(self) -> None:
        await super().on_startup_finished()
        if self._early_sigterm.seen:
            log.warning("SIGTERM received while starting: stopping")
            self._on_sigterm()


def _tune_gc_for_bulk_rounds() -> None:
    """Collect cycles at the pace of rounds, not of allocations.

    A round allocates ~100,000 short-lived objects (fetched records, decoded dicts), which
    at CPython's default thresholds (700, 10, 10) is ~140 young collections and one or two
    full ones per round, each full one walking every object the worker holds (Faust, its
    modules, the engine's state).  That cost a third of the worker's throughput (bench_e2e:
    55,500 against 77,000 ticks/s with collection off).  The objects alive after start-up
    are frozen (never walked again) and the young generation is sized to a round; cycles
    are still collected, and bench_memory keeps the peak flat.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(100_000, 20, 20)


def run_worker(settings: Settings, *, loglevel: str = "WARNING") -> None:
    """Create the topics if needed, serve /metrics, and run until SIGINT/SIGTERM."""
    early_sigterm = _EarlySigterm()
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
        _tune_gc_for_bulk_rounds()
        worker = _Worker(app, loglevel=loglevel, quiet=True, override_logging=False,
                         early_sigterm=early_sigterm)
        try:
            worker.execute_from_commandline()
        finally:
            pipeline.close()
    finally:
        if server is not None:
            server.close()
