"""Benchmark: ``tariffmon replay`` msgs/s against confluent-kafka and kcat producing the same file.

Generates ``--ticks`` one-second ticks of three symbols as a recorded-stream file (and the
same messages as a kcat input file: ``key<TAB>value``, value = the exact bytes replay
publishes).  Then, each run into its own fresh topic, interleaved, best of ``--repeat``:

* ``replay``: the ``tariffmon replay FILE --no-progress`` command (aiokafka record batches);
  its own summary's ``rate_msgs_per_s``: acknowledged messages per second of the replay,
  reading and re-serialising the recorded file included;
* ``confluent_same_reader``: confluent-kafka (librdkafka) fed by the same reader
  (``merge_events`` + ``encode_value``), so the difference is the client alone;
* ``confluent_raw``: confluent-kafka producing the pre-encoded kcat file's lines (no JSON
  at all): the client's own ceiling in Python;
* ``kcat``: ``kcat -P -l`` of the kcat file (librdkafka in C), wall time of the process.

Every producer gets the same delivery settings from :func:`tariffmon.kafkaclient.producer_spec`
(acks=all, idempotence, lz4, linger, batch size); every count is checked against the topic's
end offsets.  Without confluent-kafka installed (``pip install -e '.[bench]'``) its rows are
skipped and the ratio is taken against kcat.  Also measures the speed factor a paced replay
achieves (``--speed``) on the bundled sample.

    .venv/bin/python bench/bench_replay.py [--smoke] [--ticks 300000] [--bootstrap H:P]
"""

from __future__ import annotations

import argparse
import importlib.metadata
import itertools
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench_producer import end_total, run_kcat, write_kcat_file
from common import (
    SYMBOLS_3,
    BenchBroker,
    bench_settings,
    exit_cleanly_on_signals,
    machine_facts,
    temp_dir,
    write_dataset,
    write_result,
)

from tariffmon.kafkaclient import ensure_topics, producer_spec
from tariffmon.producers.batch_producer import BatchProducer
from tariffmon.producers.replay import encode_value, replay
from tariffmon.producers.sample import HEADLINES_FILE, TICKS_FILE
from tariffmon.recorded import merge_events
from tariffmon.settings import PROJECT_ROOT, Settings

SAMPLE = PROJECT_ROOT / "data" / "sample"
#: the issue's targets: msgs/s, and the share of confluent-kafka's rate on the same file
TARGET_MSGS_PER_S = 150_000
TARGET_RATIO = 0.8


def librdkafka_config(settings: Settings) -> dict[str, Any]:
    """confluent-kafka's configuration of the same producer spec (PLAINTEXT benches)."""
    spec = producer_spec(settings)
    return {
        "bootstrap.servers": ",".join(spec.bootstrap_servers),
        "client.id": f"{spec.client_id}-bench",
        "acks": spec.acks,
        "enable.idempotence": spec.idempotence,
        "compression.type": spec.compression or "none",
        "linger.ms": spec.linger_ms,
        "batch.size": spec.batch_size,
        "request.timeout.ms": spec.request_timeout_ms,
        "delivery.timeout.ms": spec.delivery_timeout_ms,
        "queue.buffering.max.messages": 1_000_000,
        "queue.buffering.max.kbytes": 1_048_576,
    }


def run_tariffmon_replay(settings: Settings, path: Path, topic: str) -> dict[str, Any]:
    """``tariffmon replay`` as a user runs it, into ``topic``; its JSON summary."""
    env = dict(os.environ)
    env.update({"TARIFFMON_KAFKA__BOOTSTRAP_SERVERS": settings.kafka.bootstrap_servers,
                "TARIFFMON_TOPICS__TICKS": topic,
                "TARIFFMON_TOPICS__SYMBOL_PARTITIONS": str(settings.topics.symbol_partitions),
                "TARIFFMON_METRICS__ENABLED": "false"})
    t = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "tariffmon.cli.main", "replay", str(path), "--no-progress",
         "--streams", "ticks"], env=env, capture_output=True, text=True, timeout=900,
        check=False, cwd=PROJECT_ROOT)
    wall = time.perf_counter() - t
    if done.returncode != 0:
        raise RuntimeError(f"tariffmon replay failed ({done.returncode}): {done.stderr[-2000:]}")
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    return {"acked": summary["acked"], "failed": summary["failed"],
            "replay_s": summary["elapsed_s"], "process_wall_s": round(wall, 3),
            "msgs_per_s": round(summary["rate_msgs_per_s"])}


