"""Entry point of the ``tariffmon`` console script.

Each subcommand lives in its own module under :mod:`tariffmon.cli` with a ``register``
function that adds its parser; heavy imports happen inside the handlers so that ``--help``
stays fast and a subcommand's dependencies never slow down another's start.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from tariffmon import __version__
from tariffmon.errors import TariffmonError

#: subcommand modules, in the order ``--help`` lists them
COMMAND_MODULES = (
    "tariffmon.cli.kafka_cmd",
    "tariffmon.cli.worker_cmd",
    "tariffmon.cli.produce_cmd",
    "tariffmon.cli.publish_cmd",
    "tariffmon.cli.history_cmd",
    "tariffmon.cli.record_cmd",
    "tariffmon.cli.replay_cmd",
    "tariffmon.cli.backtest_cmd",
    "tariffmon.cli.classify_cmd",
    "tariffmon.cli.watch_cmd",
    "tariffmon.cli.demo_cmd",
    "tariffmon.cli.sample_cmd",
)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="tariffmon",
        description=(
            "Tariff reaction monitor: links US-Japan tariff headlines to the USD/JPY and "
            "Nikkei 225 moves that follow them, and alerts on sharp yen moves. Settings come "
            "from TARIFFMON_* variables over the file named by TARIFFMON_CONFIG, else "
            "config/tariffmon.toml in the base folder if there is one, over the built-in "
            "defaults. The base folder (TARIFFMON_HOME, else the working directory) also "
            "holds what is written by default: var/ and .cache/."
        ),
    )
    parser.add_argument("--version", action="version", version=f"tariffmon {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    from tariffmon.kafkaclient import quiet_client_logs

    quiet_client_logs(args.verbose)  # Kafka clients: WARNING and up; no client repeats
    try:
        code: int = args.func(args)
    except TariffmonError as exc:
        print(f"tariffmon {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
