"""A worker killed with SIGKILL at ten chosen moments of a live sample day loses nothing.

A background replay publishes one UTC day of the bundled sample (2025-04-03: 39,947 ticks and
10 headlines, the busiest tariff day) at about 1,000x, as a live feed would, while a real
``tariffmon worker`` is killed -9 and restarted ten times.  Each kill waits for an observed
moment (metrics up, group joined, ticks processed, an offset commit, a reaction published) so
that the kills land early, during recovery, mid-batch, just after and just before a commit and
in a backlog.  At the end the reactions by key must equal the core's answer for the same
events: no key lost, none extra, no key with two values; alerts' last values per key too.
Raw duplicates (the price of at-least-once) are counted and printed, not forbidden.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from kafka import KafkaConsumer, TopicPartition

from tariffmon.contract import DeadLetter
from tariffmon.kafkaclient import client_config
from tariffmon.producers.kafka_producer import StopFlag, TopicProducer
from tariffmon.producers.replay import ReplayResult, replay
from tariffmon.recorded import RecordedEvent
from tariffmon.settings import Settings
from tests.conftest import MakeSettings
from tests.kafka_helpers import consume_all
from tests.reference import reference
from tests.reliability.helpers import (
    GroupProbe,
    log_count,
    metric_value,
    read_outputs,
    sample_day,
    split_events,
    wait_for_reactions,
)
from tests.worker_process import WorkerProcess

pytestmark = [pytest.mark.integration, pytest.mark.slow]

#: 2025-04-03 00:00 UTC
DAY = 1_743_638_400_000
#: event time runs this much faster than the wall clock: the day takes about 80 s, and a
#: worker that is down for ~10 s comes back to ~3 h of backlog, inside the 6 h lateness bound
SPEED = 1_080.0
COMMIT_INTERVAL_S = 0.5
#: the smallest session timeout the broker accepts by default: a killed worker's partitions
#: are free again after it, so each restart costs seconds instead of Faust's default minute
SESSION_TIMEOUT_S = 6.0
WAIT_S = 20.0
POLL_S = 0.02


class BackgroundReplay(threading.Thread):
    """``tariffmon.producers.replay`` of the day at ``SPEED``, by the project's producer."""

    def __init__(self, settings: Settings, events: list[RecordedEvent]) -> None:
        super().__init__(name="replay", daemon=True)
        self.settings = settings
        self.events = events
        self.stop_flag = StopFlag()
        self.result: ReplayResult | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with TopicProducer(self.settings) as producer:
                self.result = replay([], producer, self.settings.topics.all_topics(),
                                     speed=SPEED, stop=self.stop_flag, events=self.events)
        except BaseException as exc:  # reported by the test thread
            self.error = exc


@dataclass
class Run:
    """One incarnation of the worker and what the world looked like when it started."""

    worker: WorkerProcess
    log: Path
    members_before: list[str]
    #: committed ticks offset and reactions published when the kill condition began to count
    committed_base: int
    reactions_base: int


