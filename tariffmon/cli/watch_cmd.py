"""``tariffmon watch``: the live picture in the terminal, for a user without Grafana."""

from __future__ import annotations

import argparse
import re
import sys
from typing import Any

from tariffmon.errors import ConfigError

#: ``--since`` spans: a number and a unit (s, m, h, d)
_SPAN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$", re.IGNORECASE)
_UNIT_MS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


def register(sub: Any) -> None:
    """Add the ``watch`` subcommand."""
    p = sub.add_parser(
        "watch",
        help="the live picture in the terminal: prices, tariff headlines and their reactions",
        description=(
            "Follow the pipeline's topics (classified headlines, reactions, alerts, ticks)\n"
            "and redraw a text picture every --interval seconds:\n"
            "  - the last price and rolling log returns (basis points) of each symbol;\n"
            "  - the latest tariff headlines with their reaction per symbol and horizon:\n"
            "    log return in bp, z-score, * significant, ^ measured across a market gap\n"
            "    (the market was closed at the headline: measured from the reopen);\n"
            "  - the latest sharp-move alerts with the tariff headlines attributed to them.\n"
            "Read-only: no consumer group, nothing committed. Reading starts 6 hours of event\n"
            "time before the newest tick on the topics (so a replayed week shows its last\n"
            "hours, even after a headline typed by hand with today's time), or where\n"
            "--since / --from-beginning say. Stops on Ctrl-C, or after\n"
            "--duration / --max-refreshes for scripts. Settings (broker, topics, symbols,\n"
            "horizons) come from the settings file and TARIFFMON_* variables (tariffmon --help)."
        ),
        epilog=(
            "examples:\n"
            "  tariffmon watch\n"
            "  tariffmon watch --since 2d --interval 5\n"
            "  tariffmon watch --since 2025-04-09T17:00Z\n"
            "  tariffmon watch --from-beginning --no-clear --duration 10 > picture.txt"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    start = p.add_mutually_exclusive_group()
    start.add_argument(
        "--since", default="6h", metavar="SPAN|TIME",
        help="start this long before the newest tick on the topics (e.g. 90m, 6h, 2d), or "
             "at an event time (epoch ms or ISO-8601, UTC if no zone); default 6h",
    )
    start.add_argument("--from-beginning", action="store_true",
                       help="read the topics from their beginning")
    p.add_argument("--interval", type=float, default=2.0, metavar="SECONDS",
                   help="seconds between refreshes (default 2)")
    p.add_argument("--no-clear", action="store_true",
                   help="append each picture instead of clearing the screen (the default when "
                        "the output is not a terminal)")
    p.add_argument("--duration", type=float, default=None, metavar="SECONDS",
                   help="stop after this many seconds, drawing a last picture")
    p.add_argument("--max-refreshes", type=int, default=None, metavar="N",
                   help="stop after drawing N pictures")
    p.add_argument("--width", type=int, default=None, metavar="COLUMNS",
                   help="line width (default: the terminal's; 120 when not a terminal)")
    p.add_argument("--headlines", type=int, default=8, metavar="N",
                   help="how many tariff headlines to show (default 8)")
    p.add_argument("--alerts", type=int, default=6, metavar="N",
                   help="how many sharp-move alerts to show (default 6)")
    p.set_defaults(func=run)


def parse_since(text: str) -> Any:
    """``--since`` as a :class:`~tariffmon.watch.consumer.StartAt`: a span or an event time."""
    from tariffmon.cli.timeargs import parse_time
    from tariffmon.watch.consumer import StartAt

    span = _SPAN.match(text)
    if span:
        ms = int(float(span.group(1)) * _UNIT_MS[span.group(2).lower()])
        if ms <= 0:
            raise ConfigError("--since", f"the span must be positive (got {text!r})")
        return StartAt("before_newest", ms)
    return StartAt("time", parse_time("--since", text))


def _positive(option: str, value: float | None) -> None:
    if value is not None and not value > 0:
        raise ConfigError(option, f"must be a positive number (got {value!r})")


def run(args: argparse.Namespace) -> int:
    """Watch until Ctrl-C, the duration or the refresh count."""
    from tariffmon.settings import load_settings
    from tariffmon.watch.consumer import StartAt, WatchOptions, run_watch

    _positive("--interval", args.interval)
    _positive("--duration", args.duration)
    for option, value in (("--max-refreshes", args.max_refreshes), ("--width", args.width),
                          ("--headlines", args.headlines), ("--alerts", args.alerts)):
        _positive(option, value)
    start = StartAt("beginning") if args.from_beginning else parse_since(args.since)
    options = WatchOptions(
        start=start,
        interval_s=args.interval,
        clear=not args.no_clear and sys.stdout.isatty(),
        duration_s=args.duration,
        max_refreshes=args.max_refreshes,
        width=args.width,
        max_headlines=args.headlines,
        max_alerts=args.alerts,
    )
    return run_watch(load_settings(), options, sys.stdout)
