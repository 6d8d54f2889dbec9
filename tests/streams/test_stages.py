"""The worker's stages without Kafka: decoding, dead letters, fan-out, reactions, recovery."""

from __future__ import annotations

import base64

import orjson

from streams.late import LatePath
from streams.records import InRecord
from streams.stages import HeadlineStage, ReactionStage
from tariffmon.contract import ClassifiedHeadline, DeadLetter, Reaction, ReactionRequest
from tariffmon.settings import load_settings
from tests.streams.market import T0, expected_reactions, pause_headline, ticks

SETTINGS = load_settings()
TOPICS = SETTINGS.topics
NOW = 1_800_000_000.0  # a fixed "wall clock" for the future-timestamp bound


def _rec(topic: str, value: bytes, offset: int = 0, partition: int = 0, ts: int = T0,
         key: bytes | None = None) -> InRecord:
    """A consumed record keyed as the contract says (by symbol for ticks and requests)."""
    if key is None:
        try:
            key = str(orjson.loads(value).get("symbol") or "k").encode()
        except orjson.JSONDecodeError:
            key = b"k"
    return InRecord(topic, partition, offset, ts, key, value)


def test_headline_stage_classifies_and_fans_out_a_tariff_story() -> None:
    stage = HeadlineStage(SETTINGS, clock=lambda: NOW)
    out = stage.process(_rec(TOPICS.headlines, pause_headline().encode()))
    by_topic: dict[str, list[bytes]] = {}
    for r in out.records:
        by_topic.setdefault(r.topic, []).append(r.value)
    ch = ClassifiedHeadline.decode(by_topic[TOPICS.classified][0])
    assert ch.is_tariff and ch.direction == "de-escalation" and not ch.duplicate
    reqs = [ReactionRequest.decode(v) for v in by_topic[TOPICS.requests]]
    assert sorted(r.symbol for r in reqs) == ["N225", "USDJPY"]
    assert all(r.t0 == T0 and r.headline_id == "h-pause" for r in reqs)
    # the same story from another outlet: classified, a duplicate, not measured again
    again = stage.process(_rec(TOPICS.headlines, pause_headline("h-2", T0 + 60_000, "other")
                               .encode(), offset=1))
    assert [r.topic for r in again.records] == [TOPICS.classified]
    assert ClassifiedHeadline.decode(again.records[0].value).cluster_id == "h-pause"


def test_bad_headline_goes_to_the_dead_letter_topic_with_its_bytes() -> None:
    stage = HeadlineStage(SETTINGS, clock=lambda: NOW)
    raw = b'{"v":1,"id":"x","ts":1744219080000,"source":"s","title":""}'
    out = stage.process(_rec(TOPICS.headlines, raw, offset=41, partition=0))
    [rec] = out.records
    assert rec.topic == TOPICS.deadletter and rec.key == f"{TOPICS.headlines}|0|41"
    dl = DeadLetter.decode(rec.value)
    assert dl.reason == "empty_text" and "title" in dl.error
    assert base64.b64decode(dl.value_b64) == raw and dl.offset == 41


def test_reaction_stage_matches_the_core_and_dead_letters_bad_ticks() -> None:
    stage = ReactionStage(SETTINGS, clock=lambda: NOW)
    tick_list = ticks("USDJPY", T0 - 3 * 3_600_000, 5 * 3_600, seed=3, jump_at=T0)
    fanned = HeadlineStage(SETTINGS, clock=lambda: NOW).process(
        _rec(TOPICS.headlines, pause_headline().encode()))
    [req] = [ReactionRequest.decode(r.value) for r in fanned.records
             if r.topic == TOPICS.requests and r.key == "USDJPY"]
    records = [_rec(TOPICS.ticks, t.encode(), i, 1, t.ts) for i, t in enumerate(tick_list)]
    records.insert(100, _rec(TOPICS.ticks, b"\xff\xfe not json", 10**6, 1))
    records.insert(200, _rec(TOPICS.requests, req.encode(), 0, 1))
    out = stage.process_batch(records[:5_000])
    out2 = stage.process_batch(records[5_000:])
    reactions = {r.key: Reaction.decode(r.value) for r in out.records + out2.records
                 if r.topic == TOPICS.reactions}
    dead = [DeadLetter.decode(r.value) for r in out.records if r.topic == TOPICS.deadletter]
    assert [d.reason for d in dead] == ["bad_json"] and dead[0].value_text is None
    want = expected_reactions(SETTINGS, tick_list, [pause_headline()])
    assert {k: v for k, v in want.items() if v.symbol == "USDJPY"} == reactions
    assert reactions["h-pause|USDJPY|3600"].significant


