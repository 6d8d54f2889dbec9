"""Build the Faust application from the settings (never at import time)."""

from __future__ import annotations

import ssl
from typing import Any

import faust

from tariffmon.settings import KafkaSettings, Settings


def broker_credentials(kafka: KafkaSettings) -> Any:
    """Faust's credentials object for the configured security protocol (None for PLAINTEXT)."""
    context = None
    if kafka.security_protocol in ("SSL", "SASL_SSL"):
        context = ssl.create_default_context(
            cafile=str(kafka.ssl_cafile) if kafka.ssl_cafile else None
        )
        if kafka.ssl_certfile:
            context.load_cert_chain(
                str(kafka.ssl_certfile), str(kafka.ssl_keyfile) if kafka.ssl_keyfile else None
            )
    if kafka.security_protocol.startswith("SASL"):
        password = kafka.sasl_password.get_secret_value() if kafka.sasl_password else ""
        return faust.SASLCredentials(
            username=kafka.sasl_username,
            password=password,
            mechanism=kafka.sasl_mechanism,
            ssl_context=context,
        )
    if context is not None:
        return faust.SSLCredentials(context)
    return None


def build_app(settings: Settings) -> faust.App:
    """A Faust app for ``settings``: raw bytes in and out, at-least-once, no web server.

    Values stay raw bytes so that decoding happens in our code, where a bad record becomes a
    dead letter instead of a crashed agent.  Offsets are committed only after the outputs of
    the events before them have been flushed (Faust flushes its producer before committing).
    """
    kafka = settings.kafka
    brokers = ";".join(f"kafka://{b}" for b in kafka.bootstrap_list())
    return faust.App(
        settings.worker.app_id,
        broker=brokers,
        broker_credentials=broker_credentials(kafka),
        broker_client_id=kafka.client_id,
        store="memory://",
        datadir=str(settings.worker.data_dir),
        key_serializer="raw",
        value_serializer="raw",
        topic_partitions=settings.topics.symbol_partitions,
        topic_replication_factor=settings.topics.replication_factor,
        topic_allow_declare=True,
        broker_commit_interval=settings.worker.commit_interval_s,
        broker_session_timeout=settings.worker.session_timeout_s,
        # three heartbeats per session, as Kafka recommends, but never slower than Faust's 3 s
        broker_heartbeat_interval=min(3.0, settings.worker.session_timeout_s / 3),
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        producer_linger_ms=0,
        producer_max_request_size=1_048_576,
        producer_max_batch_size=256 * 1024,
        # large fetches: per-message overhead in Faust, not Kafka, bounds the worker's
        # throughput, so hand it as much as possible per wake-up.  The stream buffer stays
        # a few batches deep: ticks and reaction requests share the react agent's buffer,
        # and a request queued behind 65k ticks (6 h of event time at 3 symbols) while
        # catching up on a backlog fell past the lateness bound and took the slow
        # read-back-from-Kafka path (bench/bench_e2e.py, BENCHMARKS.md)
        broker_max_poll_records=10_000,
        consumer_max_fetch_size=8 * 1024 * 1024,
        stream_buffer_maxsize=4_096,
        stream_wait_empty=True,
        web_enabled=False,
        autodiscover=False,
    )
