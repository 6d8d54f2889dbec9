"""The kafka-python producer every source publishes through, and clean shutdown on signals.

:class:`TopicProducer` is built from the settings (:func:`tariffmon.kafkaclient.producer_spec`,
shared with replay's aiokafka producer): ``acks="all"``, idempotence (no duplicates from
retries, order kept per partition), unlimited retries within the delivery timeout, and
batching/compression from ``settings.producer``.  The Kafka
timestamp of every record is its event time.  Every acknowledgement and every failure is
counted (by topic, and by error kind for failures) and failures are logged with the topic and
key; :attr:`TopicProducer.acked` is what Kafka confirmed and is therefore safe to report.

:class:`StopFlag` turns SIGINT and SIGTERM into a flag the loops poll, so that a signal never
interrupts a send half-way: the loop stops, the producer flushes, and the process exits.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from kafka import KafkaProducer
from kafka.errors import KafkaError

from tariffmon.contract import Message
from tariffmon.kafkaclient import kafka_python_producer_config
from tariffmon.producers.errors import DeliveryError
from tariffmon.producers.metrics import ProducerMetrics
from tariffmon.settings import Settings

log = logging.getLogger(__name__)

def producer_config(settings: Settings) -> dict[str, Any]:
    """The KafkaProducer keyword arguments the settings call for (security included).

    Built by :func:`tariffmon.kafkaclient.kafka_python_producer_config` from the same spec
    as replay's aiokafka producer.
    """
    return kafka_python_producer_config(settings)


def error_kind(exc: BaseException) -> str:
    """A short, bounded label for an error: the exception class name."""
    return type(exc).__name__


class TopicProducer:
    """Publish bytes or contract messages to Kafka with event-time timestamps, counting outcomes.

    ``sent`` counts records handed to kafka-python, ``acked`` those Kafka acknowledged,
    ``failed`` those it finally rejected (after kafka-python's own retries).
    """

    def __init__(
        self,
        settings: Settings,
        metrics: ProducerMetrics | None = None,
        *,
        producer_factory: Callable[..., Any] = KafkaProducer,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self._producer = producer_factory(**producer_config(settings))
        self._lock = threading.Lock()
        self.sent = 0
        self.acked = 0
        self.failed = 0
        self.failures_by_kind: dict[str, int] = {}
        self._closed = False

    def publish(self, topic: str, key: str | None, value: bytes, ts_ms: int) -> None:
        """Send one record; the Kafka timestamp is the event time ``ts_ms``.

        Returns at once; the outcome arrives later and is counted.  A record kafka-python
        refuses outright (too large, buffer full past ``max_block_ms``) is counted and logged
        as a failure too, and the error re-raised so that the caller knows.
        """
        kbytes = None if key is None else key.encode("utf-8")
        try:
            fut = self._producer.send(topic, value=value, key=kbytes, timestamp_ms=ts_ms)
        except KafkaError as exc:
            with self._lock:
                self.sent += 1
            self._on_error(topic, key, ts_ms, exc)
            raise
        with self._lock:
            self.sent += 1
        # kafka-python passes our arguments first and the outcome last
        fut.add_callback(self._on_ack, topic)
        fut.add_errback(self._on_error, topic, key, ts_ms)

    def publish_message(self, topic: str, message: Message) -> None:
        """Send a contract message under its own key, timestamped with its event time."""
        ts = getattr(message, "ts", None)
        if not isinstance(ts, int):
            raise TypeError(f"{type(message).__name__} has no integer event time 'ts'")
        self.publish(topic, message.key, message.encode(), ts)  # type: ignore[attr-defined]

    def _on_ack(self, topic: str, metadata: Any) -> None:
        with self._lock:
            self.acked += 1
        if self.metrics is not None:
            self.metrics.messages_sent.labels(topic=topic).inc()

    def _on_error(self, topic: str, key: str | None, ts_ms: int, exc: BaseException) -> None:
        kind = error_kind(exc)
        with self._lock:
            self.failed += 1
            self.failures_by_kind[kind] = self.failures_by_kind.get(kind, 0) + 1
        if self.metrics is not None:
            self.metrics.send_errors.labels(topic=topic, kind=kind).inc()
        log.error("delivery to topic %s failed (key=%r ts=%d): %s: %s",
                  topic, key, ts_ms, kind, exc)

    @property
    def pending(self) -> int:
        """Records sent but neither acknowledged nor failed yet."""
        with self._lock:
            return self.sent - self.acked - self.failed

    def wait_pending_below(self, limit: int, stop: StopFlag | None = None) -> None:
        """Block while more than ``limit`` records are unacknowledged.

        kafka-python's buffer is unbounded, so a fast loop (a replay at maximum speed) must
        apply its own back-pressure.
        """
        while self.pending > limit:
            if stop is not None and stop.is_set():
                return
            time.sleep(0.002)

    def flush(self, timeout_s: float | None = None) -> None:
        """Block until every record sent so far is acknowledged or failed."""
        try:
            self._producer.flush(timeout=timeout_s)
        except KafkaError as exc:
            raise DeliveryError(
                f"{self.pending} records not acknowledged within {timeout_s} s: {exc}"
            ) from exc
        # outcomes are counted in callbacks; give the last ones a moment to land
        deadline = time.monotonic() + 5.0
        while self.pending > 0 and time.monotonic() < deadline:
            time.sleep(0.001)

    def close(self, timeout_s: float = 30.0) -> None:
        """Flush, then close the connection; idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            self.flush(timeout_s)
        finally:
            self._producer.close(timeout=timeout_s)

    def summary(self) -> dict[str, Any]:
        """Counts for a final report: sent, acked, failed and failures by kind."""
        with self._lock:
            return {"sent": self.sent, "acked": self.acked, "failed": self.failed,
                    "failures": dict(self.failures_by_kind)}

    def __enter__(self) -> TopicProducer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class StopFlag:
    """Set by SIGINT/SIGTERM (or :meth:`set`); loops poll it and sleep with :meth:`wait`."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.signum: int | None = None

    def set(self, signum: int | None = None) -> None:
        """Ask the loops to stop."""
        if self.signum is None:
            self.signum = signum
        self._event.set()

    def is_set(self) -> bool:
        """Whether a stop was asked for."""
        return self._event.is_set()

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``, waking early on a stop; returns whether stop was asked."""
        return self._event.wait(max(0.0, seconds))

    @contextmanager
    def installed(self) -> Iterator[StopFlag]:
        """Handle SIGINT and SIGTERM by setting this flag (main thread only), then restore."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return

        def handler(signum: int, frame: FrameType | None) -> None:
            if self.is_set():
                log.warning("second signal %d: still flushing, please wait", signum)
            else:
                log.warning("signal %d: stopping after flushing what was sent", signum)
            self.set(signum)

        previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield self
        finally:
            for s, h in previous.items():
                signal.signal(s, h)
