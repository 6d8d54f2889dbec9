"""The react path in bulk on the real broker: requests never wait behind a tick backlog, and
offsets are committed only once the outputs of what they cover are on Kafka."""

from __future__ import annotations

import math
import random
import time
from pathlib import Path

import pytest

from tariffmon.contract import Headline, Reaction, Tick
from tariffmon.settings import Settings
from tariffmon.streams.bulk import TICK_BATCH
from tariffmon.streams.records import InRecord
from tariffmon.streams.stages import HeadlineStage
from tests.conftest import MakeSettings
from tests.kafka_helpers import consume_all, produce_messages, produce_raw, wait_until
from tests.reliability.helpers import GroupProbe, metric_value
from tests.tariffmon.streams.market import T0, expected_reactions
from tests.worker_process import WorkerProcess

pytestmark = pytest.mark.integration


def _ticks(start: int, n: int, step_ms: int, seed: int) -> list[Tick]:
    rnd = random.Random(seed)
    price = 145.0
    out = []
    for i in range(n):
        price *= math.exp(rnd.gauss(0, 3e-5))
        out.append(Tick("USDJPY", start + i * step_ms, round(price, 4), "test"))
    return out


def _reactions_on_kafka(settings, timeout: float = 30) -> dict[str, list[Reaction]]:  # type: ignore[no-untyped-def]
    out: dict[str, list[Reaction]] = {}
    for rec in consume_all(settings, settings.topics.reactions, timeout=timeout):
        r = Reaction.decode(rec.value)
        out.setdefault(r.key, []).append(r)
    return out


def _requests(settings, heads: list[Headline]) -> list[tuple[bytes, bytes, int]]:  # type: ignore[no-untyped-def]
    """The USDJPY reaction requests the classify stage makes of ``heads``, as raw records."""
    stage = HeadlineStage(settings)
    out = []
    for i, h in enumerate(heads):
        res = stage.process(InRecord(settings.topics.headlines, 0, i, h.ts, h.id.encode(),
                                     h.encode()))
        out += [(o.key.encode(), o.value, o.timestamp_ms) for o in res.records
                if o.topic == settings.topics.requests and o.key == "USDJPY"]
    assert len(out) >= len(heads) // 2  # most are stories of their own
    return out


_SECTORS = ["steel", "aluminium", "auto", "chip", "pharmaceutical", "lumber", "copper",
            "solar panel", "rice", "beef", "machinery", "textile", "electronics", "ship"]
_VERBS = ["raises tariffs on Japan {s} imports to {p}%",
          "threatens {p}% import levy on {s} from Japan",
          "pauses {s} tariffs on Japan for {p} days"]


def _headlines(hid: str, start: int, n: int, every_ms: int) -> list[Headline]:
    """Tariff headlines on Japan, each its own story (distinct sectors and wording)."""
    return [Headline(id=f"{hid}{i}", ts=start + i * every_ms, source="test",
                     title="Trump " + _VERBS[i % 3].format(s=_SECTORS[i % 14], p=10 + i))
            for i in range(n)]


def _published_backlog(settings: Settings, rounds: int, seed: int, hid: str, n_heads: int,
                       every_ms: int) -> tuple[list[Tick], list[Headline]]:
    """``rounds`` rounds of one-a-second ticks from 3 h before T0 and ``n_heads`` headlines
    from an hour into them, their requests and ticks on Kafka (requests first)."""
    start = T0 - 3 * 3_600_000
    ticks = _ticks(start, rounds * TICK_BATCH, 1_000, seed=seed)
    heads = _headlines(hid, start + 3_600_000, n_heads, every_ms)
    produce_raw(settings, settings.topics.requests, _requests(settings, heads))
    produce_messages(settings, settings.topics.ticks, ticks)
    return ticks, heads


