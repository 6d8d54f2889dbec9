"""A worker that was down for an hour of event time catches up, and the lag shows.

The synthetic market runs up to "now" (wall clock), so that processing time minus event time
means what it means live.  The worker processes the first three hours (a tariff headline
whose 60-minute reaction is still pending when it stops), is stopped, and misses the last
65 minutes (ticks and three more headlines).  Restarted, it must rebuild the pending state,
catch up, and publish exactly the reference reactions; its event-lag histogram must show
inputs processed more than 15 minutes after their event time, and the latest-lag gauge that
it has caught up.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tariffmon.contract import Headline
from tests.conftest import MakeSettings
from tests.kafka_helpers import committed_offsets, consume_all, produce_messages, wait_until
from tests.reference import reference
from tests.reliability.helpers import (
    metric_samples,
    metric_value,
    read_outputs,
    wait_for_reactions,
)
from tests.tariffmon.streams.market import PAUSE_TITLE, ticks
from tests.worker_process import WorkerProcess

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MIN = 60_000
HOUR = 60 * MIN
BACKLOG_MS = 65 * MIN


def lag_bucket(metrics: str, le: str) -> float:
    """How many tick batches were processed at most ``le`` seconds after their event time."""
    return sum(v for lab, v in metric_samples(metrics, "tariffmon_event_lag_seconds_bucket")
               if lab.get("kind") == "tick" and lab.get("le") == le)


def test_worker_down_for_an_hour_catches_up_without_losing_reactions(
    make_settings: MakeSettings, tmp_path: Path
) -> None:
    settings = make_settings(worker={"commit_interval_s": 0.5})
    now = int(time.time()) * 1_000
    start = now - 4 * HOUR
    cut = now - BACKLOG_MS  # the worker is down from here on
    seconds = (now - start) // 1_000
    usd = ticks("USDJPY", start, seconds, seed=21, jump_at=now - 50 * MIN)
    nik = ticks("N225", start, seconds, seed=22)
    before = [Headline("h-before", cut - 35 * MIN, "test", PAUSE_TITLE)]
    during = [
        Headline("h-autos", now - 50 * MIN, "test",
                 "US raises tariffs on Japanese autos to 25% as trade talks stall"),
        Headline("h-boj", now - 30 * MIN, "test",
                 "Bank of Japan keeps rates unchanged, watches markets"),
        Headline("h-deal", now - 20 * MIN, "test",
                 "Japan and US agree to start tariff talks after call"),
    ]
    ref = reference(settings, usd + nik, before + during)
    pending_at_stop = {k for k, r in ref.reactions.items()
                       if r.headline_id == "h-before" and r.t1 >= cut}
    assert pending_at_stop and len(ref.reactions) >= 16

    produce_messages(settings, settings.topics.headlines, before)
    produce_messages(settings, settings.topics.ticks, [t for t in usd + nik if t.ts < cut])
    first = WorkerProcess(settings, tmp_path / "worker1.log").start()
    try:
        done_first = {k for k, r in ref.reactions.items() if r.t1 < cut}
        wait_for_reactions(settings, done_first, timeout=60)
        n_first = sum(1 for t in usd + nik if t.ts < cut)
        wait_until(lambda: sum(committed_offsets(settings, settings.topics.ticks).values()),
                   60, "the first worker's ticks committed", until=lambda n: n >= n_first)
    finally:
        assert first.stop() == 0, first.log_tail()

    produce_messages(settings, settings.topics.headlines, during)
    produce_messages(settings, settings.topics.ticks, [t for t in usd + nik if t.ts >= cut])
    with WorkerProcess(settings, tmp_path / "worker2.log") as second:
        t = time.monotonic()
        out = wait_for_reactions(settings, ref.reactions, timeout=90)
        caught_up_s = time.monotonic() - t
        # every tick processed (committed) before the metrics are read
        wait_until(lambda: sum(committed_offsets(settings, settings.topics.ticks).values()),
                   60, "every tick committed", until=lambda n: n >= len(usd) + len(nik))
        metrics = second.metrics_text()
        log = second.log_tail(20_000)
    out = read_outputs(settings)
    dead = consume_all(settings, settings.topics.deadletter)

    latest = metric_value(metrics, "tariffmon_latest_event_lag_seconds", kind="tick")
    total = lag_bucket(metrics, "+Inf")
    late = total - lag_bucket(metrics, "900.0")
    print(f"\ncaught up {BACKLOG_MS // MIN} min of event time in {caught_up_s:.1f} s; "
          f"tick batches {total:g}, of which {late:g} over 15 min late; "
          f"latest tick lag {latest:.1f} s")
    assert not dead, [d.value[:200] for d in dead[:3]]
    assert not out.conflicting_reactions()
    assert {k: v[0] for k, v in out.reactions.items()} == ref.reactions
    assert "state rebuilt from" in log
    assert late >= 1, "the backlog does not show in tariffmon_event_lag_seconds"
    # recovery replays the processed hours with outputs and metrics suppressed: nothing in
    # the new process's histogram is older than the backlog it really processed
    assert total - lag_bucket(metrics, "21600.0") == 0
    assert 0 <= latest < 300, "the latest-lag gauge does not show that the worker caught up"