@dataclass
class Harness:
    """What the kill points look at: the worker's metrics, the group, the output topics."""

    settings: Settings
    tmp: Path
    group: GroupProbe
    consumer: KafkaConsumer
    runs: list[Run] = field(default_factory=list)

    def start(self) -> Run:
        n = len(self.runs) + 1
        log = self.tmp / f"worker{n}.log"
        _, members = self.group.state()
        run = Run(WorkerProcess(self.settings, log), log, members,
                  self.committed_ticks(), self.reactions_published())
        run.worker.start()
        self.runs.append(run)
        return run

    def reach(self, run: Run, fraction: float, n_ticks: int) -> str:
        """Let the worker get ``fraction`` of the day's ticks committed before the kill."""
        goal = int(fraction * n_ticks)
        seen = self.wait(run, f"{fraction:.0%} of the day committed",
                         lambda: self.committed_ticks() >= goal, timeout=90)
        run.committed_base = self.committed_ticks()
        run.reactions_base = self.reactions_published()
        return seen

    def committed_ticks(self) -> int:
        return sum(self.group.committed(self.settings.topics.ticks).values())

    def reactions_published(self) -> int:
        tps = [TopicPartition(self.settings.topics.reactions, p)
               for p in range(self.settings.topics.output_partitions)]
        return int(sum(self.consumer.end_offsets(tps).values()))

    def ticks_processed(self, run: Run) -> float:
        return metric_value(run.worker.metrics_text(), "tariffmon_ticks_total")

    def wait(self, run: Run, what: str, condition: Callable[[], bool],
             timeout: float = WAIT_S) -> str:
        """Poll ``condition`` until it holds; say what was seen (a timeout is reported too)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            proc = run.worker.proc
            if proc is not None and proc.poll() is not None:
                pytest.fail(f"worker exited by itself ({proc.returncode}): "
                            f"{run.worker.log_tail()}")
            if condition():
                return what
            time.sleep(POLL_S)
        return f"TIMED OUT waiting for: {what}"

    # ------------------------------------------------------------------ kill points

    def joined(self, run: Run) -> bool:
        state, members = self.group.state()
        return state == "Stable" and any(m not in run.members_before for m in members)

    def at_start(self, run: Run) -> str:
        return "metrics up, group not joined yet"

    def during_recovery(self, delay: float) -> Callable[[Run], str]:
        def wait(run: Run) -> str:
            seen = self.wait(run, "group joined", lambda: self.joined(run))
            time.sleep(delay)
            return f"{seen}, +{delay:g} s (recovery starts with the first batch)"
        return wait

    def first_ticks(self, run: Run) -> str:
        return self.wait(run, "first ticks processed (mid-batch)",
                         lambda: self.ticks_processed(run) > 0)

    def ticks(self, n: int) -> Callable[[Run], str]:
        def wait(run: Run) -> str:
            return self.wait(run, f"{n} ticks processed in this run (backlog catch-up)",
                             lambda: self.ticks_processed(run) >= n)
        return wait

    def after_commit(self, run: Run) -> str:
        return self.wait(run, "just after an offset commit",
                         lambda: self.committed_ticks() > run.committed_base)

    def before_commit(self, run: Run) -> str:
        seen = self.after_commit(run)
        time.sleep(COMMIT_INTERVAL_S * 0.9)
        return f"{seen}, then {COMMIT_INTERVAL_S * 0.9:g} s: just before the next"

    def after_reaction(self, run: Run) -> str:
        return self.wait(run, "a reaction published, its input not yet committed",
                         lambda: self.reactions_published() > run.reactions_base)

    def steady(self, run: Run) -> str:
        seen = self.first_ticks(run)
        time.sleep(3.0)
        return f"{seen}, then 3 s of steady processing"


def test_worker_killed_ten_times_during_a_live_day_loses_and_changes_nothing(
    make_settings: MakeSettings, tmp_path: Path
) -> None:
    settings = make_settings(
        worker={"commit_interval_s": COMMIT_INTERVAL_S, "session_timeout_s": SESSION_TIMEOUT_S}
    )
    events = sample_day(DAY)
    ticks, headlines = split_events(events)
    ref = reference(settings, ticks, headlines)
    assert len(ref.reactions) >= 30

    group = GroupProbe(settings)
    consumer = KafkaConsumer(**client_config(settings.kafka), group_id=None)
    h = Harness(settings, tmp_path, group, consumer)
    # (name, share of the day's ticks committed first, or None to kill before that matters,
    # the moment to kill at): spread over the day, and over a worker's life
    kill_points: list[tuple[str, float | None, Callable[[Run], str]]] = [
        ("early", None, h.at_start),
        ("mid-batch", None, h.first_ticks),
        ("after commit", 0.10, h.after_commit),
        ("recovery", None, h.during_recovery(0.3)),
        ("after reaction", 0.20, h.after_reaction),
        ("backlog", None, h.ticks(1_500)),
        ("before commit", 0.45, h.before_commit),
        ("recovery", None, h.during_recovery(1.0)),
        ("after reaction", 0.60, h.after_reaction),
        ("steady", 0.80, h.steady),
    ]
    feed = BackgroundReplay(settings, events)
    report: list[str] = []
    try:
        feed.start()
        for name, share, wait in kill_points:
            run = h.start()
            seen = "" if share is None else h.reach(run, share, len(ticks)) + ", then "
            seen += wait(run)
            run.worker.kill()
            rebuilt = log_count(run.log, "state rebuilt from")
            report.append(f"kill {len(h.runs):2d} [{name}] {seen}; state rebuilt in this run: "
                          f"{'yes' if rebuilt else 'no'}; committed ticks offset "
                          f"{h.committed_ticks()}; reactions on topic {h.reactions_published()}")
        feed.join(timeout=120)
        assert not feed.is_alive(), "the replay did not finish"
        assert feed.error is None, feed.error
        assert feed.result is not None and feed.result.acked == len(events) == feed.result.sent

        final = h.start()
        out = wait_for_reactions(settings, ref.reactions, timeout=120,
                                 alive=lambda: h.wait(final, "alive", lambda: True))
        time.sleep(2.0)  # a doubled record would arrive now
        final.worker.stop()
        out = read_outputs(settings)
        dead = consume_all(settings, settings.topics.deadletter)
    finally:
        feed.stop_flag.set()
        for r in h.runs:
            r.worker.kill()
        group.close()
        consumer.close()

    print("\n".join(report))
    print(f"reactions: {len(out.reactions)} keys, {out.reaction_records} records, "
          f"{out.reaction_duplicates()} raw duplicates; alerts: {len(out.alerts)} keys, "
          f"{out.alert_records} records (re-issues included)")
    dead_letters = [DeadLetter.decode(d.value) for d in dead]
    assert not dead_letters, [(d.reason, d.error[:200]) for d in dead_letters[:5]]
    assert not out.conflicting_reactions()
    assert set(out.reactions) == set(ref.reactions), (
        f"lost: {sorted(set(ref.reactions) - set(out.reactions))}, "
        f"extra: {sorted(set(out.reactions) - set(ref.reactions))}"
    )
    for key, values in out.reactions.items():
        assert values[0] == ref.reactions[key], key
    assert set(out.alerts) == set(ref.alerts)
    assert {k: v[-1] for k, v in out.alerts.items()} == ref.alerts
