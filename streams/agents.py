"""The Faust agents: move records between Kafka and the stages, nothing more.

``classify``: headlines topic -> classified topic, reaction-requests topic (key = symbol).
``react``: ticks + reaction-requests (co-partitioned by symbol) -> reactions, alerts.
Both dead-letter what they cannot use.  Outputs are sent before the input is acknowledged,
and Faust flushes the producer before it commits offsets: at-least-once, with stable keys so a
repeat is the same record again, never a different answer.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

import faust
from kafka.errors import KafkaError

from streams.errors import StreamsError
from streams.recovery import read_processed, read_recent_classified, read_ticks
from streams.stages import HeadlineStage, InRecord, LateRequest, OutRecord, ReactionStage
from tariffmon.contract import Tick
from tariffmon.metrics.worker import WorkerMetrics
from tariffmon.settings import Settings

log = logging.getLogger(__name__)

#: Largest batch handed to the core at once, and how long to wait to fill it: large enough
#: to amortise the per-batch numpy calls, short enough to keep latency in milliseconds.
BATCH_MAX = 2_000
BATCH_WITHIN_S = 0.005
RECOVERY_ATTEMPTS = 8
#: how often a late request's read reaches further back for a market closed at its t0
LATE_READ_ATTEMPTS = 4
#: read-back starts this much before a late request's window, so that a p0 a little
#: before t0 still has its whole baseline without a second read
LATE_READ_MARGIN_MS = 3_600_000
#: exit status of a worker that stopped rather than commit offsets it could not process
EXIT_PROCESSING_FAILED = 70


def _reaches_back(ticks: list[Tick], t0: int, start: int) -> bool:
    """Whether ``ticks`` hold the lookback window before the last tick at or before t0."""
    before = [t.ts for t in ticks if t.ts <= t0]
    return bool(before) and bool(ticks) and ticks[0].ts <= before[-1] - (t0 - start)


def _record(event: Any) -> InRecord:
    m = event.message
    return InRecord(
        topic=m.topic or "", partition=m.partition or 0, offset=m.offset or 0,
        timestamp_ms=round(m.timestamp * 1000) if m.timestamp else 0,
        key=m.key, value=m.value,
    )


class Pipeline:
    """Registers the agents on ``app`` and owns the stages they drive."""

    def __init__(
        self,
        settings: Settings,
        app: faust.App,
        metrics: WorkerMetrics | None = None,
        *,
        restore_clusters: bool = True,
    ) -> None:
        self.settings = settings
        self.app = app
        self.metrics = metrics
        self.headline_stage = HeadlineStage(settings, metrics)
        self.reaction_stage = ReactionStage(settings, metrics)
        t = settings.topics
        self._out = {
            name: app.topic(name, key_type=bytes, value_type=bytes, internal=False)
            for name in (t.classified, t.requests, t.reactions, t.alerts, t.deadletter)
        }
        self.headlines_topic = app.topic(t.headlines, key_type=bytes, value_type=bytes)
        self.symbol_topics = app.topic(t.ticks, t.requests, key_type=bytes, value_type=bytes)
        #: re-learn story clusters from the classified topic before the first headline
        self._clusters_restored = not restore_clusters
        self._lookback_ms = self.reaction_stage.params.retention_ms + 3_600_000
        # agents yield their output records and a sink publishes them: Faust runs the sink
        # before it takes the next event, so an input is acknowledged only after its
        # outputs are queued, and it flushes the producer before committing offsets
        self.classify_agent = app.agent(self.headlines_topic, name="classify",
                                        sink=[self._send])(self._classify)
        self.react_agent = app.agent(self.symbol_topics, name="react",
                                     sink=[self._send])(self._react)
        app.on_partitions_revoked.connect(self._on_revoked)  # type: ignore[arg-type]

    async def _send(self, records: Sequence[OutRecord]) -> None:
        for o in records:
            # Faust turns seconds into ms by truncation; half a millisecond keeps it exact
            await self._out[o.topic].send(
                key=o.key.encode(), value=o.value, timestamp=(o.timestamp_ms + 0.5) / 1000.0
            )

    async def _classify(self, stream: Any) -> AsyncIterator[list[OutRecord]]:
        async for event in stream.events():
            if not self._clusters_restored:
                recent = await asyncio.get_running_loop().run_in_executor(
                    None, read_recent_classified, self.settings
                )
                log.info("re-learnt %d story clusters", self.headline_stage.restore(recent))
                self._clusters_restored = True
            rec = _record(event)
            try:
                result = self.headline_stage.process(rec)
            except Exception as exc:  # a bug must not stop the headline flow: keep the input
                log.exception("classifying %s[%d]@%d failed", rec.topic, rec.partition,
                              rec.offset)
                result = self.headline_stage.internal_error(rec, exc)
            yield result.records

    async def _react(self, stream: Any) -> AsyncIterator[list[OutRecord]]:
        async for events in stream.take_events(BATCH_MAX, within=BATCH_WITHIN_S):
            records = [_record(e) for e in events]
            try:
                for p in sorted({r.partition for r in records}):
                    if not self.reaction_stage.has_partition(p):
                        await self._recover(p)
                result = self.reaction_stage.process_batch(records)
                if result.late:
                    result.records.extend(await self._measure_late(result.late))
            except Exception:
                # Without its state the engine would emit wrong answers, and letting Faust
                # carry on would commit these offsets unprocessed: stop hard instead, so a
                # restarted worker rebuilds the state and redoes this batch.
                first = records[0]
                log.critical("processing from %s[%d]@%d failed; exiting without committing",
                             first.topic, first.partition, first.offset, exc_info=True)
                os._exit(EXIT_PROCESSING_FAILED)
            yield result.records

    async def _measure_late(self, lates: list[LateRequest]) -> list[OutRecord]:
        """Measure late requests on ticks read back from Kafka.

        One read per partition and symbol covers all of a batch's late requests (a worker
        catching up on a backlog meets them in bursts); a request whose market was closed
        before its t0 for longer than that read reaches back gets a read of its own.
        """
        groups: dict[tuple[int, str], list[LateRequest]] = {}
        for late in lates:
            groups.setdefault((late.record.partition, late.request.symbol), []).append(late)
        out: list[OutRecord] = []
        loop = asyncio.get_running_loop()
        for (partition, symbol), group in groups.items():
            starts = [self.reaction_stage.late_window(late.request)[0] for late in group]
            horizon = self.reaction_stage.late_window(group[0].request)[1]
            ticks = await loop.run_in_executor(
                None, read_ticks, self.settings, partition, symbol,
                min(starts) - LATE_READ_MARGIN_MS, max(late.request.t0 for late in group),
                horizon,
            )
            for late, start in zip(group, starts, strict=True):
                mine = [t for t in ticks if t.ts >= start - LATE_READ_MARGIN_MS]
                if not _reaches_back(mine, late.request.t0, start):
                    mine = await self._read_further_back(late, start)
                log.info("late headline %s for %s measured on %d ticks read back from Kafka",
                         late.request.headline_id, symbol, len(mine))
                out.extend(self.reaction_stage.measure_late(late, mine).records)
        return out

    async def _read_further_back(self, late: LateRequest, start: int) -> list[Tick]:
        """A closed market's p0 and baseline lie before the close, maybe days back."""
        req = late.request
        lookback = req.t0 - start
        from_ts = start - LATE_READ_MARGIN_MS
        ticks: list[Tick] = []
        loop = asyncio.get_running_loop()
        for _ in range(LATE_READ_ATTEMPTS):
            ticks = await loop.run_in_executor(
                None, read_ticks, self.settings, late.record.partition, req.symbol, from_ts,
                req.t0, self.reaction_stage.params.max_horizon_ms,
            )
            before = [t.ts for t in ticks if t.ts <= req.t0]
            if before and before[-1] - lookback >= from_ts:
                break
            from_ts = (before[-1] - lookback if before else from_ts) - 86_400_000
        return ticks

    async def _recover(self, partition: int) -> None:
        started = time.monotonic()
        loop = asyncio.get_running_loop()
        for attempt in range(1, RECOVERY_ATTEMPTS + 1):
            try:
                history = await loop.run_in_executor(
                    None, read_processed, self.settings, partition, self._lookback_ms
                )
                break
            except (KafkaError, StreamsError) as exc:
                if attempt == RECOVERY_ATTEMPTS:
                    raise
                log.warning("partition %d: reading history failed (%s), retrying", partition,
                            exc)
                await asyncio.sleep(min(30.0, 0.5 * 2**attempt))
        self.reaction_stage.recover(partition, history)
        log.warning("partition %d: state rebuilt from %d records in %.2fs", partition,
                    len(history), time.monotonic() - started)

    async def _on_revoked(self, sender: Any, revoked: Any, **_: Any) -> None:
        mine = {self.settings.topics.ticks, self.settings.topics.requests}
        for tp in revoked:
            if tp.topic in mine:
                self.reaction_stage.drop_partition(tp.partition)
