"""`tariffmon replay` (placeholder until its issue lands)."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    """Add the `replay` subcommand."""
    p = sub.add_parser("replay", help="(not built yet)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Not built yet."""
    raise SystemExit("tariffmon replay: not built yet")
