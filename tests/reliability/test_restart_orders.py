"""Kill -9 at random points, whatever order the two input topics arrived in.

A restarted worker rebuilds each partition from each topic's own committed offset (see
``streams/recovery.py``), so neither the order in which ticks and headlines were published
nor where each topic was committed may change an answer.  Four days of the bundled sample
(a trading day, the weekend close, the Monday reopen) are published in three orders, each
while a real ``tariffmon worker`` is killed -9 six times at random moments (by committed
progress or by time since start, so some kills land during the rebuild itself):

* headlines first, then the ticks: every request waits, pending, for its ticks;
* ticks first, then the headlines: most headlines come beyond the lateness bound and are
  measured on ticks read back from Kafka;
* both merged by event time, as a replay publishes them.

Every run must end with exactly the backtest's reactions: none missing, none extra, no key
with two values, no dead letter, and the backtest's alerts: the last version of each key,
attributed headlines included (a headline measured late re-issues the alerts of its
look-back).
The seed of each order's kill schedule is printed, and ``RELIABILITY_SEED`` replays one.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from kafka.errors import KafkaError

from tariffmon.contract import DeadLetter, Headline, Tick
from tariffmon.recorded import merge_events
from tariffmon.settings import Settings
from tests.conftest import MakeSettings
from tests.kafka_helpers import consume_all, produce_messages
from tests.reference import events_in_time_order, reference
from tests.reliability.helpers import (
    SAMPLE_FILES,
    GroupProbe,
    log_count,
    read_outputs,
    split_events,
    wait_for_reactions,
)
from tests.worker_process import WorkerProcess

pytestmark = [pytest.mark.integration, pytest.mark.slow]

#: 2025-04-04 00:00 UTC to the end of Monday 04-07: a trading day, the weekend close (gap
#: reactions whose p0 and baseline lie days before the reopen) and the Monday sell-off
START = 1_743_724_800_000
END = START + 4 * 86_400_000
KILLS = 6
COMMIT_INTERVAL_S = 0.5
SESSION_TIMEOUT_S = 6.0


def _committed(group: GroupProbe, topic: str) -> int:
    """The group's committed offsets on ``topic`` summed (0 while it has no coordinator)."""
    try:
        return sum(group.committed(topic).values())
    except KafkaError as exc:
        if exc.retriable:
            return 0
        raise


def _publish(settings: Settings, order: str, ticks: Sequence[Tick],
             headlines: Sequence[Headline]) -> None:
    t = settings.topics
    if order == "headlines_first":
        produce_messages(settings, t.headlines, headlines)
        produce_messages(settings, t.ticks, ticks)
    elif order == "ticks_first":
        produce_messages(settings, t.ticks, ticks)
        produce_messages(settings, t.headlines, headlines)
    else:
        # the time-merged order, in slices, so that both topics grow together
        events = events_in_time_order(ticks, headlines)
        for i in range(0, len(events), 2_000):
            chunk = events[i : i + 2_000]
            produce_messages(settings, t.headlines,
                             [Headline.from_dict(e.value) for e in chunk
                              if e.stream == "headlines"])
            produce_messages(settings, t.ticks,
                             [Tick.from_dict(e.value) for e in chunk if e.stream == "ticks"])


@pytest.mark.parametrize("order", ["headlines_first", "ticks_first", "time_merged"])
def test_kills_at_random_points_lose_nothing_in_any_arrival_order(
    order: str, make_settings: MakeSettings, tmp_path: Path
) -> None:
    settings = make_settings(
        worker={"commit_interval_s": COMMIT_INTERVAL_S, "session_timeout_s": SESSION_TIMEOUT_S}
    )
    ticks, headlines = split_events(merge_events(list(SAMPLE_FILES), START, END))
    ref = reference(settings, ticks, headlines)
    assert len(ref.reactions) >= 40 and ref.alerts
    assert any(r.gap for r in ref.reactions.values())
    seed = int(os.environ.get("RELIABILITY_SEED") or random.SystemRandom().randrange(2**32))
    rnd = random.Random(seed)
    print(f"order {order}: kill schedule seed {seed} (RELIABILITY_SEED={seed} replays it)")

    feed_error: list[BaseException] = []

    def feed() -> None:
        try:
            _publish(settings, order, ticks, headlines)
        except BaseException as exc:  # reported by the test thread
            feed_error.append(exc)

    publisher = threading.Thread(target=feed, name="publish", daemon=True)
    group = GroupProbe(settings)
    workers: list[WorkerProcess] = []
    report: list[str] = []
    total = len(ticks)
    try:
        publisher.start()
        goals = sorted(rnd.uniform(0.02, 0.98) for _ in range(KILLS))
        for n, goal in enumerate(goals, start=1):
            worker = WorkerProcess(settings, tmp_path / f"worker{n}.log")
            workers.append(worker)
            worker.start()
            by_time = rnd.random() < 0.3
            deadline = time.monotonic() + 60
            if by_time:
                # soon after start: during the group join or the rebuild of the state
                time.sleep(rnd.uniform(0.0, 4.0))
                what = "by time"
            else:
                # this incarnation must have committed something of its own first
                base = _committed(group, settings.topics.ticks)
                while time.monotonic() < deadline:
                    done = _committed(group, settings.topics.ticks)
                    if done >= max(goal * total, base + 1):
                        break
                    if worker.proc is not None and worker.proc.poll() is not None:
                        pytest.fail(f"worker exited by itself: {worker.log_tail()}")
                    time.sleep(0.02 + rnd.random() * 0.05)
                what = f"{goal:.0%} of ticks committed"
            worker.kill()
            report.append(f"kill {n} ({what}): committed "
                          f"{_committed(group, settings.topics.ticks)} ticks; "
                          f"rebuilt: {log_count(worker.log_path, 'state rebuilt from')}")
        publisher.join(timeout=120)
        assert not publisher.is_alive() and not feed_error, feed_error
        final = WorkerProcess(settings, tmp_path / "final.log")
        workers.append(final)
        final.start()
        wait_for_reactions(settings, ref.reactions, timeout=180)
        final.stop()
        out = read_outputs(settings)
        dead = [DeadLetter.decode(d.value) for d in
                consume_all(settings, settings.topics.deadletter)]
    finally:
        for w in workers:
            w.kill()
        group.close()
    print("\n".join(report))
    assert not dead, [(d.reason, d.error[:200]) for d in dead[:5]]
    assert not out.conflicting_reactions()
    assert set(out.reactions) == set(ref.reactions), (
        f"lost: {sorted(set(ref.reactions) - set(out.reactions))}, "
        f"extra: {sorted(set(out.reactions) - set(ref.reactions))}"
    )
    for key, values in out.reactions.items():
        assert values[0] == ref.reactions[key], key
    assert set(out.alerts) == set(ref.alerts)
    assert {k: v[-1] for k, v in out.alerts.items()} == ref.alerts
