"""kafka-python plumbing: client security settings, broker wait, topic creation."""

from __future__ import annotations

import logging
import ssl
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from kafka.admin import ConfigResource, ConfigResourceType

from tariffmon.errors import BrokerError, ConfigError
from tariffmon.kafkaclient import (
    ProducerSpec,
    admin_client,
    aiokafka_producer_config,
    client_config,
    describe,
    ensure_topics,
    kafka_python_producer_config,
    producer_spec,
    quiet_client_logs,
    wait_for_broker,
    wanted_topics,
)
from tariffmon.settings import KafkaSettings, ProducerSettings, load_settings
from tests.conftest import MakeSettings
from tests.kafka_helpers import free_port
from tests.security.certs import BrokerPki, make_pki


def test_plaintext_config() -> None:
    cfg = client_config(KafkaSettings(bootstrap_servers="a:1, b:2", client_id="me"))
    assert cfg["bootstrap_servers"] == ["a:1", "b:2"]
    assert cfg["security_protocol"] == "PLAINTEXT"
    assert cfg["client_id"] == "me"
    assert not any(k.startswith(("sasl", "ssl")) for k in cfg)


def test_sasl_ssl_config_hands_the_password_to_kafka_python_only(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("not checked here")
    kafka = KafkaSettings(
        bootstrap_servers="broker:9094", security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512", sasl_username="desk", sasl_password="s3cret!",
        ssl_cafile=ca,
    )
    cfg = client_config(kafka)
    assert cfg["sasl_mechanism"] == "SCRAM-SHA-512"
    assert cfg["sasl_plain_username"] == "desk"
    assert cfg["sasl_plain_password"] == "s3cret!"
    assert cfg["ssl_cafile"] == str(ca)
    assert "s3cret" not in describe(kafka) and "s3cret" not in repr(kafka)


def test_sasl_plaintext_has_no_ssl_keys() -> None:
    kafka = KafkaSettings(
        security_protocol="SASL_PLAINTEXT", sasl_mechanism="PLAIN",
        sasl_username="u", sasl_password="p",
    )
    cfg = client_config(kafka)
    assert cfg["sasl_mechanism"] == "PLAIN"
    assert not any(k.startswith("ssl") for k in cfg)


def test_wait_for_broker_names_the_address_when_nothing_answers() -> None:
    port = free_port()
    t0 = time.monotonic()
    with pytest.raises(BrokerError, match=rf"no Kafka broker answered at 127\.0\.0\.1:{port}"):
        wait_for_broker(KafkaSettings(bootstrap_servers=f"127.0.0.1:{port}"), timeout=1.5)
    assert time.monotonic() - t0 < 8


@pytest.mark.integration
def test_wait_for_broker_describes_the_cluster(kafka_bootstrap: str) -> None:
    cluster = wait_for_broker(KafkaSettings(bootstrap_servers=kafka_bootstrap), timeout=10)
    assert cluster["brokers"]


@pytest.mark.integration
def test_ensure_topics_is_idempotent_with_partitions_and_infinite_retention(
    make_settings: MakeSettings,
) -> None:
    settings = make_settings(create_topics=False, topics={"symbol_partitions": 2})
    wanted = wanted_topics(settings)
    assert wanted[settings.topics.ticks] == 2 and wanted[settings.topics.headlines] == 1

    first = ensure_topics(settings)
    assert set(first.values()) == {"created"} and set(first) == set(wanted)
    second = ensure_topics(settings)
    assert set(second.values()) == {"exists"}

    admin = admin_client(settings.kafka)
    try:
        infos = {t["name"]: t for t in admin.describe_topics(list(wanted))}
        for name, n in wanted.items():
            assert len(infos[name]["partitions"]) == n
        configs = admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, settings.topics.ticks)]
        )
    finally:
        admin.close()
    assert "'retention.ms'" in str(configs) and "'-1'" in str(configs), configs


@pytest.mark.integration
def test_existing_topic_with_other_partition_count_is_a_config_error(
    make_settings: MakeSettings,
) -> None:
    settings = make_settings(create_topics=False)
    ensure_topics(settings, {settings.topics.ticks: 1})
    with pytest.raises(ConfigError, match=r"topics: topic '.*ticks' already exists with 1"):
        ensure_topics(settings)


# --------------------------------------------------------------------------- producer spec


