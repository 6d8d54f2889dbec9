"""docker-compose.yml run without Docker: each tariffmon service as the compose file says.

No Docker engine runs here, so the test does what Compose would, on loopback:

* the compose file is read and its ``${VAR...}`` references resolved as Compose does
  (``:-`` default, ``:?`` required); ``TARIFFMON_FEEDS`` is set to a recorded headline file
  (the headline producer reads ``.jsonl`` files as a source), so the headline producer
  publishes real headlines offline;
* every service gets the image's ``ENV`` (from the Dockerfile, ``/app`` being this checkout)
  and then its own ``environment``; service host names become 127.0.0.1, ``kafka:9092`` the
  test broker, and each metrics port a free port.  Added on top, so that the shared broker
  stays shared: unique topic names and app id (TARIFFMON_TOPICS__*, TARIFFMON_WORKER__APP_ID)
  and a temporary data dir;
* the tick producer's only source is Yahoo over HTTPS; every proxy variable points at a
  closed loopback port, so its fetches fail at once, without leaving the machine, and it
  must serve its metrics (and count the failures) while its source fails;
* ``topics`` must exit 0; then each long-running service's ``healthcheck`` command (its port
  remapped) must pass; then Prometheus, started from config/prometheus/prometheus.docker.yml
  with the same remapping and the rules mounted as Compose mounts them, must see every scrape
  target up, and its Alertmanager (the real binary, on a free port) as active.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from tariffmon.settings import TopicSettings, load_settings
from tests.kafka_helpers import consume_all, free_port, wait_until
from tests.prometheus_harness import (
    PrometheusServer,
    _stop,
    _wait_ready,
    alertmanager_binary,
    prometheus_binary,
    running_alertmanager,
)

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
TARIFFMON_SERVICES = ("worker", "tick-producer", "headline-producer")
METRICS_PORT_VARS = ("TARIFFMON_METRICS__WORKER_PORT", "TARIFFMON_METRICS__PRODUCER_PORT")

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.skipif(prometheus_binary() is None or alertmanager_binary() is None,
                       reason="needs prometheus and prometheus-alertmanager (CI installs them)"),
]

_VAR = re.compile(r"\$\{(\w+)(?::([-?])((?:[^{}]|\{[^{}]*\})*))?\}")


class ComposeError(ValueError):
    """A required variable of the compose file is not set."""


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """``${VAR}``, ``${VAR:-default}`` and ``${VAR:?message}`` resolved as Compose does."""
    def sub(m: re.Match[str]) -> str:
        name, op, arg = m.group(1), m.group(2), m.group(3) or ""
        value = env.get(name, "")
        if value:
            return value
        if op == "?":
            raise ComposeError(f"required variable {name} is missing a value: {arg}")
        return arg if op == "-" else ""
    return _VAR.sub(sub, text)


def _interpolated(node: Any, env: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, dict):
        return {k: _interpolated(v, env) for k, v in node.items()}
    if isinstance(node, list):
        return [_interpolated(v, env) for v in node]
    return node


def load_compose(env: Mapping[str, str]) -> dict[str, Any]:
    """The compose file as Compose reads it with ``env`` as the shell's environment
    (parsed first, then each string interpolated, as Compose does)."""
    data: dict[str, Any] = _interpolated(yaml.safe_load(COMPOSE.read_text()), env)
    return data


def image_env() -> dict[str, str]:
    """The ``ENV`` of the Dockerfile (the image's environment), in order."""
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    out: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("ENV "):
            for kv in line[4:].split():
                key, _, value = kv.partition("=")
                out[key] = value
    return out


def test_grafana_admin_password_is_required_and_anonymous_viewing_is_off() -> None:
    with pytest.raises(ComposeError, match="GRAFANA_ADMIN_PASSWORD"):
        load_compose({})
    env = load_compose({"GRAFANA_ADMIN_PASSWORD": "s3cret"})["services"]["grafana"][
        "environment"]
    assert env["GF_SECURITY_ADMIN_PASSWORD"] == "s3cret"
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    assert load_compose({"GRAFANA_ADMIN_PASSWORD": "x", "GRAFANA_ANONYMOUS": "true"})[
        "services"]["grafana"]["environment"]["GF_AUTH_ANONYMOUS_ENABLED"] == "true"


def test_services_wait_for_the_health_of_what_they_need() -> None:
    services = load_compose({"GRAFANA_ADMIN_PASSWORD": "x"})["services"]
    for name, service in services.items():
        for dep, cond in service.get("depends_on", {}).items():
            wanted = ("service_completed_successfully" if dep == "topics"
                      else "service_healthy")
            assert cond["condition"] == wanted, (name, dep, cond)
            if wanted == "service_healthy":
                assert services[dep].get("healthcheck"), dep


class Stack:
    """The tariffmon services of the compose file as local processes."""

    def __init__(self, bootstrap: str, tmp_path: Path, feed: Path) -> None:
        self.tmp = tmp_path
        self.compose = load_compose({"TARIFFMON_FEEDS": json.dumps([str(feed)]),
                                     "GRAFANA_ADMIN_PASSWORD": "unused-here"})
        self.services: dict[str, Any] = self.compose["services"]
        suffix = uuid.uuid4().hex[:8]
        self.topics = {s: f"test.compose.{suffix}.{s}" for s in TopicSettings().all_topics()}
        self.app_id = f"tariffmon-compose-{suffix}"
        self.bootstrap = bootstrap
        #: (service, container port) -> host port on 127.0.0.1
        self.ports: dict[tuple[str, int], int] = {}
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def port(self, service: str, container_port: int) -> int:
        return self.ports.setdefault((service, container_port), free_port())

    def env(self, name: str) -> dict[str, str]:
        service = self.services[name]
        env = {k: v for k, v in os.environ.items() if not k.startswith("TARIFFMON_")}
        for key, value in image_env().items():
            env[key] = value.replace("/app/", f"{ROOT}/")
        env["TARIFFMON_WORKER__DATA_DIR"] = str(self.tmp / f"{name}-data")
        for key, value in service["environment"].items():
            value = str(value)
            if key in METRICS_PORT_VARS:
                value = str(self.port(name, int(value)))
            elif key == "TARIFFMON_KAFKA__BOOTSTRAP_SERVERS":
                assert value == "kafka:9092", value
                value = self.bootstrap
            elif key == "TARIFFMON_METRICS__HOST":
                assert value == "0.0.0.0", value
                value = "127.0.0.1"
            env[key] = value
        env.update({f"TARIFFMON_TOPICS__{k.upper()}": v for k, v in self.topics.items()})
        env["TARIFFMON_WORKER__APP_ID"] = self.app_id
        if name == "tick-producer":
            dead = f"http://127.0.0.1:{free_port()}"
            for var in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy",
                        "ALL_PROXY", "all_proxy"):
                env[var] = dead
            # loopback stays direct: the broker and the healthcheck's own metrics request
            env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
        return env

    @staticmethod
    def argv(command: list[str]) -> list[str]:
        """The container's command with its executables as this machine has them."""
        head = {"tariffmon": [sys.executable, "-m", "tariffmon.cli.main"],
                "python": [sys.executable]}
        return [*head.get(command[0], [command[0]]), *command[1:]]

    def run_once(self, name: str, timeout_s: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.argv(self.services[name]["command"]), env=self.env(name),
                              capture_output=True, text=True, timeout=timeout_s, cwd=self.tmp)

    def start(self, name: str) -> None:
        log = (self.tmp / f"{name}.log").open("wb")
        self.procs[name] = subprocess.Popen(
            self.argv(self.services[name]["command"]), env=self.env(name), stdout=log,
            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=self.tmp)

    def log(self, name: str) -> str:
        return (self.tmp / f"{name}.log").read_text(errors="replace")[-3000:]

    def healthcheck(self, name: str) -> subprocess.CompletedProcess[str]:
        """The service's healthcheck command, as Docker runs it inside the container."""
        test = list(self.services[name]["healthcheck"]["test"])
        assert test[0] == "CMD", test
        container_ports = {c for (s, c) in self.ports if s == name}

        def remap(arg: str) -> str:
            return re.sub(r"127\.0\.0\.1:(\d+)",
                          lambda m: f"127.0.0.1:{self.ports[(name, int(m.group(1)))]}"
                          if int(m.group(1)) in container_ports else m.group(0), arg)
        return subprocess.run(self.argv([remap(a) for a in test[1:]]), env=self.env(name),
                              capture_output=True, text=True, timeout=30)

    def stop(self) -> None:
        for proc in self.procs.values():
            _stop(proc)


