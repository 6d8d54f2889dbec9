"""The Faust app's two paths: move records between Kafka and the stages, nothing more.

``classify`` (a Faust agent): headlines topic -> classified topic, reaction-requests topic
(key = symbol).  The react path (:class:`tariffmon.streams.bulk.BulkReact`, a service of the
same app, in the same consumer group): ticks + reaction-requests (co-partitioned by symbol)
-> reactions, alerts, a fetch at a time.  Both dead-letter what they cannot use and go on.
Outputs are sent before the input is acknowledged, and the producer is flushed before offsets
are committed: at-least-once, with stable keys so a repeat is the same record again, never a
different answer.

What exits the process: a partition whose state cannot be rebuilt from Kafka, and an agent
that crashed anyway (Faust would otherwise keep the process up with nothing consuming).  A
supervisor restarts it; the uncommitted records are processed again.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any, NoReturn

import faust
from kafka.errors import KafkaError

from tariffmon.assembly import core_setup
from tariffmon.metrics.worker import WorkerMetrics
from tariffmon.settings import Settings
from tariffmon.streams.bulk import EXIT_SEND_FAILED, BulkReact
from tariffmon.streams.errors import StreamsError
from tariffmon.streams.late import LatePath, kafka_tick_source
from tariffmon.streams.records import InRecord, OutRecord
from tariffmon.streams.recovery import read_recent_classified, rebuild_partition
from tariffmon.streams.stages import HeadlineStage, LateRequest, ReactionStage

log = logging.getLogger(__name__)

RECOVERY_ATTEMPTS = 8
#: a batch whose engine keeps failing is split and rebuilt at most this often
MAX_REBUILDS_PER_BATCH = 16
#: exit status of a worker that stopped rather than go on without its state
EXIT_PROCESSING_FAILED = 70


def _record(event: Any) -> InRecord:
    m = event.message
    ts = m.timestamp
    return InRecord(
        topic=m.topic or "", partition=m.partition or 0, offset=m.offset or 0,
        timestamp_ms=round(ts * 1000) if ts else 0,
        key=m.key, value=m.value,
    )


def _exit_when_crashed(agent: Any) -> None:
    """Make a crashed agent end the process instead of leaving it up with nothing consuming.

    Faust's supervisor restarts a crashed agent's actor, but the stream it consumed is not
    resumed, so the process would keep answering /metrics while processing nothing.  The
    app passes its own error handler to every agent (``app.agent`` accepts no other), so it
    is wrapped here.
    """
    app_handler = agent._on_error

    async def on_error(crashed: Any, exc: BaseException) -> None:
        if app_handler is not None:
            await app_handler(crashed, exc)
        log.critical("agent %s crashed; exiting so that a restart redoes the uncommitted "
                     "records", getattr(crashed, "name", crashed), exc_info=exc)
        os._exit(EXIT_PROCESSING_FAILED)

    agent._on_error = on_error


def _exit_if_undelivered(fut: asyncio.Future[Any]) -> None:
    """An output of the classify agent that Kafka finally refused ends the process.

    Faust flushes the producer and then commits whatever was sent, delivered or not: going
    on would commit the headline with its requests lost.  Exiting first leaves it
    uncommitted, and the restarted worker classifies it again.
    """
    if fut.cancelled():
        # nothing here cancels these futures; should the producer ever do it, the record's
        # fate is unknown and Faust's flush does not wait for it either: say so, loudly
        log.error("a classify output's delivery was cancelled; its headline may be "
                  "committed without it")
        return
    exc = fut.exception()
    if exc is not None:
        log.critical("a classify output was not delivered (%r); exiting without committing",
                     exc)
        os._exit(EXIT_SEND_FAILED)


class Pipeline:
    """Registers the classify agent and the react service on ``app``; owns their stages."""

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
        core = core_setup(settings)
        self.headline_stage = HeadlineStage(settings, metrics, core=core)
        self.reaction_stage = ReactionStage(settings, metrics, core=core)
        self.late_path = LatePath(
            core.params, kafka_tick_source(settings, self.reaction_stage.decoder, core.params)
        )
        t = settings.topics
        self.headlines_topic = app.topic(t.headlines, key_type=bytes, value_type=bytes)
        #: re-learn story clusters from the classified topic before the first headline
        self._clusters_restored = not restore_clusters
        # agents yield their output records and a sink publishes them: Faust runs the sink
        # before it takes the next event, so an input is acknowledged only after its
        # outputs are queued, and it flushes the producer before committing offsets
        self.classify_agent = app.agent(self.headlines_topic, name="classify",
                                        sink=[self._send])(self._classify)
        _exit_when_crashed(self.classify_agent)
        pipeline = self

        class _React(BulkReact):
            """The react service bound to this pipeline (Faust instantiates it)."""

            def __init__(self, **kwargs: Any) -> None:
                super().__init__(pipeline, **kwargs)

        # started after Faust's producer and stopped before it, so its last outputs flush
        app.service(_React)

    async def publish(self, records: Sequence[OutRecord]) -> list[asyncio.Future[Any]]:
        """Hand ``records`` to Faust's producer, in order; their delivery futures.

        Straight to the producer rather than through ``Topic.send``: Faust's channel layer
        (codecs, sensors, a FutureMessage per record) cost ~80 µs a record at the median and
        over 1 ms at p99 (measured against the producer's own 15 µs), which a headline's
        four outputs paid before its requests were on their way.  Faust still flushes this
        producer before it commits the classify agent's offsets.
        """
        producer = self.app.producer
        metrics = self.metrics
        sent: list[asyncio.Future[Any]] = []
        for o in records:
            # Faust turns seconds into ms by truncation; half a millisecond keeps it exact
            fut = await producer.send(o.topic, o.key.encode(), o.value, None,
                                      (o.timestamp_ms + 0.5) / 1000.0, None)
            sent.append(fut)  # type: ignore[arg-type]
            if o.dead_letter_of is not None and metrics is not None:
                metrics.dead_letter(*o.dead_letter_of)
        return sent

    async def _send(self, records: Sequence[OutRecord]) -> None:
        for fut in await self.publish(records):
            fut.add_done_callback(_exit_if_undelivered)

    async def _classify(self, stream: Any) -> AsyncIterator[list[OutRecord]]:
        async for event in stream.events():
            if not self._clusters_restored:
                recent = await asyncio.get_running_loop().run_in_executor(
                    None, read_recent_classified, self.settings
                )
                log.info("re-learnt %d story clusters", self.headline_stage.restore(recent))
                self._clusters_restored = True
            yield self.headline_stage.process(_record(event)).records

    async def process_fetch(self, requests: list[InRecord], ticks: list[InRecord]
                            ) -> list[OutRecord]:
        """One fetch of requests and ticks: rebuild what is missing, process, measure late."""
        stage = self.reaction_stage
        for p in sorted({r.partition for r in requests} | {r.partition for r in ticks}):
            if not stage.has_partition(p):
                await self._rebuild(p)
        # on the event loop itself, not in a thread: the work is pure Python, so a thread
        # would only trade the GIL back and forth with the loop (measured: 20% fewer ticks a
        # second end to end).  A round is bounded by the bulk path's TICK_BATCH records,
        # ~0.1-0.3 s, far inside the session timeout the heartbeats must keep
        result = stage.process_bulk(requests, ticks)
        out = result.records
        lates = list(result.late)
        for _ in range(MAX_REBUILDS_PER_BATCH):
            if not result.failed:
                break
            for p in sorted(result.failed):
                await self._rebuild(p, rebuilding=True)
            rt = self.settings.topics.requests
            result = stage.process_bulk([r for r in result.deferred if r.topic == rt],
                                        [r for r in result.deferred if r.topic != rt])
            out.extend(result.records)
            lates.extend(result.late)
        else:
            self._give_up((requests or ticks)[0], "the engine kept failing")
        if lates:
            out.extend(await self._measure_late(lates))
        return out

    async def _measure_late(self, lates: list[LateRequest]) -> list[OutRecord]:
        loop = asyncio.get_running_loop()
        measured = await loop.run_in_executor(None, self.late_path.measure, lates)
        out: list[OutRecord] = []
        for late, res in measured:
            out.extend(self.reaction_stage.late_result(late, res))
        return out

    async def _rebuild(self, partition: int, *, rebuilding: bool = False) -> None:
        started = time.monotonic()
        loop = asyncio.get_running_loop()
        stage = self.reaction_stage
        processed = None
        if rebuilding:
            t = self.settings.topics
            processed = {name: stage.processed.get((name, partition), 0)
                         for name in (t.ticks, t.requests)}
        for attempt in range(1, RECOVERY_ATTEMPTS + 1):
            try:
                rebuilt = await loop.run_in_executor(
                    None, rebuild_partition, self.settings, stage, partition, processed
                )
                break
            except (KafkaError, StreamsError, OSError) as exc:
                if attempt == RECOVERY_ATTEMPTS:
                    self._give_up(None, f"partition {partition}: reading history failed: {exc}")
                log.warning("partition %d: reading history failed (%s), retrying", partition,
                            exc)
                await asyncio.sleep(min(30.0, 0.5 * 2**attempt))
        log.warning("partition %d: state rebuilt from %d records in %.2fs (%d reads)",
                    partition, rebuilt.records, time.monotonic() - started, rebuilt.rounds)

    @staticmethod
    def _give_up(first: InRecord | None, why: str) -> NoReturn:
        # without its state the engine would emit wrong answers, and letting Faust carry
        # on would commit these offsets unprocessed: stop hard instead, so a restarted
        # worker rebuilds the state and redoes this batch
        where = f" at {first.topic}[{first.partition}]@{first.offset}" if first else ""
        log.critical("%s%s; exiting without committing", why, where)
        os._exit(EXIT_PROCESSING_FAILED)

    def close(self) -> None:
        """At shutdown: write the dead-letter summaries and say what is still pending."""
        self.headline_stage.flush_logs()
        self.reaction_stage.flush_logs()
        pending = self.reaction_stage.pending_reactions()
        if pending:
            # pending, not lost: the offsets of their requests are committed, and a restarted
            # worker rebuilds them from Kafka (streams/recovery.py) and completes them
            log.warning("%d reactions pending at shutdown (no tick past their horizon yet); "
                        "a restarted worker completes them from the ticks to come", pending)

