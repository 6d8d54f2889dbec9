"""Benchmark: ticks/s of one ``tariffmon worker`` against two, on the same input, in one run.

1. Generate ``--days`` of one-second ticks for ``--symbols`` (default: six symbols whose keys
   land on the six partitions, one each, so that two workers can split the load evenly) and
   a tariff headline every ``--headline-every`` seconds, and run the offline backtest: the
   reactions every run must publish.
2. Replay the file once into a ticks and a headlines topic of ``--partitions`` partitions.
3. For each run (one worker, then two; ``--rounds`` alternates the order), a fresh consumer
   group with its own requests, classified, reactions, alerts and dead-letter topics reads
   the same ticks and headlines.  The workers are started together; ``ticks_per_s`` = ticks /
   (last expected reaction consumed - first tick counted on any worker's /metrics).  The
   group's stable memberships are sampled from the broker so that the start-up rebalances
   are visible in the result.
4. ``ratio_two_vs_one`` = two workers' ticks/s / one worker's, from the same run.

A private broker unless ``--bootstrap``.  The lateness bound covers the generated span, as
in bench_e2e (so no request takes the read-back path; see BENCHMARKS.md).

    .venv/bin/python bench/bench_scaleout.py [--smoke] [--days 0.25] [--rounds 1]
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from common import (
    BenchBroker,
    TopicCollector,
    WorkerProc,
    exit_cleanly_on_signals,
    machine_facts,
    symbol_config,
    temp_dir,
    write_dataset,
    write_result,
)
from kafka.errors import KafkaError

from tariffmon.backtest.runner import run_backtest
from tariffmon.kafkaclient import admin_client, ensure_topics
from tariffmon.producers.kafka_producer import TopicProducer
from tariffmon.producers.replay import replay
from tariffmon.settings import Settings, load_settings

#: one symbol per partition of six under the default (murmur2) partitioner
SYMBOLS_6 = ("TOPIX", "USDJPY", "EURJPY", "HSI", "N225", "NKD")
OUTPUT_STREAMS = ("classified", "requests", "reactions", "alerts", "deadletter")


def run_settings(bootstrap: str, base: dict[str, str], tag: str, symbols: list[str],
                 partitions: int, lateness_s: int, data_dir: Path) -> Settings:
    """Settings reading the shared ticks and headlines, with outputs and a group of their own."""
    topics: dict[str, Any] = dict(base)
    topics.update({s: f"{base['ticks']}.{tag}.{s}" for s in OUTPUT_STREAMS})
    topics["symbol_partitions"] = partitions
    settings = load_settings(
        kafka={"bootstrap_servers": bootstrap},
        topics=topics,
        symbols=symbol_config(symbols),
        engine={"lateness_s": lateness_s},
        worker={"app_id": f"bench-scaleout-{tag}-{uuid.uuid4().hex[:6]}",
                "data_dir": str(data_dir / tag)},
    )
    ensure_topics(settings)
    return settings


class Memberships(threading.Thread):
    """Samples the group's state from the broker: the sizes of its stable memberships."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(daemon=True, name="memberships")
        self.settings = settings
        self.seen: list[tuple[float, int]] = []
        self._stop_event = threading.Event()

    def run(self) -> None:
        import logging

        # kafka-python cannot decode Faust's subscription metadata and warns every call
        logging.getLogger("kafka.admin._groups").setLevel(logging.ERROR)
        admin = admin_client(self.settings.kafka)
        group = self.settings.worker.app_id
        t0 = time.monotonic()
        try:
            while not self._stop_event.wait(0.25):
                try:
                    desc = admin.describe_groups([group])[group]
                except KafkaError as exc:
                    if exc.retriable:
                        continue
                    raise
                if desc["group_state"] == "Stable":
                    n = len(desc["members"])
                    if not self.seen or self.seen[-1][1] != n:
                        self.seen.append((round(time.monotonic() - t0, 2), n))
        finally:
            admin.close()

    def stop(self) -> None:
        """Stop sampling."""
        self._stop_event.set()
        self.join(timeout=10)


