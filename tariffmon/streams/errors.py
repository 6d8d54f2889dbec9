"""Exceptions of the ``streams`` package."""

from __future__ import annotations

from tariffmon.errors import TariffmonError


class StreamsError(TariffmonError):
    """Base of every error raised by the Faust worker adapters."""


class RecoveryError(StreamsError):
    """The worker could not rebuild a partition's state from its input topics."""
