"""``tariffmon demo`` end to end: worker, sample replay, live reactions equal to the backtest."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tariffmon.settings import load_settings
from tariffmon.workerproc import child_env
from tests.kafka_helpers import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_demo_prints_every_reaction_and_they_equal_the_backtest(kafka_bootstrap: str) -> None:
    env = child_env(load_settings(kafka={"bootstrap_servers": kafka_bootstrap}))
    proc = subprocess.run(
        [sys.executable, "-m", "tariffmon.cli.main", "demo", "--exit-when-done",
         "--bootstrap", kafka_bootstrap, "--metrics-port", str(free_port())],
        env=env, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    summary = next(line for line in out.splitlines() if "reactions measured live" in line)
    live, same, offline = (int(w) for w in summary.replace(";", " ").split() if w.isdigit())
    assert live == same == offline > 100, summary
    assert " SIG " in out and "GAP" in out
    assert "tariffmon watch" in out and "stopping the worker" in out
