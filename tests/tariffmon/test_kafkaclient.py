"""kafka-python plumbing: client security settings, broker wait, topic creation."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from kafka.admin import ConfigResource, ConfigResourceType

from tariffmon.errors import BrokerError, ConfigError
from tariffmon.kafkaclient import (
    admin_client,
    client_config,
    describe,
    ensure_topics,
    wait_for_broker,
    wanted_topics,
)
from tariffmon.settings import KafkaSettings
from tests.conftest import MakeSettings
from tests.kafka_helpers import free_port


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
