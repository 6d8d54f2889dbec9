"""Replay's reading of recorded files: bad lines skipped and counted, unreadable files fail.

A fake producer stands in for Kafka (the integration tests replay onto a real broker).
"""

from __future__ import annotations

import gzip
import logging
from pathlib import Path
from typing import Any

import pytest

from tariffmon.backtest import run_backtest
from tariffmon.backtest import runner as backtest_runner
from tariffmon.errors import RecordedStreamError
from tariffmon.producers.kafka_producer import TopicProducer
from tariffmon.producers.replay import count_events, replay
from tariffmon.recorded import RecordedEvent, write_events
from tariffmon.settings import load_settings

TOPICS = {"ticks": "t.ticks", "headlines": "t.headlines"}


class FakeProducer:
    """What replay uses of a TopicProducer, recording what was published."""

    def __init__(self) -> None:
        self.published: list[tuple[str, str | None, bytes, int]] = []
        self.flushed = 0
        self.pending = 0

    def publish(self, topic: str, key: str | None, value: bytes, ts_ms: int) -> None:
        self.published.append((topic, key, value, ts_ms))

    def wait_pending_below(self, limit: int) -> None:
        pass

    def flush(self) -> None:
        self.flushed += 1

    def summary(self) -> dict[str, Any]:
        n = len(self.published)
        return {"sent": n, "acked": n, "failed": 0, "failures": {}}


def _producer(fake: FakeProducer) -> TopicProducer:
    return fake  # type: ignore[return-value]


def _tick(i: int) -> RecordedEvent:
    t = 1_743_552_000_000 + i * 1_000
    return RecordedEvent("ticks", "USDJPY", t, {
        "v": 1, "symbol": "USDJPY", "ts": t, "price": 149.0 + i / 100, "source": "test",
        "kind": "quote"})


EVENTS = [_tick(i) for i in range(40)]
BAD = [b"not json", b"[1, 2]", b'{"stream":"ticks","key":"USDJPY","value":{}}',
       b'{"stream":"ticks","key":"USDJPY","ts":1.5,"value":{}}',
       b'{"stream":"ticks","key":"USDJPY","ts":1,"value":{}}']  # the last goes backwards


def _mixed(path: Path) -> None:
    lines = [e.to_line() for e in EVENTS]
    lines[20:20] = BAD
    data = b"\n".join(lines) + b"\n"
    path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)


@pytest.mark.parametrize("name", ["mixed.jsonl", "mixed.jsonl.gz"])
def test_bad_lines_are_skipped_counted_and_logged(
    tmp_path: Path, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / name
    _mixed(path)
    fake = FakeProducer()
    with caplog.at_level(logging.WARNING, logger="tariffmon.producers.replay"):
        result = replay([path], _producer(fake), TOPICS)
    assert [(p[1], p[3]) for p in fake.published] == [(e.key, e.ts) for e in EVENTS]
    assert result.read == result.acked == len(EVENTS)
    assert result.bad_lines == {"?:bad_json": 2, "?:missing_field": 1, "?:bad_type": 1,
                                "ticks:unsorted": 1}
    assert "5 bad lines skipped (?:bad_json: 2, ?:bad_type: 1" in caplog.text
    assert f"{path}:21" in caplog.text  # the first example names its file and line
    assert count_events([path], None, None) == len(EVENTS)


def test_truncated_gzip_fails_the_replay_after_flushing(tmp_path: Path) -> None:
    whole = tmp_path / "whole.jsonl.gz"
    write_events(whole, [_tick(i) for i in range(5_000)])
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(whole.read_bytes()[:-50])
    fake = FakeProducer()
    with pytest.raises(RecordedStreamError, match="truncated") as info:
        replay([cut], _producer(fake), TOPICS)
    assert info.value.path == str(cut)
    assert fake.flushed == 1 and 0 < len(fake.published) < 5_000
    assert info.value.line == len(fake.published) + 1
    with pytest.raises(RecordedStreamError):
        count_events([cut], None, None)


def test_a_dot_gz_that_is_not_gzip_fails_the_replay(tmp_path: Path) -> None:
    path = tmp_path / "plain.jsonl.gz"
    path.write_bytes(b"\n".join(e.to_line() for e in EVENTS) + b"\n")
    fake = FakeProducer()
    with pytest.raises(RecordedStreamError, match="not a gzip file"):
        replay([path], _producer(fake), TOPICS)
    assert fake.published == []


def test_replay_and_backtest_read_the_same_events(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = tmp_path / "a.jsonl.gz", tmp_path / "b.jsonl"
    _mixed(a)
    heads = [RecordedEvent("headlines", f"h{i}", e.ts, {
        "v": 1, "id": f"h{i}", "ts": e.ts, "source": "test", "title": "Tariffs on Japan"})
        for i, e in enumerate(EVENTS[::10])]
    write_events(b, heads)
    b.write_bytes(b.read_bytes() + b"{broken\n")
    fake = FakeProducer()
    replay([a, b], _producer(fake), TOPICS)
    seen: list[RecordedEvent] = []
    original = backtest_runner._Driver.event

    def spy(self: backtest_runner._Driver, ev: RecordedEvent, source: int, n: int) -> None:
        seen.append(ev)
        original(self, ev, source, n)

    monkeypatch.setattr(backtest_runner._Driver, "event", spy)
    run_backtest([a, b], load_settings())
    assert [(TOPICS[e.stream], e.key, e.ts) for e in seen] == [
        (p[0], p[1], p[3]) for p in fake.published]
    # ties at equal ts: the tick file comes first, as given
    assert seen[0].stream == "ticks" and seen[1].stream == "headlines"
