"""`tariffmon history`: download bars with yfinance into a recorded-stream file."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    """Add the `history` subcommand."""
    p = sub.add_parser(
        "history",
        help="download historical bars (yfinance) into a recorded-stream file",
        description=(
            "Download bars for the symbols between START and END (UTC) and write them as "
            "bar_close ticks at each bar's end to OUT (JSON lines, gzipped if it ends in "
            ".gz), ready for replay and backtest. Yahoo's limits per interval are respected: "
            "1m only for the last 30 days in 7-day requests, 2m-90m the last 60 days, 1h the "
            "last 730 days, 1d any range; an older start is moved forward with a warning."
        ),
    )
    p.add_argument("--symbols", nargs="+", metavar="SYMBOL", default=None,
                   help="canonical symbols (default: all configured)")
    p.add_argument("--start", required=True, metavar="TIME",
                   help="first bar start: ISO-8601 date/time (UTC if no zone) or epoch ms")
    p.add_argument("--end", required=True, metavar="TIME", help="end (exclusive), same forms")
    p.add_argument("--interval", default="1m", help="yfinance interval (default: 1m)")
    p.add_argument("--out", required=True, metavar="FILE", help="output file (.jsonl[.gz])")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Download and write; prints the number of bars written."""
    from datetime import UTC, datetime

    from tariffmon.cli.timeargs import parse_time
    from tariffmon.producers.history import download_history
    from tariffmon.settings import load_settings

    settings = load_settings()
    names = args.symbols or [s.name for s in settings.symbols]
    symbols = {n: settings.symbol(n).yahoo for n in names}
    start = datetime.fromtimestamp(parse_time("start", args.start) / 1000, UTC)
    end = datetime.fromtimestamp(parse_time("end", args.end) / 1000, UTC)
    n = download_history(symbols, start, end, args.interval, args.out,
                         progress=not args.no_progress)
    print(f"wrote {n} bars to {args.out}")
    return 0
