"""The benchmarks run end to end at tiny sizes (the real figures come from full runs).

The Kafka benchmarks use the session's real broker (``--bootstrap``), not one of their own.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tariffmon.settings import PROJECT_ROOT

BENCH_DIR = PROJECT_ROOT / "bench"
BENCH = BENCH_DIR / "bench_core.py"


def run_bench(script: str, out: Path, *args: str, timeout: float = 120) -> dict[str, Any]:
    """Run one benchmark script; its printed JSON must equal the file it wrote."""
    proc = subprocess.run(
        [sys.executable, str(BENCH_DIR / script), "--smoke", "--out", str(out), *args],
        capture_output=True, text=True, timeout=timeout, cwd=PROJECT_ROOT, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    result: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == result
    assert result["smoke"] is True
    return result


def test_bench_core_smoke(tmp_path: Path) -> None:
    result = run_bench("bench_core.py", tmp_path / "core.json")
    assert result["ticks"] == 3 * 6 * 3_600
    core = result["core"]
    assert core["ticks_per_s"] > 0 and core["reactions"] > 0 and core["alerts"] > 0
    assert core["tariff_headlines"] == result["headlines"] == 20
    assert core["rejected"] == 0
    # the file-based runner gives the same answers as the core fed with arrays
    files = result["files"]
    assert files["invalid"] == 0
    assert (files["reactions"], files["alerts"]) == (core["reactions"], core["alerts"])
    assert files["digest"] == core["digest"]
    # the one-tick-at-a-time baseline measures the same thing, only slower per tick
    base = result["baseline_one_tick_at_a_time"]
    assert base["ticks"] > 0 and base["ticks_per_s"] > 0
    assert result["ratio_core_vs_one_tick_at_a_time"] > 0
    clf = result["classifier"]
    assert clf["headlines"] > 20 and clf["headlines_per_s"] > 0
    assert clf["baseline_regex_per_s"] > 0 and clf["ratio_vs_one_regex"] > 0


@pytest.mark.integration
def test_bench_e2e_smoke(tmp_path: Path, kafka_bootstrap: str) -> None:
    result = run_bench("bench_e2e.py", tmp_path / "e2e.json", "--bootstrap", kafka_bootstrap)
    w = result["worker"]
    assert w["reactions_expected"] > 0
    assert w["reactions_consumed"] == w["reactions_expected"]
    assert w["reactions_differing_from_backtest"] == 0
    assert w["ticks_counted"] == result["ticks"] == result["raw_drain"]["records"]
    assert w["ticks_per_s"] > 0 and result["ratio_worker_vs_raw_drain"] > 0


@pytest.mark.integration
def test_bench_producer_smoke(tmp_path: Path, kafka_bootstrap: str) -> None:
    result = run_bench("bench_producer.py", tmp_path / "producer.json",
                       "--bootstrap", kafka_bootstrap)
    assert result["replay"]["in_topic"] == result["kcat"]["in_topic"] == result["messages"]
    assert result["ratio_replay_vs_kcat"] > 0


@pytest.mark.integration
def test_bench_replay_smoke(tmp_path: Path, kafka_bootstrap: str) -> None:
    result = run_bench("bench_replay.py", tmp_path / "replay.json",
                       "--bootstrap", kafka_bootstrap, timeout=300)
    rows = ["replay", "kcat"] + (
        ["confluent_same_reader", "confluent_raw"] if result["confluent_kafka"] else [])
    assert all(result[r]["in_topic"] == result["messages"] for r in rows)
    assert result["baseline"] == ("confluent_same_reader" if result["confluent_kafka"]
                                  else "kcat")
    assert result["ratio_replay_vs_baseline"] > 0
    assert result["paced"]["messages"] > 0 and result["paced"]["achieved_speed"] > 0


@pytest.mark.integration
def test_bench_latency_smoke(tmp_path: Path, kafka_bootstrap: str) -> None:
    result = run_bench("bench_latency.py", tmp_path / "latency.json",
                       "--bootstrap", kafka_bootstrap)
    assert result["reactions"] > 0 and result["reactions_without_closing_tick"] == 0
    lat = result["tick_send_to_reaction"]
    assert lat["count"] == result["reactions"]
    assert 0 < lat["p50_ms"] <= lat["p99_ms"] <= lat["max_ms"]
    first = result["headline_ack_to_first_reaction"]
    assert first["count"] == 5 and 0 < first["p50_ms"] <= first["max_ms"]
    assert result["late_headline_reactions"] >= 5


@pytest.mark.integration
def test_bench_memory_smoke(tmp_path: Path, kafka_bootstrap: str) -> None:
    result = run_bench("bench_memory.py", tmp_path / "memory.json",
                       "--bootstrap", kafka_bootstrap)
    assert result["ticks"] == 10 * round(result["hours"] * 3_600)
    assert 0 < result["final_rss_mib"] <= result["peak_rss_mib"]
    assert result["samples"]