@pytest.fixture
def stack(kafka_bootstrap: str, tmp_path: Path) -> Iterator[Stack]:
    feed = tmp_path / "headlines.jsonl"
    feed.write_text("".join(json.dumps({"title": t, "ts": 1_744_219_080_000 + i * 60_000,
                                        "source": "recorded"}) + "\n"
                            for i, t in enumerate([
                                "Trump pauses reciprocal tariffs on Japan for 90 days",
                                "Japan's tariff envoy to meet US president in Washington",
                            ])))
    s = Stack(kafka_bootstrap, tmp_path, feed)
    try:
        yield s
    finally:
        s.stop()


def running_docker_prometheus(stack: Stack, am_port: int) -> PrometheusServer:
    """Prometheus from prometheus.docker.yml, every target and path remapped."""
    binary = prometheus_binary()
    assert binary is not None
    config = yaml.safe_load((ROOT / "config/prometheus/prometheus.docker.yml").read_text())
    port = free_port()
    mounts = dict(v.split(":")[:2] for v in stack.services["prometheus"]["volumes"]
                  if v.startswith("./"))
    rules = []
    for pattern in config["rule_files"]:
        for source, target in mounts.items():
            if pattern.startswith(target + "/"):
                rules.append(str(ROOT / source / pattern[len(target) + 1:]))
    assert rules, config["rule_files"]
    config["rule_files"] = rules
    for job in config["scrape_configs"]:
        for sc in job["static_configs"]:
            targets = []
            for target in sc["targets"]:
                host, p = target.split(":")
                if host == "localhost":
                    assert p == "9090", target
                    targets.append(f"127.0.0.1:{port}")
                else:
                    targets.append(f"127.0.0.1:{stack.ports[(host, int(p))]}")
            sc["targets"] = targets
    (am,) = config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert am == "alertmanager:9095"
    config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] = [
        f"127.0.0.1:{am_port}"]
    workdir = stack.tmp / "prometheus"
    workdir.mkdir()
    path = workdir / "prometheus.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    log_path = workdir / "prometheus.log"
    cmd = [binary, f"--config.file={path}", f"--storage.tsdb.path={workdir / 'data'}",
           f"--web.listen-address=127.0.0.1:{port}"]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, cwd=workdir)
    server = PrometheusServer(f"http://127.0.0.1:{port}", port, workdir, log_path, proc)
    try:
        _wait_ready(server, 30)
    except BaseException:
        _stop(proc)
        raise
    return server


