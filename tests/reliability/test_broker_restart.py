"""The broker stops and comes back while the producers publish: every ack is kept, once.

A private single-node broker (its own ports and folder, never the session broker) is stopped
gracefully and later killed with SIGKILL, and restarted each time, while two producers
publish: the project's ``TopicProducer`` in this process (its real kafka-python producer,
only wrapped to note each acknowledgement's partition and offset) and a ``tariffmon replay``
child process.  Afterwards each acknowledged record must be on the topic exactly once, at the
partition and offset it was acknowledged with, and no record at all may be there twice
(idempotence: retries after the outage must not write a batch again).  The one exception
seen is the broker's, after SIGKILL: it sometimes appends a retried batch again although
producer id and sequence match; the test then reports the copies and ends as xfail.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from tariffmon.contract import Tick, dumps
from tariffmon.kafkaclient import client_config, ensure_topics
from tariffmon.localkafka import LocalBroker
from tariffmon.producers.kafka_producer import TopicProducer
from tariffmon.recorded import RecordedEvent, RecordedWriter
from tariffmon.settings import LocalBrokerSettings, Settings, load_settings
from tests.kafka_helpers import consume_all, free_ports
from tests.worker_process import settings_env

pytestmark = [pytest.mark.integration, pytest.mark.slow]

T_START = 1_743_552_000_000
DIRECT_N = 12_000
REPLAY_N = 12_000
#: records per second each producer publishes: both still run through both outages
RATE = 500.0


class RecordingProducer(KafkaProducer):  # type: ignore[misc]
    """kafka-python's producer, noting where each acknowledged value landed."""

    def __init__(self, **config: Any) -> None:
        super().__init__(**config)
        self.lock = threading.Lock()
        self.acked: dict[bytes, tuple[int, int]] = {}
        self.failed: dict[bytes, str] = {}

    def send(self, topic: str, value: Any = None, key: Any = None, **kw: Any) -> Any:
        fut = super().send(topic, value=value, key=key, **kw)
        fut.add_callback(self._ack, value)
        fut.add_errback(self._fail, value)
        return fut

    def _ack(self, value: bytes, md: Any) -> None:
        with self.lock:
            self.acked[value] = (md.partition, md.offset)

    def _fail(self, value: bytes, exc: BaseException) -> None:
        with self.lock:
            self.failed[value] = repr(exc)


def paced_ticks(symbol: str, source: str, n: int) -> Iterator[Tick]:
    """``n`` distinct ticks, one a second of event time."""
    for i in range(n):
        yield Tick(symbol, T_START + i * 1_000, round(100.0 + i * 0.001, 3), source)


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[LocalBroker]:
    """A broker of this test's own: stopping it disturbs nobody else."""
    port, controller_port = free_ports(2)
    broker = LocalBroker(
        LocalBrokerSettings(host="127.0.0.1", port=port, controller_port=controller_port,
                            home=tmp_path / "kafka", heap="384m"),
        detach=False,
    )
    broker.start(timeout=120)
    try:
        yield broker
    finally:
        broker.stop(timeout=20)


def end_offsets(settings: Settings, topic: str) -> dict[int, int]:
    """The end offset of each partition of ``topic`` now."""
    consumer = KafkaConsumer(**client_config(settings.kafka), group_id=None)
    try:
        tps = [TopicPartition(topic, p) for p in range(settings.topics.symbol_partitions)]
        return {tp.partition: int(o) for tp, o in consumer.end_offsets(tps).items()}
    finally:
        consumer.close()


def kill_broker(broker: LocalBroker) -> None:
    """SIGKILL: no controlled shutdown, no flush of the broker's own state."""
    pid = broker.status().pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 20
    while broker.status().running:
        assert time.monotonic() < deadline, "the broker survived SIGKILL"
        time.sleep(0.1)


