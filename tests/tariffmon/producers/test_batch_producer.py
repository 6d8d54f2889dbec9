"""Replay's aiokafka batch producer against the real broker.

What it must keep of the kafka-python producer: acknowledgement counts that match the
topics, Kafka timestamp = event time, per-key order within the key's partition, the same
partition for a key as kafka-python gives it (ticks and reaction requests stay
co-partitioned), exact bytes for values recorded raw, pacing, and a clean stop.
"""

from __future__ import annotations

import base64
import os
import random
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from tariffmon.errors import BrokerError
from tariffmon.producers.batch_producer import MAX_RECORD_BYTES, BatchProducer
from tariffmon.producers.errors import DeliveryError
from tariffmon.producers.kafka_producer import StopFlag, TopicProducer
from tariffmon.producers.metrics import ProducerMetrics
from tariffmon.producers.replay import RAW_FIELD, encode_value, replay
from tariffmon.recorded import RecordedEvent, merge_events, write_events
from tariffmon.settings import load_settings
from tests.kafka_helpers import consume_all, free_port

pytestmark = pytest.mark.integration

T0 = 1_743_552_000_000


def recording(tmp_path: Path, n: int, seed: int, keys: list[str | None]) -> list[Path]:
    """Ticks of ``keys`` at random, non-decreasing times (many ties), some values raw bytes,
    split over two files; and a few headlines (key None allowed) in a third."""
    rng = random.Random(seed)
    ts = T0
    files: list[list[RecordedEvent]] = [[], []]
    for i in range(n):
        ts += rng.choice([0, 0, 1, 7, 250])
        key = rng.choice(keys)
        if rng.random() < 0.03:
            # undecodable bytes as the recorder keeps them: published as exactly these bytes
            raw = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 40)))
            value: dict[str, Any] = {RAW_FIELD: base64.b64encode(raw).decode()}
        else:
            value = {"v": 1, "symbol": key or "USDJPY", "ts": ts, "kind": "quote",
                     "price": round(100 + rng.random(), 4), "source": "test", "n": i}
        files[rng.randrange(2)].append(RecordedEvent("ticks", key, ts, value))
    heads = [RecordedEvent("headlines", rng.choice([None, f"h{i}"]), T0 + i * 997, {
        "v": 1, "id": f"h{i}", "ts": T0 + i * 997, "source": "test", "title": f"t{i}"})
        for i in range(25)]
    paths = [tmp_path / f"part{k}.jsonl" for k in range(2)] + [tmp_path / "heads.jsonl.gz"]
    for path, events in zip(paths, [*files, heads], strict=True):
        write_events(path, events)
    return paths


@pytest.mark.parametrize(("n", "batch_size", "seed", "partitions"), [
    (5_000, 1_024, 1, 3),       # a batch every few records: many batches in turn
    (20_000, 256 * 1024, 2, 6),  # the default batch size
    (3_000, 16_384, 3, 1),       # everything on one partition
])
def test_replay_through_batches_keeps_time_order_partition_and_bytes(
    make_settings: Any, tmp_path: Path, n: int, batch_size: int, seed: int, partitions: int
) -> None:
    settings = make_settings(topics={"symbol_partitions": partitions},
                             producer={"batch_size": batch_size})
    keys: list[str | None] = ["USDJPY", "N225", "NKD", "EURJPY", "ES", None]
    paths = recording(tmp_path, n, seed, keys)
    merged = list(merge_events(paths))
    registry = CollectorRegistry()
    with BatchProducer(settings, ProducerMetrics(registry)) as producer:
        result = replay(paths, producer, settings.topics.all_topics())
    assert result.read == result.sent == result.acked == len(merged) and result.failed == 0
    assert registry.get_sample_value("tariffmon_producer_messages_sent_total",
                                     {"topic": settings.topics.ticks}) == sum(
        1 for e in merged if e.stream == "ticks")

    records = consume_all(settings, settings.topics.ticks)
    assert len(records) == sum(1 for e in merged if e.stream == "ticks")
    by_key: dict[bytes | None, list[Any]] = defaultdict(list)
    partition_of: dict[bytes | None, set[int]] = defaultdict(set)
    for r in records:  # by partition, then offset
        by_key[r.key].append(r)
        partition_of[r.key].add(r.partition)
    for key, recs in by_key.items():
        want = [e for e in merged if e.stream == "ticks"
                and (e.key.encode() if e.key is not None else None) == key]
        if key is not None:
            assert len(partition_of[key]) == 1, "a key's records all on one partition"
            # per-key order: the merged order, with its event times as Kafka timestamps
            assert [(r.timestamp, r.value) for r in recs] == [
                (e.ts, encode_value(e.value)) for e in want]
        else:
            assert sorted((r.timestamp, r.value) for r in recs) == sorted(
                (e.ts, encode_value(e.value)) for e in want)

    # the partition of each key is the one kafka-python gives it (co-partitioning)
    other = make_settings(topics={"symbol_partitions": partitions})
    with TopicProducer(other) as kp:
        for name in keys:
            if name is not None:
                kp.publish(other.topics.ticks, name, b"x", T0)
    kp_partition = {r.key: r.partition for r in consume_all(other, other.topics.ticks)}
    assert {k: p.pop() for k, p in partition_of.items() if k is not None} == kp_partition