def _confluent(settings: Settings, topic: str,
               records: Any) -> dict[str, Any]:
    """Produce ``(key, value, ts)`` records with confluent-kafka; msgs/s to the last ack."""
    from confluent_kafka import KafkaException, Producer

    errors: list[str] = []
    producer = Producer({**librdkafka_config(settings),
                         "error_cb": lambda err: errors.append(str(err))})
    producer.list_topics(topic, timeout=30)  # connected before the clock starts, as replay is
    produce, poll = producer.produce, producer.poll
    t = time.perf_counter()
    n = 0
    for key, value, ts in records:
        while True:
            try:
                produce(topic, value, key, timestamp=ts)
                break
            except BufferError:
                poll(0.01)  # librdkafka's queue is full: serve delivery reports, retry
        n += 1
        if n % 10_000 == 0:
            poll(0)
    left = producer.flush(600)
    wall = time.perf_counter() - t
    if left:
        raise KafkaException(f"{left} messages not delivered: {errors[:3]}")
    return {"sent": n, "wall_s": round(wall, 3), "msgs_per_s": round(n / wall)}


def run_confluent_same_reader(settings: Settings, path: Path, topic: str) -> dict[str, Any]:
    """confluent-kafka fed by replay's own reading of the recorded file."""
    return _confluent(settings, topic, (
        (None if ev.key is None else ev.key.encode(), encode_value(ev.value), ev.ts)
        for ev in merge_events([path])))


def run_confluent_raw(settings: Settings, kcat_file: Path, ts: list[int],
                      topic: str) -> dict[str, Any]:
    """confluent-kafka producing the pre-encoded ``key<TAB>value`` lines."""
    def lines() -> Any:
        with kcat_file.open("rb") as fh:
            for line, t in zip(fh, ts, strict=True):
                key, _, value = line.rstrip(b"\n").partition(b"\t")
                yield key, value, t
    return _confluent(settings, topic, lines())


def bench_paced(settings: Settings, speed: float, window_s: float) -> dict[str, Any]:
    """Replay ``window_s`` seconds of the sample at ``speed``; report the achieved factor."""
    paths = [SAMPLE / TICKS_FILE, SAMPLE / HEADLINES_FILE]
    first = next(iter(merge_events(paths))).ts
    to_ts = first + int(window_s * 1000)
    events = list(itertools.takewhile(lambda e: e.ts < to_ts, merge_events(paths)))
    span_s = (events[-1].ts - events[0].ts) / 1000
    with BatchProducer(settings) as producer:
        result = replay(paths, producer, settings.topics.all_topics(), speed=speed,
                        to_ts=to_ts)
    return {"requested_speed": speed, "event_span_s": span_s,
            "wall_s": round(result.elapsed_s, 3),
            "achieved_speed": round(span_s / result.elapsed_s, 2) if result.elapsed_s else 0.0,
            "messages": result.acked}


def _best(runs: list[dict[str, Any]]) -> dict[str, Any]:
    best = max(runs, key=lambda r: r["msgs_per_s"])
    return {**best, "runs_msgs_per_s": [r["msgs_per_s"] for r in runs]}


