"""End to end: a replay through the real broker, a real worker, a real Prometheus.

The bundled sample (``data/sample``: ~156k ticks and 30 headlines, 2-7 April 2025) is
published by ``tariffmon replay --speed max`` (subprocesses) to topics of this test; a real
``tariffmon worker`` subprocess processes it; Debian's ``prometheus`` scrapes the worker every
second with config/prometheus/rules loaded.

The headlines are replayed first and the ticks once the worker has turned them into reaction
requests, so that the run has the same shape every time; the expected counts then come from
the offline backtest of the same files.

Then every dashboard panel query, every annotation query, every alerting and every recording
rule expression is evaluated through ``/api/v1/query``: each must succeed and return data,
except where stated below.  A few values are followed through the whole chain (last prices,
tick, reaction, sharp-move and tariff-headline counts equal to the backtest's), and
``tariffmon watch`` must show the newest tariff headline with the backtest's reactions.

Producer metrics: ``tariffmon replay`` serves no metrics endpoint (it runs its producer with
``metrics_port=None``), so the test serves a :class:`~tariffmon.producers.metrics.ProducerMetrics`
registry itself, as job ``tariffmon-replay``, and updates it from what each replay did: the
acknowledged and failed counts of its JSON summary on the topic of the stream it replayed,
and one source fetch per file read.  Error counters are created at zero, as the worker creates its
alert-watched counters, so that Prometheus has a series to take ``increase()`` of.

Inputs the sample lacks, added on purpose so that the pipeline-health queries have something
real to show: a malformed tick before and another after the replay (dead letters, rising), and
a tariff headline far beyond the lateness bound after it (a late input, measured by the
worker from ticks it reads back from Kafka).  A third scrape job
points at a port nobody listens on (the headline producer, not run here): TargetDown.

Exemptions (the query must still succeed):

* ``Alert state/A`` counts *firing* alerts; the shortest ``for:`` is a minute, longer than
  the test waits after the first sharp move.  ``Alerts/A`` (pending or firing) must have data.
* ``StaleFeed`` depends on the wall clock: the replayed ticks are a year old, so it returns
  exactly the symbols whose market is open now (none at the weekend), as the settings'
  trading calendars say; within two minutes of an open or close either answer is accepted.
* ``ProducerSendErrors`` and ``SourceFetchFailing`` watch failures: against a healthy broker
  the replay has none (asserted), and no remote source is fetched, so both must be *empty*.
  ``ConsumerLagHigh`` too: the worker has drained the replay before the queries run.
  Their firing side is covered by promtool (config/prometheus/tests) and
  tests/config/test_dashboards.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from tariffmon.contract import Headline, Reaction
from tariffmon.metrics import serve
from tariffmon.producers.metrics import ProducerMetrics
from tariffmon.recorded import merge_events
from tariffmon.settings import Settings
from tariffmon.watch.view import format_reaction_cell
from tests.conftest import MakeSettings
from tests.dashboard_queries import (
    MAY_BE_EMPTY,
    ROOT,
    RULES,
    alert_exprs,
    panel_queries,
    recording_exprs,
)
from tests.kafka_helpers import (
    committed_offsets,
    consume_all,
    free_port,
    produce_messages,
    produce_raw,
    wait_until,
)
from tests.prometheus_harness import PrometheusServer, prometheus_binary, running_prometheus
from tests.worker_process import WorkerProcess, settings_env

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SAMPLE = [ROOT / "data" / "sample" / "ticks.jsonl.gz", ROOT / "data" / "sample" / "headlines.jsonl"]
WORKER_JOB = "tariffmon-worker"
REPLAY_JOB = "tariffmon-replay"
ABSENT_JOB = "tariffmon-headline-producer"
#: a tick without price or time: the worker dead-letters it (reason missing_field)
BAD_TICK = b'{"v":1,"symbol":"USDJPY"}'
LATE_TITLE = "US to impose 25% tariffs on Japanese steel, commerce department says"

#: must be empty: nothing fails in this test (see the module docstring)
MUST_BE_EMPTY = {"ProducerSendErrors", "SourceFetchFailing", "ConsumerLagHigh"}
#: may be empty (see the module docstring)
MAY_BE_EMPTY_HERE = set(MAY_BE_EMPTY)


class Sample:
    """What the sample files hold, and what the pipeline must make of them."""

    def __init__(self) -> None:
        streams: Counter[str] = Counter()
        last_price: dict[str, float] = {}
        first_ts: int | None = None
        for ev in merge_events(SAMPLE):
            streams[ev.stream] += 1
            first_ts = ev.ts if first_ts is None else first_ts
            if ev.stream == "ticks":
                last_price[ev.value["symbol"]] = ev.value["price"]
        self.streams = streams
        self.last_price = last_price
        self.first_ts = first_ts or 0
        self.reactions: int | None = None
        self.alerts: int | None = None
        self.tariff_headlines: int | None = None
        self.reaction_list: list[Reaction] = []
        try:  # the offline backtest runs the same core: it tells how many answers to expect
            from tariffmon.backtest import run_backtest
        except ImportError:
            return
        result = run_backtest(SAMPLE)
        self.reaction_list = list(result.reactions)
        self.reactions = len(result.reactions)
        self.alerts = len(result.alerts)
        # the metric counts stories: a repeat of one is counted apart (duplicate_headlines)
        self.tariff_headlines = (result.counts.tariff_headlines
                                 - result.counts.duplicate_headlines)


def metric_sums(text: str) -> dict[str, float]:
    """Sum of every sample of each metric on a /metrics page, by sample name."""
    sums: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            sums[s.name] = sums.get(s.name, 0.0) + float(s.value)
    return sums


def wait_worker(worker: WorkerProcess, done: Callable[[dict[str, float]], bool],
                what: str, timeout_s: float) -> dict[str, float]:
    """Poll the worker's metrics until ``done`` holds; fail with what was seen."""
    deadline = time.monotonic() + timeout_s
    while True:
        sums = metric_sums(worker.metrics_text())
        if done(sums):
            return sums
        if worker.proc is not None and worker.proc.poll() is not None:
            pytest.fail(f"the worker exited: {worker.log_tail()}")
        if time.monotonic() > deadline:
            seen = {k: v for k, v in sums.items() if k.endswith("_total")}
            pytest.fail(f"worker did not reach {what} in {timeout_s:g} s: {seen}")
        time.sleep(0.25)


