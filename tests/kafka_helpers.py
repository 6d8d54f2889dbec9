"""Helpers for tests that talk to the real Kafka broker (see tests/conftest.py).

Everything here is bounded: each loop has a timeout and fails the test with what it saw.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import ExitStack
from typing import Any, TypeVar

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError

from tariffmon.contract import Message
from tariffmon.kafkaclient import admin_client, client_config
from tariffmon.settings import Settings

T = TypeVar("T")


def wait_until(
    probe: Callable[[], T],
    timeout_s: float,
    what: str,
    *,
    until: Callable[[T], object] = bool,
    alive: Callable[[], object] | None = None,
    poll_s: float = 0.2,
) -> T:
    """Call ``probe`` until ``until`` holds for what it returns (by default: until it returns
    something true); return that value.

    Fails the test after ``timeout_s`` with ``what`` and the last value ``probe`` returned.
    ``alive``, when given, is called each round and may raise to stop early (e.g. a child
    process that exited).  Use this instead of a fixed sleep before checking a state.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        seen = probe()
        if until(seen):
            return seen
        if alive is not None:
            alive()
        if time.monotonic() >= deadline:
            raise AssertionError(f"not {what} within {timeout_s:g} s; last seen: {seen!r}")
        time.sleep(poll_s)


def committed_offsets(settings: Settings, topic: str, group: str | None = None) -> dict[int, int]:
    """A consumer group's committed offset per partition of ``topic`` (missing: none yet).

    ``group`` defaults to the worker's (Faust's group id is the app id).  A coordinator not
    available yet (a fresh broker without its offsets topic) reads as nothing committed.
    """
    group = group or settings.worker.app_id
    admin = admin_client(settings.kafka)
    try:
        offsets = admin.list_group_offsets({group: None})
    except KafkaError as exc:
        if not exc.retriable:
            raise
        return {}
    finally:
        admin.close()
    return {tp.partition: meta.offset for tp, meta in offsets.get(group, {}).items()
            if tp.topic == topic and meta.offset >= 0}


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now (the OS picks it)."""
    return free_ports(1, host)[0]


def free_ports(n: int, host: str = "127.0.0.1") -> list[int]:
    """``n`` distinct free TCP ports (all sockets held open until every port is picked)."""
    with ExitStack() as stack:
        ports = []
        for _ in range(n):
            s = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            s.bind((host, 0))
            ports.append(s.getsockname()[1])
        return ports


def event_ts(msg: Message) -> int:
    """The event time of a message: the Kafka timestamp it is published with."""
    for name in ("ts", "t0"):
        value = getattr(msg, name, None)
        if isinstance(value, int):
            return value
    raise AssertionError(f"{type(msg).__name__} has no event time field")


def produce_raw(
    settings: Settings,
    topic: str,
    records: Iterable[tuple[bytes | None, bytes, int | None]],
    **producer_config: Any,
) -> int:
    """Publish ``(key, value, timestamp_ms)`` records with acks=all; returns how many."""
    cfg: dict[str, Any] = {"acks": "all", "linger_ms": 5, **producer_config}
    producer = KafkaProducer(**client_config(settings.kafka), **cfg)
    try:
        futures = [
            producer.send(topic, key=key, value=value, timestamp_ms=ts)
            for key, value, ts in records
        ]
        producer.flush(timeout=30)
        for f in futures:
            f.get(timeout=30)
    finally:
        producer.close(timeout=10)
    return len(futures)


def produce_messages(settings: Settings, topic: str, messages: Iterable[Message]) -> int:
    """Publish contract messages keyed by ``.key`` with Kafka timestamp = event time."""
    return produce_raw(
        settings,
        topic,
        ((m.key.encode(), m.encode(), event_ts(m)) for m in messages),  # type: ignore[attr-defined]
    )


def consume_all(
    settings: Settings,
    topic: str,
    expected_count: int | None = None,
    timeout: float = 30.0,
) -> list[Any]:
    """Read a topic from the beginning without a consumer group.

    With ``expected_count``, return as soon as that many records arrived (fails the test if
    they do not within ``timeout``); without it, read up to the end offsets at call time.
    Records are kafka-python ``ConsumerRecord``s, ordered by partition then offset.
    """
    deadline = time.monotonic() + timeout
    consumer = KafkaConsumer(
        **client_config(settings.kafka),
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    try:
        parts = _partitions(consumer, topic, deadline)
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        end = consumer.end_offsets(parts) if expected_count is None else None
        records: list[Any] = []
        while True:
            if expected_count is not None and len(records) >= expected_count:
                break
            if end is not None and all(consumer.position(tp) >= end[tp] for tp in parts):
                break
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"consume_all({topic!r}): got {len(records)} records in {timeout:g} s, "
                    f"expected {expected_count if expected_count is not None else end}"
                )
            for batch in consumer.poll(timeout_ms=200).values():
                records.extend(batch)
    finally:
        consumer.close(autocommit=False)
    return sorted(records, key=lambda r: (r.partition, r.offset))


def _partitions(consumer: Any, topic: str, deadline: float) -> Sequence[TopicPartition]:
    while True:
        ids = consumer.partitions_for_topic(topic)
        if ids:
            return [TopicPartition(topic, p) for p in sorted(ids)]
        if time.monotonic() >= deadline:
            raise AssertionError(f"topic {topic!r} has no partitions (does it exist?)")
        time.sleep(0.1)