def main(argv: list[str] | None = None) -> int:
    """Run the replay benchmark; print and write the JSON result."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--smoke", action="store_true", help="tiny sizes, for CI")
    ap.add_argument("--ticks", type=int, default=None, help="messages to produce")
    ap.add_argument("--repeat", type=int, default=None, help="runs of each; the best is kept")
    ap.add_argument("--bootstrap", default=None, help="use this broker instead of a private one")
    ap.add_argument("--speed", type=float, default=60.0, help="paced replay's speed factor")
    ap.add_argument("--window", type=float, default=300.0,
                    help="event-time seconds of the sample replayed at --speed")
    ap.add_argument("--out", type=Path, default=None, help="result JSON path")
    args = ap.parse_args(argv)
    exit_cleanly_on_signals()
    n = args.ticks or (6_000 if args.smoke else 300_000)
    repeat = args.repeat or (1 if args.smoke else 3)
    try:
        import confluent_kafka
        confluent = (f"confluent-kafka {importlib.metadata.version('confluent-kafka')}, "
                     f"librdkafka {confluent_kafka.libversion()[0]}")
    except ImportError:
        confluent = ""

    result: dict[str, Any] = {"benchmark": "replay", "smoke": args.smoke,
                              "machine": machine_facts(), "confluent_kafka": confluent}
    with temp_dir("tariffmon-bench-replay-") as tmp, BenchBroker(args.bootstrap) as broker:
        settings = bench_settings(broker.bootstrap, "replay", SYMBOLS_3, tmp)
        data = write_dataset(tmp / "ticks.jsonl", SYMBOLS_3, max(1, n // len(SYMBOLS_3)),
                             headline_every_s=1e12)
        kcat_file = tmp / "ticks.kcat"
        messages = write_kcat_file(data.path, kcat_file)
        ts = [ev.ts for ev in merge_events([data.path])]
        result["messages"] = messages
        parts = settings.topics.symbol_partitions
        runs: dict[str, list[dict[str, Any]]] = {"replay": [], "kcat": []}
        if confluent:
            runs |= {"confluent_same_reader": [], "confluent_raw": []}
        for i in range(repeat):
            for name in runs:
                topic = f"{settings.topics.ticks}.{name}{i}"
                ensure_topics(settings, {topic: parts})
                if name == "replay":
                    r = run_tariffmon_replay(settings, data.path, topic)
                elif name == "kcat":
                    r = run_kcat(broker.bootstrap, kcat_file, topic, settings)
                elif name == "confluent_same_reader":
                    r = run_confluent_same_reader(settings, data.path, topic)
                else:
                    r = run_confluent_raw(settings, kcat_file, ts, topic)
                r["in_topic"] = end_total(settings, topic, parts)
                if name == "kcat":
                    r["msgs_per_s"] = round(r["in_topic"] / r["wall_s"])
                if r["in_topic"] != messages:
                    raise RuntimeError(f"{name} left {r['in_topic']} of {messages} in {topic}")
                runs[name].append(r)
                print(f"{name} run {i}: {r['msgs_per_s']:,} msgs/s", file=sys.stderr,
                      flush=True)
        for name, rs in runs.items():
            result[name] = _best(rs)
        replay_rate = result["replay"]["msgs_per_s"]
        baseline = "confluent_same_reader" if confluent else "kcat"
        result["baseline"] = baseline
        result["ratio_replay_vs_baseline"] = round(replay_rate / result[baseline]["msgs_per_s"], 3)
        result["ratio_replay_vs_kcat"] = round(replay_rate / result["kcat"]["msgs_per_s"], 3)
        if confluent:
            result["ratio_replay_vs_confluent_raw"] = round(
                replay_rate / result["confluent_raw"]["msgs_per_s"], 3)
        result["targets"] = {"msgs_per_s": TARGET_MSGS_PER_S, "ratio": TARGET_RATIO}
        paced = bench_settings(broker.bootstrap, "replay-paced", SYMBOLS_3, tmp)
        result["paced"] = bench_paced(paced, args.speed, 30.0 if args.smoke else args.window)
    write_result("replay", result, args.out, args.smoke)
    return 0


if __name__ == "__main__":
    sys.exit(main())
