"""The pipeline on a broker that only lets clients in over SASL_SSL with SCRAM-SHA-512.

The module starts its own single-node broker (free ports, a temporary home) with a test CA
and broker certificate (PEM keystores) and the user's SCRAM credentials created when the
storage is formatted.  The broker keeps a PLAINTEXT listener on loopback for itself (inter-
broker traffic and its own readiness probe); every client of ours goes through the SASL_SSL
listener, with the credentials in TARIFFMON_KAFKA__* variables, as in production.

Checked: a replay (ticks and a tariff headline) and a real worker produce the reactions the
core computes; wrong credentials make the CLI and the worker exit within seconds with an
authentication error naming the bootstrap address and the user; the password appears in no
log, output, metrics page or error message; the worker's metrics endpoint is reachable on
the configured loopback address only.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import socket
import struct
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
from pydantic import SecretStr

from tariffmon.contract import Reaction
from tariffmon.kafkaclient import ensure_topics
from tariffmon.localkafka import Listener, LocalBroker
from tariffmon.recorded import RecordedEvent, write_events
from tariffmon.settings import LocalBrokerSettings, Settings, TopicSettings, load_settings
from tests.kafka_helpers import consume_all, free_port, free_ports
from tests.security.certs import BrokerPki, make_pki, openssl_available
from tests.tariffmon.streams.market import T0, expected_reactions, pause_headline, ticks
from tests.worker_process import WorkerProcess, settings_env

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.skipif(not openssl_available(), reason="openssl is needed to make the certs"),
]

USER = "alice"
MECHANISM = "SCRAM-SHA-512"
#: how long a command given wrong credentials may take to give up (it must not hang)
FAIL_FAST_S = 20.0


@dataclass(frozen=True, slots=True)
class SecureBroker:
    """The running broker, where its SASL_SSL listener is, and who may log in."""

    broker: LocalBroker
    pki: BrokerPki
    bootstrap: str
    password: str


@pytest.fixture(scope="module")
def secure_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureBroker]:
    """A broker with a SASL_SSL (SCRAM-SHA-512) listener and user ``alice``."""
    home = tmp_path_factory.mktemp("secure-kafka")
    pki = make_pki(home / "pki")
    # hex only: distinctive enough to grep for, and nothing StorageTool's [k=v,...] parser
    # would need escaped
    password = f"pw{secrets.token_hex(16)}"
    port, controller_port, secure_port = free_ports(3)
    secure = "SECURE"  # the listener's name; its protocol is SASL_SSL
    prefix = f"listener.name.{secure.lower()}"
    broker = LocalBroker(
        LocalBrokerSettings(host="127.0.0.1", port=port, controller_port=controller_port,
                            home=home / "kafka", heap="512m"),
        extra_listeners=[Listener(secure, "127.0.0.1", secure_port, "SASL_SSL")],
        extra_properties={
            "sasl.enabled.mechanisms": MECHANISM,
            f"{prefix}.{MECHANISM.lower()}.sasl.jaas.config":
                "org.apache.kafka.common.security.scram.ScramLoginModule required;",
            f"{prefix}.ssl.keystore.type": "PEM",
            f"{prefix}.ssl.keystore.location": str(pki.server_keystore),
            f"{prefix}.ssl.truststore.type": "PEM",
            f"{prefix}.ssl.truststore.location": str(pki.ca_cert),
        },
        format_args=["--add-scram", f"{MECHANISM}=[name={USER},password={password}]"],
        detach=False,  # an interrupted test run takes its broker along
    )
    try:
        broker.start(timeout=120)
    except Exception:
        broker.stop(timeout=10)
        raise
    try:
        yield SecureBroker(broker, pki, f"127.0.0.1:{secure_port}", password)
    finally:
        broker.stop(timeout=20)


def secured_settings(secure: SecureBroker, data_dir: Path) -> Settings:
    """Settings reaching the SASL_SSL listener, with unique topics and worker id."""
    suffix = uuid.uuid4().hex[:8]
    return load_settings(
        kafka={
            "bootstrap_servers": secure.bootstrap,
            "security_protocol": "SASL_SSL",
            "sasl_mechanism": MECHANISM,
            "sasl_username": USER,
            "sasl_password": secure.password,
            "ssl_cafile": str(secure.pki.ca_cert),
        },
        topics={s: f"test.secure.{suffix}.{s}" for s in TopicSettings().all_topics()},
        worker={"app_id": f"tariffmon-secure-{suffix}", "data_dir": str(data_dir / suffix)},
    )


def with_password(settings: Settings, password: str) -> Settings:
    """The same settings with another password."""
    kafka = settings.kafka.model_copy(update={"sasl_password": SecretStr(password)})
    return settings.model_copy(update={"kafka": kafka})


def tariffmon(args: list[str], settings: Settings, timeout: float
              ) -> tuple[subprocess.CompletedProcess[str], float]:
    """Run the ``tariffmon`` CLI with the settings in its environment; (result, seconds)."""
    env = settings_env(settings, metrics_port=free_port())
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "tariffmon.cli.main", *args], env=env,
                          capture_output=True, text=True, timeout=timeout, check=False)
    return done, time.monotonic() - started


@dataclass(frozen=True, slots=True)
class Replayed:
    """The settings a replay published with, what it printed, and the expected answer."""

    settings: Settings
    result: subprocess.CompletedProcess[str]
    events: int
    want: dict[str, Reaction]


@pytest.fixture(scope="module")
def replayed(secure_broker: SecureBroker, tmp_path_factory: pytest.TempPathFactory
             ) -> Replayed:
    """A tariff headline and 4 h of USD/JPY ticks replayed with ``tariffmon replay``."""
    tmp = tmp_path_factory.mktemp("secure-replay")
    settings = secured_settings(secure_broker, tmp)
    ensure_topics(settings)  # the admin client over SASL_SSL
    usd = ticks("USDJPY", T0 - 3 * 3_600_000, 4 * 3_600 + 120, seed=11, jump_at=T0)[::5]
    headline = pause_headline()
    events = [RecordedEvent("headlines", headline.key, headline.ts,
                            orjson.loads(headline.encode()))]
    events += [RecordedEvent("ticks", t.key, t.ts, orjson.loads(t.encode())) for t in usd]
    events.sort(key=lambda e: e.ts)
    path = tmp / "episode.jsonl"
    write_events(path, events)
    # -vv: debug logging (kafka-python's too), so that a leak at any level shows up in the
    # password check
    result, _ = tariffmon(["-vv", "replay", str(path), "--no-progress"], settings, timeout=120)
    want = expected_reactions(settings, usd, [headline])
    return Replayed(settings, result, len(events), want)


@pytest.fixture(scope="module")
def secure_worker(replayed: Replayed, tmp_path_factory: pytest.TempPathFactory
                  ) -> Iterator[WorkerProcess]:
    """A real ``tariffmon worker`` over SASL_SSL, credentials from its environment."""
    log = tmp_path_factory.mktemp("secure-worker") / "worker.log"
    worker = WorkerProcess(replayed.settings, log)
    try:
        yield worker.start(timeout=90)
    finally:
        worker.stop()


def test_replay_publishes_over_sasl_ssl(replayed: Replayed) -> None:
    assert replayed.result.returncode == 0, replayed.result.stderr
    summary = json.loads(replayed.result.stdout.strip().splitlines()[-1])
    assert summary["acked"] == replayed.events and summary["failed"] == 0


def test_worker_reacts_over_sasl_ssl(replayed: Replayed, secure_worker: WorkerProcess) -> None:
    settings = replayed.settings
    want = replayed.want
    assert len(want) >= 4  # USDJPY at every horizon, at least
    records = consume_all(settings, settings.topics.reactions, len(want), timeout=90)
    got = {}
    for rec in records:
        reaction = Reaction.decode(rec.value)
        got[reaction.key] = reaction
    assert got == want
    assert got[f"{pause_headline().id}|USDJPY|3600"].significant


def _other_ipv4_addresses() -> list[str]:
    """The machine's IPv4 addresses outside 127.0.0.0/8 (Linux interface ioctl)."""
    siocgifaddr = 0x8915
    found: list[str] = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for _, name in socket.if_nameindex():
            try:
                packed = fcntl.ioctl(s.fileno(), siocgifaddr,
                                     struct.pack("256s", name.encode()[:15]))
            except OSError:  # down, or no IPv4 address
                continue
            addr = socket.inet_ntoa(packed[20:24])
            if not addr.startswith("127."):
                found.append(addr)
    return found


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def test_metrics_endpoint_binds_only_where_configured(secure_worker: WorkerProcess) -> None:
    port = secure_worker.metrics_port
    assert _reachable("127.0.0.1", port)  # metrics.host = 127.0.0.1
    others = _other_ipv4_addresses()
    if not others:
        pytest.skip("this machine has no IPv4 address besides loopback to probe from")
    for addr in others:
        assert not _reachable(addr, port), f"metrics reachable on {addr}:{port}"


