"""Several ``tariffmon worker`` processes on the same topics give the backtest's answers.

The ticks and reaction-requests topics have six partitions and the generated day has eight
always-open symbols spread over all six (two partitions hold two symbols).  Real worker
processes share one consumer group:

* ``test_ticks_and_requests_partitions_go_to_one_worker``: three workers, stable group.  The
  broker's view of the group (``DescribeGroups``: each member's assignment) gives every
  member the same partition numbers of ticks and requests, the six partitions split between
  the three; and each worker's own /metrics show it counted ticks and measured reactions for
  exactly the symbols of those partitions (a request was handled where its symbol's ticks
  are).  Faust's assignor does this: ``faust/assignor/partition_assignor.py`` groups the
  topics that have the same partition count and the same subscribers into one co-partitioned
  group, and ``CopartitionedAssignor`` gives each partition number of a group to one member.
* ``test_join_leave_and_kill_during_a_replay``: during a replay (paced at SPEED), with two
  and with three workers at most: a worker joins, one leaves cleanly (SIGTERM) and one is
  killed (SIGKILL), at moments drawn from a seed as fractions of the day's ticks committed
  by the group.  Where the workers keep up with the replay the steps fall while it
  publishes; on a loaded machine some fall in the backlog it left (each step's line in the
  output says which).  The assignment is sampled from the broker the whole time and
  must keep ticks and requests co-partitioned in every stable generation.  At the end the
  reactions equal the backtest's key by key (none lost, none extra, no key with two values),
  the last value of each alert key equals the backtest's, and nothing is dead-lettered.

``RELIABILITY_SEED`` replaces the schedules' seeds, to replay a failing run's moments.
"""

from __future__ import annotations

import json
import logging
import os
import random
import struct
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from kafka import TopicPartition
from kafka.errors import KafkaError
from kafka.partitioner.default import murmur2

from tariffmon.contract import Alert, DeadLetter, Headline, Limits, Reaction, ReactionRequest, Tick
from tariffmon.kafkaclient import admin_client
from tariffmon.producers.kafka_producer import TopicProducer
from tariffmon.producers.replay import replay
from tariffmon.recorded import RecordedEvent
from tariffmon.settings import Settings
from tariffmon.topic_reader import end_offsets
from tests.conftest import MakeSettings
from tests.kafka_helpers import consume_all
from tests.reference import Reference, events_in_time_order, reference
from tests.reliability.helpers import SAMPLE_FILES, GroupProbe, Outputs, metric_samples
from tests.worker_process import WorkerProcess

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PARTITIONS = 6
#: eight symbols whose keys cover the six partitions (murmur2, as both kafka-python's and
#: aiokafka's default partitioners): 0 TOPIX, 1 USDJPY, 2 EURJPY GBPJPY, 3 HSI,
#: 4 N225 AUDJPY, 5 NKD
SYMBOLS = ("TOPIX", "USDJPY", "EURJPY", "GBPJPY", "HSI", "N225", "AUDJPY", "NKD")
#: 2025-04-02 18:10 UTC: two hours of baseline before the reciprocal-tariff announcement
#: (20:10) and its follow-ups until the Tokyo morning
START = 1_743_617_400_000
HOURS = 6
END = START + HOURS * 3_600_000
TICK_EVERY_S = 10
#: event time per wall second of the replay: 6 h in about 36 s
SPEED = 600.0
COMMIT_INTERVAL_S = 0.5
SESSION_TIMEOUT_S = 6.0
STOP_TIMEOUT_S = 120.0
#: a started worker serves /metrics, joins the group and gets its partitions, and the
#: group's commits reach the next step's moment, within this (on a loaded machine a worker
#: took over 60 s to serve /metrics and over 90 s to join)
JOIN_TIMEOUT_S = 180.0


def partition_of(key: str, partitions: int = PARTITIONS) -> int:
    """The partition a key goes to with the default (murmur2) partitioner."""
    return (murmur2(key.encode()) & 0x7FFFFFFF) % partitions