def run_replay(settings: Settings, port: int, stream: str) -> dict[str, Any]:
    """``tariffmon replay SAMPLE --speed max --streams STREAM`` (a subprocess); its summary."""
    proc = subprocess.run(
        [sys.executable, "-m", "tariffmon.cli.main", "replay", *map(str, SAMPLE),
         "--speed", "max", "--streams", stream, "--no-progress"],
        env=settings_env(settings, port), capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return summary


def record_replay(pm: ProducerMetrics, settings: Settings, sample: Sample, stream: str,
                  summary: dict[str, Any], now_s: float) -> None:
    """What ``tariffmon replay`` would have counted had it served ProducerMetrics."""
    topic = settings.topics.all_topics()[stream]
    assert summary["failed"] == 0 and summary["acked"] == sample.streams[stream], summary
    pm.messages_sent.labels(topic=topic).inc(summary["acked"])
    pm.send_errors.labels(topic=topic, kind="not_acknowledged").inc(summary["failed"])
    for _ in SAMPLE:
        pm.fetch_ok("replay", now_s)
    # the other streams of the files are skipped by design (--streams), not an error


def precreate(pm: ProducerMetrics, settings: Settings, sample: Sample) -> None:
    """The replay producer's counters at zero before the first scrape."""
    topics = settings.topics.all_topics()
    for stream in sample.streams:
        pm.messages_sent.labels(topic=topics[stream])
        pm.send_errors.labels(topic=topics[stream], kind="not_acknowledged")
    pm.source_fetches.labels(source="replay")
    pm.source_errors.labels(source="replay", kind="unreadable")


def wait_two_scrapes(prom: PrometheusServer) -> None:
    """Two whole scrapes of both jobs from now: new series have two samples to rate."""
    for _ in range(2):
        since = time.time()
        prom.wait_for_scrape(WORKER_JOB, after=since)
        prom.wait_for_scrape(REPLAY_JOB, after=since)


def stale_feed_check(settings: Settings, result: list[dict[str, Any]]) -> str | None:
    """StaleFeed must name exactly the symbols whose market is open now (see docstring)."""
    now_ms = int(time.time() * 1000)
    cals = [s.trading_calendar() for s in settings.symbols]
    if any(c.is_open(now_ms + d) != c.is_open(now_ms) for c in cals for d in (-120_000, 120_000)):
        return None
    open_now = {s.name for s in settings.symbols if s.trading_calendar().is_open(now_ms)}
    got = {s["metric"].get("symbol") for s in result}
    if got != open_now:
        return f"StaleFeed: symbols {sorted(got)} but the markets open now are {sorted(open_now)}"
    return None


def test_every_dashboard_query_and_rule_returns_data(
    make_settings: MakeSettings, tmp_path: Path
) -> None:
    if prometheus_binary() is None:
        pytest.skip("prometheus is not installed (apt-get install prometheus); CI installs it")
    started = time.monotonic()
    settings = make_settings()
    sample = Sample()
    registry = CollectorRegistry()
    pm = ProducerMetrics(registry)
    precreate(pm, settings, sample)
    producer_srv = serve(registry, "127.0.0.1", 0)
    jobs = {
        WORKER_JOB: [],  # filled once the worker has its port
        REPLAY_JOB: [f"127.0.0.1:{producer_srv.port}"],
        ABSENT_JOB: [f"127.0.0.1:{free_port()}"],
    }
    timings: dict[str, float] = {}
    try:
        with WorkerProcess(settings, tmp_path / "worker.log") as worker:
            jobs[WORKER_JOB] = [f"127.0.0.1:{worker.metrics_port}"]
            with running_prometheus(jobs, rule_files=[RULES],
                                    workdir=tmp_path / "prometheus") as prom:
                # the counters at zero are scraped before anything happens, so that every
                # increase() afterwards sees the growth
                prom.wait_for_scrape(WORKER_JOB)
                prom.wait_for_scrape(REPLAY_JOB)
                timings["started"] = time.monotonic() - started

                produce_raw(settings, settings.topics.ticks, [(b"USDJPY", BAD_TICK,
                                                               sample.first_ts)])
                # headlines first, then ticks (see the module docstring)
                summary = run_replay(settings, worker.metrics_port, "headlines")
                record_replay(pm, settings, sample, "headlines", summary, time.time())
                n_heads = sample.streams["headlines"]
                sums = wait_worker(
                    worker, lambda s: s.get("tariffmon_headlines_total", 0) >= n_heads,
                    "all headlines classified", 30,
                )
                # every tariff story fans out to each symbol: wait until those requests are
                # on their topic and the react agent has processed them (its group committed
                # them), so that the ticks follow requests the engine already holds.
                n_requests = int(sums["tariffmon_tariff_headlines_total"] * len(settings.symbols))
                consume_all(settings, settings.topics.requests, n_requests, timeout=30)
                wait_until(
                    lambda: committed_offsets(settings, settings.topics.requests), 30,
                    f"all {n_requests} reaction requests committed by the worker",
                    until=lambda offsets: sum(offsets.values()) >= n_requests,
                )
                timings["headlines"] = time.monotonic() - started
                summary = run_replay(settings, worker.metrics_port, "ticks")
                record_replay(pm, settings, sample, "ticks", summary, time.time())
                timings["replayed"] = time.monotonic() - started
                n_ticks = sample.streams["ticks"]

                def processed(s: dict[str, float]) -> bool:
                    return (s.get("tariffmon_ticks_total", 0) >= n_ticks
                            and (sample.reactions is None
                                 or s.get("tariffmon_reactions_total", 0) >= sample.reactions))

                sums = wait_worker(worker, processed, "the whole sample", 90)
                timings["processed"] = time.monotonic() - started
                wait_two_scrapes(prom)  # a scrape between the two dead-letter phases

                produce_raw(settings, settings.topics.ticks, [(b"USDJPY", BAD_TICK,
                                                               sample.first_ts)])
                produce_messages(settings, settings.topics.headlines, [Headline(
                    id="e2e-late", ts=sample.first_ts + 3_600_000, source="e2e",
                    title=LATE_TITLE,
                )])
                n_symbols = len(settings.symbols)
                sums = wait_worker(
                    worker,
                    lambda s: (s.get("tariffmon_late_inputs_total", 0) >= n_symbols
                               and s.get("tariffmon_dead_letters_total", 0) >= 2
                               and s.get("tariffmon_reactions_total", 0)
                               >= late_reactions(sample, settings)),
                    "the late headline and the second bad tick", 30,
                )
                # the lag is read every 10 s: wait for a reading after the worker caught up,
                # or ConsumerLagHigh's expression still sees the backlog of the ticks replay
                wait_worker(worker, lambda s: s.get("tariffmon_consumer_lag_messages", 1) == 0,
                            "the consumer lag read back at 0", 40)
                wait_two_scrapes(prom)
                # the recording rules have run on data after the last change
                since = time.time()
                prom.wait_for('tariffmon:event_lag_seconds:p99_5m{kind="tick"} > 0')
                prom.wait_for(f"timestamp(tariffmon:feed_staleness_seconds) > {since}")
                timings["scraped"] = time.monotonic() - started

                failures, counts = evaluate_everything(prom, settings)
                checks = value_checks(prom, sample, sums, settings)
                timings["evaluated"] = time.monotonic() - started
                checks += watch_checks(settings, sample, worker.metrics_port)
                timings["watched"] = time.monotonic() - started
    finally:
        producer_srv.close()
    print(f"\ntimings (s from start): {({k: round(v, 1) for k, v in timings.items()})}")
    print("series per query:", json.dumps(counts, indent=1))
    assert not failures, "\n".join(failures)
    assert not checks, "\n".join(checks)


def late_reactions(sample: Sample, settings: Settings) -> float:
    """The backtest's reaction count plus the late headline's, one per symbol and horizon."""
    late = len(settings.symbols) * len(settings.engine.horizons_s)
    return float((sample.reactions or 0) + late)


def evaluate_everything(prom: PrometheusServer, settings: Settings
                        ) -> tuple[list[str], dict[str, int]]:
    """Evaluate every panel, annotation, alert and recording expression; the failures."""
    failures: list[str] = []
    counts: dict[str, int] = {}
    queries = ([(f"panel {n}", n, e) for n, e in panel_queries()]
               + [(f"alert {n}", n, e) for n, e in alert_exprs()]
               + [(f"record {n}", n, e) for n, e in recording_exprs()])
    for label, name, expr in queries:
        body = prom.query_raw(expr)
        if body.get("status") != "success":
            failures.append(f"{label}: {body.get('errorType')}: {body.get('error')} in {expr}")
            continue
        result = body["data"]["result"]
        counts[label] = len(result)
        if name == "StaleFeed":
            problem = stale_feed_check(settings, result)
            if problem:
                failures.append(problem)
        elif name in MUST_BE_EMPTY:
            if result:
                failures.append(f"{label}: nothing failed, yet it returned {result}")
        elif name not in MAY_BE_EMPTY_HERE and not result:
            failures.append(f"{label}: no data for {expr}")
    for group in prom.rules():
        for rule in group["rules"]:
            if rule["health"] != "ok":
                failures.append(f"rule {rule['name']}: {rule.get('lastError')}")
    return failures, counts


def value_checks(prom: PrometheusServer, sample: Sample, sums: dict[str, float],
                 settings: Settings) -> list[str]:
    """A few values that must have come through the whole chain unchanged."""
    problems: list[str] = []

    def expect(expr: str, want: float) -> None:
        got = prom.value(expr)
        if got is None or abs(got - want) > 1e-9 * max(1.0, abs(want)):
            problems.append(f"{expr} = {got}, expected {want}")

    for symbol, price in sample.last_price.items():
        expect(f'tariffmon_last_price{{symbol="{symbol}"}}', price)
    expect("sum(tariffmon_ticks_total)", sample.streams["ticks"])
    if sample.reactions is not None:
        want = late_reactions(sample, settings)
        expect("sum(tariffmon_reactions_total)", want)
        if sums.get("tariffmon_reactions_total") != want:
            problems.append(f"worker measured {sums.get('tariffmon_reactions_total')} "
                            f"reactions, the backtest {sample.reactions} + the late headline's")
    if sample.alerts is not None:
        expect("sum(tariffmon_sharp_moves_total)", sample.alerts)
    if sample.tariff_headlines is not None:  # the late headline is a tariff headline too
        expect("sum(tariffmon_tariff_headlines_total)", sample.tariff_headlines + 1)
    down = prom.query('up{job=~"tariffmon-.+"} == 0')
    if [s["metric"]["job"] for s in down] != [ABSENT_JOB]:
        problems.append(f"targets down: {down}")
    alerting = {s["metric"]["alertname"] for s in prom.query("ALERTS")}
    for name in ("SharpYenMove", "SignificantTariffReaction", "EventLagHigh",
                 "DeadLettersRising", "TargetDown"):
        if name not in alerting:
            problems.append(f"{name} is neither pending nor firing: {sorted(alerting)}")
    return problems


def watch_checks(settings: Settings, sample: Sample, port: int) -> list[str]:
    """``tariffmon watch`` on the worker's real output shows the newest tariff headline with
    the reactions the backtest measured for it."""
    if not sample.reaction_list:
        return []
    newest = max(sample.reaction_list, key=lambda r: (r.t0, r.headline_id))
    proc = subprocess.run(
        [sys.executable, "-m", "tariffmon.cli.main", "watch", "--no-clear", "--width", "200",
         "--max-refreshes", "1"],
        env=settings_env(settings, port), capture_output=True, text=True, timeout=60,
    )
    if proc.returncode != 0:
        return [f"tariffmon watch exited with {proc.returncode}: {proc.stderr[-2000:]}"]
    lines = proc.stdout.splitlines()
    if f"  {newest.title}" not in lines:
        return [f"tariffmon watch does not show {newest.title!r}:\n{proc.stdout}"]
    i = lines.index(f"  {newest.title}")
    problems = []
    for symbol in sorted({r.symbol for r in sample.reaction_list}):
        row = next((ln for ln in lines[i + 1:] if ln.startswith(f"  {symbol} ")), "")
        for r in sample.reaction_list:
            if r.headline_id == newest.headline_id and r.symbol == symbol:
                cell = format_reaction_cell(r).strip()
                if cell not in row:
                    problems.append(f"watch: {symbol} {r.horizon_s}s {cell!r} not in {row!r}")
    return problems
