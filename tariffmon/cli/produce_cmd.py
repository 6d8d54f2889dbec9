"""`tariffmon produce ticks|headlines`: the live producers (yfinance ticks, headline feeds)."""

from __future__ import annotations

import argparse
import json
from typing import Any


def register(sub: Any) -> None:
    """Add the `produce` subcommand and its sources."""
    p = sub.add_parser(
        "produce",
        help="publish live ticks (yfinance) or headlines (feeds, files) to Kafka",
        description=(
            "Run a live producer until SIGINT/SIGTERM, which flush what was sent and exit. "
            "Nothing is published twice: at start the producer reads what the topic already "
            "holds. Metrics are served on metrics.host:PORT/metrics, PORT being "
            "metrics.producer_port for either producer: in separate containers (Compose) "
            "both serve it; on one machine give the second another port (--metrics-port "
            "or TARIFFMON_METRICS__PRODUCER_PORT)."
        ),
    )
    kinds = p.add_subparsers(dest="produce_kind", metavar="SOURCE", required=True)

    t = kinds.add_parser(
        "ticks",
        help="USD/JPY, Nikkei 225 ... from yfinance (streaming, or 1-minute bars)",
        description=(
            "Publish the configured symbols' prices from yfinance: 'stream' listens to "
            "Yahoo's streaming client (quotes) and polls one-minute bars while it is down; "
            "'poll' publishes one-minute bars at their close (bar_close ticks). Each symbol "
            "resumes after the newest tick already on the ticks topic. Source errors and "
            "rate limits are retried with exponential backoff and jitter."
        ),
    )
    t.add_argument("--mode", choices=("stream", "poll"), default=None,
                   help="default: producer.tick_mode")
    t.add_argument("--symbols", nargs="+", metavar="SYMBOL", default=None,
                   help="canonical symbols to publish (default: all configured)")
    t.add_argument("--poll-interval", type=float, default=None, metavar="SECONDS",
                   help="seconds between bar polls (default: producer.poll_interval_s)")
    t.add_argument("--once", action="store_true",
                   help="poll bars once, publish what is new, flush and exit")
    _metrics_arg(t)
    t.set_defaults(func=run)

    h = kinds.add_parser(
        "headlines",
        help="RSS/Atom feeds and JSON-lines/CSV files, polled at an interval",
        description=(
            "Poll headline sources and publish each new headline once (its id hashes the "
            "source and the normalised title). SOURCE is a feed URL, NAME=URL (NAME becomes "
            "the headlines' source), or a .jsonl/.csv file with a 'title' column and "
            "optional 'ts' (epoch ms or ISO-8601, UTC if no zone), 'source', 'url', "
            "'summary'. Entries without a usable time get the fetch time, flagged "
            "ts_estimated. A broken source is logged and counted; the others go on."
        ),
    )
    h.add_argument("sources", nargs="*", metavar="SOURCE",
                   help="feeds and files, added to producer.feeds")
    h.add_argument("--interval", type=float, default=None, metavar="SECONDS",
                   help="seconds between polls (default: producer.feed_interval_s)")
    h.add_argument("--once", action="store_true", help="poll once, flush and exit")
    _metrics_arg(h)
    h.set_defaults(func=run)


def _metrics_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--metrics-port", type=int, default=None, metavar="PORT",
                   help="serve /metrics here; 0 = off (default: metrics.producer_port)")


def _metrics_port(args: argparse.Namespace, settings: Any) -> int | None:
    """The port a producer serves /metrics on: --metrics-port, else metrics.producer_port.

    Each producer process serves the configured port as it is (Compose runs them in
    separate containers, and its health checks and Prometheus expect that port); None
    means no endpoint.
    """
    from tariffmon.cli.preflight import require_free_port

    if args.metrics_port is not None:
        port = int(args.metrics_port) or None
    elif not settings.metrics.enabled:
        port = None
    else:
        port = int(settings.metrics.producer_port)
    if port is not None:
        require_free_port(settings.metrics.host, port, setting="metrics.producer_port",
                          option="--metrics-port")
    return port


def run(args: argparse.Namespace) -> int:
    """Run the chosen producer until stopped."""
    from tariffmon.settings import load_settings

    settings = load_settings()
    if args.produce_kind == "ticks":
        return _run_ticks(args, settings)
    return _run_headlines(args, settings)


