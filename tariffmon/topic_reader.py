"""Reading topics without a consumer group: the tail of each partition, or a bounded range.

Producers resume from what a topic already holds (the newest tick per symbol, the ids of
recent headlines), the worker re-learns recent story clusters, rebuilds a partition's state
and reads ticks back for late headlines, and ``tariffmon record`` copies topics to files; all
assign partitions explicitly, commit nothing, read only committed data and stop at the end
offsets seen when they started (or when idle).  This is the one group-less reader.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from kafka import KafkaConsumer, TopicPartition

from tariffmon.errors import BrokerError, ConfigError
from tariffmon.kafkaclient import client_config
from tariffmon.settings import Settings

log = logging.getLogger(__name__)


#: a read of an offset range that gets no record this many polls in a row has stalled
_MAX_EMPTY_POLLS = 20
_POLL_MS = 500


def _consumer(settings: Settings, group_id: str | None = None) -> Any:
    return KafkaConsumer(
        **client_config(settings.kafka),
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        # only committed data: an aborted or in-flight transaction is never "already sent"
        isolation_level="read_committed",
        # a reader must never create a topic (with the broker's default partition count)
        allow_auto_create_topics=False,
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )


def committed_offsets(
    settings: Settings, group_id: str, tps: Iterable[TopicPartition]
) -> dict[TopicPartition, int]:
    """The offsets ``group_id`` has committed (0 where it committed nothing)."""
    consumer = _consumer(settings, group_id)
    try:
        return {tp: consumer.committed(tp) or 0 for tp in tps}
    finally:
        consumer.close()


def offsets_at(
    settings: Settings, tps: Iterable[TopicPartition], ts_ms: int
) -> dict[TopicPartition, int]:
    """Per partition, the first offset whose timestamp is at or after ``ts_ms`` (else the end).

    Every record before the returned offset has a timestamp before ``ts_ms`` (that is what
    Kafka's time index answers), whatever the order of the records after it.  Asked of a
    fresh consumer: one that has been assigned and seeking around answered None for a
    partition with matching records (kafka-python 3.0).
    """
    parts = list(tps)
    consumer = _consumer(settings)
    try:
        found = consumer.offsets_for_times(dict.fromkeys(parts, max(0, ts_ms)))
        end = consumer.end_offsets(parts)
    finally:
        consumer.close()
    return {tp: end[tp] if found.get(tp) is None else found[tp].offset for tp in parts}


def beginning_offsets(
    settings: Settings, tps: Iterable[TopicPartition]
) -> dict[TopicPartition, int]:
    """The first offset still held of each partition."""
    consumer = _consumer(settings)
    try:
        return dict(consumer.beginning_offsets(list(tps)))
    finally:
        consumer.close()


def end_offsets(settings: Settings, tps: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
    """The current end offset of each partition."""
    consumer = _consumer(settings)
    try:
        return dict(consumer.end_offsets(list(tps)))
    finally:
        consumer.close()


def read_offsets(settings: Settings, tp: TopicPartition, start: int, stop: int) -> Iterator[Any]:
    """The records of ``tp`` with offsets in ``[start, stop)``, in offset order.

    Offsets of aborted transactions and control records leave holes, so the read ends at the
    first record at or past ``stop`` or when the position reaches it.  Raises
    :class:`~tariffmon.errors.BrokerError` when the range cannot be read.
    """
    if start >= stop:
        return
    consumer = _consumer(settings)
    try:
        consumer.assign([tp])
        consumer.seek(tp, start)
        empty = 0
        while consumer.position(tp) < stop:
            batch = consumer.poll(timeout_ms=_POLL_MS, max_records=5_000).get(tp, [])
            if not batch:
                empty += 1
                if empty >= _MAX_EMPTY_POLLS:
                    raise BrokerError(
                        f"{tp.topic}[{tp.partition}]: stuck at offset {consumer.position(tp)} "
                        f"while reading up to {stop}"
                    )
                continue
            empty = 0
            for m in batch:
                if m.offset >= stop:
                    return
                yield m
    finally:
        consumer.close()


def _partitions(consumer: Any, topic: str, timeout_s: float) -> list[TopicPartition]:
    deadline = time.monotonic() + timeout_s
    while True:
        parts = consumer.partitions_for_topic(topic)
        if parts:
            return [TopicPartition(topic, p) for p in sorted(parts)]
        if time.monotonic() >= deadline:
            return []
        time.sleep(0.2)


def topic_partitions(
    settings: Settings, topics: Iterable[str], timeout_s: float = 10.0
) -> list[TopicPartition]:
    """Every partition of ``topics`` (a topic that does not exist within ``timeout_s``: none)."""
    consumer = _consumer(settings)
    try:
        return [tp for topic in topics for tp in _partitions(consumer, topic, timeout_s)]
    finally:
        consumer.close()


def read_tail(
    settings: Settings, topic: str, per_partition: int = 200, timeout_s: float = 30.0
) -> list[Any]:
    """The last ``per_partition`` records of every partition of ``topic`` (oldest first each).

    A topic that does not exist yet has no tail: returns ``[]``.
    """
    consumer = _consumer(settings)
    try:
        parts = _partitions(consumer, topic, min(timeout_s, 5.0))
        if not parts:
            return []
        consumer.assign(parts)
        begin = consumer.beginning_offsets(parts)
        end = consumer.end_offsets(parts)
        for tp in parts:
            consumer.seek(tp, max(begin[tp], end[tp] - per_partition))
        return list(_until_end(consumer, end, timeout_s, idle_timeout_s=None))
    finally:
        consumer.close()


def read_range(
    settings: Settings,
    topics: Iterable[str],
    *,
    from_beginning: bool = True,
    follow: bool = False,
    idle_timeout_s: float | None = 5.0,
    max_messages: int | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    timeout_s: float = 30.0,
) -> Iterator[Any]:
    """Records of ``topics``: from the beginning (or the end) up to the end offsets at start.

    With ``follow`` it keeps reading new records until ``idle_timeout_s`` passes with none
    (``None``: until ``should_stop``).  ``max_messages`` bounds the count.
    """
    consumer = _consumer(settings)
    try:
        parts: list[TopicPartition] = []
        for topic in topics:
            found = _partitions(consumer, topic, min(timeout_s, 10.0))
            if not found:
                raise ConfigError("topics", f"topic {topic!r} does not exist")
            parts.extend(found)
        consumer.assign(parts)
        if from_beginning:
            consumer.seek_to_beginning(*parts)
        else:
            consumer.seek_to_end(*parts)
            for tp in parts:
                consumer.position(tp)  # resolve "end" now, not at the first poll
        end = None if follow else consumer.end_offsets(parts)
        records = _until_end(consumer, end, timeout_s, idle_timeout_s, should_stop)
        for n, rec in enumerate(records, start=1):
            yield rec
            if max_messages is not None and n >= max_messages:
                return
    finally:
        consumer.close()


def _until_end(
    consumer: Any,
    end: dict[TopicPartition, int] | None,
    timeout_s: float,
    idle_timeout_s: float | None,
    should_stop: Callable[[], bool] = lambda: False,
) -> Iterator[Any]:
    """Poll until every partition reached ``end`` (or, without ``end``, until idle/stopped)."""
    deadline = time.monotonic() + timeout_s
    last_data = time.monotonic()
    while not should_stop():
        if end is not None and all(consumer.position(tp) >= off for tp, off in end.items()):
            return
        batch = consumer.poll(timeout_ms=200)
        now = time.monotonic()
        if batch:
            last_data = now
            deadline = now + timeout_s
            for tp in sorted(batch, key=lambda t: (t.topic, t.partition)):
                yield from batch[tp]
            continue
        if end is None:
            if idle_timeout_s is not None and now - last_data >= idle_timeout_s:
                return
        elif now >= deadline:
            missing = {f"{tp.topic}[{tp.partition}]": off - consumer.position(tp)
                       for tp, off in end.items() if consumer.position(tp) < off}
            raise BrokerError(f"reading stalled for {timeout_s:g} s; records left: {missing}")