def test_every_acknowledged_record_is_kept_once_across_broker_restarts(
    own_broker: LocalBroker, tmp_path: Path
) -> None:
    settings: Settings = load_settings(
        kafka={"bootstrap_servers": own_broker.bootstrap},
        topics={"symbol_partitions": 3},
        producer={"linger_ms": 5},
    )
    ensure_topics(settings)
    topic = settings.topics.ticks

    # the replay child: a recorded file of its own ticks, paced to span both outages
    recorded = tmp_path / "feed.jsonl"
    with RecordedWriter(recorded) as writer:
        for tick in paced_ticks("N225", "replay", REPLAY_N):
            writer.write(RecordedEvent("ticks", tick.key, tick.ts, tick.to_dict()))
    env = settings_env(settings, metrics_port=0)
    # the child may start while the broker is down: it waits for it, not the 10 s default
    env["TARIFFMON_KAFKA__CONNECT_TIMEOUT_S"] = "120"
    with (tmp_path / "replay.log").open("wb") as replay_log:
        replay = subprocess.Popen(
            [sys.executable, "-m", "tariffmon.cli.main", "replay", str(recorded),
             "--speed", str(RATE), "--no-progress"],
            env=env, stdout=subprocess.PIPE, stderr=replay_log,
        )

    direct = TopicProducer(settings, producer_factory=RecordingProducer)
    recorder: RecordingProducer = direct._producer
    sent: list[bytes] = []

    def publish() -> None:
        t0 = time.monotonic()
        for i, tick in enumerate(paced_ticks("USDJPY", "direct", DIRECT_N)):
            delay = t0 + i / RATE - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            value = tick.encode()
            direct.publish(topic, tick.key, value, tick.ts)
            sent.append(value)

    publisher = threading.Thread(target=publish, daemon=True)
    outages: list[str] = []
    try:
        publisher.start()
        time.sleep(4.0)
        began = time.monotonic()
        own_broker.stop(timeout=30)
        time.sleep(1.0)
        own_broker.start(timeout=120)
        outages.append(f"graceful stop + start: {time.monotonic() - began:.1f} s")
        time.sleep(3.0)
        before_kill = end_offsets(settings, topic)
        began = time.monotonic()
        kill_broker(own_broker)
        time.sleep(1.0)
        own_broker.start(timeout=120)
        outages.append(f"SIGKILL + start: {time.monotonic() - began:.1f} s")
        publisher.join(timeout=120)
        assert not publisher.is_alive()
        direct.close(timeout_s=120)
        out, _ = replay.communicate(timeout=180)
    finally:
        if replay.poll() is None:
            replay.kill()
            replay.wait(timeout=10)
    summary = json.loads(out.decode().strip().splitlines()[-1])

    records = consume_all(settings, topic, timeout=60)
    where: dict[bytes, list[tuple[int, int]]] = {}
    for r in records:
        where.setdefault(r.value, []).append((r.partition, r.offset))
    copies = Counter(len(v) for v in where.values())
    replay_values = {dumps(json.loads(line)["value"]) for line in recorded.open()}
    print(f"\noutages: {outages}; direct: {direct.summary()}; replay: {summary}; "
          f"records on the topic: {len(records)}, copies per value: {dict(copies)}")

    doubled = {v: at for v, at in where.items() if len(at) > 1}
    # copies written before the SIGKILL: the graceful restart let a retry through
    before = {v: at for v, at in doubled.items() if all(o < before_kill[p] for p, o in at)}
    assert not before, f"{len(before)} records doubled around the graceful restart: " \
                       f"{list(before.items())[:3]}"
    assert len(sent) == DIRECT_N and not recorder.failed, list(recorder.failed.items())[:3]
    assert len(recorder.acked) == DIRECT_N
    for value, at in recorder.acked.items():  # each ack names the record's first copy
        assert where[value][0] == at, (value, at, where[value])
    assert replay.returncode == 0 and summary["acked"] == REPLAY_N == summary["sent"], summary
    assert {v for v in where if b'"source":"replay"' in v} == replay_values
    assert len(where) == DIRECT_N + REPLAY_N  # nothing lost, nothing foreign
    if doubled:
        # Seen in about one run in four on Kafka 4.1: a batch in flight when the broker is
        # killed is retried with the same producer id, epoch and sequence numbers, and the
        # restarted broker appends it a second time (kafka.tools.DumpLogSegments shows both
        # copies with equal producerId/baseSequence).  Not our code to fix: the producers are
        # configured right; consumers rely on stable keys (a reaction is recomputed the same).
        pytest.xfail(f"{sum(len(a) - 1 for a in doubled.values())} records written twice by "
                     f"retries across the broker's SIGKILL restart: {list(doubled.values())[:3]}")
    assert len(records) == DIRECT_N + REPLAY_N
