"""The exceptions of the ``tariffmon`` package: one base class, one subclass per kind."""

from __future__ import annotations

from typing import Any


class TariffmonError(Exception):
    """Base of every error raised by the ``tariffmon`` package."""


class ContractError(TariffmonError):
    """A message failed to decode or validate.

    ``field`` names the offending field (``"$"`` for the whole message), ``value`` is the value
    found and ``rule`` the rule it broke; the message text names all three so that a dead letter
    explains itself.
    """

    def __init__(self, field: str, value: Any, rule: str, *, reason: str = "invalid") -> None:
        shown = repr(value)
        if len(shown) > 120:
            shown = shown[:117] + "..."
        super().__init__(f"{field}={shown}: {rule}")
        self.field = field
        self.value = value
        self.rule = rule
        #: a short, bounded reason code (used as a metric label and in dead letters)
        self.reason = reason


class ConfigError(TariffmonError):
    """A setting is missing or invalid; the message names the setting and the reason."""

    def __init__(self, setting: str, reason: str) -> None:
        super().__init__(f"setting {setting}: {reason}")
        self.setting = setting
        self.reason = reason


class BrokerError(TariffmonError):
    """The local Kafka broker could not be prepared, started, reached or stopped."""


class RecordedStreamError(TariffmonError):
    """A recorded-stream file could not be read to its end (missing, truncated, not gzip, ...).

    ``path`` names the file, ``line`` the line at which reading stopped (the lines before it
    were read) and ``byte`` how far into the file, as stored (compressed, if gzipped), the
    reading had got; ``cause`` says why.
    """

    def __init__(self, path: str, line: int, byte: int, cause: str) -> None:
        super().__init__(f"{path}: reading stopped at line {line} (byte {byte}): {cause}")
        self.path = path
        self.line = line
        self.byte = byte
        self.cause = cause
