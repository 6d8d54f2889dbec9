"""``tariffmon demo``: the live pipeline end to end on the bundled sample."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from tariffmon.cli.preflight import require_free_port
from tariffmon.settings import load_settings


def register(sub: Any) -> None:
    """Add the ``demo`` subcommand."""
    p = sub.add_parser(
        "demo",
        help="start broker and worker, replay the bundled sample, print the reactions",
        description=(
            "Run the live path end to end: start the local Kafka broker (unless "
            "TARIFFMON_KAFKA__BOOTSTRAP_SERVERS or --bootstrap names a cluster), start a "
            "worker, replay data/sample at full speed into topics of this run, print each "
            "reaction as it arrives (until all those the offline backtest finds are in, and "
            "compare them), then keep the worker and its metrics endpoint up until "
            "Ctrl-C. For the offline version with no Kafka or Java: tariffmon backtest."
        ),
    )
    p.add_argument("--bootstrap", help="use this Kafka cluster instead of the local broker")
    p.add_argument("--metrics-port", type=int, default=None,
                   help="worker metrics port (default: metrics.worker_port)")
    p.add_argument("--files", nargs="+", type=Path, default=None,
                   help="recorded-stream files to replay (default: the .jsonl and .jsonl.gz "
                        "files of data/sample in the base folder: TARIFFMON_HOME, else the "
                        "working directory)")
    p.add_argument("--exit-when-done", action="store_true",
                   help="stop the worker and exit once the reactions are printed")
    p.add_argument("--idle", type=float, default=120.0,
                   help="give up waiting for the remaining reactions after this many seconds "
                        "without a new one (default 120)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the demo."""
    from tariffmon.demo import Demo

    settings = load_settings()
    bootstrap = args.bootstrap
    if bootstrap is None and os.environ.get("TARIFFMON_KAFKA__BOOTSTRAP_SERVERS"):
        bootstrap = settings.kafka.bootstrap_servers
    metrics_port = args.metrics_port or settings.metrics.worker_port
    # before the broker and the backtest, not half a minute later in the worker's log
    require_free_port(settings.metrics.host, metrics_port, setting="metrics.worker_port",
                      option="--metrics-port")
    demo = Demo(settings, metrics_port=metrics_port, bootstrap=bootstrap, files=args.files)
    reactions = demo.run(keep_running=not args.exit_when_done, idle_s=args.idle)
    # success means the live path gave every answer the backtest gives, and only those
    identical = sum(1 for r in reactions if demo.expected.get(r.key) == r)
    return 0 if reactions and identical == len(demo.expected) == len(reactions) else 1
