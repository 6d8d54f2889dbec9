"""The worker's stages without Kafka: decoding, dead letters, fan-out, reactions, recovery."""

from __future__ import annotations

import base64

import orjson
import pytest
from prometheus_client import CollectorRegistry

from tariffmon.contract import (
    MAX_TS_MS,
    ClassifiedHeadline,
    DeadLetter,
    Headline,
    Reaction,
    ReactionRequest,
    Tick,
)
from tariffmon.core.engine import ReactionEngine
from tariffmon.metrics.worker import WorkerMetrics
from tariffmon.settings import load_settings
from tariffmon.streams.late import LatePath
from tariffmon.streams.records import InRecord
from tariffmon.streams.stages import HeadlineStage, ReactionStage
from tests.tariffmon.streams.market import T0, expected_reactions, pause_headline, ticks

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
    assert sorted(r.symbol for r in reqs) == sorted(SETTINGS.symbol_names())
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


def test_a_tick_keyed_other_than_its_symbol_is_a_bad_key_dead_letter() -> None:
    stage = ReactionStage(SETTINGS, clock=lambda: NOW)
    good = ticks("USDJPY", T0, 10, seed=2)
    keys = [b"N225", b"EURUSD", b"", b"\xff\xfe", None, b"USDJPY"]
    records = [InRecord(TOPICS.ticks, 1, i, t.ts, k, t.encode())
               for i, (t, k) in enumerate(zip(good, keys, strict=False))]
    out = stage.process_batch(records)
    dead = [DeadLetter.decode(r.value) for r in out.records if r.topic == TOPICS.deadletter]
    assert [(d.offset, d.reason) for d in dead] == [(i, "bad_key") for i in range(5)]
    # only the rightly keyed tick reached the engine
    assert stage.engine(1).latest_ts("USDJPY") == good[5].ts


def test_deeply_nested_values_are_dead_lettered_on_every_input_topic() -> None:
    deep = b'{"v":' + b"[" * 1000 + b"]" * 1000 + b"}"
    react = ReactionStage(SETTINGS, clock=lambda: NOW)
    out = react.process_batch([_rec(TOPICS.ticks, deep, 0, 1, key=b"USDJPY"),
                               _rec(TOPICS.requests, deep, 1, 1, key=b"USDJPY")])
    heads = HeadlineStage(SETTINGS, clock=lambda: NOW).process(_rec(TOPICS.headlines, deep, 2))
    dead = [DeadLetter.decode(r.value) for r in out.records + heads.records]
    assert [(d.offset, d.reason) for d in dead] == [(0, "bad_version"), (1, "bad_version"),
                                                    (2, "bad_version")]
    assert all(len(d.error) < 400 for d in dead)


def test_an_absurd_kafka_timestamp_gives_a_sendable_dead_letter() -> None:
    stage = ReactionStage(SETTINGS, clock=lambda: NOW)
    for ts in (2**63 - 1, -(2**63), 0):
        [rec] = stage.process_batch([_rec(TOPICS.ticks, b"{not json", 0, 1, ts)]).records
        assert 0 <= rec.timestamp_ms <= MAX_TS_MS
        assert DeadLetter.decode(rec.value).ts == max(0, ts)  # the original is kept


def test_prices_outside_the_band_are_dead_lettered_and_never_reach_the_engine() -> None:
    stage = ReactionStage(SETTINGS, clock=lambda: NOW)
    req = ReactionRequest("h", "h", "USDJPY", T0 + 1_000, "tariffs", (), "escalation", 5.0)
    prices = [(T0, 1e308), (T0 + 2_000, 1e-16), (T0 + 4_200_000, 1e-16)]
    records = [_rec(TOPICS.ticks, Tick("USDJPY", ts, p, "x").encode(), i, 1, ts)
               for i, (ts, p) in enumerate(prices)]
    records.insert(1, _rec(TOPICS.requests, req.encode(), 9, 1, req.t0))
    out = stage.process_batch(records)
    dead = [DeadLetter.decode(r.value) for r in out.records if r.topic == TOPICS.deadletter]
    assert [d.reason for d in dead] == ["price_range"] * 3
    assert not [r for r in out.records if r.topic == TOPICS.reactions]