def test_requests_are_not_starved_behind_a_tick_backlog(
    make_settings: MakeSettings, tmp_path: Path
) -> None:
    """A tick backlog far longer than the lateness bound (the default 6 h) is on Kafka, and
    requests for its first hours: the worker applies them within its first rounds, not after
    the backlog (~90k ticks buffered per partition, which once put them 12 h late), so none
    takes the late path and every reaction is the reference's."""
    settings = make_settings(topics={"symbol_partitions": 1})
    assert settings.engine.lateness_s == 6 * 3_600
    step_ms = 500  # 2 ticks a second: a round of ticks spans 2.8 h of event time
    n = 6 * TICK_BATCH  # 16.7 h of event time
    start = T0 - 3_600_000
    ticks = _ticks(start, n, step_ms, seed=3)
    heads = _headlines("h-early", start + 3_600_000, 3, 600_000)
    produce_messages(settings, settings.topics.ticks, ticks)
    produce_raw(settings, settings.topics.requests, _requests(settings, heads))
    want = expected_reactions(settings, ticks, heads)
    assert want
    with WorkerProcess(settings, tmp_path / "worker.log") as worker:
        wait_until(lambda: len(_reactions_on_kafka(settings, 10)), 400,
                   f"{len(want)} reactions", until=lambda k: k >= len(want))
        wait_until(lambda: metric_value(worker.metrics_text(), "tariffmon_ticks_total"), 300,
                   "every tick processed", until=lambda x: x >= n)
        metrics = worker.metrics_text()
    got = _reactions_on_kafka(settings)
    assert {k: v[0] for k, v in got.items()} == want
    assert all(len(set(v)) == 1 for v in got.values())
    assert metric_value(metrics, "tariffmon_late_inputs_total") == 0


def test_offsets_are_committed_only_after_their_outputs_are_on_kafka(
    make_settings: MakeSettings, tmp_path: Path
) -> None:
    """Kill -9 right after a commit is seen, at several commits: every reaction the committed
    ticks (and the requests, all fetched first) complete is already on the reactions topic."""
    settings = make_settings(topics={"symbol_partitions": 1}, worker={"commit_interval_s": 0.2})
    ticks, heads = _published_backlog(settings, 5, 4, "h", 40, 7 * 60_000)
    group = GroupProbe(settings)
    checked = 0
    try:
        for k, kill_after in enumerate((1, 3, 6)):
            worker = WorkerProcess(settings, tmp_path / f"worker{k}.log").start()
            try:
                base = sum(group.committed(settings.topics.ticks).values())
                advances, committed = 0, base
                deadline = time.monotonic() + 300
                while advances < kill_after and committed < len(ticks):
                    assert time.monotonic() < deadline, worker.log_tail()
                    now = sum(group.committed(settings.topics.ticks).values())
                    if now > committed:
                        advances, committed = advances + 1, now
                    else:
                        time.sleep(0.005)
            finally:
                worker.kill()
            if committed == base:
                continue
            on_kafka = _reactions_on_kafka(settings)
            want = expected_reactions(settings, ticks[:committed], heads)
            missing = sorted(set(want) - set(on_kafka))
            assert not missing, (committed, missing[:5])
            for key, values in on_kafka.items():
                assert all(v == values[0] for v in values), key
            checked += 1
    finally:
        group.close()
    assert checked >= 2


def test_a_stop_at_any_point_of_a_backlog_exits_cleanly_and_loses_nothing(
    make_settings: MakeSettings, tmp_path: Path
) -> None:
    """SIGTERM while the react consumer is joining, between rounds and in the middle of a
    fetch: each worker exits 0 (a fetch cut short by the stop is not a crash), and a last
    worker completes every reaction of the reference from the committed offsets."""
    settings = make_settings(topics={"symbol_partitions": 1}, worker={"commit_interval_s": 0.2})
    ticks, heads = _published_backlog(settings, 12, 5, "h-stop", 30, 9 * 60_000)
    want = expected_reactions(settings, ticks, heads)
    group = GroupProbe(settings)
    try:
        # ticks processed (by this worker's counter) before the stop; -1: as soon as it is
        # up.  Each worker goes on until its stop takes effect, so a point is capped at what
        # the earlier ones left
        for k, stop_after in enumerate((-1, 1, TICK_BATCH // 2, 2 * TICK_BATCH + 7)):
            # (before the first worker the group does not exist yet: nothing is committed)
            done = sum(group.committed(settings.topics.ticks).values()) if k else 0
            left = len(ticks) - done
            point = min(stop_after, left - 1)
            worker = WorkerProcess(settings, tmp_path / f"worker{k}.log").start()
            try:
                if point >= 0:
                    wait_until(lambda w=worker: metric_value(w.metrics_text(),
                                                             "tariffmon_ticks_total"),
                               120, f"{point} ticks", until=lambda x, n=point: x >= n)
            finally:
                code = worker.stop(timeout=60)
            assert code == 0, worker.log_tail()
            assert "Crashed" not in (tmp_path / f"worker{k}.log").read_text()
    finally:
        group.close()
    with WorkerProcess(settings, tmp_path / "last.log"):
        wait_until(lambda: len(_reactions_on_kafka(settings, 10)), 300,
                   f"{len(want)} reactions", until=lambda n: n >= len(want))
    got = _reactions_on_kafka(settings)
    assert {k: v[0] for k, v in got.items()} == want
    assert all(len(set(v)) == 1 for v in got.values())
