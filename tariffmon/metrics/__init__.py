"""Prometheus metrics of the tariffmon processes, built on a registry passed in at start-up.

Nothing here creates a metric at import time: :class:`WorkerMetrics` registers its metrics on
the :class:`~prometheus_client.CollectorRegistry` it is given, and :func:`serve` exposes a
registry over HTTP at the configured address.  Names follow Prometheus conventions: one
``tariffmon_`` prefix, base units (seconds, ratios), ``_total`` counters, and only bounded
labels (symbol, horizon, window, tag, direction, source, topic, reason, kind).
"""

from tariffmon.metrics.worker import MetricsServer, WorkerMetrics, serve

__all__ = ["MetricsServer", "WorkerMetrics", "serve"]
