"""docker-compose.yml and the Dockerfile, checked for structure (no Docker engine runs here)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tariffmon.cli.main import build_parser
from tariffmon.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"

SERVICES = {
    "kafka", "topics", "worker", "tick-producer", "headline-producer", "prometheus",
    "alertmanager", "grafana",
}
TARIFFMON_SERVICES = {"topics", "worker", "tick-producer", "headline-producer"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    result: dict[str, dict[str, Any]] = compose["services"]
    return result


def host_ports(service: dict[str, Any]) -> dict[int, int]:
    """Container port -> host port of ``"127.0.0.1:HOST:CONTAINER"`` mappings."""
    out = {}
    for spec in service.get("ports", []):
        ip, host, container = str(spec).split(":")
        assert ip == "127.0.0.1", f"{spec}: published ports bind to loopback only"
        out[int(container)] = int(host)
    return out


def test_every_service_is_there(services: dict[str, dict[str, Any]]) -> None:
    assert set(services) == SERVICES


def test_images_are_pinned(services: dict[str, dict[str, Any]]) -> None:
    assert services["kafka"]["image"] == "apache/kafka:4.1.1"
    for name in ("prometheus", "alertmanager", "grafana"):
        image = services[name]["image"]
        assert re.fullmatch(r"[a-z/]+:v?\d+\.\d+\.\d+", image), image
    for name in TARIFFMON_SERVICES:
        assert services[name]["image"] == "tariffmon:latest"
        assert services[name]["build"] == "."


def test_kafka_is_a_single_kraft_node(services: dict[str, dict[str, Any]]) -> None:
    env = services["kafka"]["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == "1@kafka:9093"
    assert "PLAINTEXT://kafka:9092" in env["KAFKA_ADVERTISED_LISTENERS"]
    assert env["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"] == "1"


def test_depends_on_targets_exist_and_order_the_start(
    services: dict[str, dict[str, Any]]
) -> None:
    for name, service in services.items():
        for dep, cond in service.get("depends_on", {}).items():
            assert dep in services, f"{name} depends on unknown {dep}"
            assert cond["condition"] in {
                "service_started", "service_healthy", "service_completed_successfully"
            }
            if cond["condition"] == "service_healthy":
                assert "healthcheck" in services[dep], f"{dep} has no healthcheck"
    assert services["topics"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    for name in ("worker", "tick-producer", "headline-producer"):
        assert services[name]["depends_on"]["topics"]["condition"] == (
            "service_completed_successfully"
        )
    assert services["grafana"]["depends_on"]["prometheus"]["condition"] == "service_healthy"
    assert services["topics"]["restart"] == "no"


def test_long_running_services_have_health_checks(services: dict[str, dict[str, Any]]) -> None:
    for name in SERVICES - {"topics"}:
        check = services[name].get("healthcheck")
        assert check and check["test"], f"{name} has no healthcheck"


def test_tariffmon_commands_exist_in_the_cli(services: dict[str, dict[str, Any]]) -> None:
    parser = build_parser()
    for name in TARIFFMON_SERVICES - {"topics"}:
        command = services[name]["command"]
        assert command[0] == "tariffmon"
        args = parser.parse_args(command[1:])  # raises SystemExit on an unknown command
        assert callable(args.func)


def test_topic_creation_uses_the_project_api(services: dict[str, dict[str, Any]]) -> None:
    script = services["topics"]["command"][-1]
    compile(script, "topics", "exec")
    from tariffmon import kafkaclient

    for name in re.findall(r"import ([\w, ]+)", script)[0].split(","):
        assert hasattr(kafkaclient, name.strip()), name


def test_settings_come_from_tariffmon_env(services: dict[str, dict[str, Any]]) -> None:
    settings = load_settings()
    for name in TARIFFMON_SERVICES:
        env = services[name]["environment"]
        assert env["TARIFFMON_KAFKA__BOOTSTRAP_SERVERS"] == "kafka:9092"
        assert env["TARIFFMON_METRICS__HOST"] == "0.0.0.0"
        assert all(key.startswith("TARIFFMON_") for key in env)
    worker_port = int(services["worker"]["environment"]["TARIFFMON_METRICS__WORKER_PORT"])
    producer_port = int(services["tick-producer"]["environment"]
                        ["TARIFFMON_METRICS__PRODUCER_PORT"])
    assert worker_port == settings.metrics.worker_port
    assert producer_port == settings.metrics.producer_port
    assert worker_port in host_ports(services["worker"])
    assert producer_port in host_ports(services["tick-producer"])
    assert producer_port in host_ports(services["headline-producer"])


def test_prometheus_scrapes_the_compose_services(services: dict[str, dict[str, Any]]) -> None:
    config = yaml.safe_load((ROOT / "config/prometheus/prometheus.docker.yml").read_text())
    for job in config["scrape_configs"]:
        for target in job["static_configs"][0]["targets"]:
            host, port = target.split(":")
            if host == "localhost":
                continue
            assert host in services, target
            env = services[host].get("environment", {})
            ports = {env.get("TARIFFMON_METRICS__WORKER_PORT"),
                     env.get("TARIFFMON_METRICS__PRODUCER_PORT")}
            if host in TARIFFMON_SERVICES:
                assert port in ports, target
    (am,) = config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert am.split(":")[0] in services


def test_bind_mounted_files_exist(services: dict[str, dict[str, Any]]) -> None:
    mounted = 0
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith((".", "/")):
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"
                mounted += 1
    assert mounted >= 5


def test_named_volumes_are_declared(compose: dict[str, Any],
                                    services: dict[str, dict[str, Any]]) -> None:
    for service in services.values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if not source.startswith((".", "/")):
                assert source in compose["volumes"], source


def test_grafana_is_provisioned(services: dict[str, dict[str, Any]]) -> None:
    grafana = services["grafana"]
    assert grafana["environment"]["PROMETHEUS_URL"] == "http://prometheus:9090"
    mounts = dict(v.split(":")[:2] for v in grafana["volumes"])
    assert mounts["./config/grafana/provisioning"] == "/etc/grafana/provisioning"
    dashboards_dir = mounts["./config/grafana/dashboards"]
    provider = yaml.safe_load(
        (ROOT / "config/grafana/provisioning/dashboards/dashboards.yml").read_text()
    )["providers"][0]
    assert provider["options"]["path"] == dashboards_dir
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home.startswith(dashboards_dir)
    assert (ROOT / "config/grafana/dashboards" / Path(home).name).is_file()


def test_dockerfile_builds_from_python_311_slim_and_copies_existing_files() -> None:
    lines = [ln.strip() for ln in DOCKERFILE.read_text().splitlines()]
    assert "FROM python:3.11-slim" in lines
    assert any(ln.startswith("RUN pip install -c constraints.txt .") for ln in lines)
    for line in lines:
        if line.startswith("COPY "):
            *sources, _dest = line.split()[1:]
            for source in sources:
                assert (ROOT / source).exists(), f"Dockerfile copies missing {source}"


def test_constraints_pin_the_runtime_closure_as_installed_and_ci_uses_them() -> None:
    """constraints.txt = the versions this environment runs the tests with, every runtime
    dependency (transitively) pinned; the Dockerfile and the Makefile install with it."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "freeze_constraints", ROOT / "scripts" / "freeze_constraints.py")
    assert spec is not None and spec.loader is not None
    freeze = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(freeze)
    import tomllib

    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    wanted = freeze.closure(deps)
    pinned = dict(
        line.split("==", 1) for line in (ROOT / "constraints.txt").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert pinned == wanted, "constraints.txt is stale: run scripts/freeze_constraints.py"
    assert "-c constraints.txt" in (ROOT / "Makefile").read_text()
