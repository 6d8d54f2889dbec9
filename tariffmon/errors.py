"""The exceptions of the ``tariffmon`` package: one base class, one subclass per kind."""

from __future__ import annotations

import builtins
import reprlib
from typing import Any

#: the most characters of a value shown in a :class:`ContractError` message
MAX_SHOWN_CHARS = 120


class _ShortRepr(reprlib.Repr):
    """``reprlib`` with small limits everywhere and a fixed text for a failing ``repr``.

    Small: the shown value is a hint in a log line or dead letter, and a hostile input must
    not make rendering it costly (``reprlib`` walks only ``maxlevel`` deep).  Fixed: the
    stock fallback names the object's address, which would make the same bad input give a
    different dead letter on every replay.
    """

    def __init__(self) -> None:
        super().__init__()
        self.maxlevel = 3
        self.maxtuple = self.maxlist = self.maxarray = self.maxdict = 6
        self.maxset = self.maxfrozenset = self.maxdeque = 6
        self.maxstring = 80
        self.maxlong = 40
        self.maxother = 80

    def repr_instance(self, x: Any, level: int) -> str:
        """Any other object: its own ``repr``, abridged, or a placeholder if that fails."""
        try:
            s = builtins.repr(x)
        except Exception:  # noqa: BLE001 - whatever a hostile __repr__ raises
            return _placeholder(x)
        if not isinstance(s, str):
            return _placeholder(x)
        if len(s) > self.maxother:
            head = (self.maxother - 3) // 2
            tail = self.maxother - 3 - head
            s = s[:head] + "..." + s[len(s) - tail:]
        return s


_REPR = _ShortRepr()


def show_value(value: Any) -> str:
    """A short rendering of any value that cannot fail: at most :data:`MAX_SHOWN_CHARS` long.

    Nested containers are cut a few levels down, long strings, numbers and sequences are
    abridged, and a value whose ``repr`` raises (or recurses without end) is shown as
    ``<unprintable TYPE>``.
    """
    try:
        shown = _REPR.repr(value)
    except Exception:  # noqa: BLE001 - a worker must survive any value (RecursionError too)
        return _placeholder(value)
    if len(shown) > MAX_SHOWN_CHARS:
        shown = shown[: MAX_SHOWN_CHARS - 3] + "..."
    return shown


def _placeholder(value: Any) -> str:
    name = getattr(type(value), "__name__", None)
    if not isinstance(name, str):
        name = "object"
    return f"<unprintable {name[:40]}>"


class TariffmonError(Exception):
    """Base of every error raised by the ``tariffmon`` package."""


class ContractError(TariffmonError):
    """A message failed to decode or validate.

    ``field`` names the offending field (``"$"`` for the whole message), ``value`` is the value
    found and ``rule`` the rule it broke; the message text names all three so that a dead letter
    explains itself.  The value is shown abridged (:func:`show_value`), so building the error
    never fails and stays cheap whatever the value.
    """

    def __init__(self, field: str, value: Any, rule: str, *, reason: str = "invalid") -> None:
        super().__init__(f"{field}={show_value(value)}: {rule}")
        self.field = field
        self.value = value
        self.rule = rule
        #: a short, bounded reason code (used as a metric label and in dead letters)
        self.reason = reason


class ConfigError(TariffmonError):
    """A setting is missing or invalid; the message names the setting and the reason.

    ``setting`` is a dotted setting (``metrics.worker_port``), a variable
    (``TARIFFMON_CONFIG``), a command-line option (``--out``) or argument (``FILE``); the
    message calls it a setting, an option or an argument accordingly.
    """

    def __init__(self, setting: str, reason: str) -> None:
        if setting.startswith("-"):
            kind = "option"
        elif setting.isupper() and not setting.startswith("TARIFFMON_"):
            kind = "argument"
        else:
            kind = "setting"
        super().__init__(f"{kind} {setting}: {reason}")
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