def test_stop_flag_mid_replay_counts_exactly_what_is_on_the_topic(
    make_settings: Any, tmp_path: Path
) -> None:
    settings = make_settings(producer={"batch_size": 4_096})
    paths = recording(tmp_path, 6_000, 7, ["USDJPY", "N225"])
    stop = StopFlag()
    seen = 0

    def progress(k: int) -> None:
        nonlocal seen
        seen += k
        if seen >= 2_500:
            stop.set()

    with BatchProducer(settings) as producer:
        result = replay(paths, producer, settings.topics.all_topics(), stop=stop,
                        progress=progress)
    assert result.interrupted and result.failed == 0
    assert result.acked == result.sent == result.read and 2_500 <= result.acked < 6_025
    on_topics = len(consume_all(settings, settings.topics.ticks)) + len(
        consume_all(settings, settings.topics.headlines))
    assert on_topics == result.acked
    # exactly the first events of the merge, none skipped
    merged = list(merge_events(paths))[: result.acked]
    assert sorted(r.value for r in consume_all(settings, settings.topics.ticks)) == sorted(
        encode_value(e.value) for e in merged if e.stream == "ticks")


def test_a_paced_replay_ships_each_event_before_it_sleeps(
    make_settings: Any, tmp_path: Path
) -> None:
    settings = make_settings()
    events = [RecordedEvent("ticks", "USDJPY", T0 + i * 60_000, {
        "v": 1, "symbol": "USDJPY", "ts": T0 + i * 60_000, "kind": "quote",
        "price": 150.0 + i, "source": "test"}) for i in range(6)]
    path = tmp_path / "paced.jsonl"
    write_events(path, events)
    on_topic_at_sleep: list[int] = []
    with BatchProducer(settings) as producer:
        def sleep(seconds: float) -> None:
            # every event handed over before this wait is on the topic already
            on_topic_at_sleep.append(len(consume_all(settings, settings.topics.ticks)))

        result = replay([path], producer, settings.topics.all_topics(), speed=6.0,
                        sleep=sleep)
    assert result.acked == 6
    assert on_topic_at_sleep == [1, 2, 3, 4, 5]


def test_big_records_go_alone_and_one_too_large_is_refused_before_sending(
    make_settings: Any,
) -> None:
    settings = make_settings(producer={"batch_size": 1_024}, topics={"symbol_partitions": 1})
    big = os.urandom(5_000)  # larger than a batch: sent in a batch of its own, as Java does
    too_big = os.urandom(MAX_RECORD_BYTES + 1)  # more than a request takes
    with BatchProducer(settings) as producer:
        producer.publish(settings.topics.ticks, "USDJPY", b"small", T0)
        producer.publish(settings.topics.ticks, "USDJPY", big, T0 + 1)
        with pytest.raises(DeliveryError, match=f"{MAX_RECORD_BYTES + 1} bytes"):
            producer.publish(settings.topics.ticks, "N225", too_big, T0 + 2)
        # refused before it was sent, so the partition's next batches are not poisoned
        # (with idempotence a batch the broker rejects leaves a gap in the sequence numbers)
        producer.publish(settings.topics.ticks, "USDJPY", b"after", T0 + 3)
        producer.flush(60)
        summary = producer.summary()
    assert summary == {"sent": 4, "acked": 3, "failed": 1, "failures": {"DeliveryError": 1}}
    got = [(r.key, r.value) for r in consume_all(settings, settings.topics.ticks)]
    assert got == [(b"USDJPY", b"small"), (b"USDJPY", big), (b"USDJPY", b"after")]


def test_an_unreachable_cluster_fails_within_the_connect_timeout() -> None:
    port = free_port()
    settings = load_settings(kafka={"bootstrap_servers": f"127.0.0.1:{port}",
                                    "connect_timeout_s": 2.0})
    t0 = time.monotonic()
    with pytest.raises(BrokerError, match=rf"127\.0\.0\.1:{port}.*kafka\.bootstrap_servers"):
        BatchProducer(settings)
    assert time.monotonic() - t0 < 8


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_batches_are_lz4_compressed_as_kafka_python_does(seed: int) -> None:
    import aiokafka.record.default_records as py_records
    from aiokafka.record._crecords import default_records as c_records
    from kafka import codec as kafka_codec

    from tariffmon.producers import batch_producer

    batch_producer._compress_lz4_as_the_live_producers()
    batch_producer._compress_lz4_as_the_live_producers()  # idempotent
    assert py_records.lz4_encode is c_records.lz4_encode is batch_producer._lz4_fast
    rng = random.Random(seed)
    data = b"".join(b'{"price":%.4f,"symbol":"USDJPY","ts":%d}' % (
        100 + rng.random(), T0 + i) for i in range(rng.randrange(1, 5_000)))
    ours = batch_producer._lz4_fast(data)
    # any lz4 frame reader takes it, and it is kafka-python's fast mode, not level 9
    assert kafka_codec.lz4_decode(ours) == data
    theirs = kafka_codec.lz4_encode(data)
    assert abs(len(ours) - len(theirs)) <= max(64, len(theirs) // 20)
