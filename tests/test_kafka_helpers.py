"""The bounded waits of tests/kafka_helpers.py: ``wait_until`` and ``committed_offsets``."""

from __future__ import annotations

import itertools
import time

import pytest
from kafka import KafkaConsumer, TopicPartition
from kafka.structs import OffsetAndMetadata

from tariffmon.kafkaclient import client_config
from tests.conftest import MakeSettings
from tests.kafka_helpers import committed_offsets, produce_raw, wait_until


def test_wait_until_returns_the_first_true_value() -> None:
    calls = itertools.count(1)
    got = wait_until(lambda: [n for n in [next(calls)] if n >= 3], 5, "three calls",
                     poll_s=0.01)
    assert got == [3]


def test_wait_until_fails_with_what_it_waited_for_and_saw() -> None:
    t0 = time.monotonic()
    with pytest.raises(AssertionError, match=r"not the answer within 0.2 s; last seen: \{\}"):
        wait_until(dict, 0.2, "the answer", poll_s=0.05)
    assert 0.2 <= time.monotonic() - t0 < 2


def test_wait_until_with_a_condition_on_the_value() -> None:
    calls = itertools.count(1)
    assert wait_until(lambda: next(calls), 5, "a third call", until=lambda n: n >= 3,
                      poll_s=0.01) == 3
    with pytest.raises(AssertionError, match=r"last seen: \{0: 1\}"):
        wait_until(lambda: {0: 1}, 0.1, "two", until=lambda d: sum(d.values()) >= 2,
                   poll_s=0.02)


def test_wait_until_stops_early_when_alive_raises() -> None:
    def dead() -> None:
        raise RuntimeError("the child exited")

    with pytest.raises(RuntimeError, match="exited"):
        wait_until(lambda: False, 30, "never", alive=dead)


@pytest.mark.integration
def test_committed_offsets_are_the_groups(make_settings: MakeSettings) -> None:
    settings = make_settings()
    topic = settings.topics.headlines
    produce_raw(settings, topic, [(b"k", b"v", None)] * 3)
    assert committed_offsets(settings, topic) == {}  # the worker's group: nothing yet
    consumer = KafkaConsumer(**client_config(settings.kafka), group_id=settings.worker.app_id,
                             enable_auto_commit=False)
    try:
        consumer.commit({TopicPartition(topic, 0): OffsetAndMetadata(2, "", -1)})
    finally:
        consumer.close(autocommit=False)
    assert committed_offsets(settings, topic) == {0: 2}
    assert committed_offsets(settings, settings.topics.ticks) == {}
    assert committed_offsets(settings, topic, group="another-group") == {}
