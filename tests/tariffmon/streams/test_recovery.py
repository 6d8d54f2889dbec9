"""The rebuild after a restart, directly against the real broker, at many commit positions.

A stage that rebuilds a partition from Kafka (``tariffmon.streams.recovery.rebuild_partition``) and
then processes the rest of the input must publish exactly what an uninterrupted stage
publishes after that point: whatever order the ticks and requests arrived in, wherever each
topic was committed, over a weekend close (a gap reaction whose p0 and baseline lie two days
before the reopen) and with headlines that arrive beyond the lateness bound (measured on
ticks read back from Kafka, through the same late path as the worker).
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import pytest
from kafka import KafkaConsumer, TopicPartition
from kafka.structs import OffsetAndMetadata

from tariffmon.contract import ReactionRequest, Tick
from tariffmon.kafkaclient import client_config
from tariffmon.settings import Settings
from tariffmon.streams.late import LatePath, kafka_tick_source
from tariffmon.streams.records import InRecord, OutRecord
from tariffmon.streams.recovery import rebuild_partition
from tariffmon.streams.stages import ReactionStage
from tests.conftest import MakeSettings
from tests.kafka_helpers import produce_raw
from tests.tariffmon.streams.market import ticks

pytestmark = pytest.mark.integration

#: Friday 2025-04-04 18:00 UTC; USD/JPY closes at 21:00 and reopens Sunday 21:00
FRI = 1_743_789_600_000
HOUR = 3_600_000
NOW = (FRI + 4 * 86_400_000) / 1000


def _market() -> tuple[list[Tick], list[ReactionRequest]]:
    friday = ticks("USDJPY", FRI, 3 * 3_600, seed=21, jump_at=FRI + 2 * HOUR)
    sunday = ticks("USDJPY", FRI + 51 * HOUR, 3 * 3_600, seed=22, jump_at=FRI + 51 * HOUR + 600_000)
    requests = [
        ReactionRequest(f"h{i}", f"h{i}", "USDJPY", t0, f"tariff headline {i}", (),
                        "escalation", 5.0)
        for i, t0 in enumerate([FRI + 2 * HOUR, FRI + 2 * HOUR + 120_000,  # open, Friday
                                FRI + 18 * HOUR,  # Saturday: a gap reaction at the reopen
                                FRI + 51 * HOUR + 300_000, FRI + 52 * HOUR + 1_800_000])
    ]
    return friday + sunday, requests


def _arrival(order: str, tick_recs: list[tuple[str, Tick | ReactionRequest]],
             ) -> list[tuple[str, Tick | ReactionRequest]]:
    t = [x for x in tick_recs if x[0] == "ticks"]
    r = [x for x in tick_recs if x[0] == "requests"]
    if order == "requests_first":
        return r + t
    if order == "ticks_first":
        return t + r
    return sorted(tick_recs, key=lambda x: (x[1].ts if isinstance(x[1], Tick) else x[1].t0,
                                            x[0] != "requests"))


def _drive(settings: Settings, stage: ReactionStage, records: Sequence[InRecord],
           ) -> list[OutRecord]:
    """What the react agent does with a batch (without Faust): stage, then the late path."""
    late = LatePath(stage.params, kafka_tick_source(settings, stage.decoder, stage.params))
    out: list[OutRecord] = []
    for i in range(0, len(records), 2_000):
        res = stage.process_batch(records[i : i + 2_000])
        assert not res.failed
        out += res.records
        for lr, measured in late.measure(res.late):
            out += stage.late_result(lr, measured)
    return out


def _commit(settings: Settings, offsets: dict[str, int]) -> None:
    consumer = KafkaConsumer(**client_config(settings.kafka), group_id=settings.worker.app_id,
                             enable_auto_commit=False)
    try:
        consumer.commit({TopicPartition(topic, 0): OffsetAndMetadata(off, "", -1)
                         for topic, off in offsets.items()})
    finally:
        consumer.close()


def _by_key(records: Sequence[OutRecord], topic: str) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for r in records:
        if r.topic == topic:
            assert out.get(r.key, r.value) == r.value, f"{r.key} with two values"
            out[r.key] = r.value
    return out


@pytest.mark.parametrize("order", ["requests_first", "ticks_first", "time_merged"])
def test_rebuild_at_any_commit_position_publishes_what_an_uninterrupted_worker_does(
    order: str, make_settings: MakeSettings
) -> None:
    settings = make_settings(topics={"symbol_partitions": 1},
                             engine={"lateness_s": 2 * 3_600})
    tick_list, requests = _market()
    items: list[tuple[str, Tick | ReactionRequest]] = [("ticks", t) for t in tick_list]
    items += [("requests", r) for r in requests]
    arrived = _arrival(order, items)
    topic = {"ticks": settings.topics.ticks, "requests": settings.topics.requests}
    # publish in arrival order; remember each record's coordinates
    offsets = {"ticks": 0, "requests": 0}
    records: list[InRecord] = []
    for stream, msg in arrived:
        ts = msg.ts if isinstance(msg, Tick) else msg.t0
        records.append(InRecord(topic[stream], 0, offsets[stream], ts, msg.key.encode(),
                                msg.encode()))
        offsets[stream] += 1
    for stream in topic:
        produce_raw(settings, topic[stream], [(r.key, r.value or b"", r.timestamp_ms)
                                              for r in records if r.topic == topic[stream]])
    whole = _drive(settings, ReactionStage(settings, clock=lambda: NOW), records)
    want = _by_key(whole, settings.topics.reactions)
    assert len(want) == len(requests) * 4
    assert any(b'"gap":true' in v for v in want.values())

    rnd = random.Random(f"{order}-cuts")
    cuts = sorted({rnd.randrange(1, len(records)) for _ in range(6)} | {len(records) // 2})
    for cut in cuts:
        done = records[:cut]
        committed = {t: sum(1 for r in done if r.topic == t) for t in topic.values()}
        _commit(settings, committed)
        before = _drive(settings, ReactionStage(settings, clock=lambda: NOW), done)
        restarted = ReactionStage(settings, clock=lambda: NOW)
        rebuilt = rebuild_partition(settings, restarted, 0)
        assert rebuilt.stop == committed
        after = _drive(settings, restarted, records[cut:])
        got = _by_key(before, settings.topics.reactions)
        for key, value in _by_key(after, settings.topics.reactions).items():
            assert got.setdefault(key, value) == value, f"cut {cut}: {key} changed"
        assert got == want, (f"cut {cut} ({committed}): lost {sorted(set(want) - set(got))}, "
                             f"extra {sorted(set(got) - set(want))}")
        dead = [r for r in before + after if r.topic == settings.topics.deadletter]
        assert not dead, f"cut {cut}: {dead[:2]}"
