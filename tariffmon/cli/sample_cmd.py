"""`tariffmon sample`: regenerate the bundled sample deterministically."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    """Add the `sample` subcommand."""
    p = sub.add_parser(
        "sample",
        help="regenerate the bundled sample (synthetic ticks and headlines, fixed seed)",
        description=(
            "Write the bundled sample into OUT: USD/JPY, Nikkei 225 and Nikkei futures quotes "
            "at one-second resolution from Wed 2 to Mon 7 April 2025 (UTC) and 30 headlines "
            "written for it, as recorded-stream files, and labels.csv, what the classifier "
            "rules in force and the story clustering make of each headline. The same seed "
            "(and rules) give byte-identical files. "
            "See data/sample/README.md."
        ),
    )
    p.add_argument("--out", default="data/sample", metavar="DIR",
                   help="output folder (default: data/sample)")
    p.add_argument("--seed", type=int, default=None,
                   help="random seed, 0 or more (default: the bundled one)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Generate the sample files."""
    from pathlib import Path

    from tariffmon.cli.preflight import require_output_dir
    from tariffmon.errors import ConfigError
    from tariffmon.producers.sample import DEFAULT_SEED, write_sample

    if args.seed is not None and args.seed < 0:
        raise ConfigError("--seed", f"must be a non-negative integer (got {args.seed})")
    require_output_dir(Path(args.out), option="--out")
    written = write_sample(args.out, DEFAULT_SEED if args.seed is None else args.seed)
    for name, n in written.items():
        print(f"{args.out}/{name}: {n} events")
    return 0
