"""The package runs once installed from its wheel, outside the checkout.

The wheel is built from a copy of the project's sources and installed into a fresh virtual
environment.  To keep this quick and offline-friendly, the fresh environment borrows the
dependencies of the running one (a ``.pth`` line naming its site-packages) and the wheel is
installed with ``--no-deps``; the running environment's own tariffmon (an editable install of
the checkout) is never what the fresh one imports, which the test checks.  The commands then
run in an empty working directory, so nothing can come from the checkout's ``config/``.
About 15 s; building the wheel needs the build backend (setuptools), which pip installs into
its isolated build environment from its cache or the package index.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from tariffmon.settings import PROJECT_ROOT

#: what the wheel is built from (everything pyproject.toml names)
SOURCES = ("pyproject.toml", "README.md", "tariffmon")
SAMPLE = PROJECT_ROOT / "data" / "sample"
BIN = "Scripts" if os.name == "nt" else "bin"


def _run(cmd: list[str | Path], cwd: Path, env: dict[str, str], timeout: float = 300
         ) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout, check=False)
    assert done.returncode == 0, (
        f"{' '.join(map(str, cmd))} exited {done.returncode}\n"
        f"stdout:\n{done.stdout[-3000:]}\nstderr:\n{done.stderr[-3000:]}"
    )
    return done


@pytest.fixture(scope="module")
def clean_env() -> dict[str, str]:
    """The environment without what would point Python or tariffmon at the checkout."""
    drop = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV", "PYTHONSAFEPATH")
    env = {k: v for k, v in os.environ.items()
           if k not in drop and not k.startswith("TARIFFMON_")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory, clean_env: dict[str, str]) -> Path:
    """The project's wheel, built from a copy of its sources (the checkout stays clean)."""
    src = tmp_path_factory.mktemp("wheel-src")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in SOURCES:
        path = PROJECT_ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=ignore)
        else:
            shutil.copy2(path, src / name)
    out = tmp_path_factory.mktemp("wheel-out")
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", out, src],
         cwd=src, env=clean_env, timeout=600)
    (built,) = out.glob("tariffmon-*.whl")
    return built


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory, wheel: Path, clean_env: dict[str, str]
         ) -> Path:
    """A fresh virtual environment with the wheel installed (dependencies borrowed)."""
    root = tmp_path_factory.mktemp("venv") / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", root], cwd=root.parent, env=clean_env)
    python = root / BIN / "python"
    fresh_site = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_paths()"
                                          "['purelib'])"], cwd=root, env=clean_env)
                      .stdout.strip())
    # the running environment's site-packages, after the fresh one's on sys.path; a .pth
    # line only adds the folder, so the editable install's own .pth hook there never runs
    borrowed = dict.fromkeys(sysconfig.get_paths()[k] for k in ("purelib", "platlib"))
    (fresh_site / "borrowed-dependencies.pth").write_text("\n".join(borrowed) + "\n")
    _run([python, "-m", "pip", "install", "-q", "--no-deps", "--no-index",
          "--ignore-installed", wheel], cwd=root, env=clean_env)
    return root


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """An empty working directory outside the checkout."""
    path = tmp_path / "elsewhere"
    path.mkdir()
    assert not path.resolve().is_relative_to(PROJECT_ROOT)
    return path


def test_wheel_holds_the_packages_and_their_defaults(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names}
    assert top == {"tariffmon", next(t for t in top
                                                               if t.endswith(".dist-info"))}
    assert "config" not in top and "tests" not in top
    for data in ("tariffmon/defaults/classifier.yaml", "tariffmon/defaults/kafka/pom.xml",
                 "tariffmon/defaults/kafka/log4j2.properties", "tariffmon/py.typed"):
        assert data in names


def test_installed_package_is_the_one_imported(
    venv: Path, workdir: Path, clean_env: dict[str, str]
) -> None:
    script = (
        "import json, tariffmon\n"
        "from tariffmon.settings import load_settings\n"
        "s = load_settings()\n"
        "print(json.dumps({'module': tariffmon.__file__,"
        " 'rules': str(s.classifier.rules_file), 'broker_home': str(s.local_broker.home),"
        " 'libs': str(s.local_broker.libs_dir), 'faust': str(s.worker.data_dir)}))\n"
    )
    done = _run([venv / BIN / "python", "-c", script], cwd=workdir, env=clean_env)
    found = json.loads(done.stdout)
    venv_root = venv.resolve()
    assert Path(found["module"]).resolve().is_relative_to(venv_root), found
    assert Path(found["rules"]).resolve().is_relative_to(venv_root), found
    # what tariffmon writes goes under the working directory, never into site-packages
    here = workdir.resolve()
    for key in ("broker_home", "libs", "faust"):
        assert Path(found[key]).resolve().is_relative_to(here), found


def test_installed_commands_run_outside_the_checkout(
    venv: Path, workdir: Path, clean_env: dict[str, str]
) -> None:
    tariffmon = venv / BIN / "tariffmon"
    _run([tariffmon, "--help"], cwd=workdir, env=clean_env)
    assert "worker" in _run([tariffmon, "worker", "--help"], cwd=workdir, env=clean_env).stdout

    done = _run([tariffmon, "classify", "US imposes 24% tariffs on Japan"],
                cwd=workdir, env=clean_env)
    (line,) = done.stdout.splitlines()
    assert json.loads(line)["is_tariff"] is True

    out = workdir / "backtest"
    _run([tariffmon, "backtest", SAMPLE / "ticks.jsonl.gz", SAMPLE / "headlines.jsonl",
          "--out", out, "--no-progress", "--quiet", "--no-charts"], cwd=workdir, env=clean_env)
    reactions = (out / "reactions.jsonl").read_text().splitlines()
    assert reactions
    assert all("symbol" in json.loads(r) for r in reactions)
