"""`tariffmon record`: copy topics into a recorded-stream file."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    """Add the `record` subcommand."""
    p = sub.add_parser(
        "record",
        help="consume topics into a recorded-stream file (JSON lines, gzip optional)",
        description=(
            "Read the STREAMs' topics (no consumer group, nothing committed) and write one "
            "line per record to OUT, {stream, key, ts, value} with ts the Kafka timestamp "
            "(event time), sorted by ts; gzipped if OUT ends in .gz. By default reads from "
            "the beginning up to the end offsets at start; --follow keeps reading until "
            "--idle-timeout seconds pass without a record, --max-messages is reached or "
            "SIGINT/SIGTERM (which still write what was read)."
        ),
    )
    p.add_argument("streams", nargs="*", metavar="STREAM", default=None,
                   help="logical streams: ticks headlines classified requests reactions "
                        "alerts deadletter (default: ticks headlines)")
    p.add_argument("--out", required=True, metavar="FILE", help="output file (.jsonl[.gz])")
    p.add_argument("--follow", action="store_true",
                   help="keep reading new records (bounded by the options below)")
    p.add_argument("--latest", action="store_true",
                   help="start at the end of the topics (only new records; implies --follow)")
    p.add_argument("--max-messages", type=int, default=None, metavar="N",
                   help="stop after N records")
    p.add_argument("--idle-timeout", type=float, default=10.0, metavar="SECONDS",
                   help="with --follow: stop after this long without a record (default: 10)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Record; prints the number of lines written."""
    from tariffmon.errors import ConfigError
    from tariffmon.producers.kafka_producer import StopFlag
    from tariffmon.producers.record import record_records
    from tariffmon.settings import load_settings
    from tariffmon.topic_reader import read_range

    settings = load_settings()
    names = settings.topics.all_topics()
    streams = args.streams or ["ticks", "headlines"]
    unknown = [s for s in streams if s not in names]
    if unknown:
        raise ConfigError("STREAM", f"unknown streams {unknown}; use some of {sorted(names)}")
    by_topic = {names[s]: s for s in streams}
    follow = args.follow or args.latest
    stop = StopFlag()
    with stop.installed():
        records = read_range(
            settings, list(by_topic), from_beginning=not args.latest, follow=follow,
            idle_timeout_s=args.idle_timeout, max_messages=args.max_messages,
            should_stop=stop.is_set,
        )
        n = record_records(records, by_topic, args.out)
    print(f"recorded {n} messages to {args.out}")
    return 0
