"""A tariff headline is not held behind a tick backlog.

The classify agent (headlines -> requests) and the react service (ticks + requests ->
reactions) share the worker's event loop.  A fetch with records buffered returns without
suspending, and so do the sends: a react loop that never paused would keep the event loop
round after round, and the headline's requests would wait until the whole backlog was
processed (one benchmark run saw requests 20 s late, behind a million ticks).

The worker is frozen (SIGSTOP) while a backlog of ticks and then a tariff headline are
published, and thawed: both of its consumers find their records at once.  The headline's
first reaction must be on Kafka while three quarters of the backlog are still unprocessed,
and once the backlog is done no input may have been late.
"""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path

import pytest
from kafka import KafkaConsumer

from tariffmon.contract import Headline, Tick
from tariffmon.kafkaclient import client_config
from tariffmon.producers.batch_producer import BatchProducer
from tariffmon.settings import Settings
from tests.conftest import MakeSettings
from tests.kafka_helpers import consume_all, produce_messages
from tests.reliability.helpers import metric_value, wait_for_settled_worker
from tests.tariffmon.streams.market import T0, pause_headline
from tests.worker_process import WorkerProcess

pytestmark = [pytest.mark.integration, pytest.mark.slow]

#: ticks of the backlog: several seconds of a worker's full speed on this kind of machine
BACKLOG = 600_000
SPACING_MS = 50
SYMBOLS = {"USDJPY": 146.0, "N225": 34_000.0}


def backlog_ticks(start: int) -> list[tuple[str, int, bytes]]:
    """``(symbol, ts, value)`` of the backlog: the symbols interleaved, a random walk each."""
    rnd = random.Random(7)
    price = dict(SYMBOLS)
    out = []
    for i in range(BACKLOG // len(SYMBOLS)):
        ts = start + i * SPACING_MS
        for sym in SYMBOLS:
            price[sym] *= 1.0 + rnd.gauss(0.0, 2e-5)
            out.append((sym, ts, Tick(sym, ts, round(price[sym], 4), "test").encode()))
    return out


def ticks_processed(worker: WorkerProcess) -> float:
    """The worker's tariffmon_ticks_total, summed over symbols."""
    return metric_value(worker.metrics_text(), "tariffmon_ticks_total")


def test_a_headline_is_not_held_behind_a_tick_backlog(
    make_settings: MakeSettings, tmp_path: Path
) -> None:
    # the freeze must not cost the worker its group membership
    settings = make_settings(worker={"session_timeout_s": 60})
    start = T0 - 10 * 60_000
    backlog = backlog_ticks(start)
    with WorkerProcess(settings, tmp_path / "worker.log") as worker:
        def alive() -> None:
            assert worker.running(), worker.log_tail()

        wait_for_settled_worker(settings, alive)
        # the first headline makes the worker re-learn story clusters from Kafka: done here,
        # with a headline of no tariff, so that the measured one pays only its own path
        produce_messages(settings, settings.topics.headlines, [Headline(
            "h-warm", start, "test", "Bank of Japan keeps rates unchanged")])
        deadline = time.monotonic() + 60
        while not consume_all(settings, settings.topics.classified):
            assert worker.running(), worker.log_tail()
            assert time.monotonic() < deadline, "the warm-up headline was not classified"
            time.sleep(0.5)
        # connected and positioned before the backlog, so that it sees the first reaction
        # as it comes rather than after its own start-up
        consumer = KafkaConsumer(settings.topics.reactions, **client_config(settings.kafka),
                                 auto_offset_reset="earliest", enable_auto_commit=False)
        try:
            consumer.poll(timeout_ms=2_000)
            assert consumer.assignment(), "the reactions consumer has no partitions"
            at_first_reaction = produce_backlog_and_watch(settings, worker, consumer, backlog)
        finally:
            consumer.close()
        deadline = time.monotonic() + 120
        while (done := ticks_processed(worker)) < BACKLOG:
            assert worker.running(), worker.log_tail()
            assert time.monotonic() < deadline, f"{done:g} of {BACKLOG} ticks processed"
            time.sleep(0.5)
        late = metric_value(worker.metrics_text(), "tariffmon_late_inputs_total")
    print(f"\nfirst reaction after {at_first_reaction:g} of {BACKLOG} backlog ticks")
    # measured: after 40,000-60,000 ticks (two or three rounds); 193,000 with the loop's
    # pause taken out
    assert at_first_reaction < BACKLOG / 4, (
        f"the headline's first reaction came after {at_first_reaction:g} of the {BACKLOG} "
        "backlog ticks: its requests waited behind the ticks")
    assert late == 0


def produce_backlog_and_watch(settings: Settings, worker: WorkerProcess,
                              consumer: KafkaConsumer, backlog: list[tuple[str, int, bytes]]
                              ) -> float:
    """Freeze the worker, publish the backlog and a tariff headline, thaw it; the ticks it
    had processed when the first reaction was seen."""
    assert worker.pid is not None
    os.kill(worker.pid, signal.SIGSTOP)
    try:
        with BatchProducer(settings) as producer:
            for sym, ts, value in backlog:
                producer.publish(settings.topics.ticks, sym, value, ts)
            producer.flush()
            assert producer.failed == 0
        produce_messages(settings, settings.topics.headlines, [pause_headline()])
    finally:
        os.kill(worker.pid, signal.SIGCONT)
    deadline = time.monotonic() + 120
    while not consumer.poll(timeout_ms=100, max_records=1):
        assert worker.running(), worker.log_tail()
        assert time.monotonic() < deadline, "no reaction within 120 s"
    return ticks_processed(worker)
