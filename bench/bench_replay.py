"""Benchmark: replay throughput (messages/s) and the speed factor a paced replay achieves.

Replays the bundled sample (data/sample) into fresh, uniquely named topics:

* at maximum speed: acknowledged messages per second of wall time;
* paced at ``--speed N`` over a short window: the achieved speed factor (event-time span /
  wall time), which should be close to N while N * event rate stays below the maximum.

Needs a running broker: ``tariffmon kafka start`` (or ``--bootstrap host:port``).  Prints one
JSON object.  Nothing here is asserted: the numbers are reported for the benchmarks issue.

    .venv/bin/python bench/bench_replay.py [--bootstrap 127.0.0.1:9092] [--speed 60]
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
import uuid
from pathlib import Path

from tariffmon.kafkaclient import ensure_topics, wait_for_broker
from tariffmon.producers.kafka_producer import TopicProducer
from tariffmon.producers.replay import replay
from tariffmon.producers.sample import HEADLINES_FILE, TICKS_FILE
from tariffmon.recorded import merge_events
from tariffmon.settings import PROJECT_ROOT, Settings, load_settings

SAMPLE = PROJECT_ROOT / "data" / "sample"


def _settings(bootstrap: str | None, tag: str) -> Settings:
    names = {s: f"bench.replay.{tag}.{s}" for s in ("ticks", "headlines")}
    kafka = {"bootstrap_servers": bootstrap} if bootstrap else {}
    settings = load_settings(topics=names, **({"kafka": kafka} if kafka else {}))
    wait_for_broker(settings.kafka, timeout=15)
    topics = settings.topics
    ensure_topics(settings, {topics.ticks: topics.symbol_partitions,
                             topics.headlines: topics.headline_partitions})
    return settings


def bench_max(settings: Settings, paths: list[Path]) -> dict[str, float]:
    """Replay everything as fast as Kafka acknowledges."""
    with TopicProducer(settings) as producer:
        result = replay(paths, producer, settings.topics.all_topics())
    return {"messages": result.acked, "wall_s": round(result.elapsed_s, 3),
            "msgs_per_s": round(result.rate, 1)}


def bench_paced(settings: Settings, paths: list[Path], speed: float,
                window_s: float) -> dict[str, float]:
    """Replay ``window_s`` seconds of event time at ``speed``; report the achieved factor."""
    first = next(iter(merge_events(paths))).ts
    to_ts = first + int(window_s * 1000)
    events = list(itertools.takewhile(lambda e: e.ts < to_ts, merge_events(paths)))
    span_s = (events[-1].ts - events[0].ts) / 1000
    t0 = time.monotonic()
    with TopicProducer(settings) as producer:
        result = replay(paths, producer, settings.topics.all_topics(), speed=speed,
                        to_ts=to_ts)
    wall = time.monotonic() - t0
    return {"requested_speed": speed, "event_span_s": span_s, "wall_s": round(wall, 3),
            "achieved_speed": round(span_s / wall, 2) if wall > 0 else 0.0,
            "messages": result.acked}


def main(argv: list[str] | None = None) -> int:
    """Run both measurements and print them as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--bootstrap", default=None, help="host:port (default: the settings)")
    parser.add_argument("--speed", type=float, default=60.0, help="paced speed factor")
    parser.add_argument("--window", type=float, default=300.0,
                        help="event-time seconds replayed at the paced speed")
    args = parser.parse_args(argv)
    paths = [SAMPLE / TICKS_FILE, SAMPLE / HEADLINES_FILE]
    tag = uuid.uuid4().hex[:8]
    out = {
        "sample_events": sum(1 for _ in merge_events(paths)),
        "max_speed": bench_max(_settings(args.bootstrap, f"{tag}.max"), paths),
        "paced": bench_paced(_settings(args.bootstrap, f"{tag}.paced"), paths, args.speed,
                             args.window),
    }
    json.dump(out, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
