"""Dead letters: an input that cannot be used is kept, with where it came from and why."""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

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
    """Build the dead-letter record for one input (logging it is :class:`DeadLetterLog`'s)."""
    raw = value or b""
    kept = raw[:KEPT_BYTES]
    try:
        text: str | None = kept[:_TEXT_EXCERPT].decode("utf-8")
    except UnicodeDecodeError:
        text = None
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


@dataclass(slots=True)
class _ReasonTally:
    """The dead letters of one (input topic, reason) since the last summary."""

    count: int = 0
    #: ``partition@offset: error`` of the first one, logged in full when it arrived
    first: str = ""


class DeadLetterLog:
    """Log dead letters as a summary, never one line per record.

    A hostile or misconfigured producer can send hundreds of thousands of bad records a
    minute; a line for each buried everything else in the log (98,588 lines in two minutes
    for one replay into live topics).  So the first dead letter of each (topic, reason) in an
    interval is logged at once, with its coordinates and error, and the rest are counted and
    summarised in one line per interval: ``count`` per reason, with that first example.  The
    metrics count every one of them (``tariffmon_dead_letters_total``).
    """

    def __init__(
        self,
        stage: str,
        interval_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stage = stage
        self._interval_s = interval_s
        self._clock = clock
        self._since = clock()
        self._tallies: dict[tuple[str, str], _ReasonTally] = {}

    def note(self, topic: str, partition: int, offset: int, reason: str, error: str) -> None:
        """Record one dead letter of ``topic[partition]@offset`` with ``reason``."""
        self.tick()
        tally = self._tallies.get((topic, reason))
        if tally is None:
            where = f"[{partition}]@{offset}"
            tally = self._tallies[(topic, reason)] = _ReasonTally(
                first=f"{where}: {printable(error[:300])}"
            )
            log.warning(
                "dead letter from %s%s (%s): %s (further %s dead letters from %s are "
                "summarised every %g s)", topic, where, reason, printable(error[:300]),
                reason, topic, self._interval_s,
            )
        tally.count += 1

    def tick(self) -> None:
        """Write the summary if the interval is over (called on every batch, too)."""
        if self._clock() - self._since >= self._interval_s:
            self.flush()

    def flush(self) -> None:
        """Write the summary of what is not yet summarised, and start a new interval."""
        elapsed = self._clock() - self._since
        repeats = {k: t for k, t in self._tallies.items() if t.count > 1}
        if repeats:
            total = sum(t.count for t in repeats.values())
            parts = "; ".join(
                f"{topic} {reason}: {t.count:,} (first {t.first})"
                for (topic, reason), t in sorted(repeats.items(), key=lambda kv: -kv[1].count)
            )
            log.warning(
                "%s: %s dead letters in the last %.0f s: %s", self._stage, f"{total:,}",
                elapsed, parts,
            )
        self._tallies.clear()
        self._since = self._clock()
