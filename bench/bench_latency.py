"""Benchmark: latency at live speed, tick that closes a horizon -> reaction record consumed.

Three symbols tick once a second (event time) and a tariff headline comes every
``--headline-every`` seconds; the stream is published in event-time order, paced at
``--speed`` times real time (far below the worker's capacity, so the worker is idle between
records as it is live), into one ``tariffmon worker``.  A reaction of horizon h to a headline
at t0 is published once the first tick after t0 + h arrives (the engine's rule), so for each
reaction the closing tick is known.  Measured per reaction, wall clock, same machine:

* ``send``: ``producer.send()`` of the closing tick -> the reaction record returned by a
  consumer poll (kafka-python, the project's producer settings with ``linger_ms=0``);
* ``ack``: the broker's acknowledgement of the closing tick -> the reaction consumed.

The baseline in the same run: records sent at the closing ticks' rate to a topic of their
own and read by the same collector, with no worker between (``baseline_no_worker``);
``worker_adds_ms`` is the difference of the ack -> consumed percentiles.

Then headline -> first reaction: ``--first-headlines`` headlines, each dated two minutes
before the newest tick (a story a feed reports late, so its shortest horizon is already
covered), are published one at a time; measured from the headline's send and its ack to the
first of its reactions consumed: the whole path headlines -> classify agent -> requests ->
react service -> reactions.

    .venv/bin/python bench/bench_latency.py [--smoke] [--speed 100] [--bootstrap H:P]
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from common import (
    ACTORS,
    COUNTRIES,
    SECTORS,
    SYMBOLS_3,
    BenchBroker,
    TopicCollector,
    WorkerProc,
    bench_settings,
    exit_cleanly_on_signals,
    machine_facts,
    temp_dir,
    write_dataset,
    write_result,
)
from kafka import KafkaProducer

from tariffmon.contract import reaction_key
from tariffmon.producers.kafka_producer import producer_config
from tariffmon.producers.replay import encode_value
from tariffmon.recorded import RecordedEvent, merge_events
from tariffmon.settings import Settings

#: the ids of the late headlines whose first reactions are timed (not a tick's reactions)
FIRST_PREFIX = "bench-first-"


def percentiles(values_ms: list[float]) -> dict[str, float]:
    """count, p50, p90, p99, max and mean of latencies in ms."""
    if not values_ms:
        return {"count": 0}
    a = np.asarray(values_ms)
    return {"count": len(a), "p50_ms": round(float(np.percentile(a, 50)), 2),
            "p90_ms": round(float(np.percentile(a, 90)), 2),
            "p99_ms": round(float(np.percentile(a, 99)), 2),
            "max_ms": round(float(a.max()), 2), "mean_ms": round(float(a.mean()), 2)}


class PacedProducer:
    """Publish events paced by event time; remember send and ack times of every tick."""

    def __init__(self, settings: Settings) -> None:
        cfg = producer_config(settings)
        cfg["linger_ms"] = 0  # a live producer sends each tick as it comes
        self._producer = KafkaProducer(**cfg)
        self.topics = settings.topics.all_topics()
        self.sent_at: dict[tuple[str, int], float] = {}
        self.acked_at: dict[tuple[str, int], float] = {}
        self._lock = threading.Lock()

    def _ack(self, tick: tuple[str, int], _md: Any) -> None:
        now = time.monotonic()
        with self._lock:
            self.acked_at[tick] = now

    def send(self, ev: RecordedEvent) -> None:
        """Publish one event now."""
        value = encode_value(ev.value)
        key = (ev.key or "").encode()
        if ev.stream == "ticks":
            tick = (str(ev.key), ev.ts)
            self.sent_at[tick] = time.monotonic()
            fut = self._producer.send(self.topics["ticks"], key=key, value=value,
                                      timestamp_ms=ev.ts)
            fut.add_callback(self._ack, tick)
        else:
            self._producer.send(self.topics[ev.stream], key=key, value=value, timestamp_ms=ev.ts)

    def send_and_ack(self, ev: RecordedEvent) -> float:
        """Publish one event and wait for the broker's acknowledgement; its wall time."""
        self._producer.send(self.topics[ev.stream], key=(ev.key or "").encode(),
                            value=encode_value(ev.value), timestamp_ms=ev.ts).get(timeout=30)
        return time.monotonic()

    def paced(self, events: list[RecordedEvent], speed: float | None) -> None:
        """Publish ``events``; at ``speed`` times event time, or at once when None."""
        t_wall0 = time.monotonic()
        ts0 = events[0].ts if events else 0
        for ev in events:
            if speed is not None:
                delay = t_wall0 + (ev.ts - ts0) / 1000 / speed - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            self.send(ev)
        self._producer.flush(timeout=60)

    def close(self) -> None:
        """Flush and close."""
        self._producer.close(timeout=30)


