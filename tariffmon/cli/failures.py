"""What the command line says when a command fails: one line and an exit status.

:func:`describe` is used by :func:`tariffmon.cli.main.main` only, so every command reports
its failures the same way: the cause, and the setting or option that changes it.  The
package's own errors already say both; the few foreign errors a user can cause (a taken
port, an unreachable Kafka cluster, a missing or unwritable file) are translated here, and
anything else is named as unexpected, with ``--debug`` for its traceback.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator

from tariffmon.errors import TariffmonError

#: exit status of a usage or settings error, and of any failure the line explains
EXIT_USAGE = 2
#: exit status of a failure not foreseen
EXIT_UNEXPECTED = 1

_PORT_HINT = (
    "choose a free port with --metrics-port or the setting metrics.worker_port / "
    "metrics.producer_port (TARIFFMON_METRICS__WORKER_PORT, TARIFFMON_METRICS__PRODUCER_PORT)"
)
_KAFKA_HINT = (
    "check the setting kafka.bootstrap_servers (TARIFFMON_KAFKA__BOOTSTRAP_SERVERS, or "
    "--bootstrap where the command has it) and that the cluster runs (tariffmon kafka start "
    "for the local one)"
)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception and those it was raised from or during, outermost first."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _bootstrap() -> str:
    """The configured bootstrap address, if the settings load (they may be what failed)."""
    try:
        from tariffmon.settings import load_settings

        return load_settings().kafka.bootstrap_servers
    except Exception:  # noqa: BLE001 - only a hint: the failure itself is being reported
        return "the configured address"


def describe(exc: BaseException) -> tuple[str, int]:
    """The one-line message and the exit status for a failure of a command."""
    for link in _chain(exc):
        if isinstance(link, TariffmonError):
            return _one_line(str(link)), EXIT_USAGE
        if isinstance(link, OSError) and link.errno == errno.EADDRINUSE:
            return f"address already in use ({_one_line(str(link))}): {_PORT_HINT}", EXIT_USAGE
        if type(link).__module__.split(".")[0] == "kafka":
            return (f"Kafka at {_bootstrap()}: {_one_line(str(link)) or type(link).__name__}; "
                    f"{_KAFKA_HINT}", EXIT_USAGE)
        if isinstance(link, OSError) and link.filename is not None:
            return f"{link.strerror or link}: {link.filename}", EXIT_USAGE
    return (f"unexpected {type(exc).__name__}: {_one_line(str(exc))} "
            "(run with --debug for the traceback)", EXIT_UNEXPECTED)
