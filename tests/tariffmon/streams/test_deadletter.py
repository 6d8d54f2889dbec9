"""Dead letters are logged as summaries: the first of each reason at once, then counts."""

from __future__ import annotations

import logging
import random

import pytest

from tariffmon.contract import DeadLetter
from tariffmon.settings import load_settings
from tariffmon.streams.deadletter import DeadLetterLog
from tariffmon.streams.records import InRecord
from tariffmon.streams.stages import HeadlineStage, ReactionStage

SETTINGS = load_settings()
TOPICS = SETTINGS.topics
LOGGER = "tariffmon.streams"


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name.startswith(LOGGER)]


@pytest.mark.parametrize("seed", range(5))
def test_each_reason_is_logged_once_then_summarised_with_its_exact_count(
    caplog: pytest.LogCaptureFixture, seed: int
) -> None:
    rng = random.Random(seed)
    clock = FakeClock()
    dl_log = DeadLetterLog("react", interval_s=60.0, clock=clock)
    kinds = [("t.ticks", "bad_json"), ("t.ticks", "price_range"), ("t.requests", "bad_key")]
    sent = {k: 0 for k in kinds}
    n = rng.randint(2_000, 20_000)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        for i in range(n):
            topic, reason = rng.choice(kinds)
            sent[(topic, reason)] += 1
            dl_log.note(topic, rng.randrange(6), i, reason, f"error {i}\nforged line")
            clock.now += rng.uniform(0, 59.0 / n)  # the whole run within one interval
        during = _lines(caplog)
        clock.now = 61.0
        dl_log.tick()
        after = _lines(caplog)
    used = [k for k in kinds if sent[k]]
    # one line per (topic, reason) seen, whatever the number of records
    assert len(during) == len(used)
    for topic, reason in used:
        first = next(line for line in during if f"({reason})" in line)
        assert topic in first and "\n" not in first
    summary = after[len(during):]
    assert len(summary) == 1
    for topic, reason in used:
        if sent[(topic, reason)] > 1:
            assert f"{topic} {reason}: {sent[(topic, reason)]:,}" in summary[0]
    repeated = sum(c for c in sent.values() if c > 1)
    assert f"react: {repeated:,} dead letters" in summary[0]


def test_a_new_interval_logs_the_first_example_again_and_flush_only_writes_repeats(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    dl_log = DeadLetterLog("classify", interval_s=10.0, clock=clock)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        dl_log.note("t.headlines", 0, 1, "bad_json", "x")
        dl_log.flush()  # a single dead letter was already logged in full: no summary
        assert len(_lines(caplog)) == 1
        clock.now = 11.0
        dl_log.note("t.headlines", 0, 2, "bad_json", "y")
        dl_log.note("t.headlines", 0, 3, "bad_json", "z")
        dl_log.flush()
    lines = _lines(caplog)
    assert len(lines) == 3
    assert "@2" in lines[1] and "t.headlines bad_json: 2 (first [0]@2: y)" in lines[2]


def test_a_flood_of_bad_records_through_the_stages_logs_a_handful_of_lines(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Every record is still dead-lettered; the log stays a few lines long."""
    react = ReactionStage(SETTINGS)
    classify = HeadlineStage(SETTINGS)
    rng = random.Random(7)
    bad = [b"not json", b'{"v":1}', b"[]", b'{"v":1,"symbol":"USDJPY","ts":1,"price":-1}']
    n = 10_000
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        out = react.process_batch([
            InRecord(TOPICS.ticks, rng.randrange(3), i, 1_700_000_000_000, b"USDJPY",
                     rng.choice(bad))
            for i in range(n)
        ])
        heads = [classify.process(InRecord(TOPICS.headlines, 0, i, 1_700_000_000_000, b"k",
                                           rng.choice(bad))) for i in range(2_000)]
        react.flush_logs()
        classify.flush_logs()
    letters = [DeadLetter.decode(r.value) for r in out.records if r.topic == TOPICS.deadletter]
    assert len(letters) == n
    assert sum(len(h.records) for h in heads) == 2_000
    counts: dict[str, int] = {}
    for d in letters:
        counts[d.reason] = counts.get(d.reason, 0) + 1
    lines = _lines(caplog)
    react_lines = [line for line in lines if TOPICS.ticks in line]
    # the first example of each reason, and one summary with every reason's exact count
    assert len(react_lines) == len(counts) + 1
    summary = react_lines[-1]
    assert f"react: {sum(c for c in counts.values() if c > 1):,} dead letters" in summary
    for reason, c in counts.items():
        if c > 1:
            assert f"{TOPICS.ticks} {reason}: {c:,}" in summary
    assert len(lines) <= len(react_lines) + 2 * len(counts) + 2
