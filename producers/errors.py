"""The exceptions of the ``producers`` package: one base class, one subclass per kind."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any


class ProducerError(Exception):
    """Base of every error raised by the ``producers`` package."""


class SourceError(ProducerError):
    """A data source (yfinance, a feed, a file) failed; ``kind`` is a short bounded code."""

    def __init__(self, source: str, kind: str, detail: str) -> None:
        super().__init__(f"source {source}: {kind}: {detail}")
        self.source = source
        self.kind = kind
        self.detail = detail


class DeliveryError(ProducerError):
    """Kafka did not acknowledge some messages before the producer stopped."""


class HistoryRangeError(ProducerError):
    """A history request asks for data Yahoo does not serve (names interval and limit)."""


def report_errors(command: str, run: Callable[[Any], int]) -> Callable[[Any], int]:
    """Wrap a CLI ``run``: a ProducerError becomes a one-line message and exit code 2."""
    @functools.wraps(run)
    def wrapper(args: Any) -> int:
        try:
            return run(args)
        except ProducerError as exc:
            print(f"tariffmon {command}: error: {exc}", file=sys.stderr)
            return 2

    return wrapper
