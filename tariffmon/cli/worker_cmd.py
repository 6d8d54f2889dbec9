"""``tariffmon worker``: the Faust stream worker (classify, react, alert)."""

from __future__ import annotations

import argparse
from typing import Any

from tariffmon.cli.preflight import require_free_port
from tariffmon.settings import load_settings


def register(sub: Any) -> None:
    """Add the ``worker`` subcommand."""
    p = sub.add_parser(
        "worker",
        help="run a stream worker (several workers share the partitions)",
        description=(
            "Run the faust-streaming worker: classify headlines, link tariff headlines to the "
            "price moves that follow, detect sharp moves, and publish reactions, alerts and "
            "dead letters. Serves Prometheus metrics on metrics.host:metrics.worker_port. "
            "Stops cleanly on SIGINT/SIGTERM; a restarted worker rebuilds its state from Kafka."
        ),
    )
    p.add_argument("--metrics-port", type=int, help="override metrics.worker_port (0: any free)")
    p.add_argument("--loglevel", default="WARNING", help="Faust log level (default WARNING)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the worker until stopped."""
    overrides: dict[str, Any] = {}
    if args.metrics_port is not None:
        overrides["metrics"] = {"worker_port": args.metrics_port}
    settings = load_settings(**overrides)
    if settings.metrics.enabled:
        require_free_port(settings.metrics.host, settings.metrics.worker_port,
                          setting="metrics.worker_port", option="--metrics-port")
    from tariffmon.streams.worker import run_worker  # Faust is heavy: imported only to run

    run_worker(settings, loglevel=args.loglevel)
    return 0
