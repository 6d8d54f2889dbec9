"""Benchmark: the worker's memory over 24 h of event time for 10 symbols at one tick a second.

Generates 864,000 ticks (10 symbols, one a second, 24 h) and a tariff headline every
``--headline-every`` seconds.  Replays the headlines, starts one ``tariffmon worker``
(settings list the 10 symbols, passed as ``TARIFFMON_SYMBOLS``), waits until it has consumed
the reaction requests, then replays the ticks at full speed while sampling its RSS
(``/proc/<pid>/status`` VmRSS, and VmHWM = peak) against the event time it has processed
(ticks counted on /metrics).
The engine keeps ``EngineParams.retention_ms`` of ticks per symbol (9.25 h by default), so beyond
that the RSS should stay flat.

    .venv/bin/python bench/bench_memory.py [--smoke] [--hours 24] [--bootstrap H:P]
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from common import (
    SYMBOLS_10,
    BenchBroker,
    WorkerProc,
    bench_settings,
    exit_cleanly_on_signals,
    machine_facts,
    temp_dir,
    write_dataset,
    write_result,
)
from kafka import KafkaConsumer, TopicPartition

from tariffmon.assembly import engine_params
from tariffmon.kafkaclient import client_config
from tariffmon.producers.kafka_producer import TopicProducer
from tariffmon.producers.replay import replay
from tariffmon.settings import Settings


def _replay_ticks(settings: Settings, path: Path, result: dict[str, Any]) -> None:
    with TopicProducer(settings) as producer:
        rep = replay([path], producer, {"ticks": settings.topics.ticks})
    result["replay_ticks"] = {"acked": rep.acked, "wall_s": round(rep.elapsed_s, 1),
                              "msgs_per_s": round(rep.rate)}


def wait_requests_consumed(settings: Settings, timeout: float) -> int:
    """Wait until the worker committed every reaction request (the group's offsets)."""
    topic = settings.topics.requests
    tps = [TopicPartition(topic, p) for p in range(settings.topics.symbol_partitions)]
    consumer = KafkaConsumer(**client_config(settings.kafka), group_id=settings.worker.app_id,
                             enable_auto_commit=False)
    try:
        deadline = time.monotonic() + timeout
        stable_since = None
        while time.monotonic() < deadline:
            ends = consumer.end_offsets(tps)
            done = all((consumer.committed(tp) or 0) >= ends[tp] for tp in tps)
            if done and sum(ends.values()) > 0:
                stable_since = stable_since or time.monotonic()
                if time.monotonic() - stable_since > 2.0:
                    return int(sum(ends.values()))
            else:
                stable_since = None
            time.sleep(0.2)
    finally:
        consumer.close()
    raise RuntimeError(f"the worker did not consume the reaction requests in {timeout}s")


def main(argv: list[str] | None = None) -> int:
    """Run the memory benchmark; print and write the JSON result."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--smoke", action="store_true", help="tiny sizes, for CI")
    ap.add_argument("--hours", type=float, default=None, help="event time to replay")
    ap.add_argument("--headline-every", type=float, default=None,
                    help="seconds of event time between headlines")
    ap.add_argument("--bootstrap", default=None, help="use this broker instead of a private one")
    ap.add_argument("--timeout", type=float, default=1_800, help="give up after (s)")
    ap.add_argument("--out", type=Path, default=None, help="result JSON path")
    args = ap.parse_args(argv)
    exit_cleanly_on_signals()
    hours = args.hours if args.hours is not None else (0.2 if args.smoke else 24.0)
    seconds = int(hours * 3_600)
    n_sym = len(SYMBOLS_10)

    result: dict[str, Any] = {"benchmark": "memory", "smoke": args.smoke, "hours": hours,
                              "symbols": list(SYMBOLS_10), "machine": machine_facts()}
    with temp_dir("tariffmon-bench-memory-") as tmp, BenchBroker(args.bootstrap) as broker:
        settings = bench_settings(broker.bootstrap, "memory", SYMBOLS_10, tmp)
        retention_h = engine_params(settings).retention_ms / 3_600_000
        every = args.headline_every or (120.0 if args.smoke else 600.0)
        data = write_dataset(tmp / "day.jsonl", SYMBOLS_10, seconds, every,
                             first_headline_s=min(600, seconds // 3))
        result.update(ticks=data.ticks, headlines=data.headlines,
                      retention_h=round(retention_h, 3))
        topics = settings.topics
        # headlines first, and the worker has their reaction requests before the ticks
        # come: otherwise, catching up, the ticks run hours ahead of the requests' round
        # trip through the classify agent and the requests take the slow late path
        with TopicProducer(settings) as producer:
            replay([data.path], producer, {"headlines": topics.headlines})
        worker = WorkerProc(settings, tmp / "worker.log")
        samples: list[dict[str, float]] = []
        feeder: threading.Thread | None = None
        try:
            worker.start()
            wait_requests_consumed(settings, timeout=120)
            feeder = threading.Thread(target=_replay_ticks, args=(settings, data.path, result),
                                      daemon=True)
            feeder.start()
            deadline = time.monotonic() + args.timeout
            while True:
                ticks = worker.metric_sum("tariffmon_ticks_total")
                mem = worker.memory_kib()
                samples.append({
                    "wall_s": round(time.monotonic() - worker.started_at, 1),
                    "event_h": round(ticks / n_sym / 3_600, 3),
                    "rss_mib": round(mem.get("VmRSS", 0) / 1024, 1),
                    "hwm_mib": round(mem.get("VmHWM", 0) / 1024, 1),
                })
                if ticks >= data.ticks:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"timeout at {ticks} ticks: {worker.log_tail()}")
                time.sleep(0.5 if args.smoke else 1.0)
            time.sleep(2.0)  # the reactions of the last batch, then the final reading
            mem = worker.memory_kib()
        finally:
            worker.stop()
            if feeder is not None:
                feeder.join(timeout=60)
        peak = mem.get("VmHWM", 0) / 1024
        final = mem.get("VmRSS", 0) / 1024
        beyond = [s for s in samples if s["event_h"] >= retention_h + 0.5]
        flat: dict[str, Any] = {}
        if len(beyond) >= 3:
            x = np.array([s["event_h"] for s in beyond])
            y = np.array([s["rss_mib"] for s in beyond])
            slope = float(np.polyfit(x, y, 1)[0]) if np.ptp(x) > 0 else 0.0
            flat = {"from_event_h": round(float(x[0]), 2), "to_event_h": round(float(x[-1]), 2),
                    "rss_min_mib": round(float(y.min()), 1),
                    "rss_max_mib": round(float(y.max()), 1),
                    "slope_mib_per_event_h": round(slope, 3)}
        at_retention = next((s for s in samples if s["event_h"] >= retention_h), None)
        result.update(
            peak_rss_mib=round(peak, 1), final_rss_mib=round(final, 1),
            rss_at_retention_mib=at_retention["rss_mib"] if at_retention else None,
            beyond_retention=flat,
            worker_wall_s=samples[-1]["wall_s"] if samples else None,
            samples=samples[:: max(1, len(samples) // 60)] + samples[-1:],
            target={"peak_rss_mib": 250},
        )
    write_result("memory", result, args.out, args.smoke)
    return 0


if __name__ == "__main__":
    sys.exit(main())
