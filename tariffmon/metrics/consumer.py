"""The worker's consumer as metrics: lag per topic and partition, rebalances, commits, rate.

Two sources, independent of how the agents consume:

* **Lag** (:class:`ConsumerLag`): a daemon thread reads, every ``interval_s``, the offsets the
  worker's consumer group has committed and the end offsets of the partitions of the topics
  it consumes, group-lessly (it never joins the group, so it causes no rebalance), and
  exports ``end - committed`` per topic and partition.  Committed offsets are what a
  restarted worker would resume from, so this is the work a crash would redo as well as the
  backlog: it appears when input arrives faster than the worker commits and drains to zero.
* **The consumer's own events** (:class:`ConsumerSensor`, a Faust sensor): rebalances and
  their duration, the latency of each offset commit, and the messages every stream finished
  processing, per topic (the processing rate is its ``rate()``).  Per-message hooks only
  bump a plain integer; the Prometheus samples are built when Prometheus scrapes.

:func:`install` wires both onto a Faust app and a registry: the one call the worker makes.

Metrics (labels bounded by the configuration: group = the app id, topic, partition)::

    tariffmon_consumer_lag_messages{group,topic,partition}       gauge
    tariffmon_consumer_committed_offset{group,topic,partition}   gauge
    tariffmon_consumer_end_offset{group,topic,partition}         gauge
    tariffmon_consumer_lag_poll_timestamp_seconds{group}         gauge (last good poll)
    tariffmon_consumer_lag_poll_errors_total{group}              counter
    tariffmon_consumer_rebalances_total                          counter
    tariffmon_consumer_rebalance_duration_seconds                histogram
    tariffmon_consumer_commit_latency_seconds                    histogram
    tariffmon_consumer_messages_processed_total{topic}           counter
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import faust
from kafka import TopicPartition
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from tariffmon.settings import Settings

log = logging.getLogger(__name__)

PREFIX = "tariffmon_consumer"
#: how often the lag is read from the broker by default, seconds
LAG_INTERVAL_S = 10.0
#: commits take milliseconds against a healthy broker and seconds when it struggles
COMMIT_BUCKETS_S: tuple[float, ...] = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)
#: a rebalance takes a session timeout at worst (seconds), plus the state rebuild
REBALANCE_BUCKETS_S: tuple[float, ...] = (
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0,
)


class OffsetSource(Protocol):
    """Where the offsets come from: :mod:`tariffmon.topic_reader` is one (module functions).

    Passed in rather than imported, so that the metrics layer stays independent of the
    Kafka readers and a test can read the offsets any way it likes.
    """

    def topic_partitions(
        self, settings: Settings, topics: Iterable[str], timeout_s: float = ...
    ) -> list[TopicPartition]:
        """Every partition of ``topics``."""

    def committed_offsets(
        self, settings: Settings, group_id: str, tps: Iterable[TopicPartition]
    ) -> dict[TopicPartition, int]:
        """The group's committed offsets (0 where none)."""

    def beginning_offsets(
        self, settings: Settings, tps: Iterable[TopicPartition]
    ) -> dict[TopicPartition, int]:
        """The first offset still held of each partition."""

    def end_offsets(
        self, settings: Settings, tps: Iterable[TopicPartition]
    ) -> dict[TopicPartition, int]:
        """The end offset of each partition."""


@dataclass(frozen=True, slots=True)
class PartitionLag:
    """One partition's committed and end offsets, and the lag between them."""

    committed: int
    end: int

    @property
    def lag(self) -> int:
        """Messages written but not yet committed by the group."""
        return max(0, self.end - self.committed)


def consumed_topics(settings: Settings) -> tuple[str, ...]:
    """The topics the worker's agents consume (the rest it only writes)."""
    t = settings.topics
    return (t.headlines, t.ticks, t.requests)