def test_a_repeated_headline_id_arriving_late_twice_in_one_batch_is_measured_once() -> None:
    stage = ReactionStage(SETTINGS, clock=lambda: NOW)
    tick_list = ticks("USDJPY", T0 - 3 * 3_600_000, 12 * 3_600, seed=5)
    first = ReactionRequest("dup", "dup", "USDJPY", T0, "first title", (), "escalation", 5.0)
    again = ReactionRequest("dup", "dup", "USDJPY", T0 + 3_600_000, "another title", (),
                            "escalation", 5.0)
    stage.process_batch([_rec(TOPICS.ticks, t.encode(), i, 1, t.ts)
                         for i, t in enumerate(tick_list)])
    # both beyond the 6 h lateness bound: the engine sends them to the Kafka read-back path
    out = stage.process_batch([_rec(TOPICS.requests, first.encode(), 0, 1, first.t0),
                               _rec(TOPICS.requests, again.encode(), 1, 1, again.t0)])
    assert [late.request.t0 for late in out.late] == [T0]
    [(late, res)] = LatePath(stage.params, lambda p, s, f, t0: tick_list).measure(out.late)
    published = stage.late_result(late, res)
    reactions = [Reaction.decode(r.value) for r in published if r.topic == TOPICS.reactions]
    assert sorted(r.horizon_s for r in reactions) == [60, 300, 900, 3600]
    assert {r.t0 for r in reactions} == {T0} and {r.title for r in reactions} == {"first title"}
    # and as the backtest does: the repeat is ignored
    want = expected_reactions(SETTINGS, tick_list, [
        Headline(id="dup", ts=T0, source="a", title="US imposes new tariffs on Japan"),
        Headline(id="dup", ts=T0 + 3_600_000, source="b", title="US raises tariffs on Japan")])
    assert {r.t0 for r in want.values()} == {T0}


def test_a_failing_engine_dead_letters_its_records_and_marks_the_partition(
        monkeypatch: pytest.MonkeyPatch) -> None:
    stage = ReactionStage(SETTINGS, clock=lambda: NOW)
    good = ticks("USDJPY", T0, 6, seed=7)
    records = [_rec(TOPICS.ticks, t.encode(), i, 1, t.ts) for i, t in enumerate(good)]
    records.append(_rec(TOPICS.ticks, good[0].encode(), 0, 2, good[0].ts))

    def broken(self: ReactionEngine, run: object) -> None:
        raise ZeroDivisionError("a bug in the engine")

    monkeypatch.setattr(ReactionEngine, "on_tick_list", broken)
    out = stage.process_batch([*records[:3], records[-1]])
    assert out.failed == {1, 2}
    dead = [DeadLetter.decode(r.value) for r in out.records]
    assert {d.reason for d in dead} == {"internal_error"} and len(dead) == 4
    assert "ZeroDivisionError" in dead[0].error
    assert not stage.has_partition(1)  # rebuilt from Kafka before it is used again