def _client_view(kp: dict[str, Any], aio: dict[str, Any]) -> tuple[dict[str, Any], ...]:
    """Each client's keywords as the same neutral fields, to compare them one by one."""
    def view(cfg: dict[str, Any], batch_key: str) -> dict[str, Any]:
        return {
            "bootstrap": list(cfg["bootstrap_servers"]), "client_id": cfg["client_id"],
            "protocol": cfg["security_protocol"], "acks": cfg["acks"],
            "idempotence": cfg["enable_idempotence"], "compression": cfg["compression_type"],
            "linger_ms": cfg["linger_ms"], "batch": cfg[batch_key],
            "sasl": (cfg.get("sasl_mechanism"), cfg.get("sasl_plain_username"),
                     cfg.get("sasl_plain_password")),
        }
    return view(kp, "batch_size"), view(aio, "max_batch_size")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> BrokerPki:
    """A CA and a certificate signed by it (a client certificate here)."""
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.mark.parametrize(("protocol", "mechanism", "compression"), [
    ("PLAINTEXT", None, "lz4"),
    ("SASL_PLAINTEXT", "PLAIN", "none"),
    ("SASL_SSL", "SCRAM-SHA-512", "zstd"),
    ("SASL_SSL", "SCRAM-SHA-256", "gzip"),
    ("SSL", None, "snappy"),
])
def test_both_producer_clients_get_the_same_settings(
    pki: BrokerPki, protocol: str, mechanism: str | None, compression: str
) -> None:
    sasl = protocol.startswith("SASL")
    tls = protocol.endswith("SSL")
    kafka: dict[str, Any] = {
        "bootstrap_servers": "b1:9094, b2:9094", "client_id": "desk-replay",
        "security_protocol": protocol, "request_timeout_ms": 7_000,
        "delivery_timeout_ms": 45_000,
    }
    if sasl:
        kafka.update(sasl_mechanism=mechanism, sasl_username="desk", sasl_password="s3cret!")
    if tls:
        # a client certificate too, so that mutual TLS is carried over as well
        kafka.update(ssl_cafile=str(pki.ca_cert), ssl_certfile=str(pki.server_cert),
                     ssl_keyfile=str(pki.server_key))
    settings = load_settings(kafka=kafka, producer={
        "compression": compression, "linger_ms": 7, "batch_size": 65_536})
    kp = kafka_python_producer_config(settings)
    aio = aiokafka_producer_config(settings)
    kp_view, aio_view = _client_view(kp, aio)
    assert kp_view == aio_view
    spec = producer_spec(settings)
    assert kp_view["bootstrap"] == ["b1:9094", "b2:9094"] == list(spec.bootstrap_servers)
    assert kp_view["acks"] == "all" and kp_view["idempotence"] is True
    assert kp_view["compression"] == (None if compression == "none" else compression)
    assert kp_view["sasl"] == ((mechanism, "desk", "s3cret!") if sasl else (None, None, None))
    # timeouts: kafka-python's per request and per delivery; aiokafka expires a batch at
    # its request timeout, so it gets the delivery bound
    assert (kp["request_timeout_ms"], kp["delivery_timeout_ms"]) == (7_000, 45_000)
    assert aio["request_timeout_ms"] == 45_000
    # the password is in neither the spec's repr nor the log description
    assert "s3cret" not in repr(spec) and "s3cret" not in describe(settings.kafka)
    if tls:
        assert kp["ssl_cafile"] == str(pki.ca_cert) and kp["ssl_certfile"] == str(
            pki.server_cert)
        ctx = aio["ssl_context"]
        assert isinstance(ctx, ssl.SSLContext)
        assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
        # the context trusts exactly the configured CA
        assert [c["subject"] for c in ctx.get_ca_certs()] == [
            ((("commonName", "tariffmon test CA"),),)]
    else:
        assert "ssl_context" not in aio and not any(k.startswith("ssl") for k in kp)


def test_producer_spec_reads_every_producer_and_kafka_setting() -> None:
    # a setting added to the sections the spec reads must reach the spec (or be excluded
    # here with a reason): otherwise one client would silently miss it
    not_for_producers = {
        "kafka": {"sasl_password"},  # in the spec, as a plain string hidden from repr
        "producer": {"tick_mode", "poll_interval_s", "feeds", "feed_interval_s",
                     "backoff_initial_s", "backoff_max_s"},  # the sources, not the client
    }
    spec_fields = set(ProducerSpec.__dataclass_fields__)
    renamed = {"compression": "compression", "bootstrap_servers": "bootstrap_servers"}
    for section, model in (("kafka", KafkaSettings), ("producer", ProducerSettings)):
        for name in model.model_fields:
            if name in not_for_producers[section]:
                continue
            assert renamed.get(name, name) in spec_fields, f"{section}.{name} not in the spec"


def test_unreachable_message_names_the_setting_and_the_address() -> None:
    port = free_port()
    kafka = KafkaSettings(bootstrap_servers=f"127.0.0.1:{port}", connect_timeout_s=1.0)
    t0 = time.monotonic()
    with pytest.raises(BrokerError) as info:
        wait_for_broker(kafka)  # the default wait is kafka.connect_timeout_s
    assert time.monotonic() - t0 < 6
    text = str(info.value)
    assert f"127.0.0.1:{port}" in text and "kafka.bootstrap_servers" in text
    assert "kafka.connect_timeout_s" in text and "\n" not in text


def test_client_logs_are_warnings_and_each_shown_once(
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = logging.getLogger()
    handler = logging.StreamHandler(sys.stderr)
    root.addHandler(handler)
    saved = {n: logging.getLogger(n).level for n in ("kafka", "aiokafka", "faust")}
    try:
        quiet_client_logs(verbose=1)
        quiet_client_logs(verbose=1)  # idempotent: one filter per handler
        assert sum(1 for f in handler.filters if type(f).__name__ == "_OncePerInterval") == 1
        client = logging.getLogger("kafka.net.manager")
        for i in range(50):
            client.warning("Bootstrap %s not ready; waiting %.2f secs", "b-0", i / 10)
            client.error("Connection failed: %s", "ECONNREFUSED")
            client.info("chatter %d", i)
            logging.getLogger("aiokafka.conn").warning("lost %d", i)
            logging.getLogger("faust.worker").warning("rebalancing %s", "now")
        own = logging.getLogger("tariffmon.test")
        for i in range(3):
            own.warning("ours %d", i)  # our own repeats are not the filter's business
        lines = capsys.readouterr().err.splitlines()
    finally:
        root.removeHandler(handler)
        for n, level in saved.items():
            logging.getLogger(n).setLevel(level)
    assert lines == ["Bootstrap b-0 not ready; waiting 0.00 secs",
                     "Connection failed: ECONNREFUSED", "lost 0", "rebalancing now",
                     "ours 0", "ours 1", "ours 2"]
