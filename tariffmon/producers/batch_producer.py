"""Replay's producer: aiokafka's batch API behind the same synchronous face as TopicProducer.

kafka-python spends ~50 µs of Python per ``send()``, which caps a replay at ~20k msgs/s
whatever the batching.  aiokafka lets us fill a record batch ourselves (``create_batch``,
an append into its C batch builder) and hand it over whole (``send_batch``), so the per
record cost is the append alone.  The live producers stay on kafka-python; both clients take
their settings from :func:`tariffmon.kafkaclient.producer_spec` (acks from all in-sync
replicas, idempotence, compression, batching, timeouts, security).

How it works, on one thread (no second thread fighting the replay loop for the GIL): the
caller appends each record to the open batch of its partition, chosen by the key as Kafka's
default partitioner does (murmur2: the partition kafka-python and Faust give that key).  A
full batch is submitted with ``send_batch`` by running the producer's private asyncio loop
until aiokafka has taken it; while the loop runs, aiokafka also sends what is queued and
reads acknowledgements.  It keeps one batch per partition queued and one request per broker
in flight, retried (idempotent, so without duplicates) until acknowledged or expired, so the
order of each key is the order of the calls.  :meth:`BatchProducer.ship` submits every open
batch and runs the loop until they are answered: a paced replay calls it before it sleeps.
An acknowledgement or a failure is counted for every record of the batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

import aiokafka.codec as aiokafka_codec
import aiokafka.record.default_records as aiokafka_default_records
import cramjam
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError
from aiokafka.errors import KafkaError as AIOKafkaError
from aiokafka.partitioner import murmur2

from tariffmon.errors import BrokerError
from tariffmon.kafkaclient import aiokafka_producer_config, describe, unreachable
from tariffmon.producers.errors import DeliveryError
from tariffmon.producers.kafka_producer import error_kind
from tariffmon.producers.metrics import ProducerMetrics
from tariffmon.settings import Settings

log = logging.getLogger(__name__)

#: the largest record sent: aiokafka's request limit (max_request_size, 1 MiB) less room for
#: the batch and request headers
MAX_RECORD_BYTES = 1_000_000


def _lz4_fast(payload: Any, level: int = 0) -> bytes:
    """lz4 frames as kafka-python writes them: the fast mode (level 0), independent blocks."""
    compressor = cramjam.lz4.Compressor(level=level, content_checksum=False,
                                        block_linked=False)
    compressor.compress(payload)
    return bytes(compressor.finish())


def _compress_lz4_as_the_live_producers() -> None:
    """Make aiokafka's batch builders use lz4's fast mode, as kafka-python and librdkafka do.

    aiokafka 0.14 hard-codes lz4 level 9 (high compression): 25 times the CPU of the fast
    mode (2.7 against 0.11 µs per tick record, measured), the largest cost of a replay
    after reading the file.  Its record builders look ``lz4_encode`` up as a module global
    at each batch, so that name is rebound, and only while it is still aiokafka's own
    function: another aiokafka keeps its behaviour, never a broken one.  The output is a
    standard lz4 frame, which every consumer reads alike.
    """
    modules = [aiokafka_default_records]
    with contextlib.suppress(ImportError):
        from aiokafka.record._crecords import default_records as c_default_records

        modules.append(c_default_records)
    for module in modules:
        if getattr(module, "lz4_encode", None) is aiokafka_codec.lz4_encode:
            module.lz4_encode = _lz4_fast


class _Slot:
    """One partition's batch being filled, and the keys' bytes that go there."""

    __slots__ = ("builder", "count", "keys", "tp")

    def __init__(self, tp: tuple[str, int]) -> None:
        self.tp = tp
        self.builder: Any = None
        self.count = 0
        self.keys: dict[str, bytes] = {}

    def key_bytes(self, key: str) -> bytes:
        """The key's UTF-8 bytes, encoded once."""
        kb = self.keys.get(key)
        if kb is None:
            kb = self.keys[key] = key.encode("utf-8")
        return kb