def test_no_password_in_logs_outputs_or_metrics(
    secure_broker: SecureBroker, replayed: Replayed, secure_worker: WorkerProcess
) -> None:
    # let the worker get past start-up and handle input, so that its log is not trivial
    deadline = time.monotonic() + 60
    while "tariffmon_reactions_total" not in secure_worker.metrics_text():
        assert time.monotonic() < deadline, secure_worker.log_tail()
        time.sleep(0.5)
    texts = {
        "replay stdout": replayed.result.stdout,
        "replay stderr": replayed.result.stderr,
        "worker metrics page": secure_worker.metrics_text(),
        "worker log": secure_worker.log_path.read_text(errors="replace"),
        "broker log": secure_broker.broker.log_file.read_text(errors="replace"),
        "broker server.properties": secure_broker.broker.properties_file.read_text(),
    }
    # the texts checked are the real thing: a worker that ran, a replay that logged at DEBUG
    assert "state rebuilt" in texts["worker log"]
    assert "DEBUG kafka." in texts["replay stderr"]
    for where, text in texts.items():
        assert secure_broker.password not in text, f"the password leaks into the {where}"


def test_wrong_password_fails_fast_with_a_clear_message(
    secure_broker: SecureBroker, replayed: Replayed, tmp_path: Path
) -> None:
    wrong = f"wrong{secrets.token_hex(8)}"
    bad = with_password(replayed.settings, wrong)
    episode = tmp_path / "one.jsonl"
    head = pause_headline(hid="h-wrong")
    write_events(episode, [RecordedEvent("headlines", head.key, head.ts,
                                         orjson.loads(head.encode()))])
    runs = {
        "replay": tariffmon(["-vv", "replay", str(episode), "--no-progress"], bad,
                            FAIL_FAST_S),
        "publish-headline": tariffmon(["publish-headline", "Japan tariff talks resume"], bad,
                                      FAIL_FAST_S),
        "worker": tariffmon(["worker", "--loglevel", "INFO"], bad, FAIL_FAST_S),
    }
    for command, (done, seconds) in runs.items():
        output = done.stdout + done.stderr
        assert done.returncode != 0, f"{command} accepted a wrong password:\n{output}"
        assert seconds < FAIL_FAST_S, command
        errors = [line for line in done.stderr.splitlines()
                  if line.startswith(f"tariffmon {command}: error:")]
        assert len(errors) == 1, output
        last = errors[0]
        assert "authentication" in last.lower(), last
        assert secure_broker.bootstrap in last and repr(USER) in last, last
        for secret in (wrong, secure_broker.password):
            assert secret not in output, f"{command} printed a password"
    # nothing sent with the wrong password reached the topic
    on_topic = consume_all(replayed.settings, replayed.settings.topics.headlines, timeout=30)
    assert [r.key for r in on_topic] == [pause_headline().key.encode()]


def test_settings_refuse_sasl_without_a_password(secure_broker: SecureBroker) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TARIFFMON_")}
    env.update({
        "TARIFFMON_KAFKA__BOOTSTRAP_SERVERS": secure_broker.bootstrap,
        "TARIFFMON_KAFKA__SECURITY_PROTOCOL": "SASL_SSL",
        "TARIFFMON_KAFKA__SASL_MECHANISM": MECHANISM,
        "TARIFFMON_KAFKA__SASL_USERNAME": USER,
    })
    done = subprocess.run(
        [sys.executable, "-m", "tariffmon.cli.main", "publish-headline", "x"], env=env,
        capture_output=True, text=True, timeout=FAIL_FAST_S, check=False,
    )
    assert done.returncode == 2
    assert "TARIFFMON_KAFKA__SASL_PASSWORD" in done.stderr
