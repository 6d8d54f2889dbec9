"""Consumer metrics against the real broker: lag that appears and drains, the worker's sensor."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.structs import OffsetAndMetadata
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from tariffmon import topic_reader
from tariffmon.kafkaclient import client_config
from tariffmon.metrics.consumer import ConsumerLag, ConsumerSensor, consumed_topics
from tariffmon.settings import Settings
from tariffmon.workerproc import WorkerProcess as BaseWorkerProcess
from tests.conftest import MakeSettings
from tests.kafka_helpers import produce_messages, produce_raw, wait_until
from tests.tariffmon.streams.market import T0, ticks
from tests.worker_process import WorkerProcess

pytestmark = pytest.mark.integration


def _commit(settings: Settings, group: str, offsets: dict[TopicPartition, int]) -> None:
    """Commit ``offsets`` for ``group`` as a consumer of that group would."""
    consumer = KafkaConsumer(**client_config(settings.kafka), group_id=group,
                             enable_auto_commit=False)
    try:
        consumer.commit({tp: OffsetAndMetadata(o, "", -1) for tp, o in offsets.items()})
    finally:
        consumer.close()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_lag_per_partition_is_end_minus_committed_and_drains(
    make_settings: MakeSettings, seed: int
) -> None:
    rnd = random.Random(seed)
    partitions = rnd.choice([1, 2, 3])
    settings = make_settings(topics={"symbol_partitions": partitions})
    topic = settings.topics.ticks
    per_partition = {p: rnd.randint(0, 40) for p in range(partitions)}
    records = [(f"k{p}".encode(), b"x", None, p) for p, n in per_partition.items()
               for _ in range(n)]
    rnd.shuffle(records)

    producer = KafkaProducer(**client_config(settings.kafka), acks="all")
    try:
        for key, value, ts, p in records:
            producer.send(topic, key=key, value=value, timestamp_ms=ts, partition=p)
        producer.flush(timeout=30)
    finally:
        producer.close(timeout=10)

    group = f"{settings.worker.app_id}-lag"
    registry = CollectorRegistry()
    lag = ConsumerLag(settings, topic_reader, group=group, topics=[topic])
    registry.register(lag)

    # nothing committed: every message is lag
    seen = lag.poll()
    assert {tp.partition: pl.lag for tp, pl in seen.items()} == per_partition
    assert registry.get_sample_value(
        "tariffmon_consumer_lag_messages", {"group": group, "topic": topic, "partition": "0"}
    ) == per_partition[0]

    # part committed, in any order of partitions: the rest is lag
    done = {TopicPartition(topic, p): rnd.randint(0, n) for p, n in per_partition.items()}
    _commit(settings, group, done)
    seen = lag.poll()
    assert {tp.partition: pl.lag for tp, pl in seen.items()} == {
        tp.partition: per_partition[tp.partition] - o for tp, o in done.items()
    }

    # everything committed: drained to zero on every partition
    _commit(settings, group, {TopicPartition(topic, p): n for p, n in per_partition.items()})
    assert all(pl.lag == 0 for pl in lag.poll().values())
    total = sum(
        s.value for f in registry.collect() for s in f.samples
        if s.name == "tariffmon_consumer_lag_messages"
    )
    assert total == 0
    assert registry.get_sample_value(
        "tariffmon_consumer_lag_poll_errors_total", {"group": group}) == 0


def test_a_failing_read_is_counted_and_keeps_the_last_figures(make_settings: MakeSettings
                                                              ) -> None:
    settings = make_settings()
    produce_raw(settings, settings.topics.ticks, [(b"USDJPY", b"x", None)] * 3)

    class Flaky:
        """topic_reader, except that end offsets fail once asked to."""

        fail = False
        topic_partitions = staticmethod(topic_reader.topic_partitions)
        committed_offsets = staticmethod(topic_reader.committed_offsets)
        beginning_offsets = staticmethod(topic_reader.beginning_offsets)

        def end_offsets(self, s: Settings, tps: Iterable[TopicPartition]
                        ) -> dict[TopicPartition, int]:
            if self.fail:
                raise OSError("broker went away")
            return topic_reader.end_offsets(s, tps)

    source = Flaky()
    registry = CollectorRegistry()
    lag = ConsumerLag(settings, source, topics=[settings.topics.ticks], interval_s=0.1)
    registry.register(lag)
    lag.start()
    try:
        def total() -> float:
            return sum(s.value for f in registry.collect() for s in f.samples
                       if s.name == "tariffmon_consumer_lag_messages")
        wait_until(total, 30, "the lag read", until=lambda v: v == 3)
        source.fail = True
        group = settings.worker.app_id
        wait_until(lambda: registry.get_sample_value(
            "tariffmon_consumer_lag_poll_errors_total", {"group": group}), 30,
            "a counted failure", until=lambda v: (v or 0) >= 2)
        assert total() == 3
    finally:
        lag.stop()


def _families(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, []).append((dict(s.labels), float(s.value)))
    return out


def test_worker_backlog_shows_as_lag_that_drains_with_rebalance_commit_and_rate(
    make_settings: MakeSettings, tmp_path: Path
) -> None:
    settings = make_settings()
    backlog = ticks("USDJPY", T0 - 3_600_000, 1_500, seed=7)
    produce_messages(settings, settings.topics.ticks, backlog)
    tick_topic = settings.topics.ticks

    def lag(worker: BaseWorkerProcess) -> float:
        samples = _families(worker.metrics_text()).get("tariffmon_consumer_lag_messages", [])
        return sum(v for labels, v in samples if labels["topic"] == tick_topic)

    with WorkerProcess(settings, tmp_path / "worker.log") as worker:
        # the first read happens as the worker starts, before its consumer has joined
        wait_until(lambda: lag(worker), 30, "the backlog as lag",
                   until=lambda v: v == len(backlog), alive=_alive(worker))
        wait_until(lambda: lag(worker), 90, "the lag drained", until=lambda v: v == 0,
                   alive=_alive(worker))
        fam = _families(worker.metrics_text())
    processed = {labels["topic"]: v for labels, v in
                 fam["tariffmon_consumer_messages_processed_total"]}
    assert processed[tick_topic] == len(backlog)
    assert set(consumed_topics(settings)) <= set(processed)
    assert fam["tariffmon_consumer_rebalances_total"][0][1] >= 1
    commits = dict((labels.get("le"), v) for labels, v in
                   fam["tariffmon_consumer_commit_latency_seconds_bucket"])
    assert commits["+Inf"] >= 1
    rebalance_count = fam["tariffmon_consumer_rebalance_duration_seconds_count"][0][1]
    assert rebalance_count >= 1


def _alive(worker: BaseWorkerProcess) -> Callable[[], None]:
    def check() -> None:
        if not worker.running():
            raise AssertionError(f"worker exited: {worker.log_tail()}")
    return check


def test_sensor_counts_what_faust_reports() -> None:
    registry = CollectorRegistry()
    sensor = ConsumerSensor(registry, ["a", "b"])
    tp = TopicPartition("a", 0)
    for offset in range(5):
        sensor.on_message_out(tp, offset, None)
    state = sensor.on_commit_initiated(None)
    time.sleep(0.002)
    sensor.on_commit_completed(None, state)
    reb = sensor.on_rebalance_start(None)
    sensor.on_rebalance_end(None, reb)
    get = registry.get_sample_value
    assert get("tariffmon_consumer_messages_processed_total", {"topic": "a"}) == 5
    assert get("tariffmon_consumer_messages_processed_total", {"topic": "b"}) == 0
    assert get("tariffmon_consumer_commit_latency_seconds_count") == 1
    assert (get("tariffmon_consumer_commit_latency_seconds_sum") or 0) >= 0.002
    assert get("tariffmon_consumer_rebalances_total") == 1
    assert get("tariffmon_consumer_rebalance_duration_seconds_count") == 1