class BatchProducer:
    """Publish bytes with event-time timestamps through aiokafka batches, counting outcomes.

    The same counting as :class:`~tariffmon.producers.kafka_producer.TopicProducer`: ``sent``
    records handed over, ``acked`` those Kafka acknowledged, ``failed`` those it finally
    rejected (by error kind in ``failures_by_kind``).  One thread uses it: its asyncio loop
    runs only inside the calls.
    """

    def __init__(self, settings: Settings, metrics: ProducerMetrics | None = None) -> None:
        self.settings = settings
        self.metrics = metrics
        _compress_lz4_as_the_live_producers()
        self.sent = 0
        self.acked = 0
        self.failed = 0
        self.failures_by_kind: dict[str, int] = {}
        self._closed = False
        # (topic, key) -> its partition's slot: the one lookup a record costs
        self._slot_of: dict[tuple[str, str | None], _Slot] = {}
        self._slots: dict[tuple[str, int], _Slot] = {}
        self._partitions: dict[str, int] = {}
        self._round_robin = 0
        self._loop = asyncio.new_event_loop()
        self._changed: asyncio.Event | None = None
        try:
            self._producer: AIOKafkaProducer = self._run(self._start())
        except BaseException:
            self._loop.close()
            raise

    def _run(self, coro: Any) -> Any:
        return self._loop.run_until_complete(coro)

    async def _start(self) -> AIOKafkaProducer:
        self._changed = asyncio.Event()
        kafka = self.settings.kafka
        producer = AIOKafkaProducer(**aiokafka_producer_config(self.settings))
        try:
            await asyncio.wait_for(producer.start(), kafka.connect_timeout_s)
        except (TimeoutError, KafkaConnectionError) as exc:
            await producer.stop()
            raise unreachable(kafka, kafka.connect_timeout_s, exc) from None
        except AIOKafkaError as exc:
            await producer.stop()
            # e.g. rejected credentials: the broker answered, so say what it said
            raise BrokerError(f"Kafka at {describe(kafka)} refused us: "
                              f"{type(exc).__name__}: {exc}") from None
        return producer

    # ------------------------------------------------------------------ on the loop

    async def _partition_count(self, topic: str) -> int:
        parts: set[int] = await self._producer.partitions_for(topic)
        return len(parts)

    async def _submit(self, topic: str, partition: int, builder: Any, count: int) -> None:
        """Queue one closed batch; returns once aiokafka has taken it (the one before drained)."""
        try:
            delivery = await self._producer.send_batch(builder, topic, partition=partition)
        except Exception as exc:  # noqa: BLE001 - counted and logged as a failure
            self._on_done(topic, count, exc)
            return
        delivery.add_done_callback(
            lambda fut: self._on_delivery(topic, count, fut))

    async def _until(self, done: Callable[[], bool], timeout_s: float | None) -> bool:
        """Run the loop until ``done()`` (re-checked at each outcome) or the timeout."""
        assert self._changed is not None
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while not done():
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return False
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), 0.5 if left is None
                                       else min(0.5, left))
        return True

    def _on_delivery(self, topic: str, count: int, fut: asyncio.Future[Any]) -> None:
        if fut.cancelled():
            self._on_done(topic, count, DeliveryError("batch cancelled before its ack"))
        else:
            self._on_done(topic, count, fut.exception())

    def _on_done(self, topic: str, count: int, exc: BaseException | None) -> None:
        if self._changed is not None:
            self._changed.set()
        if exc is None:
            self.acked += count
            if self.metrics is not None:
                self.metrics.messages_sent.labels(topic=topic).inc(count)
            return
        kind = error_kind(exc)
        self.failed += count
        self.failures_by_kind[kind] = self.failures_by_kind.get(kind, 0) + count
        if self.metrics is not None:
            self.metrics.send_errors.labels(topic=topic, kind=kind).inc(count)
        log.error("delivery of a batch of %d records to topic %s failed: %s: %s",
                  count, topic, kind, exc)

    # ------------------------------------------------------------------ the caller's API

    def _partition(self, topic: str, key: bytes | None) -> int:
        n = self._partitions.get(topic)
        if n is None:
            n = self._partitions[topic] = self._run(self._partition_count(topic))
        if key is None:
            # no key, no order to keep: fill one partition's batches after another's
            self._round_robin += 1
            return (self._round_robin // 4096) % n
        # Kafka's default partitioner (kafka-python, aiokafka, Java): murmur2 of the key
        p: int = (murmur2(key) & 0x7FFFFFFF) % n
        return p

    def _slot(self, topic: str, key: str | None) -> _Slot:
        kbytes = None if key is None else key.encode("utf-8")
        tp = (topic, self._partition(topic, kbytes))
        slot = self._slots.get(tp)
        if slot is None:
            slot = self._slots[tp] = _Slot(tp)
        if key is not None:  # a null key's partition changes as batches fill
            self._slot_of[(topic, key)] = slot
        return slot

    def publish(self, topic: str, key: str | None, value: bytes, ts_ms: int) -> None:
        """Append one record to its partition's batch; the Kafka timestamp is ``ts_ms``.

        Returns at once unless the batch is full (then it is submitted); the outcome is
        counted when Kafka answers.  A record larger than a request may be is refused here,
        counted and logged as a failure, and raises DeliveryError: sent, the broker would
        reject it, and with idempotence every later batch of its partition with it.
        """
        slot = self._slot_of.get((topic, key))
        if slot is None:
            slot = self._slot(topic, key)
        kbytes = None if key is None else slot.key_bytes(key)
        if len(value) > MAX_RECORD_BYTES - (0 if kbytes is None else len(kbytes)):
            self.sent += 1
            exc = DeliveryError(
                f"a record of {len(value)} bytes (topic {topic}, key={key!r} ts={ts_ms}) is "
                f"larger than a Kafka request takes ({MAX_RECORD_BYTES} bytes)")
            self._on_done(topic, 1, exc)
            raise exc
        builder = slot.builder
        if builder is None:
            builder = slot.builder = self._producer.create_batch()
        if builder.append(timestamp=ts_ms, key=kbytes, value=value) is None:
            # full: an empty batch always takes one record, however large (as Java's does)
            self._ship(slot)
            builder = slot.builder = self._producer.create_batch()
            builder.append(timestamp=ts_ms, key=kbytes, value=value)
        slot.count += 1
        self.sent += 1

    def _ship(self, slot: _Slot) -> None:
        builder, count = slot.builder, slot.count
        slot.builder, slot.count = None, 0
        if builder is None or count == 0:
            return
        builder.close()
        self._run(self._submit(slot.tp[0], slot.tp[1], builder, count))

    def _ship_all(self) -> None:
        for slot in list(self._slots.values()):
            self._ship(slot)

    def ship(self) -> None:
        """Submit every open batch and run the client until all are answered.

        A paced replay calls this before it sleeps: the loop does not run while it sleeps,
        so what is not on its way by then would wait for the next event.
        """
        self.flush()

    @property
    def pending(self) -> int:
        """Records handed over but neither acknowledged nor failed yet."""
        return self.sent - self.acked - self.failed

    def wait_pending_below(self, limit: int) -> None:
        """Run the client while more than ``limit`` records are unacknowledged."""
        if self.pending > limit:
            self._run(self._until(lambda: self.pending <= limit, None))

    def flush(self, timeout_s: float | None = None) -> None:
        """Submit the open batches and run until every record is acknowledged or failed."""
        self._ship_all()
        if not self._run(self._until(lambda: self.pending <= 0, timeout_s)):
            raise DeliveryError(
                f"{self.pending} records not acknowledged within {timeout_s} s")

    def close(self, timeout_s: float = 30.0) -> None:
        """Flush, then stop the client and its loop; idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            self.flush(self.settings.kafka.delivery_timeout_ms / 1000 + timeout_s)
        finally:
            try:
                self._run(asyncio.wait_for(self._producer.stop(), timeout_s))
            except TimeoutError:
                log.warning("the replay producer did not stop within %g s", timeout_s)
            finally:
                self._loop.close()

    def summary(self) -> dict[str, Any]:
        """Counts for a final report: sent, acked, failed and failures by kind."""
        return {"sent": self.sent, "acked": self.acked, "failed": self.failed,
                "failures": dict(self.failures_by_kind)}

    def __enter__(self) -> BatchProducer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
