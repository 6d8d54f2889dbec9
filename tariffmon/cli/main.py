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
import traceback
from collections.abc import Sequence

from tariffmon import __version__

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
        epilog=(
            "A failure is reported in one line naming its cause and the setting or option "
            "to change; --debug (or -v) adds the traceback. Exit status: 0 success, 1 a "
            "failure not foreseen (or a partial result, as the command's help says), 2 a "
            "usage or settings error or any other failure the line explains, 130 "
            "interrupted."
        ),
    )
    parser.add_argument("--version", action="version", version=f"tariffmon {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)"
    )
    parser.add_argument("--debug", action="store_true",
                        help="show the traceback of a failure (also after the command)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    _accept_debug_anywhere(sub)
    return parser


def _accept_debug_anywhere(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Let ``--debug`` follow the command too (``tariffmon worker --debug``).

    SUPPRESS as the default keeps a subcommand from resetting the top-level value.
    """
    for parser in sub.choices.values():
        parser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                            help="show the traceback of a failure")
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                _accept_debug_anywhere(action)


def _warn_unknown_variables() -> None:
    """One warning per ``TARIFFMON_*`` variable that sets nothing, with the nearest name."""
    from tariffmon.settings import unknown_variables

    for variable, nearest in unknown_variables():
        hint = f"; did you mean {nearest}?" if nearest else ""
        logging.getLogger("tariffmon").warning(
            "%s matches no setting and is ignored%s", variable, hint)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code.

    The one place where a failure becomes what the user sees: a single line naming the
    cause and what to change (:func:`tariffmon.cli.failures.describe`), the traceback only
    with ``--debug`` or ``-v``.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    from tariffmon.kafkaclient import quiet_client_logs

    quiet_client_logs(args.verbose)  # Kafka clients: WARNING and up; no client repeats
    try:
        _warn_unknown_variables()
        code: int = args.func(args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - every failure ends here, as one line
        from tariffmon.cli.failures import describe

        line, code = describe(exc)
        if args.debug or args.verbose:
            traceback.print_exception(exc, file=sys.stderr)
        print(f"tariffmon {args.command}: error: {line}", file=sys.stderr)
        return code
    return code


if __name__ == "__main__":
    sys.exit(main())
