"""`tariffmon backtest FILE... --out DIR`: the pure core over recorded streams, no Kafka or Java."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

#: inputs larger than this (bytes, all files together, as stored) get a progress bar
PROGRESS_MIN_BYTES = 2 * 1024 * 1024


def register(sub: Any) -> None:
    """Add the `backtest` subcommand."""
    p = sub.add_parser(
        "backtest",
        help="run the reaction engine over recorded-stream files and write a report",
        description=(
            "Merge the FILEs (recorded-stream JSON lines, .gz allowed, each sorted by ts: "
            "ticks and headlines, e.g. data/sample/*.jsonl*) by event time and run them through "
            "the same classifier and reaction engine as the live worker, in process (no Kafka, no "
            "Java). Writes to DIR: reactions.jsonl (the reaction records of the contract), "
            "reactions.csv, alerts.jsonl, summary.txt, PNG charts (per symbol: the average "
            "return path around tariff headlines by direction, and the price timeline with "
            "the headlines marked) and, with --html, report.html bundling it all. Prints the "
            "summary table. Invalid input lines are counted and skipped; a file that cannot "
            "be read to its end (truncated or corrupt gzip) stops the run: the report of "
            "what was read is written and the exit status is 2."
        ),
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="recorded-stream files")
    p.add_argument("--out", required=True, type=Path, metavar="DIR",
                   help="output directory (created if missing; files in it are replaced)")
    p.add_argument("--from", dest="from_ts", default=None, metavar="TIME",
                   help="first event time to use (epoch ms or ISO-8601, UTC if no zone)")
    p.add_argument("--to", dest="to_ts", default=None, metavar="TIME",
                   help="use events before this time (exclusive)")
    p.add_argument("--no-charts", action="store_true", help="do not draw the PNG charts")
    p.add_argument("--html", action="store_true",
                   help="also write report.html (table and charts in one file)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--quiet", action="store_true",
                   help="print only where the files went, not the summary table")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the backtest, write the report, print the summary."""
    from tqdm import tqdm

    from tariffmon.backtest.report import format_summary, write_report
    from tariffmon.backtest.runner import IncompleteInputError, run_backtest, total_bytes
    from tariffmon.cli.preflight import require_output_dir
    from tariffmon.cli.timeargs import parse_time
    from tariffmon.errors import ConfigError
    from tariffmon.settings import load_settings

    settings = load_settings()
    from_ts = parse_time("--from", args.from_ts) if args.from_ts else None
    to_ts = parse_time("--to", args.to_ts) if args.to_ts else None
    if from_ts is not None and to_ts is not None and to_ts <= from_ts:
        raise ConfigError("--to", "must be later than --from")
    missing = [f for f in args.files if not Path(f).is_file()]
    if missing:
        raise ConfigError("FILE", f"no such file: {missing[0]}")
    # before the run, which may take minutes, not when the report is written
    require_output_dir(args.out, option="--out")
    size = total_bytes(args.files)
    # a bar only where someone watches it: CI logs would fill with carriage returns
    show = not args.no_progress and size >= PROGRESS_MIN_BYTES and sys.stderr.isatty()
    with tqdm(total=size, unit="B", unit_scale=True, desc="backtest", disable=not show,
              file=sys.stderr, smoothing=0.1) as bar:
        try:
            result = run_backtest(args.files, settings, from_ts=from_ts, to_ts=to_ts,
                                  progress=bar.update)
            incomplete = None
        except IncompleteInputError as exc:
            # the report of what was read is still worth having; the exit status says it
            # is partial
            result, incomplete = exc.result, exc
    if show:
        print("writing the report…", file=sys.stderr, flush=True)
    files = write_report(result, args.out, charts=not args.no_charts, html_file=args.html,
                         sources=[str(f) for f in args.files])
    if not args.quiet:
        print(format_summary(result))
        print()
    partial = "" if incomplete is None else (
        " (partial: they cover only what was read before the input stopped, see the error)")
    print(f"wrote {len(files.all())} files to {files.out_dir}{partial}:")
    for path in files.all():
        print(f"  {path}")
    if incomplete is not None:
        raise incomplete
    return 0
