"""The local broker: real Kafka on the JVM, produce/consume, start/stop/status idempotent."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tariffmon.cli.main import main
from tariffmon.contract import Headline, Tick
from tariffmon.errors import BrokerError
from tariffmon.localkafka import Listener, LocalBroker
from tariffmon.localkafka.config import random_cluster_id, render_properties, server_properties
from tariffmon.localkafka.jars import STAMP_NAME, ensure_jars, fetch_jars, jars_present
from tariffmon.settings import PROJECT_ROOT, LocalBrokerSettings
from tests.conftest import MakeSettings
from tests.kafka_helpers import consume_all, free_ports, produce_messages

# 2025-04-02T20:00:00Z, the "Liberation Day" announcement: far older than any default
# retention, so this also proves the broker keeps and serves old event times.
APRIL_2_2025_MS = 1_743_624_000_000


@pytest.mark.integration
def test_produce_and_consume_back_with_event_time_as_kafka_timestamp(
    make_settings: MakeSettings,
) -> None:
    settings = make_settings()
    ticks = [
        Tick(symbol="USDJPY", ts=APRIL_2_2025_MS + i * 60_000, price=149.5 + i / 100,
             source="test", kind="bar_close", interval_s=60)
        for i in range(5)
    ]
    heads = [Headline(id="h1", ts=APRIL_2_2025_MS, source="test", title="Tariffs of 24% on Japan")]
    produce_messages(settings, settings.topics.ticks, ticks)
    produce_messages(settings, settings.topics.headlines, heads)

    got_ticks = consume_all(settings, settings.topics.ticks, expected_count=5)
    got_heads = consume_all(settings, settings.topics.headlines, expected_count=1)

    assert sorted((Tick.decode(r.value) for r in got_ticks), key=lambda t: t.ts) == ticks
    for rec in got_ticks:
        assert rec.timestamp == Tick.decode(rec.value).ts
        assert rec.timestamp_type == 0  # CreateTime: the producer's (event) time is kept
        assert rec.key == b"USDJPY"
    # one key -> one partition: the symbol's ticks stay in order
    assert len({r.partition for r in got_ticks}) == 1
    assert [r.timestamp for r in got_ticks] == [t.ts for t in ticks]
    assert Headline.decode(got_heads[0].value) == heads[0]
    assert got_heads[0].timestamp == APRIL_2_2025_MS


def test_server_properties_single_node_kraft_keeps_old_data() -> None:
    props = server_properties(
        host="127.0.0.1", port=9092, controller_port=9093, data_dir=Path("/tmp/x"),
        extra_listeners=[Listener("SASL", "127.0.0.1", 9094, "SASL_SSL")],
        extra_properties={"num.partitions": "3"},
    )
    assert props["process.roles"] == "broker,controller"
    assert props["log.retention.ms"] == "-1"
    assert props["transaction.state.log.replication.factor"] == "1"
    assert props["transaction.state.log.min.isr"] == "1"
    assert props["offsets.topic.replication.factor"] == "1"
    assert props["controller.quorum.bootstrap.servers"] == "127.0.0.1:9093"
    assert props["listeners"] == (
        "PLAINTEXT://127.0.0.1:9092,SASL://127.0.0.1:9094,CONTROLLER://127.0.0.1:9093"
    )
    assert "CONTROLLER" not in props["advertised.listeners"]
    assert "SASL:SASL_SSL" in props["listener.security.protocol.map"]
    assert props["num.partitions"] == "3"  # extra properties win
    text = render_properties(props)
    assert "log.retention.ms=-1\n" in text


def test_cluster_id_is_22_url_safe_chars() -> None:
    ids = {random_cluster_id() for _ in range(50)}
    assert len(ids) == 50
    for cid in ids:
        assert len(cid) == 22 and not cid.startswith("-")
        assert set(cid) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_jars_present_follows_the_pom_stamp(tmp_path: Path) -> None:
    libs, pom = tmp_path / "libs", tmp_path / "pom.xml"
    pom.write_text("<project>v1</project>")
    assert not jars_present(libs, pom)
    libs.mkdir()
    (libs / "kafka_2.13-4.1.1.jar").write_bytes(b"")
    assert jars_present(libs, pom)  # no stamp: jars put there by hand are trusted
    (libs / STAMP_NAME).write_text("0" * 64)
    assert not jars_present(libs, pom)  # the pom changed since the fetch


def test_fetch_jars_names_what_failed(tmp_path: Path) -> None:
    with pytest.raises(BrokerError, match="does not exist"):
        fetch_jars(tmp_path / "libs", tmp_path / "missing-pom.xml")
    pom = tmp_path / "pom.xml"
    pom.write_text("<project/>")
    with pytest.raises(BrokerError, match=r"Maven .*not on PATH"):
        ensure_jars(tmp_path / "libs", pom, mvn="no-such-mvn-binary")


def _broker(tmp_path: Path) -> LocalBroker:
    port, controller_port = free_ports(2)
    return LocalBroker(
        LocalBrokerSettings(port=port, controller_port=controller_port,
                            home=tmp_path / "kafka", heap="256m")
    )


def test_start_refuses_a_port_in_use(tmp_path: Path) -> None:
    broker = _broker(tmp_path)
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", broker.settings.port))
        squatter.listen()
        with pytest.raises(BrokerError, match=r"local_broker\.port.*in use"):
            broker.start(timeout=10)
    assert not broker.status().running


@pytest.mark.integration
@pytest.mark.slow
def test_start_stop_status_are_idempotent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    broker = _broker(tmp_path)
    monkeypatch.setenv("TARIFFMON_LOCAL_BROKER__PORT", str(broker.settings.port))
    monkeypatch.setenv("TARIFFMON_LOCAL_BROKER__CONTROLLER_PORT",
                       str(broker.settings.controller_port))
    monkeypatch.setenv("TARIFFMON_LOCAL_BROKER__HOME", str(broker.home))
    bootstrap = f"127.0.0.1:{broker.settings.port}"

    assert not broker.status().running
    assert broker.stop() is False  # stopping a stopped broker is fine
    assert main(["kafka", "status"]) == 3
    assert f"{bootstrap} stopped" in capsys.readouterr().out

    try:
        st = broker.start(timeout=90)
        assert st.running and st.pid and st.bootstrap == bootstrap
        assert broker.is_answering()
        t0 = time.monotonic()
        again = broker.start(timeout=30)
        assert again.pid == st.pid  # no second broker
        assert time.monotonic() - t0 < 5
        # another object (another process, e.g. the CLI) sees the same broker
        assert main(["kafka", "start"]) == 0
        assert main(["kafka", "status"]) == 0
        out = capsys.readouterr().out
        assert f"{bootstrap} running (pid {st.pid})" in out
        assert broker.log_file.is_file() and (broker.home / "data" / "meta.properties").is_file()
    finally:
        assert main(["kafka", "stop"]) == 0
    assert f"{bootstrap} stopped" in capsys.readouterr().out
    assert not broker.status().running
    assert not broker.pid_file.exists()
    assert broker.stop() is False
    assert main(["kafka", "status"]) == 3
    assert not broker.is_answering(timeout=1)


@pytest.mark.slow
def test_fixture_fails_loudly_when_the_given_broker_does_not_answer(tmp_path: Path) -> None:
    (dead_port,) = free_ports(1)
    env = {
        **os.environ,
        "TARIFFMON_TEST_BOOTSTRAP": f"127.0.0.1:{dead_port}",
        "TARIFFMON_TEST_BOOTSTRAP_TIMEOUT_S": "2",
    }
    node = (
        "tests/tariffmon/localkafka/test_broker.py::"
        "test_produce_and_consume_back_with_event_time_as_kafka_timestamp"
    )
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", node],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )
    out = done.stdout + done.stderr
    assert done.returncode != 0, out
    assert "1 error" in out and "skipped" not in out, out
    assert f"127.0.0.1:{dead_port}" in out and "no Kafka broker answered" in out, out
