"""Benchmark: end-to-end ticks/s through the real broker and one worker, vs a raw drain.

1. Generate ``--days`` of one-second ticks for three symbols plus a tariff headline every
   ``--headline-every`` seconds (recorded-stream file in a temporary folder), and run the
   offline backtest over it: the reactions the worker must publish.
2. Replay the file into fresh topics with the replay producer (the worker's backlog).
3. The baseline, in the same run: a plain aiokafka consumer (no group, no processing) drains
   the ticks topic; ``ratio_worker_vs_raw_drain`` compares the worker with it.
4. Start one ``tariffmon worker``; wait until every expected reaction is on the reactions
   topic.  ``ticks_per_s`` = ticks after the first poll of the worker's /metrics that
   counted any / (last reaction consumed - that poll): the ticks of the rounds done by that
   poll are left out with their time; also given from the worker's start (start-up
   included).  The
   headlines are classified by the same worker while it works through the ticks, so their
   reaction requests arrive through the requests topic during the run: ``requests`` says
   when (and at how many ticks processed) the first and last of them were seen.
5. Check the live reactions equal the backtest's, key by key.

The lateness bound is the default (6 h) unless ``--lateness-s``: requests whose ticks the
worker has already passed by more than that are measured on ticks read back from Kafka (the
late path, counted as ``late_inputs``), and must still equal the backtest.

``--profile`` runs the worker under ``py-spy record`` (its figures are then not the clean
ones; run it separately).  Uses a private broker unless ``--bootstrap``.

    .venv/bin/python bench/bench_e2e.py [--smoke] [--days 4] [--profile] [--bootstrap H:P]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from common import (
    SYMBOLS_3,
    BenchBroker,
    TopicCollector,
    WorkerProc,
    aiokafka_drain,
    bench_settings,
    exit_cleanly_on_signals,
    machine_facts,
    summarise_raw_profile,
    temp_dir,
    write_dataset,
    write_result,
)

from tariffmon.backtest.runner import run_backtest
from tariffmon.producers.kafka_producer import TopicProducer
from tariffmon.producers.replay import replay


def main(argv: list[str] | None = None) -> int:
    """Run the end-to-end benchmark; print and write the JSON result."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--smoke", action="store_true", help="tiny sizes, for CI")
    ap.add_argument("--days", type=float, default=None, help="event time to generate")
    ap.add_argument("--headline-every", type=float, default=None,
                    help="seconds of event time between headlines")
    ap.add_argument("--bootstrap", default=None, help="use this broker instead of a private one")
    ap.add_argument("--lateness-s", type=int, default=None,
                    help="engine.lateness_s for worker and backtest (default: the "
                         "settings' default, 6 h)")
    ap.add_argument("--profile", action="store_true", help="run the worker under py-spy")
    ap.add_argument("--timeout", type=float, default=1_800, help="give up after (s)")
    ap.add_argument("--out", type=Path, default=None, help="result JSON path")
    args = ap.parse_args(argv)
    exit_cleanly_on_signals()
    days = args.days if args.days is not None else (0.02 if args.smoke else 4.0)
    every = args.headline_every or (300.0 if args.smoke else 700.0)
    seconds = int(days * 86_400)
    name = "e2e_profile" if args.profile else "e2e"

    result: dict[str, Any] = {"benchmark": "e2e", "smoke": args.smoke, "days": days,
                              "symbols": list(SYMBOLS_3), "machine": machine_facts()}
    with temp_dir("tariffmon-bench-e2e-") as tmp, BenchBroker(args.bootstrap) as broker:
        engine = {} if args.lateness_s is None else {"lateness_s": args.lateness_s}
        settings = bench_settings(broker.bootstrap, "e2e", SYMBOLS_3, tmp, engine=engine)
        lateness = settings.engine.lateness_s
        result["lateness_s"] = lateness
        t = time.perf_counter()
        data = write_dataset(tmp / "e2e.jsonl", SYMBOLS_3, seconds, every)
        result["generate_s"] = round(time.perf_counter() - t, 2)
        result["ticks"] = data.ticks
        result["headlines"] = data.headlines

        t = time.perf_counter()
        expected = {r.key.encode(): r for r in run_backtest([data.path], settings).reactions}
        result["backtest"] = {"wall_s": round(time.perf_counter() - t, 2),
                              "reactions": len(expected)}

        with TopicProducer(settings) as producer:
            rep = replay([data.path], producer, settings.topics.all_topics())
        result["replay"] = {"acked": rep.acked, "failed": rep.failed,
                            "wall_s": round(rep.elapsed_s, 2), "msgs_per_s": round(rep.rate)}

        drain = aiokafka_drain(broker.bootstrap, settings.topics.ticks,
                               settings.topics.symbol_partitions)
        result["raw_drain"] = drain

        collector = TopicCollector(settings, settings.topics.reactions)
        collector.start()
        requests = _Arrivals(settings, settings.topics.requests)
        requests.start()
        profile = tmp / "worker.raw" if args.profile else None
        worker = WorkerProc(settings, tmp / "worker.log", profile_out=profile)
        progress: list[tuple[float, float]] = []
        try:
            worker.start()
            t_ready = time.monotonic()
            t_first_tick = None
            ticks_at_first = 0.0
            deadline = time.monotonic() + args.timeout
            peak_kib = 0
            settled = None
            while len(collector.first_seen) < len(expected):
                # every tick counted and no new reaction for 20 s: what is missing will
                # not come (reported below as missing, not waited for until the timeout)
                last_seen = max(collector.first_seen.values(), default=0.0)
                if progress and progress[-1][1] >= data.ticks:
                    settled = settled or time.monotonic()
                    if time.monotonic() - max(settled, last_seen) > 20:
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"timeout: {len(collector.first_seen)}/{len(expected)} reactions; "
                        f"{worker.log_tail()}")
                if collector.error is not None:
                    raise RuntimeError(f"reaction collector failed: {collector.error!r}")
                ticks = worker.metric_sum("tariffmon_ticks_total")
                now = time.monotonic()
                progress.append((round(now - worker.started_at, 2), ticks))
                if t_first_tick is None and ticks > 0:
                    t_first_tick, ticks_at_first = now, ticks
                peak_kib = max(peak_kib, worker.memory_kib().get("VmHWM", 0))
                # a scrape of the worker's /metrics holds its GIL for tens of ms: polled
                # every 0.25 s through the run it took ~13% of the worker's time (py-spy).
                # Finely until the first tick is counted (the start of the busy span), then
                # every 2 s: the end of the span is the collector's last reaction, not a poll
                time.sleep(0.05 if t_first_tick is None else 2.0)  # see progress_poll_s
            t_last = max(collector.first_seen.values())
            final_ticks = worker.metric_sum("tariffmon_ticks_total")
            late = worker.metric_sum("tariffmon_late_inputs_total")
            peak_kib = max(peak_kib, worker.memory_kib().get("VmHWM", 0))
        finally:
            worker.stop()
            collector.stop()
            requests.stop()
        if t_first_tick is None:
            # every reaction came before the first /metrics poll (tiny runs): from ready
            t_first_tick = t_ready
        # the rounds counted by the first poll that saw ticks took time before it: their
        # ticks are left out of the rate along with that time
        busy = max(t_last - t_first_tick, 1e-3)
        after_first = final_ticks - ticks_at_first
        # a tiny run's ticks may all be counted by the first poll: then from ready
        rate = (after_first / busy if after_first > 0
                else final_ticks / max(t_last - t_ready, 1e-3))
        mismatched = sum(1 for k, r in expected.items()
                         if k in collector.values and collector.values[k] != r.encode())
        missing = sorted(k.decode() for k in expected if k not in collector.values)
        result["worker"] = {
            "ticks_counted": final_ticks,
            "reactions_expected": len(expected),
            "reactions_consumed": len(collector.first_seen),
            "reaction_records": collector.records,
            "late_inputs": late,
            "reactions_differing_from_backtest": mismatched,
            "reactions_missing": len(missing),
            "reactions_missing_first": missing[:12],
            "startup_s": round(t_ready - worker.started_at, 2),
            "first_tick_after_start_s": round(t_first_tick - worker.started_at, 2),
            "busy_s": round(busy, 2),
            "ticks_counted_at_first_poll": ticks_at_first,
            "ticks_per_s": round(rate),
            "ticks_per_s_incl_startup": round(data.ticks / (t_last - worker.started_at)),
            "peak_rss_mib": round(peak_kib / 1024, 1),
            "requests": _request_arrivals(requests.arrivals, progress, worker.started_at,
                                          data.ticks),
            # the tick counts of ``progress_sampled`` and ``requests`` are as fine as this
            "progress_poll_s": {"until_first_tick": 0.05, "after": 2.0},
            "progress_sampled": progress[:: max(1, len(progress) // 40)],
        }
        result["ratio_worker_vs_raw_drain"] = round(
            result["worker"]["ticks_per_s"] / drain["records_per_s"], 4)
        result["target"] = {"ticks_per_s": 100_000, "ratio_vs_raw_drain": 0.4}
        if profile is not None:
            if profile.exists():
                result["profile"] = summarise_raw_profile(profile)
                dest = write_result(name, result, args.out, args.smoke)
                profile.replace(dest.with_suffix(".raw"))
                return 0
            result["profile"] = {"error": "py-spy wrote no profile"}
    write_result(name, result, args.out, args.smoke)
    return 0


class _Arrivals(TopicCollector):
    """Every record's arrival time on a topic (the reaction requests share a few keys)."""

    def __init__(self, settings: Any, topic: str) -> None:
        super().__init__(settings, topic)
        self.arrivals: list[float] = []

    def run(self) -> None:
        try:
            while not self._stop_event.is_set():
                batch = self._consumer.poll(timeout_ms=50)
                now = time.monotonic()
                self.arrivals.extend(now for recs in batch.values() for _ in recs)
        except Exception as exc:  # noqa: BLE001 - reported by the caller
            self.error = exc
        finally:
            self._consumer.close()


def _request_arrivals(arrivals: list[float], progress: list[tuple[float, float]],
                      started: float, ticks: int) -> dict[str, Any]:
    """When the reaction requests reached the requests topic, against the ticks processed."""
    if not arrivals:
        return {"count": 0}
    times = sorted(t - started for t in arrivals)

    def ticks_at(t: float) -> float:
        before = [n for at, n in progress if at <= t]
        return before[-1] if before else 0.0

    # (None: the sampling ended with the last reaction, before every tick was counted)
    done = next((at for at, n in progress if n >= ticks), None)
    return {
        "count": len(times),
        "first_after_start_s": round(times[0], 2),
        "last_after_start_s": round(times[-1], 2),
        "ticks_processed_at_first": ticks_at(times[0]),
        "ticks_processed_at_last": ticks_at(times[-1]),
        "all_ticks_processed_after_start_s": done,
        "arrived_before_all_ticks_processed": sum(1 for t in times
                                                  if done is None or t < done),
    }


if __name__ == "__main__":
    sys.exit(main())
