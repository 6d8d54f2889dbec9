"""The react path in bulk: a service of the Faust app that consumes ticks and requests a fetch
at a time.

Faust's own consumer hands records to agents one event at a time, which bounds a worker to a
few thousand ticks a second (docs/ARCHITECTURE.md, "Consumption").  This service hosts an
aiokafka consumer of its own, in the app's consumer group (the app id) and with Faust's
partition assignor, so that:

* the group is the worker's one group: the headlines member (Faust's consumer) and this one
  are assigned together, offsets of every input are committed in it, and a second worker
  joins it as a whole;
* the ticks and requests topics, which this consumer alone subscribes to, are assigned as one
  co-partitioned group (Faust's ``CopartitionedAssignor``): partition *n* of both topics
  always goes to the same member, which the engine's state per partition needs.

Each round: the requests already fetched are taken first (their own ``getmany``, so none waits
behind a tick backlog), then at most :data:`TICK_BATCH` records of either topic; the pipeline
decodes and processes them in bulk, the outputs are handed to Faust's producer, and every
:data:`COMMIT_EVERY_BATCHES` rounds or ``worker.commit_interval_s`` seconds a commit is started:
it waits for the delivery of every output of the rounds so far and only then commits their
offsets.  It runs beside the loop (one at a time, in order), so the next round does not wait
for the broker's acknowledgements and the commit's round trip: at live rates those were
most of a tick's latency.  On a revocation and at the stop, the commit in flight is awaited,
then the rest is flushed and committed before the partitions go; a partition assigned again
is rebuilt from Kafka as for a restart (:mod:`tariffmon.streams.recovery`).

Commits go through Faust's sensors (``on_commit_initiated`` / ``on_commit_completed``, with
this service as the consumer), and assignments through Faust's assignor and its sensor hooks,
so whatever observes Faust's commit path observes this one too.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import (
    CommitFailedError,
    ConsumerStoppedError,
    IllegalStateError,
    KafkaError,
)
from faust.assignor import PartitionAssignor
from faust.exceptions import NotReady
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth, server_list
from mode import Service

from tariffmon.streams.records import InRecord, OutRecord

if TYPE_CHECKING:
    from tariffmon.streams.agents import Pipeline

log = logging.getLogger(__name__)

#: most records of one round: bounds how long a request fetched meanwhile waits (one round)
#: and how much the core is handed at once (~0.1-0.2 s of work at full speed)
TICK_BATCH = 20_000
#: how long one fetch waits for records when there are none (also the idle commit cadence)
POLL_MS = 50
#: commit at least every this many rounds (and every ``worker.commit_interval_s``)
COMMIT_EVERY_BATCHES = 10
#: the pause after a round whose fetch did not wait (or a large round), in which the app's
#: other tasks run (see _consume)
ROUND_PAUSE_S = 0.001
#: a round of at least this many records pauses even when its fetch had to wait
PAUSE_MIN_RECORDS = 64
#: exit status of a worker that stopped rather than commit outputs that were not sent
EXIT_SEND_FAILED = 70


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, owner: BulkReact) -> None:
        self._owner = owner

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        await self._owner.on_revoked(list(revoked))

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        self._owner.on_assigned(list(assigned))


class BulkReact(Service):
    """The react path's consumer, started and stopped with the Faust app."""

    def __init__(self, pipeline: Pipeline, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.pipeline = pipeline
        self.app = pipeline.app
        topics = pipeline.settings.topics
        self.ticks_topic = topics.ticks
        self.requests_topic = topics.requests
        self._consumer: AIOKafkaConsumer | None = None
        self._lock = asyncio.Lock()
        #: next offset to commit per partition, for what was processed and handed over
        self._to_commit: dict[TopicPartition, int] = {}
        self._sent: list[asyncio.Future[Any]] = []
        #: the commit running beside the loop, if any (at most one, so commits stay in order)
        self._commit_task: asyncio.Task[None] | None = None
        self._rounds = 0
        self._last_commit = time.monotonic()
        #: bumped at every revocation: a fetch from an older generation is not processed
        self._generation = 0
        #: set by on_stop once the last round is committed: the loop must not start another
        self._closing = False
        self.commits = 0

    # ------------------------------------------------------------------ lifecycle

    def _new_consumer(self) -> AIOKafkaConsumer:
        conf = self.app.conf
        worker = self.pipeline.settings.worker
        session_ms = int(worker.session_timeout_s * 1000)
        return AIOKafkaConsumer(
            client_id=f"{conf.broker_client_id}-react",
            group_id=conf.id,
            bootstrap_servers=server_list(conf.broker, 9092),
            # Faust's assignor, the one the app's own consumer uses: the group speaks one
            # protocol, and topics subscribed together are assigned co-partitioned
            partition_assignment_strategy=[PartitionAssignor(self.app)],
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_partition_fetch_bytes=4 * 1024 * 1024,
            fetch_max_bytes=16 * 1024 * 1024,
            fetch_max_wait_ms=POLL_MS,
            max_poll_records=TICK_BATCH,
            session_timeout_ms=session_ms,
            heartbeat_interval_ms=int(conf.broker_heartbeat_interval * 1000),
            rebalance_timeout_ms=int(conf.broker_rebalance_timeout * 1000),
            request_timeout_ms=int(conf.broker_request_timeout * 1000),
            max_poll_interval_ms=int((conf.broker_max_poll_interval or 1000.0) * 1000),
            **credentials_to_aiokafka_auth(conf.broker_credentials, conf.ssl_context),
        )

    async def on_start(self) -> None:
        """Join the group for the ticks and requests topics."""
        self._consumer = self._new_consumer()
        try:
            await self._consumer.start()
        except BaseException:
            # stopped while joining (a SIGTERM at start-up): close it, do not leak it
            await self._consumer.stop()
            raise
        self._consumer.subscribe([self.ticks_topic, self.requests_topic],
                                 listener=_Listener(self))

    async def on_stop(self) -> None:
        """Finish the round in progress, flush and commit it, then leave the group."""
        if self._consumer is None:
            return
        async with self._lock:
            self._closing = True
            try:
                await self._commit()
            except (KafkaError, NotReady) as exc:
                # NotReady: Faust stopped its producer first (a stop during start-up)
                log.warning("final commit failed (%s): the next owner redoes those records",
                            exc)
        # outside the lock: leaving the group may call on_revoked, which takes it.  A fetch
        # still waiting in the loop then ends in ConsumerStoppedError, which it expects
        await self._consumer.stop()

    def assignment(self) -> set[TopicPartition]:
        """The ticks and requests partitions this worker holds now (for sensors and metrics)."""
        return set() if self._consumer is None else set(self._consumer.assignment())

    # ------------------------------------------------------------------ rebalances

    async def on_revoked(self, revoked: list[TopicPartition]) -> None:
        """Before partitions go: finish, flush and commit; then forget their state."""
        async with self._lock:
            self._generation += 1
            try:
                await self._commit()
            except KafkaError as exc:
                log.warning("commit on revocation failed (%s): the next owner redoes the "
                            "uncommitted records", exc)
            self._to_commit.clear()
            partitions = {tp.partition for tp in revoked
                          if tp.topic in (self.ticks_topic, self.requests_topic)}
            for p in partitions:
                self.pipeline.reaction_stage.drop_partition(p)
        if revoked:
            log.info("revoked %s", sorted(f"{tp.topic}[{tp.partition}]" for tp in revoked))

    def on_assigned(self, assigned: list[TopicPartition]) -> None:
        """New partitions are rebuilt from Kafka on their first records (or requests)."""
        log.info("assigned %s", sorted(f"{tp.topic}[{tp.partition}]" for tp in assigned))

    # ------------------------------------------------------------------ the loop

    @Service.task
    async def _consume(self) -> None:
        consumer = self._consumer
        assert consumer is not None
        loop = asyncio.get_running_loop()
        while not self.should_stop:
            generation = self._generation
            # runs at the loop's next turn, which comes only once this task suspends
            suspended = asyncio.Event()
            loop.call_soon(suspended.set)
            try:
                fetched = await self._fetch(consumer)
            except IllegalStateError:  # no assignment yet
                await asyncio.sleep(POLL_MS / 1000)
                continue
            except ConsumerStoppedError:
                if self._closing:
                    break  # on_stop committed the last round and closed the consumer
                raise
            if self.should_stop:
                break
            async with self._lock:
                if self._closing:
                    break  # fetched after the final commit: the next owner reads them
                assignment = consumer.assignment()
                if generation != self._generation:
                    # a rebalance came during the fetch: its records may be of the old
                    # assignment or already of the new one; either way the partitions'
                    # state was dropped, so read them again from the committed offsets
                    again = [tp for tp in fetched if tp in assignment]
                    if again:
                        committed = await consumer.seek_to_committed(*again)
                        # nothing committed yet: from the start, as auto_offset_reset says
                        fresh = [tp for tp, off in committed.items() if not off]
                        if fresh:
                            await consumer.seek_to_beginning(*fresh)
                    continue
                fetched = {tp: recs for tp, recs in fetched.items() if tp in assignment}
                if fetched:
                    try:
                        await self._round(fetched)
                    except NotReady:
                        if not (self.should_stop or self.app.should_stop):
                            raise
                        # a stop that came while Faust was still starting stopped the
                        # producer before this service: the round is neither sent nor
                        # committed, and the partitions' next owner processes it again
                        log.warning("the worker is stopping: the round in hand is left to "
                                    "the next owner of its partitions")
                        break
                if self._to_commit and self._commit_due():
                    self._start_commit()
            if fetched and (not suspended.is_set()
                            or sum(map(len, fetched.values())) >= PAUSE_MIN_RECORDS):
                # a fetch with records buffered returns without suspending, and so do the
                # sends: without a pause the loop would hold the event loop round after
                # round, and the classify agent (headlines -> requests) would wait behind the
                # whole tick backlog.  A millisecond a round costs ~0.5% at full speed.  A
                # small round whose fetch waited for its records (live rates) needs none:
                # the others ran meanwhile, and a tick arriving in a pause would wait for it
                await asyncio.sleep(ROUND_PAUSE_S)

    async def _fetch(self, consumer: AIOKafkaConsumer) -> dict[TopicPartition, list[Any]]:
        assignment = consumer.assignment()
        requests = [tp for tp in assignment if tp.topic == self.requests_topic]
        fetched: dict[TopicPartition, list[Any]] = {}
        if requests:
            # what is already buffered for the requests, before any tick: aiokafka serves a
            # partition's whole buffered fetch before the next, ~45k ticks per partition
            fetched.update(await consumer.getmany(*requests, timeout_ms=0))
        more = await consumer.getmany(timeout_ms=0 if fetched else POLL_MS,
                                      max_records=TICK_BATCH)
        if requests and more:
            # the fetch that brought these ticks may have brought requests too
            for tp, recs in (await consumer.getmany(*requests, timeout_ms=0)).items():
                fetched.setdefault(tp, []).extend(recs)
        for tp, recs in more.items():
            fetched.setdefault(tp, []).extend(recs)
        return fetched

    async def _round(self, fetched: dict[TopicPartition, list[Any]]) -> None:
        requests: list[InRecord] = []
        ticks: list[InRecord] = []
        for tp, recs in fetched.items():
            dest = requests if tp.topic == self.requests_topic else ticks
            dest.extend(InRecord.all_of(recs))
        out = await self.pipeline.process_fetch(requests, ticks)
        await self._send(out)
        for tp, recs in fetched.items():
            if recs:
                self._to_commit[tp] = max(self._to_commit.get(tp, 0), recs[-1].offset + 1)
        self._rounds += 1
        self._report_processed(fetched)

    def _report_processed(self, fetched: dict[TopicPartition, list[Any]]) -> None:
        # Faust's per-message sensor hooks never see this path's records: the sensors that
        # count processed messages take a fetch's count per topic instead
        counts: dict[str, int] = {}
        for tp, recs in fetched.items():
            counts[tp.topic] = counts.get(tp.topic, 0) + len(recs)
        for sensor in self.app.sensors:
            report = getattr(sensor, "on_messages_processed", None)
            if report is not None:
                for topic, n in counts.items():
                    report(topic, n)

    async def _send(self, records: Sequence[OutRecord]) -> None:
        self._sent.extend(await self.pipeline.publish(records))

    def _commit_due(self) -> bool:
        interval = self.pipeline.settings.worker.commit_interval_s
        return (self._rounds >= COMMIT_EVERY_BATCHES
                or time.monotonic() - self._last_commit >= interval)

    def _take_commit(self) -> tuple[dict[TopicPartition, int], list[asyncio.Future[Any]]]:
        """What the next commit covers: the offsets so far and the sends that must land first.

        Taken together, without an await between, so the offsets are of records whose
        outputs are all among the sends.
        """
        offsets, self._to_commit = self._to_commit, {}
        sent, self._sent = self._sent, []
        self._rounds = 0
        self._last_commit = time.monotonic()
        return offsets, sent

    def _start_commit(self) -> None:
        """Start a commit beside the loop, unless one is still running (it is due again)."""
        task = self._commit_task
        if task is not None:
            if not task.done():
                return
            self._commit_task = None
            task.result()  # a commit that failed unexpectedly stops the loop here
        offsets, sent = self._take_commit()
        self._commit_task = asyncio.create_task(self._commit_offsets(offsets, sent),
                                                name="tariffmon-react-commit")

    async def _commit(self) -> None:
        """Wait for the commit in flight, then flush and commit everything processed."""
        task, self._commit_task = self._commit_task, None
        if task is not None:
            await task
        if self._consumer is None or not self._to_commit:
            return
        await self.app.producer.flush()
        await self._commit_offsets(*self._take_commit())

    async def _commit_offsets(self, offsets: dict[TopicPartition, int],
                              sent: list[asyncio.Future[Any]]) -> None:
        """Once every send in ``sent`` is delivered, commit ``offsets`` (those still assigned)."""
        consumer = self._consumer
        if consumer is None:
            return
        results = await asyncio.gather(*sent, return_exceptions=True)
        failed = [r for r in results if isinstance(r, BaseException)]
        if failed:
            # committing now would lose outputs for good: stop, the restart redoes them
            log.critical("%d outputs were not delivered (%r); exiting without committing",
                         len(failed), failed[0])
            os._exit(EXIT_SEND_FAILED)
        assignment = consumer.assignment()
        offsets = {tp: off for tp, off in offsets.items() if tp in assignment}
        if not offsets:
            return
        sensors = self.app.sensors
        state = sensors.on_commit_initiated(self)  # type: ignore[arg-type]
        try:
            await consumer.commit(offsets)
        except CommitFailedError as exc:
            # the group is rebalancing: the offsets go back, so that the commit at the
            # revocation (or the next one) takes them; partitions that have gone meanwhile
            # are left out there, and their next owner redoes those records
            log.warning("commit refused by the group (%s); retried with the next", exc)
            for tp, off in offsets.items():
                self._to_commit[tp] = max(self._to_commit.get(tp, 0), off)
            return
        finally:
            sensors.on_commit_completed(self, state)  # type: ignore[arg-type]
        self.commits += 1
