"""`tariffmon publish-headline` (placeholder until its issue lands)."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    """Add the `publish-headline` subcommand."""
    p = sub.add_parser("publish-headline", help="(not built yet)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Not built yet."""
    raise SystemExit("tariffmon publish-headline: not built yet")