# --------------------------------------------------------------------------- the data


def headlines_in_window() -> list[Headline]:
    """The bundled sample's headlines between START and END (real tariff news and others)."""
    out = []
    with SAMPLE_FILES[1].open(encoding="utf-8") as fh:
        for line in fh:
            rec = json.loads(line)
            if rec["stream"] == "headlines" and START <= rec["ts"] < END:
                out.append(Headline.from_dict(rec["value"]))
    return out


def generated_ticks(headline_ts: Sequence[int], seed: int = 20250402) -> list[Tick]:
    """A tick every TICK_EVERY_S per symbol: random walks with jumps that trip sharp moves.

    Each headline is followed 30 s later by a 30-60 bp jump in about half the symbols (so
    reactions are not all noise and alerts get attributed), and each symbol has a few jumps
    of its own (alerts without a headline).
    """
    rng = np.random.default_rng(seed)
    n = HOURS * 3_600 // TICK_EVERY_S
    ts = START + np.arange(n, dtype=np.int64) * TICK_EVERY_S * 1_000
    ticks: list[Tick] = []
    for i, sym in enumerate(SYMBOLS):
        steps = rng.normal(0.0, 1.2e-4, n)
        for h in headline_ts:
            if rng.random() < 0.5:
                k = int((h - START) // (TICK_EVERY_S * 1_000)) + 30 // TICK_EVERY_S
                if k < n:
                    steps[k] += rng.choice([-1.0, 1.0]) * rng.uniform(30e-4, 60e-4)
        for k in rng.integers(0, n, 3):
            steps[k] += rng.choice([-1.0, 1.0]) * 50e-4
        prices = np.round((100.0 + 40.0 * i) * np.exp(np.cumsum(steps)), 4)
        ticks.extend(Tick(symbol=sym, ts=int(t), price=float(p), source="test")
                     for t, p in zip(ts, prices, strict=True))
    ticks.sort(key=lambda t: t.ts)  # stable: per symbol still in time order
    return ticks


@dataclass
class Day:
    """The generated day, its replay order and the backtest's answer."""

    ticks: list[Tick]
    headlines: list[Headline]
    events: list[RecordedEvent]
    ref: Reference


def make_day(settings: Settings) -> Day:
    """Generate the day and compute the reference; check it is worth testing with."""
    headlines = headlines_in_window()
    ticks = generated_ticks([h.ts for h in headlines])
    ref = reference(settings, ticks, headlines)
    by_partition = {partition_of(s) for s in SYMBOLS}
    assert by_partition == set(range(PARTITIONS)), by_partition
    assert {r.symbol for r in ref.reactions.values()} == set(SYMBOLS)
    assert len(ref.reactions) >= 60 and len(ref.alerts) >= 10, (
        len(ref.reactions), len(ref.alerts))
    return Day(ticks, headlines, events_in_time_order(ticks, headlines), ref)


def day_settings(make_settings: MakeSettings) -> Settings:
    """Six symbol partitions, the generated symbols, fast commits and session expiry."""
    return make_settings(
        topics={"symbol_partitions": PARTITIONS},
        symbols=[{"name": s, "yahoo": f"{s}=X", "calendar": ["always"], "staleness_s": 300}
                 for s in SYMBOLS],
        worker={"commit_interval_s": COMMIT_INTERVAL_S, "session_timeout_s": SESSION_TIMEOUT_S},
    )


# --------------------------------------------------------------------------- the group


@dataclass(frozen=True)
class Generation:
    """One stable assignment seen on the broker: client id -> topic -> partitions."""

    members: dict[str, dict[str, frozenset[int]]]

    def partitions(self, client: str, topic: str) -> frozenset[int]:
        """The partitions of ``topic`` the member ``client`` holds."""
        return self.members.get(client, {}).get(topic, frozenset())


@dataclass
class AssignmentWatch:
    """Samples the group's assignment from the broker (``DescribeGroups``) in a thread."""

    settings: Settings
    every_s: float = 0.25
    generations: list[Generation] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> AssignmentWatch:
        """Start sampling."""
        self._thread = threading.Thread(target=self._run, name="assignment", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop sampling (and raise what the sampler hit, if anything but retriable)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        assert not self.errors, self.errors

    def _run(self) -> None:
        # kafka-python warns at every call that it cannot decode Faust's subscription
        # metadata; the assignment is all this reads
        logging.getLogger("kafka.admin._groups").setLevel(logging.ERROR)
        admin = admin_client(self.settings.kafka)
        group = self.settings.worker.app_id
        try:
            while not self._stop.is_set():
                try:
                    desc = admin.describe_groups([group])[group]
                except KafkaError as exc:
                    if not exc.retriable:
                        raise
                    self._stop.wait(self.every_s)
                    continue
                if desc["group_state"] == "Stable" and desc["members"]:
                    gen = Generation(by_worker(desc["members"]))
                    if not self.generations or self.generations[-1] != gen:
                        self.generations.append(gen)
                self._stop.wait(self.every_s)
        except BaseException as exc:  # reported by stop() in the test thread
            self.errors.append(exc)
        finally:
            admin.close()

    def wait_for_member(self, client: str, timeout: float) -> Generation:
        """The first stable generation in which ``client`` holds symbol partitions."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert not self.errors, self.errors
            for gen in reversed(self.generations):
                if any(gen.members.get(client, {}).values()):
                    return gen
            time.sleep(0.1)
        raise AssertionError(f"{client} got no partitions in {timeout:g}s: "
                             f"{self.generations[-3:]}")

    def wait_for(self, clients: set[str], timeout: float) -> Generation:
        """The first stable generation whose members are exactly ``clients``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert not self.errors, self.errors
            for gen in reversed(self.generations):
                if set(gen.members) == clients:
                    return gen
            time.sleep(0.1)
        raise AssertionError(f"no stable group of {sorted(clients)} in {timeout:g}s: "
                             f"{self.generations[-3:]}")


def by_worker(members: list[Any]) -> dict[str, dict[str, frozenset[int]]]:
    """Client id -> topic -> partitions, one entry per worker process.

    A worker is two members of the group: Faust's consumer (headlines) under the worker's
    client id, and the bulk react service's consumer (ticks and requests) under that id
    with ``-react`` appended (``tariffmon/streams/bulk.py``); their assignments are merged.
    """
    out: dict[str, dict[str, frozenset[int]]] = {}
    for m in members:
        client = str(m["client_id"]).removesuffix("-react")
        topics = out.setdefault(client, {})
        for topic, parts in assigned(m["member_assignment"]).items():
            topics[topic] = topics.get(topic, frozenset()) | parts
    return out


def assigned(assignment: Any) -> dict[str, frozenset[int]]:
    """Topic -> partitions of a member's assignment as ``describe_groups`` returns it.

    kafka-python decodes the consumer protocol's assignment, except when it fails to decode
    the member's subscription (Faust's metadata carries its own user data): then the raw
    bytes are left, read here (int16 version, [topic: string, [partition: int32]], bytes).
    """
    if not assignment:
        return {}
    if isinstance(assignment, dict):
        return {str(a["topic"]): frozenset(int(p) for p in a["partitions"])
                for a in assignment.get("assigned_partitions", [])}
    buf = bytes(assignment)
    pos = 2
    (n_topics,) = struct.unpack_from(">i", buf, pos)
    pos += 4
    out: dict[str, frozenset[int]] = {}
    for _ in range(n_topics):
        (n,) = struct.unpack_from(">h", buf, pos)
        topic = buf[pos + 2 : pos + 2 + n].decode()
        pos += 2 + n
        (n_parts,) = struct.unpack_from(">i", buf, pos)
        parts = struct.unpack_from(f">{n_parts}i", buf, pos + 4)
        pos += 4 + 4 * n_parts
        out[topic] = frozenset(parts)
    return out


def check_copartitioned(settings: Settings, gen: Generation) -> None:
    """Each member holds the same partition numbers of ticks and requests; all six held once.

    A member may still be listed with its old assignment after it was killed (until its
    session expires): it then still owns those partitions, so the check holds for it too.
    A generation whose members are only Faust's headline consumers (a worker's bulk react
    consumer joins a moment after it, or has just left) holds no symbol partition at all:
    nothing is processed then, and there is nothing to check.
    """
    t = settings.topics
    held: list[int] = []
    for client in gen.members:
        ticks, requests = gen.partitions(client, t.ticks), gen.partitions(client, t.requests)
        assert ticks == requests, f"{client}: ticks {sorted(ticks)} != requests " \
                                  f"{sorted(requests)} in {gen}"
        held.extend(ticks)
    if not held:
        return
    assert sorted(held) == list(range(PARTITIONS)), f"partitions held {sorted(held)} in {gen}"


def worker_settings(settings: Settings, name: str) -> Settings:
    """The same settings with a client id naming the worker (the broker lists members by it)."""
    return settings.model_copy(
        update={"kafka": settings.kafka.model_copy(update={"client_id": name})})


@dataclass
class Scrape:
    """What one worker's /metrics said it did, by symbol."""

    ticks: dict[str, float]
    reactions: dict[str, float]


def scrape(worker: WorkerProcess) -> Scrape:
    """The worker's tick and reaction counts per symbol (nothing when it does not answer)."""
    try:
        text = worker.metrics_text()
    except OSError:
        return Scrape({}, {})
    ticks: dict[str, float] = {}
    for labels, v in metric_samples(text, "tariffmon_ticks_total"):
        ticks[labels["symbol"]] = ticks.get(labels["symbol"], 0.0) + v
    reactions: dict[str, float] = {}
    for labels, v in metric_samples(text, "tariffmon_reactions_total"):
        reactions[labels["symbol"]] = reactions.get(labels["symbol"], 0.0) + v
    return Scrape({s: v for s, v in ticks.items() if v > 0},
                  {s: v for s, v in reactions.items() if v > 0})


def symbols_of(partitions: frozenset[int] | set[int]) -> set[str]:
    """The generated symbols whose keys go to ``partitions``."""
    return {s for s in SYMBOLS if partition_of(s) in partitions}


# --------------------------------------------------------------------------- the run


class Replay(threading.Thread):
    """The day's events published by ``tariffmon replay``'s code, paced at SPEED."""

    def __init__(self, settings: Settings, events: list[RecordedEvent], speed: float | None
                 ) -> None:
        super().__init__(name="replay", daemon=True)
        self.settings = settings
        self.events = events
        self.speed = speed
        self.error: BaseException | None = None
        self.acked = 0

    def run(self) -> None:
        try:
            with TopicProducer(self.settings) as producer:
                res = replay([], producer, self.settings.topics.all_topics(),
                             speed=self.speed, events=self.events)
            self.acked = res.acked
        except BaseException as exc:  # reported by the test thread
            self.error = exc

    def finish(self, timeout: float) -> None:
        """Wait for the replay's end; fail on its error."""
        self.join(timeout=timeout)
        assert not self.is_alive(), "the replay did not finish"
        assert self.error is None, self.error
        assert self.acked == len(self.events), (self.acked, len(self.events))


def committed_total(group: GroupProbe, topic: str) -> int:
    """The group's committed offsets on ``topic`` summed (0 while it has no coordinator)."""
    try:
        return sum(group.committed(topic).values())
    except KafkaError as exc:
        if exc.retriable:
            return 0
        raise


def wait_until_consumed(settings: Settings, group: GroupProbe, workers: Sequence[WorkerProcess],
                        timeout: float) -> None:
    """Until the group has committed every record of ticks, headlines and requests."""
    t = settings.topics
    deadline = time.monotonic() + timeout
    while True:
        for w in workers:
            if not w.running():
                pytest.fail(f"worker exited by itself: {w.log_tail()}")
        lagging = []
        for topic in (t.ticks, t.headlines, t.requests):
            parts = PARTITIONS if topic != t.headlines else t.headline_partitions
            ends = end_offsets(settings, [TopicPartition(topic, p) for p in range(parts)])
            try:
                done = group.committed(topic)
            except KafkaError as exc:
                if not exc.retriable:
                    raise
                done = {}
            lagging += [f"{topic}[{tp.partition}] {done.get(tp.partition, 0)}/{end}"
                        for tp, end in ends.items() if done.get(tp.partition, 0) < end]
        if not lagging:
            return
        if time.monotonic() >= deadline:
            raise AssertionError(f"not consumed in {timeout:g}s: {lagging}")
        time.sleep(0.5)


def read_outputs(settings: Settings) -> Outputs:
    """Every record on the reactions and alerts topics, by key (this day's symbols known)."""
    limits = Limits(settings.symbol_names())
    reactions: dict[str, list[Reaction]] = {}
    for rec in consume_all(settings, settings.topics.reactions, timeout=60):
        r = Reaction.decode(rec.value, limits)
        assert rec.key.decode() == r.key
        reactions.setdefault(r.key, []).append(r)
    alerts: dict[str, list[Alert]] = {}
    for rec in consume_all(settings, settings.topics.alerts, timeout=60):
        a = Alert.decode(rec.value, limits)
        assert rec.key.decode() == a.key
        alerts.setdefault(a.key, []).append(a)
    return Outputs(reactions, alerts)


def wait_for_reactions(settings: Settings, keys: Iterable[str], timeout: float) -> None:
    """Until every key in ``keys`` has a reaction on the topic (or time runs out)."""
    wanted = set(keys)
    deadline = time.monotonic() + timeout
    while not wanted <= set(read_outputs(settings).reactions):
        if time.monotonic() >= deadline:
            return  # check_outputs names what is missing
        time.sleep(1.0)


def check_outputs(settings: Settings, day: Day) -> None:
    """Reactions and the last alert of each key equal the backtest's; no dead letter; the
    worker's requests are on the partition of their symbol's ticks."""
    out = read_outputs(settings)
    dead = [DeadLetter.decode(d.value) for d in consume_all(settings, settings.topics.deadletter)]
    assert not dead, [(d.reason, d.error[:200]) for d in dead[:5]]
    conflicts = out.conflicting_reactions()
    assert not conflicts, {k: v[:2] for k, v in list(conflicts.items())[:3]}
    ref = day.ref
    assert set(out.reactions) == set(ref.reactions), (
        f"lost: {sorted(set(ref.reactions) - set(out.reactions))[:10]}, "
        f"extra: {sorted(set(out.reactions) - set(ref.reactions))[:10]}")
    differing = [k for k, v in out.reactions.items() if v[0] != ref.reactions[k]]
    assert not differing, [(out.reactions[k][0], ref.reactions[k]) for k in differing[:2]]
    assert set(out.alerts) == set(ref.alerts), (
        f"lost: {sorted(set(ref.alerts) - set(out.alerts))[:10]}, "
        f"extra: {sorted(set(out.alerts) - set(ref.alerts))[:10]}")
    last = {k: v[-1] for k, v in out.alerts.items()}
    differing = [k for k in last if last[k] != ref.alerts[k]]
    assert not differing, [(last[k], ref.alerts[k]) for k in differing[:2]]
    for rec in consume_all(settings, settings.topics.requests):
        req = ReactionRequest.decode(rec.value, Limits(settings.symbol_names()))
        assert rec.partition == partition_of(req.symbol), (req.symbol, rec.partition)
    print(f"{len(out.reactions)} reactions ({out.reaction_duplicates()} repeated records), "
          f"{len(out.alerts)} alert keys ({out.alert_records} records): equal to the backtest")


@pytest.fixture
def started() -> Iterator[list[WorkerProcess]]:
    """Workers started by a test; whatever is left is killed at the end."""
    workers: list[WorkerProcess] = []
    yield workers
    for w in workers:
        w.kill()


def test_ticks_and_requests_partitions_go_to_one_worker(
    make_settings: MakeSettings, tmp_path: Path, started: list[WorkerProcess]
) -> None:
    settings = day_settings(make_settings)
    day = make_day(settings)
    t0 = time.monotonic()
    watch = AssignmentWatch(settings).start()
    names = ["w1", "w2", "w3"]
    try:
        for name in names:
            w = WorkerProcess(worker_settings(settings, name), tmp_path / f"{name}.log")
            started.append(w)
            w.start(timeout=JOIN_TIMEOUT_S)
        gen = watch.wait_for(set(names), timeout=JOIN_TIMEOUT_S)
        print(f"stable group of three after {time.monotonic() - t0:.1f}s")
        check_copartitioned(settings, gen)
        # the assignor balances the six partitions: two each
        assert all(len(gen.partitions(n, settings.topics.ticks)) == 2 for n in names), gen
        feed = Replay(settings, day.events, speed=None)
        feed.start()
        feed.finish(timeout=120)
        print(f"replayed after {time.monotonic() - t0:.1f}s")
        group = GroupProbe(settings)
        try:
            wait_for_reactions(settings, day.ref.reactions, timeout=240)
            print(f"reactions complete after {time.monotonic() - t0:.1f}s")
            wait_until_consumed(settings, group, started, timeout=120)
            print(f"consumed after {time.monotonic() - t0:.1f}s")
        finally:
            group.close()
        scrapes = {n: scrape(w) for n, w in zip(names, started, strict=True)}
    finally:
        watch.stop()
    # no rebalance happened while the day was processed: one generation of three members
    last = [g for g in watch.generations if set(g.members) == set(names)]
    assert last and all(g == last[0] for g in last), last
    for name in names:
        mine = symbols_of(gen.partitions(name, settings.topics.ticks))
        # the worker counted the ticks and measured the reactions of its partitions' symbols,
        # and only those: the requests of a symbol were handled where its ticks are
        assert set(scrapes[name].ticks) == mine, (name, scrapes[name], mine)
        assert set(scrapes[name].reactions) == mine, (name, scrapes[name], mine)
    check_outputs(settings, day)


#: (workers at most, seed of the moments).  Each schedule's steps happen at the group's
#: committed fraction of the day's ticks drawn from the seed, in the order given; with
#: three workers, seed 3 stops one cleanly before killing the other, seed 7 the reverse
SCHEDULES = [(2, 1), (3, 3), (3, 7)]


def schedule(most: int, rnd: random.Random) -> tuple[list[str], list[tuple[str, str]]]:
    """The workers started at once, and the steps: (action, worker) in order.

    Two at most: w1 runs; w2 joins; w1 leaves (SIGTERM); w3 joins; w2 is killed.
    Three at most: w1 and w2 run; w3 joins; w1 killed and w2 SIGTERMed, in a seeded order;
    w4 joins.  Either way the workers last started finish the day.
    """
    if most == 2:
        return ["w1"], [("join", "w2"), ("term", "w1"), ("join", "w3"), ("kill", "w2")]
    leave = [("kill", "w1"), ("term", "w2")]
    rnd.shuffle(leave)
    return ["w1", "w2"], [("join", "w3"), *leave, ("join", "w4")]


@pytest.mark.parametrize(("most", "seed"), SCHEDULES, ids=[f"{m}workers-seed{s}"
                                                             for m, s in SCHEDULES])
def test_join_leave_and_kill_during_a_replay(
    most: int, seed: int, make_settings: MakeSettings, tmp_path: Path,
    started: list[WorkerProcess],
) -> None:
    settings = day_settings(make_settings)
    day = make_day(settings)
    seed = int(os.environ.get("RELIABILITY_SEED") or seed)
    rnd = random.Random(seed)
    first, steps = schedule(most, rnd)
    goals = sorted(rnd.uniform(0.05, 0.85) for _ in steps)
    print(f"{most} workers at most, seed {seed}: " + ", ".join(
        f"{a} {w} at {g:.0%}" for (a, w), g in zip(steps, goals, strict=True)))
    total = len(day.ticks)
    by_name: dict[str, WorkerProcess] = {}
    scrapes: dict[str, list[Scrape]] = {}
    watch = AssignmentWatch(settings).start()
    group = GroupProbe(settings)
    report: list[str] = []

    def start(name: str) -> None:
        w = WorkerProcess(worker_settings(settings, name), tmp_path / f"{name}.log")
        started.append(w)
        by_name[name] = w
        w.start(timeout=JOIN_TIMEOUT_S)

    t0 = time.monotonic()
    try:
        for name in first:
            start(name)
        watch.wait_for(set(first), timeout=JOIN_TIMEOUT_S)
        feed = Replay(settings, day.events, speed=SPEED)
        feed.start()
        alive = set(first)
        for (action, name), goal in zip(steps, goals, strict=True):
            deadline = time.monotonic() + JOIN_TIMEOUT_S
            while committed_total(group, settings.topics.ticks) < goal * total:
                for n in alive:
                    if not by_name[n].running():
                        pytest.fail(f"{n} exited by itself: {by_name[n].log_tail()}")
                if time.monotonic() > deadline:
                    pytest.fail(f"no progress to {goal:.0%} before {action} {name}")
                time.sleep(0.05)
            at = committed_total(group, settings.topics.ticks)
            if action == "join":
                start(name)
                alive.add(name)
                # the next step only once the newcomer holds its share: so that the group
                # really is that large for a while (a kill may still be listed, expiring)
                watch.wait_for_member(name, timeout=JOIN_TIMEOUT_S)
            else:
                scrapes.setdefault(name, []).append(scrape(by_name[name]))
                if action == "term":
                    # a clean stop finishes the batch in hand (which may be rebuilding
                    # partitions after the last rebalance) and commits: on a loaded
                    # machine that takes longer than the usual 30 s
                    code = by_name[name].stop(timeout=STOP_TIMEOUT_S)
                    assert code == 0, f"{name} exited with {code}: {by_name[name].log_tail()}"
                else:
                    by_name[name].kill()
                alive.discard(name)
            report.append(f"{time.monotonic() - t0:.0f}s: {action} {name} at "
                          f"{at / total:.0%} of the ticks committed "
                          f"(replay {'running' if feed.is_alive() else 'done'})")
        feed.finish(timeout=180)
        remaining = [by_name[n] for n in sorted(alive)]
        wait_for_reactions(settings, day.ref.reactions, timeout=240)
        wait_until_consumed(settings, group, remaining, timeout=180)
        for n in sorted(alive):
            scrapes.setdefault(n, []).append(scrape(by_name[n]))
        for w in remaining:
            assert w.stop(timeout=STOP_TIMEOUT_S) == 0, w.log_tail()
    finally:
        group.close()
        watch.stop()
    print("\n".join(report))
    gens = watch.generations
    print(f"{len(gens)} stable generations: " + "; ".join(
        " ".join(f"{c}:{sorted(g.partitions(c, settings.topics.ticks))}"
                 for c in sorted(g.members)) for g in gens))
    for gen in gens:
        check_copartitioned(settings, gen)
    # the group went through the schedule's memberships (max ``most`` at once)
    assert max(len(g.members) for g in gens) == most
    assert len(gens) >= len(steps)
    # a worker measured reactions only for symbols of partitions it was assigned
    held: dict[str, set[int]] = {}
    for gen in gens:
        for c in gen.members:
            held.setdefault(c, set()).update(gen.partitions(c, settings.topics.ticks))
    for name, seen in scrapes.items():
        for s in seen:
            assert set(s.reactions) <= symbols_of(held.get(name, set())), (name, s, held)
            assert set(s.ticks) <= symbols_of(held.get(name, set())), (name, s, held)
    check_outputs(settings, day)
