"""`tariffmon replay FILE...`: publish recorded streams to the topics in event-time order."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def register(sub: Any) -> None:
    """Add the `replay` subcommand."""
    p = sub.add_parser(
        "replay",
        help="publish recorded-stream files to the topics, merged by event time",
        description=(
            "Merge the FILEs (recorded-stream JSON lines, .gz allowed, each sorted by ts) by "
            "event time and publish every event to its stream's topic with the Kafka "
            "timestamp set to the event time, through aiokafka record batches with acks from all "
            "in-sync replicas and idempotence, so the order of each key is kept. --speed 1 "
            "replays in real time, N is N times faster, max as fast as Kafka acknowledges. "
            "SIGINT/SIGTERM stop the replay after flushing: the summary printed on stdout "
            "(JSON: read, sent, acked, failed, bad_lines, interrupted) counts exactly what "
            "Kafka acknowledged. Bad lines are skipped and counted; a file that cannot be "
            "read to its end (truncated or corrupt gzip) stops the replay with exit 2. Exit 0 "
            "when complete, 1 on delivery failures, 128+signal when interrupted."
        ),
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="recorded-stream files")
    p.add_argument("--speed", default="max", metavar="1|N|max",
                   help="replay speed factor, or max (default: max)")
    p.add_argument("--from", dest="from_ts", default=None, metavar="TIME",
                   help="first event time to replay (epoch ms or ISO-8601, UTC if no zone)")
    p.add_argument("--to", dest="to_ts", default=None, metavar="TIME",
                   help="replay events before this time (exclusive)")
    p.add_argument("--streams", nargs="+", default=None, metavar="STREAM",
                   help="replay only these streams (default: all in the files)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _speed(text: str) -> float | None:
    from tariffmon.errors import ConfigError

    if text.strip().lower() == "max":
        return None
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise ConfigError("--speed", f"must be a positive number or 'max' (got {text!r})")
    return value


def run(args: argparse.Namespace) -> int:
    """Replay; prints the JSON summary on stdout."""
    from tqdm import tqdm

    from tariffmon.cli.timeargs import parse_time
    from tariffmon.errors import ConfigError
    from tariffmon.producers.batch_producer import BatchProducer
    from tariffmon.producers.kafka_producer import StopFlag
    from tariffmon.producers.replay import count_events, replay
    from tariffmon.producers.runtime import ensure_stream_topics
    from tariffmon.settings import load_settings

    settings = load_settings()
    speed = _speed(args.speed)
    from_ts = parse_time("--from", args.from_ts) if args.from_ts else None
    to_ts = parse_time("--to", args.to_ts) if args.to_ts else None
    names = settings.topics.all_topics()
    streams = args.streams or list(names)
    unknown = [s for s in streams if s not in names]
    if unknown:
        raise ConfigError("--streams", f"unknown streams {unknown}; use some of {sorted(names)}")
    topics = {s: names[s] for s in streams}
    total = None if args.no_progress else count_events(args.files, from_ts, to_ts)
    ensure_stream_topics(settings, streams)
    stop = StopFlag()
    # SIGINT/SIGTERM only set the flag: the loop stops, the producer flushes, we report
    with stop.installed(), BatchProducer(settings) as producer, tqdm(
        total=total, unit="msg", desc="replay", disable=args.no_progress, file=sys.stderr,
        smoothing=0.1,
    ) as bar:
        result = replay(args.files, producer, topics, speed=speed, from_ts=from_ts,
                        to_ts=to_ts, stop=stop, progress=bar.update)
    summary = {
        "read": result.read, "sent": result.sent, "acked": result.acked,
        "failed": result.failed, "skipped_streams": result.skipped_streams,
        "bad_lines": result.bad_lines,
        "interrupted": result.interrupted, "elapsed_s": round(result.elapsed_s, 3),
        "rate_msgs_per_s": round(result.rate, 1),
    }
    print(json.dumps(summary), flush=True)
    if result.interrupted:
        return 128 + (stop.signum or 2)
    return 1 if result.failed else 0
