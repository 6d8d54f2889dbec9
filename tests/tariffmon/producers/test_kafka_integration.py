"""Producers against the real broker: event-time timestamps, order, resume, replay, record."""

from __future__ import annotations

import itertools
import json
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from prometheus_client import CollectorRegistry

from tariffmon.contract import Tick, loads
from tariffmon.producers.headlines.feeds import FeedSource, fetch_url
from tariffmon.producers.headlines.poller import HeadlinePoller, SeenIds
from tariffmon.producers.kafka_producer import StopFlag, TopicProducer
from tariffmon.producers.metrics import ProducerMetrics
from tariffmon.producers.record import record_records
from tariffmon.producers.replay import replay
from tariffmon.producers.sample import HEADLINES_FILE, TICKS_FILE
from tariffmon.producers.ticks.runner import BarPoller
from tariffmon.producers.watermarks import Watermarks, watermarks_from_records
from tariffmon.recorded import RecordedEvent, merge_events, read_events, write_events
from tariffmon.settings import PROJECT_ROOT, Settings
from tariffmon.topic_reader import read_range, read_tail
from tests.kafka_helpers import consume_all, wait_until

from .conftest import FEEDS, settings_env

pytestmark = pytest.mark.integration

SAMPLE = PROJECT_ROOT / "data" / "sample"
SYMBOLS = {"USDJPY": "JPY=X", "N225": "^N225"}


def small_recording(tmp_path: Path, n_ticks: int) -> list[Path]:
    """The first ``n_ticks`` sample ticks and the sample's headlines of that span."""
    ticks = list(itertools.islice(read_events(SAMPLE / TICKS_FILE), n_ticks))
    end = ticks[-1].ts
    heads = [e for e in read_events(SAMPLE / HEADLINES_FILE) if e.ts <= end]
    heads.append(RecordedEvent("headlines", "h-test", ticks[10].ts,
                               {"v": 1, "id": "h-test", "ts": ticks[10].ts, "source": "test",
                                "title": "US and Japan open tariff talks"}))
    heads.sort(key=lambda e: e.ts)
    paths = [tmp_path / "ticks.jsonl.gz", tmp_path / "heads.jsonl"]
    write_events(paths[0], ticks)
    write_events(paths[1], heads)
    return paths


def topics_of(settings: Settings) -> dict[str, str]:
    return settings.topics.all_topics()


def record_to(settings: Settings, out: Path, streams: tuple[str, ...] = ("ticks", "headlines")
              ) -> int:
    names = topics_of(settings)
    by_topic = {names[s]: s for s in streams}
    return record_records(read_range(settings, list(by_topic)), by_topic, out)


def test_published_records_carry_event_time_and_are_counted(make_settings: Any) -> None:
    settings = make_settings()
    registry = CollectorRegistry()
    ticks = [Tick(symbol="USDJPY", ts=1743624000000 + i * 1000, price=149.0 + i / 100,
                  source="test") for i in range(20)]
    with TopicProducer(settings, ProducerMetrics(registry)) as producer:
        for t in ticks:
            producer.publish_message(settings.topics.ticks, t)
        producer.flush(30)
        assert producer.summary()["acked"] == 20
    records = consume_all(settings, settings.topics.ticks, expected_count=20)
    assert [r.timestamp for r in records] == [t.ts for t in ticks]
    assert [Tick.decode(r.value) for r in records] == ticks
    assert {r.key for r in records} == {b"USDJPY"}
    assert registry.get_sample_value("tariffmon_producer_messages_sent_total",
                                     {"topic": settings.topics.ticks}) == 20


def test_replay_keeps_event_time_and_key_order_and_round_trips(
    make_settings: Any, tmp_path: Path
) -> None:
    paths = small_recording(tmp_path, 1_500)
    merged = list(merge_events(paths))
    first = make_settings()
    with TopicProducer(first) as producer:
        result = replay(paths, producer, topics_of(first))
    assert result.acked == result.sent == result.read == len(merged) and result.failed == 0

    records = consume_all(first, first.topics.ticks)
    by_key: dict[bytes, list[Any]] = defaultdict(list)
    for r in sorted(records, key=lambda r: (r.partition, r.offset)):
        assert r.timestamp == loads(r.value)["ts"]  # Kafka timestamp = event time
        by_key[r.key].append(r)
    for key, recs in by_key.items():
        expected = [e.value for e in merged if e.stream == "ticks" and e.key == key.decode()]
        assert [loads(r.value) for r in recs] == expected  # per-key order kept

    rec1 = tmp_path / "rec1.jsonl.gz"
    assert record_to(first, rec1) == len(merged)
    lines1 = [e.to_line() for e in read_events(rec1)]
    assert sorted(lines1) == sorted(e.to_line() for e in merged)

    second = make_settings()
    with TopicProducer(second) as producer:
        replay([rec1], producer, topics_of(second))
    rec2 = tmp_path / "rec2.jsonl.gz"
    record_to(second, rec2)
    assert [e.to_line() for e in read_events(rec2)] == lines1


