"""The exceptions of the ``producers`` package: one base class, one subclass per kind."""

from __future__ import annotations

from tariffmon.errors import TariffmonError


class ProducerError(TariffmonError):
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