def _run_ticks(args: argparse.Namespace, settings: Any) -> int:
    from tariffmon.errors import ConfigError
    from tariffmon.producers.backoff import Backoff
    from tariffmon.producers.errors import ProducerError
    from tariffmon.producers.runtime import ensure_stream_topics, producer_runtime
    from tariffmon.producers.ticks.runner import (
        BarPoller,
        QuoteStreamer,
        fetch_bars_yfinance,
        library_logs,
        run_stream_blocking,
        yfinance_ws_factory,
    )
    from tariffmon.producers.watermarks import watermarks_from_records
    from tariffmon.topic_reader import read_tail

    wanted = args.symbols or [s.name for s in settings.symbols]
    symbols = {}
    for name in wanted:
        symbols[name] = settings.symbol(name).yahoo  # ConfigError names an unknown symbol
    port = _metrics_port(args, settings)  # a taken port fails before the broker is asked
    mode = args.mode or settings.producer.tick_mode
    if args.once and mode == "stream":
        mode = "poll"
    interval = args.poll_interval or settings.producer.poll_interval_s
    if interval <= 0:
        raise ConfigError("--poll-interval", f"must be positive (got {interval})")
    topic = settings.topics.ticks
    ensure_stream_topics(settings, ["ticks"])
    marks = watermarks_from_records(read_tail(settings, topic))
    # yfinance's own log lines (a traceback per failed connection) stay off the terminal:
    # the loops log one line per retry with the cause
    with producer_runtime(settings, metrics_port=port) as (
        producer, metrics, stop,
    ), library_logs("yfinance"):
        def publish(tick: Any) -> None:
            producer.publish_message(topic, tick)

        poller = BarPoller(symbols, fetch_bars_yfinance, publish, marks, metrics)
        backoff = Backoff(settings.producer.backoff_initial_s, settings.producer.backoff_max_s)
        failed: list[str] = []
        if args.once:
            n, failed = poller.poll_once()
            print(f"published {n} bar_close ticks; failed: "
                  f"{poller.describe_failures(failed) if failed else 'none'}")
        elif mode == "poll":
            poller.run(stop, interval, backoff)
        else:
            streamer = QuoteStreamer(symbols, yfinance_ws_factory(), publish, marks, metrics,
                                     poller=poller)
            run_stream_blocking(streamer, stop, backoff)
    print(json.dumps(producer.summary()))
    if failed and len(failed) == len(symbols):
        raise ProducerError(f"every symbol's fetch failed: {poller.describe_failures(failed)}")
    return 1 if producer.failed else 0


def _run_headlines(args: argparse.Namespace, settings: Any) -> int:
    from tariffmon.errors import ConfigError
    from tariffmon.producers.backoff import Backoff
    from tariffmon.producers.errors import ProducerError
    from tariffmon.producers.headlines.feeds import fetch_url
    from tariffmon.producers.headlines.poller import HeadlinePoller, SeenIds, split_sources
    from tariffmon.producers.runtime import ensure_stream_topics, producer_runtime
    from tariffmon.topic_reader import read_tail

    feeds, files = split_sources([*settings.producer.feeds, *args.sources])
    if not feeds and not files:
        raise ConfigError("producer.feeds", "no headline source: configure feeds or pass some")
    port = _metrics_port(args, settings)  # a taken port fails before the broker is asked
    topic = settings.topics.headlines
    ensure_stream_topics(settings, ["headlines"])
    seen = SeenIds.from_records(read_tail(settings, topic, per_partition=5_000))
    interval = args.interval or settings.producer.feed_interval_s
    with producer_runtime(settings, metrics_port=port) as (
        producer, metrics, stop,
    ):
        def publish(head: Any) -> None:
            producer.publish_message(topic, head)

        p = settings.producer
        poller = HeadlinePoller(
            feeds, files, publish, seen, metrics, fetch=fetch_url,
            backoff=lambda: Backoff(p.backoff_initial_s, p.backoff_max_s),
        )
        failed: list[str] = []
        if args.once:
            n, failed = poller.poll_once()
            print(f"published {n} headlines; failed sources: {', '.join(failed) or 'none'}")
        else:
            poller.run(stop, interval)
    print(json.dumps(producer.summary()))
    if failed and len(failed) == len(feeds) + len(files):
        raise ProducerError(f"every headline source failed: {', '.join(failed)} (the "
                            "warnings above give each cause)")
    return 1 if producer.failed else 0
