"""The demo's closing hints work as printed, and a demo clears what earlier runs left."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from kafka import KafkaConsumer

from tariffmon.demo import (
    RUN_ID_FORMAT,
    Demo,
    cli_command,
    demo_data_root,
    demo_settings,
    remove_earlier_runs,
    sample_files,
)
from tariffmon.kafkaclient import admin_client, client_config, ensure_topics
from tariffmon.settings import PROJECT_ROOT, load_settings

SCRIPT = Path(sys.executable).parent / "tariffmon"
needs_script = pytest.mark.skipif(not SCRIPT.is_file(), reason="no tariffmon console script")


@needs_script
def test_cli_command_is_what_the_shell_runs(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    venv = SCRIPT.parent.parent
    monkeypatch.setenv("PATH", "/usr/bin:/bin")  # not activated
    monkeypatch.chdir(venv.parent)
    assert cli_command() == f"{venv.name}/bin/tariffmon"
    monkeypatch.chdir(tmp_path)  # elsewhere: the whole path
    assert cli_command() == str(SCRIPT)
    monkeypatch.setenv("PATH", f"{SCRIPT.parent}:/usr/bin:/bin")  # activated
    assert cli_command() == "tariffmon"


def _hints(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], Path]:
    base = load_settings(worker={"data_dir": str(tmp_path / "var" / "faust")})
    settings = demo_settings(base, "127.0.0.1:1", "20250402-120000", 39_999)
    demo = Demo(base, metrics_port=39_999, files=sample_files(PROJECT_ROOT / "data" / "sample"))
    demo.worker_log = Path(settings.worker.data_dir) / "worker.log"
    monkeypatch.setenv("PATH", "/usr/bin:/bin")  # as a user who did not activate the venv
    return demo.hints(settings), Path(settings.worker.data_dir)


def _command(hints: list[str], label: str) -> str:
    line = next(h for h in hints if h.strip().startswith(label))
    return line.split(":", 1)[1].strip()


@needs_script
@pytest.mark.parametrize("where", ["checkout", "elsewhere"])
def test_printed_commands_run_as_printed(
    where: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cwd = PROJECT_ROOT if where == "checkout" else tmp_path
    monkeypatch.chdir(cwd)
    hints, _ = _hints(tmp_path, monkeypatch)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TARIFFMON_")}
    env["PYTHONPATH"] = str(PROJECT_ROOT)
    for label in ("terminal", "offline"):
        command = _command(hints, label)
        # the command as printed, asked for its help: the program and subcommand resolve
        proc = subprocess.run(["bash", "-c", f"{command} --help"], cwd=cwd, env=env,
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, (command, proc.stderr)
        assert "usage: tariffmon" in proc.stdout
    backtest = _command(hints, "offline").split()
    files = backtest[backtest.index("backtest") + 1: backtest.index("--out")]
    assert files and all((cwd / f).is_file() and ".jsonl" in f for f in files), files
    assert not any("README" in f for f in files)


@pytest.mark.parametrize("home", ["checkout", "installed"])
def test_prometheus_hint_scrapes_only_what_the_demo_runs(
    home: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """From a checkout the alert rules are included; an installed package has none to add."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TARIFFMON_HOME", str(PROJECT_ROOT if home == "checkout" else tmp_path))
    hints, _ = _hints(tmp_path, monkeypatch)
    command = _command(hints, "Prometheus")
    config_arg = next(a for a in command.split() if a.startswith("--config.file="))
    config = tmp_path / config_arg.split("=", 1)[1]
    parsed = yaml.safe_load(config.read_text())
    targets = [t for job in parsed["scrape_configs"] for sc in job["static_configs"]
               for t in sc["targets"]]
    assert targets == ["127.0.0.1:39999"]
    assert "alerting" not in parsed  # nothing pages; the alerts show in Prometheus
    assert bool(parsed.get("rule_files")) is (home == "checkout")
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool is not installed (.ci/run installs prometheus)")
    done = subprocess.run([promtool, "check", "config", str(config)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout + done.stderr


def _join(settings: Any, topic: str, group: str) -> KafkaConsumer:
    consumer = KafkaConsumer(topic, group_id=group, enable_auto_commit=False,
                             **client_config(settings.kafka))
    for _ in range(60):  # until the group has its member (Stable)
        consumer.poll(timeout_ms=250)
        if consumer.assignment():
            return consumer
    raise AssertionError(f"{group} got no assignment")


@pytest.mark.integration
def test_earlier_runs_are_removed_unless_live_starting_or_kept(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:8]
    topic_prefix, group_prefix = f"test-{tag}.demo-", f"test-{tag}-demo-"
    now = dt.datetime.now(dt.UTC)
    young = [(now - dt.timedelta(minutes=m)).strftime(RUN_ID_FORMAT) for m in (1, 2, 3)]
    # old with no group; young and finished (Empty); live; kept; young and starting
    dead, finished, live, kept, starting = "20250101-000000", young[0], "20250103-000000", \
        "20250104-000000", young[1]
    runs = [dead, finished, live, kept, starting]
    settings = load_settings(kafka={"bootstrap_servers": kafka_bootstrap})
    topics = {f"{topic_prefix}{run}.{s}": 1 for run in runs for s in ("ticks", "reactions")}
    topics.update({f"{group_prefix}{run}-engine-changelog": 1 for run in runs})
    ensure_topics(settings, topics)
    root = tmp_path / "demo"
    for run in runs:
        (root / run).mkdir(parents=True)
        (root / run / "worker.log").write_text("x\n")
    left_group = _join(settings, f"{topic_prefix}{finished}.ticks", group_prefix + finished)
    left_group.commit()  # a worker that committed and left: the group stays, Empty
    left_group.close()
    member = _join(settings, f"{topic_prefix}{live}.ticks", group_prefix + live)
    try:
        removed = remove_earlier_runs(settings.kafka, root, keep=frozenset({kept}),
                                      topic_prefix=topic_prefix, group_prefix=group_prefix,
                                      now=now)
    finally:
        member.close()
    assert removed == sorted([dead, finished])
    admin = admin_client(settings.kafka)
    try:
        left = {t for t in admin.list_topics() if tag in t}
        assert left == {t for t in topics if any(r in t for r in (live, kept, starting))}
        admin.delete_topics(sorted(left), timeout_ms=30_000)
    finally:
        admin.close()
    assert sorted(p.name for p in root.iterdir()) == sorted([live, kept, starting])


def test_demo_data_root_is_next_to_the_worker_data(tmp_path: Path) -> None:
    base = load_settings(worker={"data_dir": str(tmp_path / "var" / "faust")})
    assert demo_data_root(base) == tmp_path / "var" / "demo"
    settings = demo_settings(base, "127.0.0.1:1", "20250402-120000", 1)
    assert Path(settings.worker.data_dir).parent == demo_data_root(base)