def test_recovery_rebuilds_state_without_publishing_again() -> None:
    tick_list = ticks("USDJPY", T0 - 3 * 3_600_000, 4 * 3_600, seed=4, jump_at=T0)
    req = ReactionRequest("h", "h", "USDJPY", T0, "pause", (), "de-escalation", 5.0)
    records = [_rec(TOPICS.ticks, t.encode(), i, 2, t.ts) for i, t in enumerate(tick_list)]
    records.insert(0, _rec(TOPICS.requests, req.encode(), 0, 2, T0))
    cut = 3 * 3_600 + 30  # the request and 30 s of ticks after t0 were processed
    whole = ReactionStage(SETTINGS, clock=lambda: NOW).process_batch(records)
    restarted = ReactionStage(SETTINGS, clock=lambda: NOW)
    restarted.recover(2, records[:cut])
    after = restarted.process_batch(records[cut:])
    # what the crashed worker had already published (before the cut) is not sent again
    later = [r for r in whole.records if r.timestamp_ms >= records[cut].timestamp_ms]
    assert [r.key for r in after.records] == [r.key for r in later]
    assert [r.value for r in after.records] == [r.value for r in later]
    assert any(r.topic == TOPICS.reactions for r in later)


def test_tick_from_the_future_is_dead_lettered_and_does_not_block_the_symbol() -> None:
    stage = ReactionStage(SETTINGS, clock=lambda: T0 / 1000)
    real = ticks("USDJPY", T0 - 60_000, 30, seed=9)
    bogus = real[0].__class__("USDJPY", T0 + 3_600_000, 150.0, "test")  # an hour ahead
    records = [_rec(TOPICS.ticks, bogus.encode(), 0, 1, bogus.ts)]
    records += [_rec(TOPICS.ticks, t.encode(), i + 1, 1, t.ts) for i, t in enumerate(real)]
    out = stage.process_batch(records)
    dead = [DeadLetter.decode(r.value) for r in out.records if r.topic == TOPICS.deadletter]
    assert [(d.offset, d.reason) for d in dead] == [(0, "ts_range")]
    assert stage.engine(1).latest_ts("USDJPY") == real[-1].ts


def test_headline_the_engine_cannot_measure_goes_to_the_kafka_read_back_path() -> None:
    stage = ReactionStage(SETTINGS, clock=lambda: NOW)
    tick_list = ticks("USDJPY", T0, 4 * 3_600, seed=11)
    req = ReactionRequest("early", "early", "USDJPY", T0 - 60_000, "t", (), "escalation", 5.0)
    records = [_rec(TOPICS.requests, req.encode(), 7, 1, req.t0)]
    records += [_rec(TOPICS.ticks, t.encode(), i, 1, t.ts) for i, t in enumerate(tick_list)]
    out = stage.process_batch(records)
    assert [(late.reason, late.record.offset) for late in out.late] == [
        ("no_price_before_t0", 7)]
    assert not [r for r in out.records if r.topic == TOPICS.deadletter]
    # Kafka has no earlier tick either: every horizon is dead-lettered with that reason
    late_path = LatePath(stage.params, lambda partition, symbol, from_ts, t0: tick_list)
    [(late, res)] = late_path.measure(out.late)
    [dead] = [DeadLetter.decode(r.value) for r in stage.late_result(late, res)]
    assert dead.reason == "no_price_before_t0" and dead.offset == 7


def test_restart_restores_story_clusters_as_published() -> None:
    first = HeadlineStage(SETTINGS, clock=lambda: NOW)
    out = first.process(_rec(TOPICS.headlines, pause_headline().encode()))
    published = [ClassifiedHeadline.decode(r.value) for r in out.records
                 if r.topic == TOPICS.classified]
    restarted = HeadlineStage(SETTINGS, clock=lambda: NOW)
    assert restarted.restore(published) == 1
    again = restarted.process(_rec(TOPICS.headlines, pause_headline("h-3", T0 + 120_000, "x")
                                   .encode(), offset=2))
    ch = ClassifiedHeadline.decode(again.records[0].value)
    assert ch.duplicate and ch.cluster_id == "h-pause"
    assert [r.topic for r in again.records] == [TOPICS.classified]  # not measured twice