def _counters(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every counter sample of a registry, by name and labels."""
    out = {}
    for family in registry.collect():
        if family.type == "counter":
            for s in family.samples:
                if s.name.endswith("_total"):
                    out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_a_rebuild_counts_nothing_twice() -> None:
    tick_list = ticks("USDJPY", T0 - 3 * 3_600_000, 5 * 3_600, seed=8, jump_at=T0)
    req = ReactionRequest("h", "h", "USDJPY", T0, "pause", (), "de-escalation", 5.0)
    records = [_rec(TOPICS.ticks, t.encode(), i, 1, t.ts) for i, t in enumerate(tick_list)]
    records.insert(3 * 3_600, _rec(TOPICS.requests, req.encode(), 0, 1, T0))
    records.insert(50, _rec(TOPICS.ticks, b"junk", 10**6, 1))
    once = CollectorRegistry()
    ReactionStage(SETTINGS, WorkerMetrics.from_settings(once, SETTINGS),
                  clock=lambda: NOW).process_batch(records)
    # the same input across a restart: the first worker processed up to the cut, the second
    # rebuilt its state from that part (outputs and metrics suppressed), then went on
    twice = CollectorRegistry()
    metrics = WorkerMetrics.from_settings(twice, SETTINGS)
    cut = 3 * 3_600 + 20
    ReactionStage(SETTINGS, metrics, clock=lambda: NOW).process_batch(records[:cut])
    restarted = ReactionStage(SETTINGS, metrics, clock=lambda: NOW)
    restarted.recover(1, records[:cut])
    restarted.process_batch(records[cut:])
    assert _counters(twice) == _counters(once)
    assert any(v > 0 for (name, _), v in _counters(once).items()
               if name == "tariffmon_reactions_total")


def test_a_late_headline_whose_horizons_are_not_on_kafka_yet_stays_pending() -> None:
    # a 10-minute lateness bound: a request 16 minutes late meets ticks on Kafka that cover
    # its 1-, 5- and 15-minute horizons but not yet the hour
    settings = load_settings(engine={"lateness_s": 600})
    stage = ReactionStage(settings, clock=lambda: NOW)
    tick_list = ticks("USDJPY", T0 - 3 * 3_600_000, 5 * 3_600, seed=12, jump_at=T0)
    head = pause_headline("slow")
    req = ReactionRequest("slow", "slow", "USDJPY", T0, head.title, (), "de-escalation", 5.0)
    cut = next(i for i, t in enumerate(tick_list) if t.ts > T0 + 16 * 60_000)
    recs = [_rec(TOPICS.ticks, t.encode(), i, 1, t.ts) for i, t in enumerate(tick_list)]
    stage.process_batch(recs[:cut])
    out = stage.process_batch([_rec(TOPICS.requests, req.encode(), 0, 1, T0)])
    [late] = out.late
    on_kafka = tick_list[:cut]  # what the live path processed is all Kafka holds so far
    source = lambda p, s, from_ts, t0: [t for t in on_kafka if t.ts >= from_ts]  # noqa: E731
    [(_, measured)] = LatePath(stage.params, source).measure([late])
    first = [Reaction.decode(r.value) for r in stage.late_result(late, measured)
             if r.topic == TOPICS.reactions]
    assert sorted(r.horizon_s for r in first) == [60, 300, 900] and measured.pending
    # the next live ticks complete the last horizon, with the backtest's value
    rest = stage.process_batch(recs[cut:])
    later = [Reaction.decode(r.value) for r in rest.records if r.topic == TOPICS.reactions]
    assert [r.horizon_s for r in later] == [3600] and not measured.pending
    assert not [r for r in rest.records if r.topic == TOPICS.deadletter]
    want = expected_reactions(settings, tick_list, [head])
    want_usd = {k: v for k, v in want.items() if v.symbol == "USDJPY"}
    got = {r.key: r for r in first + later}
    def measured_part(r: Reaction) -> tuple[object, ...]:
        # the request was built by hand: its tags are not the classifier's
        return (r.t0, r.p0, r.p1, r.ret, r.z, r.max_up, r.max_down, r.n_ticks, r.gap)

    assert {k: measured_part(v) for k, v in got.items()} == {
        k: measured_part(v) for k, v in want_usd.items()}


@pytest.mark.parametrize("seed", range(6))
def test_reactions_the_ticks_do_not_reach_yet_are_pending_not_dead_lettered(seed: int) -> None:
    """When the input ends before a horizon, its reaction waits: counted as pending."""
    import random

    rng = random.Random(seed)
    after_s = rng.choice([30, 200, 700, 2_000, 3_500, 4_000])
    tick_list = ticks("USDJPY", T0 - 3_600_000, 3_600 + after_s, seed=seed)
    head = pause_headline()
    expected = expected_reactions(SETTINGS, tick_list, [head])
    registry = CollectorRegistry()
    heads = HeadlineStage(SETTINGS, clock=lambda: NOW)
    react = ReactionStage(SETTINGS, WorkerMetrics(registry), clock=lambda: NOW)
    reqs = [r for r in heads.process(_rec(TOPICS.headlines, head.encode())).records
            if r.topic == TOPICS.requests]
    records = [_rec(TOPICS.ticks, t.encode(), i, 1, t.ts) for i, t in enumerate(tick_list)]
    at = rng.randrange(len(records) // 2, len(records))  # the request comes mid-stream
    records[at:at] = [_rec(TOPICS.requests, r.value, 10_000 + j, 1, T0, r.key.encode())
                      for j, r in enumerate(reqs)]
    out: list[bytes] = []
    dead: list[str] = []
    while records:
        cut = rng.randint(1, 3_000)
        batch, records = records[:cut], records[cut:]
        for r in react.process_batch(batch).records:
            if r.topic == TOPICS.deadletter:
                dead.append(DeadLetter.decode(r.value).reason)
            elif r.topic == TOPICS.reactions:
                out.append(r.value)
    assert dead == []
    got = {Reaction.decode(v).key: Reaction.decode(v) for v in out}
    assert got == expected
    horizons = len(SETTINGS.engine.horizons_s) * len(reqs)
    assert react.pending_reactions() == horizons - len(expected)
    assert registry.get_sample_value("tariffmon_reactions_pending") == horizons - len(expected)


@pytest.mark.parametrize("failing", ["USDJPY", "N225"])
def test_bulk_failure_defers_the_rest_of_the_partition_and_repeats_nothing(
        monkeypatch: pytest.MonkeyPatch, failing: str) -> None:
    """One symbol's run fails in a fetch: its records are dead-lettered, every other record
    of the partition is deferred with its outputs taken back, and processing the deferred
    records after the rebuild gives exactly what a fetch without the failing run gives."""
    usd = ticks("USDJPY", T0 - 3_600_000, 2 * 3_600, seed=8, jump_at=T0)
    nik = ticks("N225", T0 - 3_600_000, 2 * 3_600, seed=9)
    merged = sorted(usd + nik, key=lambda t: (t.ts, t.symbol))
    records = [_rec(TOPICS.ticks, t.encode(), i, 1, t.ts) for i, t in enumerate(merged)]
    heads = HeadlineStage(SETTINGS, clock=lambda: NOW).process(
        _rec(TOPICS.headlines, pause_headline().encode(), 0, 0, T0, key=b"h-pause")).records
    requests = [_rec(TOPICS.requests, o.value, k, 1, o.timestamp_ms)
                for k, o in enumerate(o for o in heads if o.topic == TOPICS.requests)]
    healthy = ReactionEngine.on_ticks

    def broken(self: ReactionEngine, symbol: str, *args: object) -> object:
        if symbol == failing:
            raise ZeroDivisionError("a bug in the engine")
        return healthy(self, symbol, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(ReactionEngine, "on_ticks", broken)
    stage = ReactionStage(SETTINGS, clock=lambda: NOW)
    first = stage.process_bulk(requests, records)
    assert first.failed == {1}
    dead = [DeadLetter.decode(r.value) for r in first.records]
    assert all(d.reason == "internal_error" for d in dead)
    failed_offsets = {d.offset for d in dead}
    assert failed_offsets == {r.offset for r, t in zip(records, merged, strict=True)
                              if t.symbol == failing}
    assert stage.processed == {}  # nothing advanced: the rebuild reads up to before this
    monkeypatch.setattr(ReactionEngine, "on_ticks", healthy)
    stage.recover(1, [])
    again = stage.process_bulk([r for r in first.deferred if r.topic == TOPICS.requests],
                               [r for r in first.deferred if r.topic == TOPICS.ticks])
    assert not again.failed
    kept = [r for r in records if r.offset not in failed_offsets]
    want = ReactionStage(SETTINGS, clock=lambda: NOW).process_bulk(requests, kept)
    assert sorted(r.key for r in again.records) == sorted(r.key for r in want.records)
    assert {r.key: r.value for r in again.records} == {r.key: r.value for r in want.records}