def test_replay_range_and_paced_speed(make_settings: Any, tmp_path: Path) -> None:
    paths = small_recording(tmp_path, 300)
    events = list(merge_events(paths))
    lo, hi = events[50].ts, events[120].ts
    wanted = [e for e in events if lo <= e.ts < hi]
    settings = make_settings()
    sleeps: list[float] = []
    with TopicProducer(settings) as producer:
        # the sleep function is recorded, not slept: pacing is checked without wall time
        result = replay(paths, producer, topics_of(settings), speed=10.0, from_ts=lo,
                        to_ts=hi, sleep=lambda s: sleeps.append(s))
    assert result.acked == len(wanted)
    # paced: waits were asked for, never beyond the event-time span / speed
    assert sleeps and all(0 < s <= (hi - lo) / 1000 / 10 for s in sleeps)
    records = consume_all(settings, settings.topics.ticks)
    assert sorted(r.timestamp for r in records) == sorted(
        e.ts for e in wanted if e.stream == "ticks")


def test_tick_producer_resumes_from_the_topic(
    make_settings: Any, bars_by_ticker: dict[str, pd.DataFrame]
) -> None:
    settings = make_settings()
    now = int(pd.Timestamp("2025-04-03 06:00", tz="UTC").timestamp() * 1000)

    def fetch(ticker: str, period: str, interval: str) -> pd.DataFrame:
        return bars_by_ticker[ticker]

    def run_once(marks: Watermarks) -> int:
        with TopicProducer(settings) as producer:
            poller = BarPoller(SYMBOLS, fetch,
                               lambda t: producer.publish_message(settings.topics.ticks, t),
                               marks, now_ms=lambda: now)
            n, _ = poller.poll_once()
        return n

    assert run_once(Watermarks()) == 26
    # a restart: the watermarks come from the topic's tail, nothing is published again
    marks = watermarks_from_records(read_tail(settings, settings.topics.ticks))
    assert marks.get("USDJPY") == max(
        int(ts.timestamp() * 1000) + 60_000
        for ts, c in bars_by_ticker["JPY=X"]["Close"].items() if c == c)
    assert run_once(marks) == 0
    assert len(consume_all(settings, settings.topics.ticks)) == 26


def test_headline_producer_resumes_from_the_topic(make_settings: Any) -> None:
    settings = make_settings()
    feeds = [FeedSource("wire", str(FEEDS / "rss2.xml")),
             FeedSource("policy", str(FEEDS / "atom.xml"))]

    def run_once(seen: SeenIds) -> int:
        with TopicProducer(settings) as producer:
            poller = HeadlinePoller(
                feeds, [], lambda h: producer.publish_message(settings.topics.headlines, h),
                seen, fetch=fetch_url, now_ms=lambda: 1_745_000_000_000)
            n, failed = poller.poll_once()
        assert failed == []
        return n

    assert run_once(SeenIds()) == 6
    seen = SeenIds.from_records(read_tail(settings, settings.topics.headlines))
    assert len(seen) == 6
    assert run_once(seen) == 0


def test_sigterm_during_replay_loses_nothing_acknowledged(
    make_settings: Any, tmp_path: Path
) -> None:
    settings = make_settings()
    paths = small_recording(tmp_path, 3_000)
    merged = list(merge_events(paths))
    span_s = (merged[-1].ts - merged[0].ts) / 1000
    speed = span_s / 8  # about eight seconds of replay: stopped well before the end
    cmd = [sys.executable, "-m", "tariffmon.cli.main", "replay", *map(str, paths),
           "--speed", f"{speed:.3f}", "--no-progress"]
    proc = subprocess.Popen(cmd, env=settings_env(settings), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, cwd=PROJECT_ROOT)
    try:
        def running() -> None:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""

        # wait until something is on the topic, then let it run a second and stop it mid-way
        wait_until(lambda: read_tail(settings, settings.topics.ticks, per_partition=1), 60,
                   "a tick published by the replay", alive=running)
        time.sleep(1.0)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM, err.decode()
    summary = json.loads(out.decode().strip().splitlines()[-1])
    assert summary["interrupted"] is True and summary["failed"] == 0
    assert summary["acked"] == summary["sent"]
    assert 0 < summary["acked"] < len(merged)
    # everything acknowledged is on the topics: exactly the first `sent` events
    on_topics = consume_all(settings, settings.topics.ticks) + consume_all(
        settings, settings.topics.headlines)
    got = sorted((r.key.decode(), r.timestamp, r.value) for r in on_topics)
    sent = merged[: summary["sent"]]
    assert got == sorted((e.key, e.ts, json.dumps(e.value, sort_keys=True,
                                                  separators=(",", ":")).encode())
                         for e in sent)
    # and the record command sees the same count
    rec = tmp_path / "after.jsonl"
    done = subprocess.run(
        [sys.executable, "-m", "tariffmon.cli.main", "record", "ticks", "headlines",
         "--out", str(rec)], env=settings_env(settings), capture_output=True, timeout=60,
        cwd=PROJECT_ROOT, check=False)
    assert done.returncode == 0, done.stderr.decode()
    assert sum(1 for _ in read_events(rec)) == summary["acked"]


def test_stop_flag_stops_a_replay_after_flushing(make_settings: Any, tmp_path: Path) -> None:
    settings = make_settings()
    paths = small_recording(tmp_path, 500)
    stop = StopFlag()
    seen = 0

    def progress(n: int) -> None:
        nonlocal seen
        seen += n
        if seen >= 256:
            stop.set()

    with TopicProducer(settings) as producer:
        result = replay(paths, producer, topics_of(settings), stop=stop, progress=progress)
    assert result.interrupted and result.acked == result.sent < 500
    assert len(consume_all(settings, settings.topics.ticks)) + len(
        consume_all(settings, settings.topics.headlines)) == result.acked
