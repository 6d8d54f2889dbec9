"""The broker stops and comes back while the producers publish: every ack is kept, once.

A private single-node broker (its own ports and folder, never the session broker) is stopped
gracefully and later killed with SIGKILL, and restarted each time, while two producers
publish: the project's ``TopicProducer`` in this process (its real kafka-python producer,
only wrapped to note each acknowledgement's partition and offset) and a ``tariffmon replay``
child process.  Afterwards every record must be on the topic, every acknowledgement must name
one of its copies, and nothing foreign may be there.  No record may be there twice, with one
exception, the broker's: around an outage it sometimes appends a retried batch a second time
although producer id, epoch and sequence numbers match (Kafka 4.1, after SIGKILL and, rarer,
after a graceful restart).  The test then checks from the log segments themselves that each
copy is the same batch, sent again under the same identity (the producers' idempotence did its
part), reports the copies and ends as xfail.
"""

from __future__ import annotations

import json
import os
import re
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


_BATCH_LINE = re.compile(
    r"baseOffset: (\d+) lastOffset: (\d+) count: \d+ baseSequence: (-?\d+) "
    r"lastSequence: (-?\d+) producerId: (-?\d+) producerEpoch: (-?\d+)")


def _batches(broker: LocalBroker, topic: str, partitions: int
             ) -> dict[int, list[tuple[int, int, tuple[int, int, int, int]]]]:
    """Each partition's record batches as Kafka's own DumpLogSegments reads them from disk:
    ``(first offset, last offset, (producer id, epoch, first sequence, last sequence))``."""
    out: dict[int, list[tuple[int, int, tuple[int, int, int, int]]]] = {}
    for p in range(partitions):
        logs = sorted(str(f) for f in (broker.data_dir / f"{topic}-{p}").glob("*.log"))
        dump = subprocess.run(
            [broker.settings.java, "-cp", f"{broker.libs_dir}/*",
             "kafka.tools.DumpLogSegments", "--files", ",".join(logs)],
            capture_output=True, text=True, timeout=120, check=True).stdout
        out[p] = [(int(m[1]), int(m[2]), (int(m[5]), int(m[6]), int(m[3]), int(m[4])))
                  for m in _BATCH_LINE.finditer(dump)]
    return out


def _identity_at(batches: list[tuple[int, int, tuple[int, int, int, int]]], offset: int
                 ) -> tuple[tuple[int, int, int, int], int]:
    """The identity of the batch holding ``offset`` and the record's place in it."""
    for first, last, ident in batches:
        if first <= offset <= last:
            return ident, offset - first
    raise AssertionError(f"no batch holds offset {offset}")


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
    assert len(sent) == DIRECT_N and not recorder.failed, list(recorder.failed.items())[:3]
    assert len(recorder.acked) == DIRECT_N
    for value, acked_at in recorder.acked.items():  # each ack names a copy of the record
        assert acked_at in where[value], (value, acked_at, where[value])
    assert replay.returncode == 0 and summary["acked"] == REPLAY_N == summary["sent"], summary
    assert {v for v in where if b'"source":"replay"' in v} == replay_values
    assert len(where) == DIRECT_N + REPLAY_N  # nothing lost, nothing foreign
    if doubled:
        # Seen in about one run in four on Kafka 4.1, after the SIGKILL and (rarer) after the
        # graceful restart: a batch in flight at the outage is retried with the same producer
        # id, epoch and sequence numbers, and the restarted broker appends it a second time.
        # The producers' part is what is checked here: every copy is the same batch (same
        # identity), never a record sent again under a new one.
        batches = _batches(own_broker, topic, settings.topics.symbol_partitions)
        for value, copies_at in doubled.items():
            identities = {_identity_at(batches[p], o) for p, o in copies_at}
            assert len(identities) == 1, (value, copies_at, identities)
        after_kill = sum(1 for copies_at in doubled.values()
                         if any(o >= before_kill[p] for p, o in copies_at))
        pytest.xfail(f"the broker appended retried batches again: "
                     f"{sum(len(a) - 1 for a in doubled.values())} records written twice "
                     f"({after_kill} around the SIGKILL, {len(doubled) - after_kill} around "
                     f"the graceful restart), each copy with the same producer id and "
                     f"sequence numbers: {list(doubled.values())[:3]}")
    assert len(records) == DIRECT_N + REPLAY_N
