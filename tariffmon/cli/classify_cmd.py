"""`tariffmon classify`: run the tariff classifier on headlines, one JSON object per line.

Handy for trying rule changes: ``tariffmon classify "Trump pauses tariffs for 90 days"`` or
``cut -d, -f3 headlines.csv | tariffmon classify --rules my-rules.yaml``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TextIO


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number: {text!r}")
    return value


def register(sub: Any) -> None:
    """Add the `classify` subcommand."""
    p = sub.add_parser(
        "classify",
        help="classify headlines as tariff news or not (JSON lines out)",
        description=(
            "Classify headlines given as arguments, or read one per line from stdin when none "
            "are given. Prints one JSON object per headline with text, is_tariff, score, "
            "tags, direction and matched (the words that counted)."
        ),
    )
    p.add_argument("headlines", nargs="*", metavar="TEXT", help="headlines to classify")
    p.add_argument(
        "--threshold", type=_positive_float, default=None,
        help="score at or above which a headline is tariff news (default: "
        "settings classifier.threshold)",
    )
    p.add_argument(
        "--rules", type=Path, default=None,
        help="rules file (default: settings classifier.rules_file, the rules shipped in "
        "tariffmon/defaults/classifier.yaml)",
    )
    p.add_argument(
        "--explain", action="store_true",
        help="also print the direction cues that fired and the near misses blanked out",
    )
    p.set_defaults(func=run)


def _lines(stream: TextIO) -> Iterator[str]:
    for line in stream:
        text = line.strip()
        if text:
            yield text


def run(args: argparse.Namespace) -> int:
    """Classify each headline and print its verdict as a JSON line."""
    from tariffmon.core.classifier import TariffClassifier
    from tariffmon.settings import load_settings

    settings = load_settings()
    rules = args.rules if args.rules is not None else settings.classifier.rules_file
    threshold = args.threshold if args.threshold is not None else settings.classifier.threshold
    classifier = TariffClassifier.from_file(rules, threshold)

    texts: Iterable[str] = args.headlines if args.headlines else _lines(sys.stdin)
    out = sys.stdout
    try:
        for text in texts:
            verdict = classifier.classify(text)
            record: dict[str, Any] = {"text": text, **verdict.to_dict()}
            if not args.explain:
                del record["cues"], record["masked"]
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
        out.flush()
    except BrokenPipeError:
        # The reader (e.g. `| head`) has had enough: not an error of ours.  Point stdout at
        # /dev/null so that the interpreter's final flush does not raise again.
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115
    return 0