class ConsumerLag(Collector):
    """Lag of ``group`` on ``topics``, read every ``interval_s`` by a daemon thread.

    :meth:`poll` reads once (the thread calls it; a test may too); :meth:`collect` is what
    Prometheus scrapes: the figures of the last good poll.  A failed poll is logged and
    counted, and the previous figures stay until a poll succeeds again (their age is
    ``tariffmon_consumer_lag_poll_timestamp_seconds``).
    """

    def __init__(self, settings: Settings, source: OffsetSource, *,
                 group: str | None = None, topics: Sequence[str] | None = None,
                 interval_s: float = LAG_INTERVAL_S) -> None:
        self.settings = settings
        self.source = source
        self.group = group or settings.worker.app_id
        self.topics = tuple(topics if topics is not None else consumed_topics(settings))
        self.interval_s = interval_s
        self._lock = threading.Lock()
        self._lags: dict[TopicPartition, PartitionLag] = {}
        self._polled_at: float | None = None
        self._errors = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def poll(self) -> dict[TopicPartition, PartitionLag]:
        """Read the offsets now and keep them for the next scrape; returns them."""
        s = self.settings
        tps = self.source.topic_partitions(s, self.topics, 5.0)
        committed = self.source.committed_offsets(s, self.group, tps)
        # nothing committed yet reads as 0: count from the oldest record still held
        start = self.source.beginning_offsets(s, tps)
        end = self.source.end_offsets(s, tps)
        lags = {
            tp: PartitionLag(max(committed.get(tp, 0), start.get(tp, 0)), end.get(tp, 0))
            for tp in tps
        }
        with self._lock:
            self._lags = lags
            self._polled_at = time.time()
        return lags

    def start(self) -> ConsumerLag:
        """Poll in a daemon thread until :meth:`stop` (or the process ends)."""
        self._thread = threading.Thread(target=self._run, name="consumer-lag", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop polling (waits for a poll in progress, at most a few seconds)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=15.0)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll()
            except Exception:  # a broker hiccup must not end lag reporting: log, count, retry
                with self._lock:
                    self._errors += 1
                log.warning("consumer lag of %s: reading offsets failed", self.group,
                            exc_info=True)
            self._stop.wait(self.interval_s)

    def collect(self) -> Iterator[Metric]:
        """The samples of the last good poll (called by the registry at each scrape)."""
        with self._lock:
            lags = dict(self._lags)
            polled_at = self._polled_at
            errors = self._errors
        labels = ["group", "topic", "partition"]
        lag = GaugeMetricFamily(
            f"{PREFIX}_lag_messages",
            "Messages of a partition the worker's group has not committed yet (end offset "
            "minus committed offset).", labels=labels)
        committed = GaugeMetricFamily(
            f"{PREFIX}_committed_offset", "The group's committed offset per partition.",
            labels=labels)
        end = GaugeMetricFamily(
            f"{PREFIX}_end_offset", "The end offset (next offset to be written) per partition.",
            labels=labels)
        for tp, pl in sorted(lags.items()):
            values = [self.group, tp.topic, str(tp.partition)]
            lag.add_metric(values, pl.lag)
            committed.add_metric(values, pl.committed)
            end.add_metric(values, pl.end)
        yield lag
        yield committed
        yield end
        polled = GaugeMetricFamily(
            f"{PREFIX}_lag_poll_timestamp_seconds",
            "When the consumer lag was last read successfully, Unix seconds.", labels=["group"])
        if polled_at is not None:
            polled.add_metric([self.group], polled_at)
        yield polled
        failures = CounterMetricFamily(
            f"{PREFIX}_lag_poll_errors", "Failed reads of the consumer lag.", labels=["group"])
        failures.add_metric([self.group], errors)
        yield failures


class _ProcessedCounter(Collector):
    """Messages processed per topic, counted in a plain dict by the sensor."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(
            f"{PREFIX}_messages_processed",
            "Input messages every stream of the worker finished processing, per topic "
            "(rate() of it is the processing rate).", labels=["topic"])
        for topic, n in sorted(dict(self.counts).items()):
            family.add_metric([topic], n)
        yield family


class ConsumerSensor(faust.Sensor):
    """Faust sensor: rebalances, commit latency and processed messages, into ``registry``."""

    def __init__(self, registry: CollectorRegistry, topics: Iterable[str] = (),
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.rebalances = Counter(
            f"{PREFIX}_rebalances", "Consumer group rebalances this worker went through.",
            registry=registry)
        self.rebalance_duration = Histogram(
            f"{PREFIX}_rebalance_duration_seconds",
            "From the start of a rebalance to the worker consuming again.",
            buckets=REBALANCE_BUCKETS_S, registry=registry)
        self.commit_latency = Histogram(
            f"{PREFIX}_commit_latency_seconds",
            "Duration of each offset commit of the worker's consumer.",
            buckets=COMMIT_BUCKETS_S, registry=registry)
        self._processed = _ProcessedCounter()
        # the consumed topics show at zero before their first message: rate() needs two
        # samples, and a topic that never moves must read 0, not absent
        for topic in topics:
            self._processed.counts[topic] = 0
        registry.register(self._processed)

    # Faust calls these from the event loop; each does as little as possible.
    def on_message_out(self, tp: Any, offset: int, message: Any) -> None:
        """Every stream finished with a message: one more processed on its topic."""
        counts = self._processed.counts
        counts[tp.topic] = counts.get(tp.topic, 0) + 1

    def on_messages_processed(self, topic: str, count: int) -> None:
        """The bulk react path finished ``count`` messages of ``topic`` (one fetch)."""
        counts = self._processed.counts
        counts[topic] = counts.get(topic, 0) + count

    def on_commit_initiated(self, consumer: Any) -> Any:
        """A commit starts: its start time is the state handed to the completion."""
        return time.perf_counter()

    def on_commit_completed(self, consumer: Any, state: Any) -> None:
        """A commit ended: observe how long it took."""
        if isinstance(state, float):
            self.commit_latency.observe(time.perf_counter() - state)

    def on_rebalance_start(self, app: Any) -> dict[str, Any]:
        """A rebalance starts."""
        self.rebalances.inc()
        return {"time_start": time.perf_counter()}

    def on_rebalance_end(self, app: Any, state: Mapping[str, Any]) -> None:
        """The rebalance is over: observe its duration."""
        started = state.get("time_start")
        if isinstance(started, float):
            self.rebalance_duration.observe(time.perf_counter() - started)


@dataclass(frozen=True, slots=True)
class ConsumerMetrics:
    """What :func:`install` set up; :meth:`close` stops the lag thread."""

    sensor: ConsumerSensor
    lag: ConsumerLag

    def close(self) -> None:
        """Stop reading the lag."""
        self.lag.stop()


def install(app: faust.App, settings: Settings, registry: CollectorRegistry,
            source: OffsetSource, *, interval_s: float = LAG_INTERVAL_S) -> ConsumerMetrics:
    """Add the consumer sensor to ``app`` and start the lag thread, both on ``registry``."""
    topics = consumed_topics(settings)
    sensor = ConsumerSensor(registry, topics)
    app.sensors.add(sensor)
    lag = ConsumerLag(settings, source, topics=topics, interval_s=interval_s)
    registry.register(lag)
    return ConsumerMetrics(sensor, lag.start())
