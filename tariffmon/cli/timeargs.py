"""Times given on the command line (``--from``, ``--to``, ``--since``, ``--ts`` ...)."""

from __future__ import annotations

from datetime import UTC, datetime

from tariffmon.errors import ConfigError


def parse_time(option: str, text: str) -> int:
    """Epoch milliseconds from epoch ms or ISO-8601 (UTC if no zone).

    Raises ConfigError naming the option and the value.
    """
    t = text.strip()
    if t.lstrip("-").isdigit():
        return int(t)
    try:
        when = datetime.fromisoformat(t.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(
            option, f"{text!r} is not a time: use epoch ms or ISO-8601 like 2025-04-09T17:00Z"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp() * 1000)