def measure(settings: Settings, n_workers: int, ticks: int, expected: dict[bytes, Any],
            tmp: Path, timeout: float) -> dict[str, Any]:
    """Run ``n_workers`` workers until every expected reaction is out; their ticks/s."""
    collector = TopicCollector(settings, settings.topics.reactions)
    collector.start()
    members = Memberships(settings)
    members.start()
    workers = [WorkerProc(settings, tmp / f"{settings.worker.app_id}-{i}.log")
               for i in range(n_workers)]
    errors: list[BaseException] = []

    def start(w: WorkerProc) -> None:
        try:
            w.start()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller below
            errors.append(exc)

    try:
        starters = [threading.Thread(target=start, args=(w,)) for w in workers]
        t_start = time.monotonic()
        for s in starters:
            s.start()
        for s in starters:
            s.join()
        if errors:
            raise errors[0]
        t_first = None
        per_worker: list[float] = [0.0] * n_workers
        deadline = time.monotonic() + timeout
        while len(collector.first_seen) < len(expected):
            if time.monotonic() > deadline:
                raise RuntimeError(f"timeout: {len(collector.first_seen)}/{len(expected)} "
                                   f"reactions; {workers[0].log_tail()}")
            if collector.error is not None:
                raise RuntimeError(f"reaction collector failed: {collector.error!r}")
            for i, w in enumerate(workers):
                if not w.running():
                    raise RuntimeError(f"worker {i} exited: {w.log_tail()}")
                try:
                    per_worker[i] = w.metric_sum("tariffmon_ticks_total")
                except OSError:  # a busy worker answering late: the next poll will do
                    continue
            if t_first is None and sum(per_worker) > 0:
                t_first = time.monotonic()
            time.sleep(0.25)
        t_last = max(collector.first_seen.values())
        with contextlib.suppress(OSError):
            per_worker = [w.metric_sum("tariffmon_ticks_total") for w in workers]
    finally:
        for w in workers:
            w.stop(timeout=120)
        collector.stop()
        members.stop()
    if t_first is None:
        # every tick was processed between two polls: count from the start (a lower bound)
        t_first = t_start
    busy = t_last - t_first
    mismatched = sum(1 for k, r in expected.items() if collector.values.get(k) != r.encode())
    return {
        "workers": n_workers,
        "ticks_per_s": round(ticks / busy),
        "busy_s": round(busy, 2),
        "first_tick_after_start_s": round(t_first - t_start, 2),
        "ticks_per_s_incl_startup": round(ticks / (t_last - t_start)),
        # counted by each worker; more than the input in total when a rebalance made a
        # worker redo records the previous owner had not committed
        "ticks_counted_per_worker": per_worker,
        "stable_memberships_seen": members.seen,
        "reactions_expected": len(expected),
        "reaction_records": collector.records,
        "reactions_differing_from_backtest": mismatched,
    }


def main(argv: list[str] | None = None) -> int:
    """Run the scale-out benchmark; print and write the JSON result."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--smoke", action="store_true", help="tiny sizes, for CI")
    ap.add_argument("--days", type=float, default=None, help="event time to generate")
    ap.add_argument("--symbols", default=",".join(SYMBOLS_6), help="comma-separated symbols")
    ap.add_argument("--partitions", type=int, default=6, help="ticks/requests partitions")
    ap.add_argument("--headline-every", type=float, default=None,
                    help="seconds of event time between headlines")
    ap.add_argument("--rounds", type=int, default=1,
                    help="pairs of runs (one worker, two workers), order alternated")
    ap.add_argument("--bootstrap", default=None, help="use this broker instead of a private one")
    ap.add_argument("--timeout", type=float, default=1_800, help="give up a run after (s)")
    ap.add_argument("--out", type=Path, default=None, help="result JSON path")
    args = ap.parse_args(argv)
    exit_cleanly_on_signals()
    days = args.days if args.days is not None else (0.02 if args.smoke else 0.25)
    every = args.headline_every or (120.0 if args.smoke else 600.0)
    seconds = int(days * 86_400)
    symbols = [s.strip() for s in args.symbols.split(",") if s.strip()]
    result: dict[str, Any] = {"benchmark": "scaleout", "smoke": args.smoke, "days": days,
                              "symbols": symbols, "partitions": args.partitions,
                              "machine": machine_facts()}
    with temp_dir("tariffmon-bench-scaleout-") as tmp, BenchBroker(args.bootstrap) as broker:
        lateness = seconds + 3_600
        run = uuid.uuid4().hex[:6]
        base = {s: f"bench.scaleout-{run}.{s}" for s in ("ticks", "headlines", *OUTPUT_STREAMS)}
        source = run_settings(broker.bootstrap, base, "replay", symbols, args.partitions,
                              lateness, tmp)
        data = write_dataset(tmp / "scaleout.jsonl", symbols, seconds, every)
        result["ticks"] = data.ticks
        result["headlines"] = data.headlines
        t = time.perf_counter()
        expected = {r.key.encode(): r for r in run_backtest([data.path], source).reactions}
        if not expected:
            raise SystemExit("the generated data has no reactions: generate more days")
        result["backtest"] = {"wall_s": round(time.perf_counter() - t, 2),
                              "reactions": len(expected)}
        with TopicProducer(source) as producer:
            rep = replay([data.path], producer,
                         {"ticks": base["ticks"], "headlines": base["headlines"]})
        result["replay"] = {"acked": rep.acked, "failed": rep.failed,
                            "msgs_per_s": round(rep.rate)}
        runs: list[dict[str, Any]] = []
        order = []
        for r in range(args.rounds):
            order += [1, 2] if r % 2 == 0 else [2, 1]
        for i, n in enumerate(order):
            settings = run_settings(broker.bootstrap, base, f"r{i}w{n}", symbols,
                                    args.partitions, lateness, tmp)
            res = measure(settings, n, data.ticks, expected, tmp, args.timeout)
            runs.append(res)
            print(f"{n} worker(s): {res['ticks_per_s']} ticks/s "
                  f"(busy {res['busy_s']} s, memberships {res['stable_memberships_seen']})",
                  flush=True)
        result["runs"] = runs
        one = [r["ticks_per_s"] for r in runs if r["workers"] == 1]
        two = [r["ticks_per_s"] for r in runs if r["workers"] == 2]
        result["one_worker_ticks_per_s"] = round(statistics.median(one))
        result["two_workers_ticks_per_s"] = round(statistics.median(two))
        result["ratio_two_vs_one"] = round(statistics.median(two) / statistics.median(one), 3)
        result["all_reactions_equal_backtest"] = all(
            r["reactions_differing_from_backtest"] == 0 for r in runs)
    write_result("scaleout", result, args.out, args.smoke)
    return 0


if __name__ == "__main__":
    sys.exit(main())
