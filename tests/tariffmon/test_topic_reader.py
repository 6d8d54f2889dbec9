"""tariffmon.topic_reader against the real broker: read_tail and read_range.

Both assign partitions explicitly (no consumer group), read only committed data
(``read_committed``) and stop by themselves: at the end offsets seen when they started, or,
when following, once no record arrived for the idle timeout.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from typing import Any

import pytest
from kafka import KafkaProducer

from tariffmon.errors import ConfigError
from tariffmon.kafkaclient import client_config, ensure_topics
from tariffmon.settings import Settings
from tariffmon.topic_reader import read_range, read_tail
from tests.conftest import MakeSettings

pytestmark = pytest.mark.integration

PARTS = 3  # settings.topics.symbol_partitions by default: the ticks topic


def _produce(settings: Settings, topic: str, values: Iterable[tuple[int, bytes]],
             **config: Any) -> None:
    """Publish ``(partition, value)`` pairs with acks=all and wait for every ack."""
    producer = KafkaProducer(**client_config(settings.kafka), acks="all", linger_ms=5,
                             **config)
    try:
        futures = [producer.send(topic, value=v, partition=p) for p, v in values]
        producer.flush(timeout=30)
        for f in futures:
            f.get(timeout=30)
    finally:
        producer.close(timeout=10)


def _values(records: Iterable[Any]) -> list[bytes]:
    return [r.value for r in records]


def _by_partition(records: Iterable[Any]) -> dict[int, list[bytes]]:
    out: dict[int, list[bytes]] = {}
    for r in records:
        out.setdefault(r.partition, []).append(r.value)
    return out


def _fill(settings: Settings, counts: dict[int, int]) -> dict[int, list[bytes]]:
    """``counts[p]`` records on partition ``p`` of the ticks topic; the values per partition."""
    values = {p: [f"p{p}-{i:03d}".encode() for i in range(n)] for p, n in counts.items()}
    _produce(settings, settings.topics.ticks, [(p, v) for p, vs in values.items() for v in vs])
    return values


def test_an_empty_topic_reads_as_nothing(make_settings: MakeSettings) -> None:
    settings = make_settings()
    topic = settings.topics.ticks
    t0 = time.monotonic()
    assert read_tail(settings, topic, timeout_s=10) == []
    assert list(read_range(settings, [topic], timeout_s=10)) == []
    assert list(read_range(settings, [topic], from_beginning=False, timeout_s=10)) == []
    assert time.monotonic() - t0 < 10  # nothing to wait for: no stall until a timeout


def test_a_missing_topic(make_settings: MakeSettings) -> None:
    settings = make_settings(create_topics=False)
    missing = f"test.missing.{uuid.uuid4().hex[:8]}"
    assert read_tail(settings, missing, timeout_s=1) == []  # no tail yet: not an error
    with pytest.raises(ConfigError) as info:
        list(read_range(settings, [missing], timeout_s=1))
    assert info.value.setting == "topics"
    assert repr(missing) in str(info.value)
    # one missing topic among existing ones: still an error naming that one
    ensure_topics(settings, {settings.topics.ticks: PARTS})
    with pytest.raises(ConfigError, match=missing):
        list(read_range(settings, [settings.topics.ticks, missing], timeout_s=1))
    # and reading did not create it (the broker does not auto-create topics)
    assert read_tail(settings, missing, timeout_s=1) == []


def test_read_range_returns_every_partition_in_offset_order(
    make_settings: MakeSettings,
) -> None:
    settings = make_settings()
    values = _fill(settings, {0: 7, 1: 0, 2: 12})
    got = list(read_range(settings, [settings.topics.ticks], timeout_s=20))
    assert len(got) == 19
    assert _by_partition(got) == {p: vs for p, vs in values.items() if vs}
    for p in (0, 2):  # offsets in order within each partition
        offsets = [r.offset for r in got if r.partition == p]
        assert offsets == sorted(offsets) == list(range(len(offsets)))
    # several topics at once: both topics' records
    _produce(settings, settings.topics.headlines, [(0, b"h1"), (0, b"h2")])
    both = list(read_range(settings, [settings.topics.ticks, settings.topics.headlines],
                           timeout_s=20))
    assert len(both) == 21
    assert [r.value for r in both if r.topic == settings.topics.headlines] == [b"h1", b"h2"]
    # from the end, without following: nothing
    assert list(read_range(settings, [settings.topics.ticks], from_beginning=False,
                           timeout_s=20)) == []


def test_read_range_stops_at_the_end_offsets_seen_at_start(
    make_settings: MakeSettings,
) -> None:
    settings = make_settings()
    _fill(settings, {0: 3, 1: 3, 2: 3})
    records = read_range(settings, [settings.topics.ticks], timeout_s=20)
    first = next(records)
    _fill(settings, {0: 5, 1: 5, 2: 5})  # published after the reader started
    rest = list(records)
    assert len([first, *rest]) == 9


@pytest.mark.parametrize("per_partition", [1, 4, 10, 50])
def test_read_tail_is_the_last_records_of_each_partition_oldest_first(
    make_settings: MakeSettings, per_partition: int
) -> None:
    settings = make_settings()
    values = _fill(settings, {0: 10, 1: 2, 2: 0})
    got = read_tail(settings, settings.topics.ticks, per_partition=per_partition,
                    timeout_s=20)
    want = {p: vs[-per_partition:] for p, vs in values.items() if vs}
    assert _by_partition(got) == want
    assert len(got) == sum(len(vs) for vs in want.values())


@pytest.mark.parametrize("max_messages", [1, 5, 19, 100])
def test_max_messages_bounds_the_count(make_settings: MakeSettings, max_messages: int) -> None:
    settings = make_settings()
    _fill(settings, {0: 7, 1: 0, 2: 12})
    got = list(read_range(settings, [settings.topics.ticks], max_messages=max_messages,
                          timeout_s=20))
    assert len(got) == min(max_messages, 19)
    # also when following: max_messages ends the read before any idle timeout
    t0 = time.monotonic()
    followed = list(read_range(settings, [settings.topics.ticks], follow=True,
                               idle_timeout_s=30, max_messages=min(max_messages, 19),
                               timeout_s=20))
    assert len(followed) == min(max_messages, 19)
    assert time.monotonic() - t0 < 20


def test_follow_reads_new_records_and_ends_when_idle(make_settings: MakeSettings) -> None:
    settings = make_settings()
    _fill(settings, {0: 2, 1: 2, 2: 2})
    idle = 1.5
    records = read_range(settings, [settings.topics.ticks], follow=True, idle_timeout_s=idle,
                         timeout_s=20)
    got = [next(records)]
    _produce(settings, settings.topics.ticks, [(1, b"late-1"), (2, b"late-2")])
    t0 = time.monotonic()
    got.extend(records)  # ends by itself once nothing arrived for `idle` seconds
    waited = time.monotonic() - t0
    assert len(got) == 8
    assert {b"late-1", b"late-2"} <= set(_values(got))
    assert idle <= waited < idle + 10


def test_follow_with_should_stop_ends_without_an_idle_timeout(
    make_settings: MakeSettings,
) -> None:
    settings = make_settings()
    _fill(settings, {0: 1})
    deadline = time.monotonic() + 2.0
    t0 = time.monotonic()
    got = list(read_range(settings, [settings.topics.ticks], follow=True, idle_timeout_s=None,
                          should_stop=lambda: time.monotonic() >= deadline, timeout_s=20))
    assert _values(got) == [b"p0-000"]
    assert 2.0 <= time.monotonic() - t0 < 12


def _transactional(settings: Settings) -> Any:
    producer = KafkaProducer(**client_config(settings.kafka), acks="all",
                             enable_idempotence=True,
                             transactional_id=f"test-topic-reader-{uuid.uuid4().hex[:8]}")
    producer.init_transactions()
    return producer


def test_only_committed_records_are_read(make_settings: MakeSettings) -> None:
    """read_committed: an aborted transaction's records are never returned, and an open
    one's are not either (reading stops at the last stable offset, without stalling)."""
    settings = make_settings()
    topic = settings.topics.ticks
    _produce(settings, topic, [(0, b"plain-0"), (1, b"plain-1")])
    producer = _transactional(settings)
    try:
        producer.begin_transaction()
        for p in range(PARTS):
            producer.send(topic, value=f"aborted-{p}".encode(), partition=p)
        producer.abort_transaction()
        producer.begin_transaction()
        for p in range(PARTS):
            producer.send(topic, value=f"committed-{p}".encode(), partition=p)
        producer.commit_transaction()
        _produce(settings, topic, [(2, b"plain-2")])

        want = {b"plain-0", b"plain-1", b"plain-2", b"committed-0", b"committed-1",
                b"committed-2"}
        ranged = _values(read_range(settings, [topic], timeout_s=20))
        assert sorted(ranged) == sorted(want)
        tail = _values(read_tail(settings, topic, per_partition=5, timeout_s=20))
        assert sorted(tail) == sorted(want)

        # an open transaction: its records are held back, and the read still ends
        producer.begin_transaction()
        producer.send(topic, value=b"open-0", partition=0)
        producer.flush(timeout=30)
        t0 = time.monotonic()
        ranged = _values(read_range(settings, [topic], timeout_s=10))
        assert sorted(ranged) == sorted(want)
        tail = _values(read_tail(settings, topic, per_partition=5, timeout_s=10))
        assert sorted(tail) == sorted(want)
        assert time.monotonic() - t0 < 10
        producer.commit_transaction()
        ranged = _values(read_range(settings, [topic], timeout_s=20))
        assert sorted(ranged) == sorted(want | {b"open-0"})
    finally:
        producer.close(timeout=10)
