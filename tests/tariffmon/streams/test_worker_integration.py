"""A real ``tariffmon worker`` on the real broker: produce, consume, compare with the core."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tariffmon.contract import DeadLetter, Reaction
from tests.conftest import MakeSettings
from tests.kafka_helpers import (
    committed_offsets,
    consume_all,
    produce_messages,
    produce_raw,
    wait_until,
)
from tests.tariffmon.streams.market import T0, expected_reactions, pause_headline, ticks
from tests.worker_process import WorkerProcess

pytestmark = pytest.mark.integration


def _reactions(settings, count: int, timeout: float = 90) -> dict[str, list[Reaction]]:  # type: ignore[no-untyped-def]
    out: dict[str, list[Reaction]] = {}
    for rec in consume_all(settings, settings.topics.reactions, count, timeout=timeout):
        r = Reaction.decode(rec.value)
        assert rec.key.decode() == r.key and rec.timestamp == r.t1
        out.setdefault(r.key, []).append(r)
    return out


def test_worker_measures_reactions_and_dead_letters_bad_input(
    make_settings: MakeSettings, tmp_path: Path
) -> None:
    settings = make_settings(topics={"symbol_partitions": 2})
    usd = ticks("USDJPY", T0 - 3 * 3_600_000, 4 * 3_600 + 120, seed=1, jump_at=T0)
    nik = ticks("N225", T0 - 3 * 3_600_000, 4 * 3_600 + 120, seed=2)
    headline = pause_headline()
    produce_messages(settings, settings.topics.headlines, [headline])
    produce_messages(settings, settings.topics.ticks, usd + nik)
    produce_raw(settings, settings.topics.ticks, [(b"USDJPY", b'{"v":1,"symbol":"USDJPY"}', T0)])
    want = expected_reactions(settings, usd + nik, [headline])
    assert len(want) == 8

    with WorkerProcess(settings, tmp_path / "worker.log") as worker:
        got = _reactions(settings, len(want))
        dead = consume_all(settings, settings.topics.deadletter, 1, timeout=30)
        deadline = time.monotonic() + 20
        while "tariffmon_reactions_total" not in worker.metrics_text():
            assert time.monotonic() < deadline
            time.sleep(0.2)
        metrics = worker.metrics_text()
    assert {k: v[0] for k, v in got.items()} == want
    assert all(len(v) == 1 for v in got.values())
    assert got["h-pause|USDJPY|3600"][0].significant
    dl = DeadLetter.decode(dead[0].value)
    assert dl.reason == "missing_field" and dl.topic == settings.topics.ticks
    assert f'tariffmon_ticks_total{{symbol="USDJPY"}} {float(len(usd))}' in metrics


def test_worker_killed_and_restarted_loses_and_changes_nothing(
    make_settings: MakeSettings, tmp_path: Path
) -> None:
    settings = make_settings(topics={"symbol_partitions": 1}, worker={"commit_interval_s": 0.2})
    usd = ticks("USDJPY", T0 - 3 * 3_600_000, 4 * 3_600 + 120, seed=5, jump_at=T0)
    headline = pause_headline()
    want = {k: v for k, v in expected_reactions(settings, usd, [headline]).items()
            if v.symbol == "USDJPY"}
    cut = 3 * 3_600 + 200  # 200 s after t0: the 1- and 5-minute reactions are out
    produce_messages(settings, settings.topics.headlines, [headline])
    produce_messages(settings, settings.topics.ticks, usd[:cut])
    first = WorkerProcess(settings, tmp_path / "worker1.log").start()
    try:
        _reactions(settings, 1)
        # the kill comes once the first worker committed some of the ticks it processed
        wait_until(lambda: sum(committed_offsets(settings, settings.topics.ticks).values()),
                   30, "a commit of processed ticks")
    finally:
        first.kill()
    produce_messages(settings, settings.topics.ticks, usd[cut:])
    with WorkerProcess(settings, tmp_path / "worker2.log") as second:
        got = _reactions(settings, len(want))
        # every input committed: nothing more can come from it, a doubled record included
        wait_until(lambda: sum(committed_offsets(settings, settings.topics.ticks).values()),
                   30, "every tick committed", until=lambda n: n >= len(usd))
        got = _reactions(settings, len(want))
        log = second.log_tail(20_000)
    assert set(got) == set(want)
    for key, values in got.items():
        assert all(v == want[key] for v in values), key  # never a different answer
    assert "state rebuilt from" in log
