"""Dead letters: an input that cannot be used is kept, with where it came from and why."""

from __future__ import annotations

import base64
import logging

from tariffmon.contract import MAX_MESSAGE_BYTES, DeadLetter

log = logging.getLogger(__name__)

#: the longest readable excerpt kept beside the original bytes
_TEXT_EXCERPT = 2_000
#: the most original bytes kept: their base64 (4/3 as long) plus the excerpt, the error and
#: the key must stay within MAX_MESSAGE_BYTES, or the dead letter could not be decoded itself
KEPT_BYTES = MAX_MESSAGE_BYTES // 2


def dead_letter(
    *,
    topic: str,
    partition: int,
    offset: int,
    timestamp_ms: int,
    key: bytes | None,
    value: bytes | None,
    reason: str,
    error: str,
    stage: str,
) -> DeadLetter:
    """Build the dead-letter record for one input and log it with its coordinates."""
    raw = value or b""
    kept = raw[:KEPT_BYTES]
    try:
        text: str | None = kept[:_TEXT_EXCERPT].decode("utf-8")
    except UnicodeDecodeError:
        text = None
    log.warning(
        "dead letter from %s[%d]@%d (%s): %s", topic, partition, offset, reason,
        printable(error[:300]),
    )
    return DeadLetter(
        topic=topic,
        partition=partition,
        offset=offset,
        ts=max(0, timestamp_ms),
        reason=reason,
        error=error[:4_000],
        stage=stage,
        value_b64=base64.b64encode(kept).decode("ascii"),
        value_size=len(raw),
        key_b64=None if key is None else base64.b64encode(key[:3_000]).decode("ascii"),
        value_text=text,
    )


def printable(text: str) -> str:
    """``text`` with control and other unprintable characters escaped (``\\n``, ``\\x00``).

    Errors quote the input (a field name, a value), and hostile input must not be able to
    break a log line in two or forge one.
    """
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
