"""Replay recorded-stream files onto the topics, in event-time order, at a chosen speed.

The files are merged by ``(ts, file order, line order)`` (:func:`tariffmon.recorded.merge_events`)
and published by one idempotent producer, so the order of each key is kept on its partition.
``tariffmon replay`` publishes through
:class:`~tariffmon.producers.batch_producer.BatchProducer` (aiokafka's batch API); any
producer with the same face (:class:`ReplayProducer`, e.g. the kafka-python
:class:`~tariffmon.producers.kafka_producer.TopicProducer`) works too.
The Kafka timestamp of each record is its event time; values are re-serialised with sorted
keys (the contract's canonical form), so record -> replay -> record gives identical values.
A value recorded as undecodable bytes (``{"_raw_b64": ...}``, see
:mod:`tariffmon.producers.record`) is published as those exact bytes.

Pacing: at speed ``N`` event time runs ``N`` times faster than the wall clock, measured from
the first replayed event; ``speed=None`` means as fast as Kafka acknowledges.  Before a paced
replay sleeps, what it has published is shipped (:meth:`ReplayProducer.ship`), so no record
waits in a half-full batch for the next event.
"""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from tariffmon.contract import dumps
from tariffmon.errors import RecordedStreamError
from tariffmon.producers.errors import ProducerError
from tariffmon.producers.kafka_producer import StopFlag
from tariffmon.recorded import BadLineCounter, RecordedEvent, merge_events


class ReplayProducer(Protocol):
    """What :func:`replay` needs of a producer (BatchProducer and TopicProducer have it)."""

    @property
    def pending(self) -> int:
        """Records handed over but neither acknowledged nor failed yet."""

    def publish(self, topic: str, key: str | None, value: bytes, ts_ms: int) -> None:
        """Send one record, timestamped ``ts_ms``."""

    def wait_pending_below(self, limit: int) -> None:
        """Block while more than ``limit`` records are unacknowledged."""

    def flush(self) -> None:
        """Block until every record sent is acknowledged or failed."""

    def summary(self) -> dict[str, Any]:
        """``sent``, ``acked``, ``failed`` and ``failures`` by kind."""


log = logging.getLogger(__name__)

RAW_FIELD = "_raw_b64"
#: the most records waiting for acknowledgement before a fast replay pauses (a few full
#: batches per partition: enough to keep every partition's next batch ready)
MAX_PENDING = 50_000


@dataclass(frozen=True, slots=True)
class ReplayResult:
    """What a replay did: events read and sent, and what Kafka acknowledged."""

    read: int
    sent: int
    acked: int
    failed: int
    skipped_streams: dict[str, int]
    interrupted: bool
    elapsed_s: float
    #: lines of the files that were not events, skipped: "stream:reason" -> lines
    bad_lines: dict[str, int] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        """Acknowledged messages per second of wall time."""
        return self.acked / self.elapsed_s if self.elapsed_s > 0 else 0.0


def encode_value(value: dict[str, Any]) -> bytes:
    """The Kafka value for a recorded value: raw bytes if recorded raw, else canonical JSON."""
    raw = value.get(RAW_FIELD)
    if isinstance(raw, str) and len(value) == 1:
        return base64.b64decode(raw)
    return dumps(value)


def count_events(paths: Sequence[str | Path], from_ts: int | None, to_ts: int | None) -> int:
    """How many events a replay of these files and range would publish (for the ETA).

    Bad lines are skipped silently (the replay itself reports them); a file that cannot be
    read to its end raises RecordedStreamError before anything is published.
    """
    return sum(1 for _ in merge_events(paths, from_ts, to_ts, on_bad_line=BadLineCounter(0)))


def replay(
    paths: Sequence[str | Path],
    producer: ReplayProducer,
    topics: dict[str, str],
    *,
    speed: float | None = None,
    from_ts: int | None = None,
    to_ts: int | None = None,
    stop: StopFlag | None = None,
    progress: Callable[[int], None] | None = None,
    sleep: Callable[[float], Any] | None = None,
    events: Iterable[RecordedEvent] | None = None,
) -> ReplayResult:
    """Publish the merged events of ``paths`` to ``topics`` (stream name -> topic).

    Events of streams without a topic are skipped and counted, and so are the files' bad
    lines (logged as a summary at the end).  Stops early, after flushing, when ``stop`` is
    set: it is looked at before the first event, every 256 events and in a paced replay's
    waits (those of ``stop`` itself, not of another ``sleep``); ``interrupted`` in the result
    says whether the replay stopped before its end.  ``progress(n)`` is called with the
    number of newly handled events.  A file that cannot be read to its end raises
    :class:`~tariffmon.errors.RecordedStreamError` after flushing what was sent before it.
    """
    if speed is not None and speed <= 0:
        raise ProducerError(f"speed={speed!r}: must be positive (or None for maximum)")
    stop = stop or StopFlag()
    wait = sleep or stop.wait
    bad = BadLineCounter()
    source = events if events is not None else merge_events(
        paths, from_ts, to_ts, on_bad_line=bad)
    skipped: dict[str, int] = {}
    read = 0
    t_wall0 = time.monotonic()
    t_event0: int | None = None
    pending_progress = 0
    interrupted = False
    # a producer without batches of its own to ship (kafka-python lingers by itself)
    ship: Callable[[], None] = getattr(producer, "ship", None) or (lambda: None)
    publish = producer.publish
    monotonic = time.monotonic
    try:
        for ev in source:
            # a stop is looked for before the first event and then every 256 events
            # (~2 ms at full speed), not at each: an Event's lock per event was ~3% of a
            # replay
            if pending_progress == 0 and stop.is_set():
                interrupted = True
                break
            read += 1
            if speed is not None:
                if t_event0 is None:
                    t_event0 = ev.ts
                due = t_wall0 + (ev.ts - t_event0) / 1000.0 / speed
                delay = due - monotonic()
                if delay > 0.0005:
                    ship()
                    if wait(delay) is True:
                        interrupted = True
                        break  # stop asked while waiting: this event is not sent
            topic = topics.get(ev.stream)
            if topic is None:
                skipped[ev.stream] = skipped.get(ev.stream, 0) + 1
            else:
                value = ev.value
                raw = value.get(RAW_FIELD)
                publish(topic, ev.key,
                        dumps(value) if raw is None else encode_value(value), ev.ts)
            pending_progress += 1
            if pending_progress >= 256:
                # the producer's count is checked per 256 events: it takes a lock
                if producer.pending > MAX_PENDING:
                    producer.wait_pending_below(MAX_PENDING // 2)
                if progress is not None:
                    progress(pending_progress)
                pending_progress = 0
    except RecordedStreamError as exc:
        log.error("replay: stopped after %d events: %s", read, exc)
        raise
    finally:
        # whatever ended the loop, everything handed to the producer is flushed
        producer.flush()
        if progress is not None and pending_progress:
            progress(pending_progress)
    if skipped:
        log.warning("replay: streams without a topic skipped: %s", skipped)
    if bad.total:
        log.warning("replay: %s", bad.summary())
    s = producer.summary()
    return ReplayResult(
        read=read, sent=s["sent"], acked=s["acked"], failed=s["failed"],
        skipped_streams=skipped, interrupted=interrupted,
        elapsed_s=time.monotonic() - t_wall0, bad_lines=dict(bad.counts),
    )
