"""Benchmark: the live producers' kafka-python client (msgs/s) against kcat, same messages.

(``tariffmon replay`` itself publishes through aiokafka batches: see bench_replay.py.)

Generates ``--ticks`` one-second ticks of three symbols as a recorded-stream file, and the
same messages as a kcat input file (``key<TAB>value`` per line, value = the exact bytes the
replay publishes).  Then, each into its own fresh topic:

* ``replay``: :func:`tariffmon.producers.replay.replay` with the :class:`TopicProducer` the
  live sources use (kafka-python; acks=all, idempotent, lz4, linger 20 ms, 256 KiB batches)
  - reading and re-serialising the recorded file included;
* ``kcat``: ``kcat -P -l`` (librdkafka) with the same delivery settings (acks=all,
  idempotence, lz4, linger 20 ms, 256 KiB batches); wall time of the process.

Both counts are checked against the topics' end offsets.  Best of ``--repeat`` runs each.

    .venv/bin/python bench/bench_producer.py [--smoke] [--ticks 300000] [--bootstrap H:P]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

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
from kafka import KafkaConsumer, TopicPartition

from tariffmon.kafkaclient import client_config, ensure_topics
from tariffmon.producers.kafka_producer import TopicProducer
from tariffmon.producers.replay import encode_value, replay
from tariffmon.recorded import merge_events
from tariffmon.settings import Settings


def write_kcat_file(recorded: Path, out: Path) -> int:
    """The recorded ticks as ``key<TAB>value`` lines, values exactly as replay encodes them."""
    n = 0
    with out.open("wb") as fh:
        for ev in merge_events([recorded]):
            fh.write((ev.key or "").encode() + b"\t" + encode_value(ev.value) + b"\n")
            n += 1
    return n


def end_total(settings: Settings, topic: str, partitions: int) -> int:
    """Records in ``topic`` (sum of end offsets)."""
    consumer = KafkaConsumer(**client_config(settings.kafka), group_id=None)
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        return int(sum(consumer.end_offsets(tps).values()))
    finally:
        consumer.close()


def run_replay(settings: Settings, path: Path, topic: str) -> dict[str, Any]:
    """One replay of ``path`` into ``topic``."""
    with TopicProducer(settings) as producer:
        rep = replay([path], producer, {"ticks": topic})
    return {"acked": rep.acked, "failed": rep.failed, "wall_s": round(rep.elapsed_s, 3),
            "msgs_per_s": round(rep.rate)}


def run_kcat(bootstrap: str, path: Path, topic: str, settings: Settings) -> dict[str, Any]:
    """One ``kcat -P`` of ``path`` into ``topic`` with the replay producer's delivery settings."""
    p = settings.producer
    cmd = ["kcat", "-P", "-b", bootstrap, "-t", topic, "-K", "\t", "-l",
           "-X", "acks=all", "-X", "enable.idempotence=true", "-z", p.compression,
           "-X", f"linger.ms={p.linger_ms}", "-X", f"batch.size={p.batch_size}",
           str(path)]
    t = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    wall = time.perf_counter() - t
    if done.returncode != 0:
        raise RuntimeError(f"kcat failed ({done.returncode}): {done.stderr[-2000:]}")
    return {"wall_s": round(wall, 3), "command": " ".join(
        c if c != "\t" else "'\\t'" for c in cmd[:-1]) + " FILE"}


def main(argv: list[str] | None = None) -> int:
    """Run the producer benchmark; print and write the JSON result."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--smoke", action="store_true", help="tiny sizes, for CI")
    ap.add_argument("--ticks", type=int, default=None, help="messages to produce")
    ap.add_argument("--repeat", type=int, default=None, help="runs of each; the best is kept")
    ap.add_argument("--bootstrap", default=None, help="use this broker instead of a private one")
    ap.add_argument("--out", type=Path, default=None, help="result JSON path")
    args = ap.parse_args(argv)
    exit_cleanly_on_signals()
    n = args.ticks or (6_000 if args.smoke else 300_000)
    repeat = args.repeat or (1 if args.smoke else 2)
    seconds = max(1, n // len(SYMBOLS_3))

    result: dict[str, Any] = {"benchmark": "producer", "smoke": args.smoke,
                              "machine": machine_facts()}
    with temp_dir("tariffmon-bench-producer-") as tmp, BenchBroker(args.bootstrap) as broker:
        settings = bench_settings(broker.bootstrap, "producer", SYMBOLS_3, tmp)
        data = write_dataset(tmp / "ticks.jsonl", SYMBOLS_3, seconds, headline_every_s=1e12)
        kcat_file = tmp / "ticks.kcat"
        messages = write_kcat_file(data.path, kcat_file)
        result["messages"] = messages
        result["kcat_file_bytes"] = kcat_file.stat().st_size
        parts = settings.topics.symbol_partitions
        replays: list[dict[str, Any]] = []
        kcats: list[dict[str, Any]] = []
        for i in range(repeat):
            topic_r = f"{settings.topics.ticks}.replay{i}"
            topic_k = f"{settings.topics.ticks}.kcat{i}"
            ensure_topics(settings, {topic_r: parts, topic_k: parts})
            r = run_replay(settings, data.path, topic_r)
            r["in_topic"] = end_total(settings, topic_r, parts)
            replays.append(r)
            k = run_kcat(broker.bootstrap, kcat_file, topic_k, settings)
            k["in_topic"] = end_total(settings, topic_k, parts)
            k["msgs_per_s"] = round(k["in_topic"] / k["wall_s"])
            kcats.append(k)
        for runs in (replays, kcats):
            bad = [r for r in runs if r["in_topic"] != messages]
            if bad:
                raise RuntimeError(f"a run left the wrong count in its topic: {bad}")
        best_r = max(replays, key=lambda r: r["msgs_per_s"])
        best_k = max(kcats, key=lambda r: r["msgs_per_s"])
        result["replay"] = {**best_r, "runs_msgs_per_s": [r["msgs_per_s"] for r in replays]}
        result["kcat"] = {**best_k, "runs_msgs_per_s": [r["msgs_per_s"] for r in kcats]}
        result["ratio_replay_vs_kcat"] = round(best_r["msgs_per_s"] / best_k["msgs_per_s"], 4)
        result["target_ratio"] = 0.5
    write_result("producer", result, args.out, args.smoke)
    return 0


if __name__ == "__main__":
    sys.exit(main())
