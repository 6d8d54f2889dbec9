"""`tariffmon publish-headline TEXT`: publish one headline typed by hand."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(sub: Any) -> None:
    """Add the `publish-headline` subcommand."""
    p = sub.add_parser(
        "publish-headline",
        help="publish one headline typed by hand",
        description=(
            "Publish TEXT as a headline on the headlines topic, with the same normalisation "
            "and stable id as the feed producer (so publishing it twice is recognised as the "
            "same headline downstream). Prints the published headline as JSON."
        ),
    )
    p.add_argument("text", metavar="TEXT", help="the headline")
    p.add_argument("--source", default="manual", help="its source (default: manual)")
    p.add_argument("--ts", default=None, metavar="TIME",
                   help="publication time: epoch ms or ISO-8601, UTC if no zone "
                        "(default: now)")
    p.add_argument("--url", default=None, help="a link to the story")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Publish the headline and wait for Kafka's acknowledgement."""
    from tariffmon.cli.timeargs import parse_time
    from tariffmon.producers.headlines.build import make_headline
    from tariffmon.producers.kafka_producer import TopicProducer
    from tariffmon.producers.runtime import ensure_stream_topics
    from tariffmon.producers.ticks.runner import wall_ms
    from tariffmon.settings import load_settings

    settings = load_settings()
    now = wall_ms()
    # without --ts the headline is news typed as it breaks: now is its publication time
    published = parse_time("--ts", args.ts) if args.ts else now
    head = make_headline(args.text, args.source, published, now, url=args.url)
    ensure_stream_topics(settings, ["headlines"])
    with TopicProducer(settings) as producer:
        producer.publish_message(settings.topics.headlines, head)
        producer.flush(30)
    if producer.acked != 1:
        print(f"tariffmon publish-headline: not acknowledged: {producer.summary()}",
              file=sys.stderr)
        return 1
    print(head.encode().decode())
    return 0
