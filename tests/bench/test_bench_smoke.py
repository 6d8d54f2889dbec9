"""The core benchmark runs end to end at tiny sizes (the real figures come from a full run)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tariffmon.settings import PROJECT_ROOT

BENCH = PROJECT_ROOT / "bench" / "bench_core.py"


def test_bench_core_smoke(tmp_path: Path) -> None:
    out = tmp_path / "core.json"
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--smoke", "--out", str(out)],
        capture_output=True, text=True, timeout=120, cwd=PROJECT_ROOT, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(out.read_text(encoding="utf-8"))
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == result
    assert result["smoke"] is True and result["ticks"] == 3 * 6 * 3_600
    core = result["core"]
    assert core["ticks_per_s"] > 0 and core["reactions"] > 0 and core["alerts"] > 0
    assert core["tariff_headlines"] == result["headlines"] == 20
    assert core["rejected"] == 0
    # the file-based runner gives the same answers as the core fed with arrays
    files = result["files"]
    assert files["invalid"] == 0
    assert (files["reactions"], files["alerts"]) == (core["reactions"], core["alerts"])
    assert files["digest"] == core["digest"]
