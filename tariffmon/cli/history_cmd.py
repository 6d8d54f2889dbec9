"""`tariffmon history` (placeholder until its issue lands)."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    """Add the `history` subcommand."""
    p = sub.add_parser("history", help="(not built yet)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Not built yet."""
    raise SystemExit("tariffmon history: not built yet")