def reaction_latencies(collector: TopicCollector, producer: PacedProducer
                       ) -> tuple[dict[str, list[float]], int]:
    """Per reaction: ms from the closing tick's send / ack to the reaction consumed."""
    out: dict[str, list[float]] = {"send": [], "ack": []}
    missing = 0
    by_horizon: dict[int, list[float]] = {}
    for key, seen in collector.first_seen.items():
        r = orjson.loads(collector.values[key])
        if str(r["headline_id"]).startswith(FIRST_PREFIX):
            continue  # a late headline's (headline_to_first_reaction): no closing tick
        # ready once a tick lies strictly after t0 + h: with one tick a second, the next one
        closing = (str(r["symbol"]), (r["t0"] + r["horizon_s"] * 1000) // 1000 * 1000 + 1000)
        sent = producer.sent_at.get(closing)
        acked = producer.acked_at.get(closing)
        if sent is None or acked is None:
            missing += 1
            continue
        out["send"].append((seen - sent) * 1000)
        out["ack"].append((seen - acked) * 1000)
        by_horizon.setdefault(int(r["horizon_s"]), []).append((seen - sent) * 1000)
    for h, v in sorted(by_horizon.items()):
        out[f"send_h{h}"] = v
    return out, missing


def transport_floor(settings: Settings, producer: PacedProducer, n: int, rate_per_s: float
                    ) -> dict[str, list[float]]:
    """The baseline in the same run: ms from send / ack to consumed for ``n`` records sent at
    ``rate_per_s`` to a topic of their own and read by the same kind of collector, with no
    worker between: what the producer, the broker and the measuring consumer cost alone."""
    from kafka.admin import KafkaAdminClient, NewTopic

    from tariffmon.kafkaclient import client_config

    topic = f"{settings.topics.reactions}.floor"
    admin = KafkaAdminClient(**client_config(settings.kafka))
    try:
        admin.create_topics([NewTopic(topic, 1, 1)])
    finally:
        admin.close()
    collector = TopicCollector(settings, topic)
    collector.start()
    sent: dict[bytes, float] = {}
    acked: dict[bytes, float] = {}

    def ack(key: bytes, _md: Any) -> None:
        acked[key] = time.monotonic()

    kp = producer._producer
    try:
        # the collector is polling once the first record is seen: only later ones count
        kp.send(topic, key=b"warm-up", value=b"{}").get(timeout=30)
        if not collector.wait_for(1, timeout=60):
            raise RuntimeError("the floor's collector saw nothing")
        t0 = time.monotonic()
        for i in range(n):
            delay = t0 + i / rate_per_s - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            key = f"floor-{i}".encode()
            sent[key] = time.monotonic()
            kp.send(topic, key=key, value=b"{}").add_callback(ack, key)
        kp.flush(timeout=60)
        collector.wait_for(n + 1, timeout=30)
    finally:
        collector.stop()
    out: dict[str, list[float]] = {"send": [], "ack": []}
    for key, t in sent.items():
        seen = collector.first_seen.get(key)
        if seen is not None and key in acked:
            out["send"].append((seen - t) * 1000)
            out["ack"].append((seen - acked[key]) * 1000)
    return out


def headline_to_first_reaction(collector: TopicCollector, producer: PacedProducer,
                               symbols: tuple[str, ...], n: int, ts: int, horizon_s: int,
                               timeout: float = 10.0) -> dict[str, list[float]]:
    """ms from a headline's send / ack to its first reaction consumed.

    Each headline is dated two minutes before the newest tick, as a feed that reports a story
    late does: the ticks of its shortest horizon are already in, so the worker can answer
    as soon as the headline has been classified and its requests have reached the react
    path.  That path (headlines -> classify agent -> requests topic -> react service ->
    reactions topic) is what is measured; the headlines are published one at a time.
    """
    rng = np.random.default_rng(7)
    out: dict[str, list[float]] = {"send": [], "ack": []}
    for i in range(n):
        hid = f"{FIRST_PREFIX}{i:04d}"
        t0 = ts - (horizon_s + 120) * 1000 + i
        # a new story each time: a verb no other bench headline uses and a number of its own,
        # so that no earlier title's words are contained in it (that makes it the same story)
        title = (f"{rng.choice(ACTORS)} weighs new {rng.choice(SECTORS)} tariffs on "
                 f"{rng.choice(COUNTRIES)}, story {i}")
        ev = RecordedEvent("headlines", hid, t0, {
            "v": 1, "id": hid, "ts": t0, "source": "bench-first", "title": title})
        keys = [reaction_key(hid, sym, horizon_s).encode() for sym in symbols]
        sent = time.monotonic()
        acked = producer.send_and_ack(ev)
        deadline = sent + timeout
        while not any(k in collector.first_seen for k in keys):
            if time.monotonic() > deadline:
                raise RuntimeError(f"no reaction to headline {hid} within {timeout}s")
            time.sleep(0.001)
        seen = min(collector.first_seen[k] for k in keys if k in collector.first_seen)
        out["send"].append((seen - sent) * 1000)
        out["ack"].append((seen - acked) * 1000)
        time.sleep(0.05)
    return out


def main(argv: list[str] | None = None) -> int:
    """Run the latency benchmark; print and write the JSON result."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--smoke", action="store_true", help="tiny sizes, for CI")
    ap.add_argument("--speed", type=float, default=None, help="event time / wall time")
    ap.add_argument("--headline-every", type=float, default=8.0,
                    help="seconds of event time between headlines")
    ap.add_argument("--headline-span", type=float, default=None,
                    help="seconds of event time over which headlines come")
    ap.add_argument("--first-headlines", type=int, default=None,
                    help="late headlines for the headline -> first reaction latency")
    ap.add_argument("--bootstrap", default=None, help="use this broker instead of a private one")
    ap.add_argument("--out", type=Path, default=None, help="result JSON path")
    args = ap.parse_args(argv)
    exit_cleanly_on_signals()
    speed = args.speed or 25.0
    span = args.headline_span or (120.0 if args.smoke else 1_200.0)
    n_first = args.first_headlines or (5 if args.smoke else 200)
    warmup_s = 300 if args.smoke else 600
    # the 60 m horizon only adds an hour of waiting: the path a reaction takes is the same
    horizons = [60] if args.smoke else [60, 300, 900]
    seconds = int(warmup_s + span + max(horizons) + 30)

    result: dict[str, Any] = {"benchmark": "latency", "smoke": args.smoke, "speed": speed,
                              "symbols": list(SYMBOLS_3), "horizons_s": horizons,
                              "machine": machine_facts()}
    with temp_dir("tariffmon-bench-latency-") as tmp, BenchBroker(args.bootstrap) as broker:
        # only identical titles count as one story: every headline is measured, so that
        # the run yields enough reactions (story clustering is not what is measured here)
        settings = bench_settings(broker.bootstrap, "latency", SYMBOLS_3, tmp,
                                  engine={"horizons_s": horizons, "cluster_similarity": 1.0})
        data = write_dataset(tmp / "live.jsonl", SYMBOLS_3, seconds, args.headline_every,
                             first_headline_s=warmup_s)
        events = list(merge_events([data.path]))
        cut = next(i for i, e in enumerate(events) if e.ts >= data.headline_ts[0] - 60_000)
        result.update(ticks=data.ticks, headlines=data.headlines,
                      event_span_s=seconds, paced_wall_s=round((seconds - warmup_s) / speed, 1))
        collector = TopicCollector(settings, settings.topics.reactions)
        collector.start()
        producer = PacedProducer(settings)
        worker = WorkerProc(settings, tmp / "worker.log")
        try:
            worker.start()
            # warm-up at full speed: the worker has its partitions and is consuming
            producer.paced(events[:cut], None)
            deadline = time.monotonic() + 120
            while worker.metric_sum("tariffmon_ticks_total") < cut:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"worker did not catch up: {worker.log_tail()}")
                time.sleep(0.1)
            t = time.monotonic()
            producer.paced(events[cut:], speed)
            result["paced_wall_s"] = round(time.monotonic() - t, 1)
            # the last reactions close on the last ticks: give them a moment
            reactions_expected = worker.metric_sum("tariffmon_reactions_total")
            collector.wait_for(int(reactions_expected), timeout=30)
            time.sleep(1.0)
            # the closing ticks came at about this rate: the baseline gets the same pace
            closing_rate = max(1.0, len(collector.first_seen) / max(1.0, result["paced_wall_s"]))
            first = headline_to_first_reaction(collector, producer, SYMBOLS_3, n_first,
                                               events[-1].ts, min(horizons))
            rss = worker.memory_kib()
            floor = transport_floor(settings, producer, 50 if args.smoke else 500,
                                    closing_rate)
        finally:
            worker.stop()
            collector.stop()
            producer.close()
        lat, missing = reaction_latencies(collector, producer)
        result["reactions"] = len(lat["ack"]) + missing
        result["late_headline_reactions"] = len(collector.first_seen) - result["reactions"]
        result["reactions_without_closing_tick"] = missing
        result["tick_send_to_reaction"] = percentiles(lat["send"])
        result["tick_ack_to_reaction"] = percentiles(lat["ack"])
        result["tick_send_to_reaction_by_horizon"] = {
            k.removeprefix("send_h"): percentiles(v) for k, v in lat.items()
            if k.startswith("send_h")}
        result["baseline_no_worker"] = {"send_to_consumed": percentiles(floor["send"]),
                                        "ack_to_consumed": percentiles(floor["ack"])}
        base = result["baseline_no_worker"]["ack_to_consumed"]
        mine = result["tick_ack_to_reaction"]
        result["worker_adds_ms"] = {q: round(mine[q] - base[q], 2)
                                    for q in ("p50_ms", "p90_ms", "p99_ms")}
        result["headline_send_to_first_reaction"] = percentiles(first["send"])
        result["headline_ack_to_first_reaction"] = percentiles(first["ack"])
        result["worker_rss_mib"] = round(rss.get("VmRSS", 0) / 1024, 1)
        result["target"] = {"tick_p99_ms": 15, "headline_p99_ms": 25}
    write_result("latency", result, args.out, args.smoke)
    return 0


if __name__ == "__main__":
    sys.exit(main())
