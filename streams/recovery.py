"""Rebuild state after a restart or a rebalance by reading the input topics back.

The core's state is a function of the input events of the last retention window, so it need
not be checkpointed: the worker re-reads, for a partition it takes over, the records up to the
group's committed offsets (already processed, their outputs already published) and feeds them
to a fresh engine with outputs suppressed.  Runs in a thread (kafka-python is blocking) so
Faust's event loop keeps heart-beating.
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Iterator

from kafka import KafkaConsumer, TopicPartition

from streams.errors import RecoveryError
from streams.stages import InRecord
from tariffmon.contract import ClassifiedHeadline, Limits, Tick
from tariffmon.errors import ContractError
from tariffmon.kafkaclient import client_config
from tariffmon.settings import Settings
from tariffmon.topic_reader import read_tail

log = logging.getLogger(__name__)

_POLL_MS = 500
_MAX_EMPTY_POLLS = 20


def _consumer(settings: Settings, group_id: str | None) -> KafkaConsumer:
    return KafkaConsumer(
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=4 * 1024 * 1024,
        **client_config(settings.kafka),
    )


def _read_range(consumer: KafkaConsumer, tp: TopicPartition, start: int, stop: int
                ) -> Iterator[InRecord]:
    """Records of ``tp`` with offsets in ``[start, stop)``; raises if they cannot be read."""
    if start >= stop:
        return
    consumer.assign([tp])
    consumer.seek(tp, start)
    position, empty = start, 0
    while position < stop:
        batch = consumer.poll(timeout_ms=_POLL_MS, max_records=5_000).get(tp, [])
        if not batch:
            empty += 1
            if empty >= _MAX_EMPTY_POLLS:
                raise RecoveryError(f"{tp.topic}[{tp.partition}]: stuck at offset {position} "
                                    f"while reading back to {stop}")
            continue
        empty = 0
        for m in batch:
            if m.offset >= stop:
                return
            position = m.offset + 1
            yield InRecord(tp.topic, tp.partition, m.offset, m.timestamp, m.key, m.value)


def read_processed(settings: Settings, partition: int, lookback_ms: int) -> list[InRecord]:
    """The already-processed ticks and requests of one symbol partition, in event-time order.

    "Already processed" is everything before the worker group's committed offsets; reading
    starts ``lookback_ms`` before the newest of those records' timestamps.
    """
    topics = settings.topics
    tps = [TopicPartition(topics.requests, partition), TopicPartition(topics.ticks, partition)]
    consumer = _consumer(settings, settings.worker.app_id)
    try:
        committed = {tp: consumer.committed(tp) for tp in tps}
        if all(c is None or c == 0 for c in committed.values()):
            return []
        newest = 0
        for tp, c in committed.items():
            if c:
                last = list(_read_range(consumer, tp, c - 1, c))
                if last:
                    newest = max(newest, last[0].timestamp_ms)
        starts = _offsets_at(settings, tps, max(0, newest - lookback_ms))
        per_topic: list[list[InRecord]] = []
        for tp in tps:
            stop = committed[tp] or 0
            start = min(starts[tp], stop)
            per_topic.append(list(_read_range(consumer, tp, start, stop)))
    finally:
        consumer.close()
    # a merge (not a sort) keeps each topic's own order, so a tick that arrived out of order
    # is rejected again exactly as it was the first time; requests go first at equal times
    records = list(heapq.merge(*per_topic, key=lambda r: r.timestamp_ms))
    log.info("recovered %d records of partition %d (committed %s)", len(records), partition,
             {f"{tp.topic}[{tp.partition}]": c for tp, c in committed.items()})
    return records


def _offsets_at(settings: Settings, tps: list[TopicPartition], ts_ms: int
                ) -> dict[TopicPartition, int]:
    """The first offset at or after ``ts_ms`` per partition (the end when there is none).

    Asked of a fresh consumer: one that has been assigned and seeking around answered None
    for a partition with matching records (kafka-python 3.0).
    """
    consumer = _consumer(settings, None)
    try:
        found = consumer.offsets_for_times(dict.fromkeys(tps, ts_ms))
        end = consumer.end_offsets(tps)
    finally:
        consumer.close()
    return {tp: end[tp] if found.get(tp) is None else found[tp].offset for tp in tps}


def read_ticks(
    settings: Settings, partition: int, symbol: str, from_ts: int, t0: int, horizon_ms: int
) -> list[Tick]:
    """``symbol``'s ticks on one ticks partition, from ``from_ts`` to past ``t0``'s horizon.

    Reads from the first record at or after ``from_ts`` until a tick of ``symbol`` lies more
    than ``horizon_ms`` beyond the first tick after ``t0`` (so a gap reaction over a closed
    market is covered too), or up to the partition's end.  Undecodable records are skipped:
    the live path dead-lettered them already.
    """
    tp = TopicPartition(settings.topics.ticks, partition)
    start = _offsets_at(settings, [tp], from_ts)[tp]
    limits = Limits(settings.symbol_names())
    consumer = _consumer(settings, None)
    ticks: list[Tick] = []
    try:
        stop = consumer.end_offsets([tp])[tp]
        first_after: int | None = None
        for rec in _read_range(consumer, tp, start, stop):
            if rec.key != symbol.encode():
                continue
            try:
                tick = Tick.decode(rec.value or b"", limits)
            except ContractError as exc:
                # dead-lettered when the live path first met it; here only noted
                log.debug("read-back skips %s[%d]@%d: %s", rec.topic, rec.partition,
                          rec.offset, exc)
                continue
            ticks.append(tick)
            if first_after is None and tick.ts > t0:
                first_after = tick.ts
            if first_after is not None and tick.ts > first_after + horizon_ms:
                break
    finally:
        consumer.close()
    return ticks


def read_recent_classified(settings: Settings, per_partition: int = 5_000
                           ) -> list[ClassifiedHeadline]:
    """The newest classified headlines, in topic order (to restore story clusters)."""
    out: list[ClassifiedHeadline] = []
    records = read_tail(settings, settings.topics.classified, per_partition)
    for rec in records:
        try:
            out.append(ClassifiedHeadline.decode(rec.value or b""))
        except ContractError as exc:
            log.warning("skipping unreadable %s[%d]@%d: %s", rec.topic, rec.partition,
                        rec.offset, exc)
    if len({rec.partition for rec in records}) > 1:
        # one partition keeps publication order; several only have event time
        out.sort(key=lambda ch: ch.ts)
    return out