def test_compose_services_run_healthy_and_are_scraped(stack: Stack, tmp_path: Path) -> None:
    topics = stack.run_once("topics")
    assert topics.returncode == 0, topics.stderr[-3000:]
    assert {line.split()[0] for line in topics.stdout.splitlines()} == set(stack.topics.values())

    for name in TARIFFMON_SERVICES:
        stack.start(name)
    for name in TARIFFMON_SERVICES:
        def healthy(name: str = name) -> bool:
            if stack.procs[name].poll() is not None:
                raise AssertionError(f"{name} exited: {stack.log(name)}")
            return stack.healthcheck(name).returncode == 0
        wait_until(healthy, 90, f"{name} healthy by its compose healthcheck", poll_s=1.0)

    # the headline producer published the recorded headlines (offline source)
    settings = load_settings(kafka={"bootstrap_servers": stack.bootstrap}, topics=stack.topics)
    assert len(consume_all(settings, stack.topics["headlines"], 2, timeout=60)) == 2

    am_config = ROOT / "config" / "alertmanager" / "alertmanager.yml"
    with running_alertmanager(am_config, workdir=tmp_path) as am:
        prom = running_docker_prometheus(stack, am.port)
        try:
            jobs = {j["job_name"] for j in yaml.safe_load(
                (ROOT / "config/prometheus/prometheus.docker.yml").read_text())["scrape_configs"]}

            def states() -> dict[str, str]:
                return {t["labels"]["job"]: t["health"] for t in prom.targets()}
            seen = wait_until(states, 60, "every target up",
                              until=lambda s: set(s) == jobs and set(s.values()) == {"up"},
                              poll_s=1.0)
            assert seen == dict.fromkeys(jobs, "up")
            ams = prom.api("alertmanagers")["data"]["activeAlertmanagers"]
            assert [a["url"] for a in ams] == [f"http://127.0.0.1:{am.port}/api/v2/alerts"]
            # the tick producer serves metrics while its source fails, and counts it
            errors = wait_until(
                lambda: prom.value(
                    'sum(tariffmon_source_errors_total{job="tariffmon-tick-producer"})'),
                60, "tick source errors counted", until=lambda v: (v or 0) > 0)
            assert errors
        finally:
            _stop(prom.process)
    for name in TARIFFMON_SERVICES:
        assert stack.procs[name].poll() is None, f"{name} exited: {stack.log(name)}"
