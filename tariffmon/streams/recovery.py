"""Rebuild a partition's state after a restart or a rebalance by reading its inputs back.

The core's state is a function of the input events it has processed, so it need not be
checkpointed: for a partition it takes over, the worker re-reads the ticks and requests
before the group's committed offsets (already processed, their outputs already published)
and feeds them to a fresh engine with outputs suppressed.

How far back to read is the engine's answer, not a guess: each topic is read on its own,
from a start time per topic, up to its own committed offset, so neither the order in which
the two topics arrived nor where each was committed matters.  After a replay the engine says
which ticks and requests it depends on (:meth:`ReactionEngine.history_needed`): the ticks of
every baseline and pending p0 (days back over a closed market), every request that may still
be pending, and the dedupe and attribution memory.  When that reaches before what was read,
the read starts earlier and the replay is redone, until it is enough or the topic's start is
reached.  Runs in a thread (kafka-python is blocking) so Faust's event loop keeps
heart-beating.
"""

from __future__ import annotations

import heapq
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass

from kafka import TopicPartition

from tariffmon.contract import MAX_TS_MS, MIN_TS_MS, ClassifiedHeadline
from tariffmon.core.engine import initial_history_from
from tariffmon.errors import ContractError
from tariffmon.settings import Settings
from tariffmon.streams.errors import RecoveryError
from tariffmon.streams.records import InRecord
from tariffmon.streams.stages import ReactionStage
from tariffmon.topic_reader import (
    beginning_offsets,
    committed_offsets,
    offsets_at,
    read_offsets,
    read_tail,
)

log = logging.getLogger(__name__)

#: reads before giving up on finding enough history (each reaches back at least twice as far)
MAX_ROUNDS = 24
_DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class Rebuilt:
    """What a rebuild read and how."""

    records: int
    rounds: int
    stop: dict[str, int]


def rebuild_partition(
    settings: Settings,
    stage: ReactionStage,
    partition: int,
    processed: Mapping[str, int] | None = None,
) -> Rebuilt:
    """Rebuild ``stage``'s engine for ``partition`` from its ticks and requests on Kafka.

    Reads each topic up to the larger of the group's committed offset and ``processed``
    (per topic name: the offset after the last record this worker processed, when it
    rebuilds a partition it already held).
    """
    topics = settings.topics
    tps = {name: TopicPartition(name, partition) for name in (topics.ticks, topics.requests)}
    committed = committed_offsets(settings, settings.worker.app_id, tps.values())
    stop = {name: max(committed[tp], (processed or {}).get(name, 0)) for name, tp in tps.items()}
    if not any(stop.values()):
        stage.recover(partition, [])
        return Rebuilt(0, 0, stop)
    latest = _latest_guess(settings, tps[topics.ticks], stop[topics.ticks])
    ticks_from, requests_from = initial_history_from(stage.params, latest)
    records: list[InRecord] = []
    for rounds in range(1, MAX_ROUNDS + 1):
        reads = {
            topics.ticks: _read_since(settings, tps[topics.ticks], ticks_from,
                                      stop[topics.ticks]),
            topics.requests: _read_since(settings, tps[topics.requests], requests_from,
                                         stop[topics.requests]),
        }
        records = _merged(reads[topics.requests][0], reads[topics.ticks][0])
        engine = stage.recover(partition, records)
        need_ticks, need_requests, complete = engine.history_needed()
        ticks_done = reads[topics.ticks][1] or (
            need_ticks is not None and need_ticks >= ticks_from and complete)
        requests_done = reads[topics.requests][1] or (
            need_requests is not None and need_requests >= requests_from)
        if ticks_done and requests_done:
            log.info("partition %d: rebuilt from %d records (ticks since %d, requests since "
                     "%d, up to %s) in %d read(s)", partition, len(records), ticks_from,
                     requests_from, stop, rounds)
            return Rebuilt(len(records), rounds, stop)
        ticks_from = _further(ticks_from, need_ticks, latest, ticks_done)
        requests_from = _further(requests_from, need_requests, latest, requests_done)
    raise RecoveryError(f"partition {partition}: no sufficient history found in "
                        f"{MAX_ROUNDS} reads (ticks since {ticks_from})")


def _further(current: int, need: int | None, latest: int, done: bool) -> int:
    """An earlier start: what the engine asked for, and at least twice as far back."""
    if done:
        return current
    doubled = current - max(_DAY_MS, latest - current)
    return max(0, min(doubled, need if need is not None else 0))


def _latest_guess(settings: Settings, tp: TopicPartition, stop: int) -> int:
    """The event time of the last processed tick record: where the look-back starts.

    Only a first guess (that record may be a dead letter with any timestamp); the engine's
    answer after the first replay decides.
    """
    if stop > 0:
        for m in read_offsets(settings, tp, stop - 1, stop):
            if MIN_TS_MS <= m.timestamp <= MAX_TS_MS:
                return int(m.timestamp)
    return min(int(time.time() * 1000), MAX_TS_MS)


def _read_since(settings: Settings, tp: TopicPartition, from_ts: int, stop: int
                ) -> tuple[list[InRecord], bool]:
    """The records of ``tp`` before ``stop`` from the first at or after ``from_ts``.

    Also says whether that read starts at the partition's beginning (nothing older exists).
    """
    if stop <= 0:
        return [], True
    start = min(offsets_at(settings, [tp], from_ts)[tp], stop)
    from_start = start == 0 or from_ts <= 0 or _nothing_before(settings, tp, start)
    return [InRecord.of(m) for m in read_offsets(settings, tp, start, stop)], from_start


def _nothing_before(settings: Settings, tp: TopicPartition, start: int) -> bool:
    return beginning_offsets(settings, [tp])[tp] >= start


def _merged(requests: list[InRecord], ticks: list[InRecord]) -> list[InRecord]:
    # a merge (not a sort) keeps each topic's own order, so a tick that arrived out of order
    # is rejected again exactly as it was the first time; requests go first at equal times
    return list(heapq.merge(requests, ticks, key=lambda r: r.timestamp_ms))


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

