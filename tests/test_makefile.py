"""The Makefile: `make demo` installs the runtime only, `make lint`/`make test` the test tools.

Checked with ``make -n`` (what make would run) against a virtual environment that does not
exist yet, as on a fresh clone: nothing is installed or downloaded.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tariffmon.settings import PROJECT_ROOT


def _dry_run(target: str, venv: Path) -> list[str]:
    make = shutil.which("make")
    if make is None:
        pytest.fail("make is not installed (.ci/run installs it)")
    # run as from a shell: under `make test` (CI) the inherited MAKEFLAGS/MAKELEVEL would
    # make this a sub-make, which prints "Entering/Leaving directory" lines around its output
    env = {k: v for k, v in os.environ.items()
           if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS", "MAKEOVERRIDES")}
    done = subprocess.run([make, "--no-print-directory", "-n", target, f"VENV={venv}"],
                          cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60,
                          env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def _installs(lines: list[str]) -> list[str]:
    return [line for line in lines if "pip install" in line]


def test_demo_installs_the_runtime_without_the_test_tools(tmp_path: Path) -> None:
    lines = _dry_run("demo", tmp_path / "venv")
    installs = _installs(lines)
    assert installs, lines
    assert not any("[test]" in line for line in installs), installs
    assert lines[-1].endswith("tariffmon demo")


@pytest.mark.parametrize("target", ["lint", "test", "setup"])
def test_lint_and_test_install_the_test_tools(target: str, tmp_path: Path) -> None:
    installs = _installs(_dry_run(target, tmp_path / "venv"))
    assert any("'.[test]'" in line for line in installs), installs
