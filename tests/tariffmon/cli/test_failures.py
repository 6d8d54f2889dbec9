"""Every user-facing failure of the command line: one line naming the cause and what to change.

The commands run as subprocesses, as a user runs them: what is checked is what reaches the
terminal (the last line of stderr, no traceback unless asked for) and the exit status.
"""

from __future__ import annotations

import errno
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tariffmon.cli.failures import EXIT_UNEXPECTED, EXIT_USAGE, describe
from tariffmon.errors import ConfigError
from tariffmon.recorded import RecordedEvent, write_events
from tariffmon.settings import PROJECT_ROOT
from tests.kafka_helpers import free_ports

SAMPLE = PROJECT_ROOT / "data" / "sample"


def run_cli(argv: list[str], cwd: Path, env: dict[str, str] | None = None,
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``tariffmon ARGV`` in ``cwd`` with this checkout first on the path."""
    full = dict(os.environ)
    full["PYTHONPATH"] = os.pathsep.join(
        [str(PROJECT_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    full.update(env or {})
    return subprocess.run([sys.executable, "-m", "tariffmon.cli.main", *argv], cwd=cwd,
                          env=full, capture_output=True, text=True, timeout=timeout)


def failure_line(proc: subprocess.CompletedProcess[str], command: str) -> str:
    """The one line a failed command printed, checked to be all there is of it."""
    assert proc.returncode == EXIT_USAGE, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines, "no message"
    last = lines[-1]
    assert last.startswith(f"tariffmon {command}: error: "), proc.stderr
    return last


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A loopback port some other program listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


@pytest.fixture
def nowhere() -> str:
    """A bootstrap address where no broker listens."""
    return f"127.0.0.1:{free_ports(1)[0]}"


def _headline_file(tmp_path: Path) -> Path:
    path = tmp_path / "h.jsonl"
    path.write_text('{"title": "US imposes 24% tariffs on Japan"}\n')
    return path


COMMANDS = {
    "worker": (["worker"], "TARIFFMON_METRICS__WORKER_PORT", "metrics.worker_port"),
    "demo": (["demo", "--exit-when-done"], "TARIFFMON_METRICS__WORKER_PORT",
             "metrics.worker_port"),
    "ticks": (["produce", "ticks", "--once"], "TARIFFMON_METRICS__PRODUCER_PORT",
              "metrics.producer_port"),
    "headlines": (["produce", "headlines", "--once"], "TARIFFMON_METRICS__PRODUCER_PORT",
                  "metrics.producer_port"),
}


@pytest.mark.parametrize("how", ["option", "variable"])
@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_a_taken_metrics_port_fails_at_once_naming_the_setting_and_option(
    name: str, how: str, taken_port: int, nowhere: str, tmp_path: Path
) -> None:
    """Before the broker is asked (none answers here: a later check would hang and time out)."""
    argv, variable, setting = COMMANDS[name]
    argv = [*argv, *([str(_headline_file(tmp_path))] if name == "headlines" else [])]
    env = {"TARIFFMON_KAFKA__BOOTSTRAP_SERVERS": nowhere}
    if how == "option":
        argv = [*argv, "--metrics-port", str(taken_port)]
    else:
        env[variable] = str(taken_port)
    if name == "demo":
        argv = [*argv, "--bootstrap", nowhere, "--files", str(_headline_file(tmp_path))]
    proc = run_cli(argv, tmp_path, env, timeout=25)
    line = failure_line(proc, argv[0])
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert f"127.0.0.1:{taken_port} is already in use" in line
    assert setting in line and variable in line and "--metrics-port" in line


def test_debug_adds_the_traceback(taken_port: int, tmp_path: Path) -> None:
    for flags in (["--debug", "worker"], ["worker", "--debug"], ["-v", "worker"]):
        proc = run_cli([*flags, "--metrics-port", str(taken_port)], tmp_path, timeout=25)
        assert proc.returncode == EXIT_USAGE
        assert "Traceback" in proc.stderr
        assert proc.stderr.strip().splitlines()[-1].startswith("tariffmon worker: error: ")


@pytest.mark.parametrize("seed", ["-1", "-5", str(-(2**40))])
def test_a_negative_seed_is_a_usage_error(seed: str, tmp_path: Path) -> None:
    out = tmp_path / "sample"
    line = failure_line(run_cli(["sample", "--seed", seed, "--out", str(out)], tmp_path),
                        "sample")
    assert "--seed" in line and seed in line
    assert not out.exists()


@pytest.mark.parametrize("depth", [0, 1, 2])
def test_sample_out_on_an_existing_file_fails_naming_it(depth: int, tmp_path: Path) -> None:
    blocker = tmp_path / "taken"
    blocker.write_text("mine\n")
    out = blocker.joinpath(*["sub"] * depth)
    line = failure_line(run_cli(["sample", "--out", str(out)], tmp_path), "sample")
    assert "--out" in line and str(blocker) in line and "existing file" in line
    assert blocker.read_text() == "mine\n"


@pytest.mark.parametrize("depth", [0, 2])
def test_backtest_out_on_an_existing_file_fails_before_the_run(
    depth: int, tmp_path: Path
) -> None:
    """Checked first: the input here cannot be read, and it is --out that the line names."""
    blocker = tmp_path / "taken"
    blocker.write_text("mine\n")
    bad_input = tmp_path / "ticks.jsonl.gz"
    bad_input.write_bytes(b"not gzip at all\n")
    out = blocker.joinpath(*["sub"] * depth)
    line = failure_line(run_cli(["backtest", str(bad_input), "--out", str(out)], tmp_path),
                        "backtest")
    assert "--out" in line and str(blocker) in line
    assert blocker.read_text() == "mine\n"


def _ticks(n: int) -> list[RecordedEvent]:
    t0 = 1_743_552_000_000
    return [RecordedEvent("ticks", "USDJPY", t0 + i * 1_000, {
        "v": 1, "symbol": "USDJPY", "ts": t0 + i * 1_000, "price": 149.0 + (i % 50) / 100,
        "source": "test", "kind": "quote"}) for i in range(n)]


@pytest.mark.parametrize("keep", [0.1, 0.5, 0.97])
def test_backtest_over_a_truncated_gzip_names_the_file_and_where_it_stopped(
    keep: float, tmp_path: Path
) -> None:
    whole = tmp_path / "ticks.jsonl.gz"
    write_events(whole, _ticks(30_000))
    data = whole.read_bytes()
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(data[: int(len(data) * keep)])
    out = tmp_path / "out"
    proc = run_cli(["backtest", str(cut), str(SAMPLE / "headlines.jsonl"), "--out", str(out),
                    "--no-charts", "--quiet"], tmp_path)
    line = failure_line(proc, "backtest")
    assert f"{cut}: reading stopped at line " in line and "truncated" in line
    stopped = int(line.split("reading stopped at line ")[1].split()[0])
    assert 1 <= stopped <= 30_000
    # what was read is reported, and said to be partial, on the terminal and in the summary
    assert "partial" in proc.stdout
    assert "INCOMPLETE INPUT" in (out / "summary.txt").read_text()


def test_backtest_over_a_plain_file_named_gz_fails(tmp_path: Path) -> None:
    fake = tmp_path / "headlines.jsonl.gz"
    fake.write_bytes((SAMPLE / "headlines.jsonl").read_bytes())
    proc = run_cli(["backtest", str(fake), "--out", str(tmp_path / "out"), "--no-charts",
                    "--quiet"], tmp_path)
    line = failure_line(proc, "backtest")
    assert f"{fake}: reading stopped at line 1" in line and "not a gzip file" in line


@pytest.mark.slow
def test_record_with_the_broker_unreachable_names_the_setting(
    nowhere: str, tmp_path: Path
) -> None:
    proc = run_cli(["record", "--out", str(tmp_path / "r.jsonl")], tmp_path,
                   {"TARIFFMON_KAFKA__BOOTSTRAP_SERVERS": nowhere}, timeout=120)
    line = failure_line(proc, "record")
    assert nowhere in line and "kafka.bootstrap_servers" in line
    assert "TARIFFMON_KAFKA__BOOTSTRAP_SERVERS" in line
    assert not (tmp_path / "r.jsonl").exists()


def test_describe_a_bind_failure_names_the_port_settings() -> None:
    with socket.socket() as a, socket.socket() as b:
        a.bind(("127.0.0.1", 0))
        a.listen()
        with pytest.raises(OSError) as info:
            b.bind(a.getsockname())
    assert info.value.errno == errno.EADDRINUSE
    for exc in (info.value, _raised_from(RuntimeError("server failed"), info.value)):
        line, code = describe(exc)
        assert code == EXIT_USAGE
        assert "already in use" in line and "--metrics-port" in line
        assert "metrics.worker_port" in line and "metrics.producer_port" in line


def test_describe_a_kafka_error_names_the_bootstrap_setting() -> None:
    from kafka.errors import KafkaConnectionError, KafkaTimeoutError

    for exc in (KafkaTimeoutError("Unable to bootstrap"), KafkaConnectionError()):
        line, code = describe(exc)
        assert code == EXIT_USAGE
        assert "kafka.bootstrap_servers" in line and "TARIFFMON_KAFKA__BOOTSTRAP_SERVERS" in line
        assert type(exc).__name__ in line or str(exc) in line


def test_describe_keeps_the_package_errors_and_flags_the_unforeseen() -> None:
    line, code = describe(ConfigError("--out", "is a file\nreally"))
    assert (line, code) == ("option --out: is a file really", EXIT_USAGE)
    missing = FileNotFoundError(errno.ENOENT, "No such file or directory", "/no/such")
    assert describe(missing) == ("No such file or directory: /no/such", EXIT_USAGE)
    line, code = describe(ZeroDivisionError("division by zero"))
    assert code == EXIT_UNEXPECTED
    assert line.startswith("unexpected ZeroDivisionError: division by zero") and "--debug" in line


def _raised_from(outer: BaseException, cause: BaseException) -> BaseException:
    outer.__cause__ = cause
    return outer


def _producer_env(settings: Any) -> dict[str, str]:
    env = {"TARIFFMON_KAFKA__BOOTSTRAP_SERVERS": settings.kafka.bootstrap_servers,
           "TARIFFMON_METRICS__ENABLED": "false",
           # only the sources each test names: the default feeds would go to the internet
           "TARIFFMON_PRODUCER__FEEDS": "[]"}
    for stream, topic in settings.topics.all_topics().items():
        env[f"TARIFFMON_TOPICS__{stream.upper()}"] = topic
    return env


@pytest.mark.integration
@pytest.mark.parametrize("broken", [1, 2, 3])
def test_headlines_once_fails_when_every_source_failed(
    broken: int, make_settings: Any, tmp_path: Path
) -> None:
    missing = [str(tmp_path / f"gone{i}.jsonl") for i in range(broken)]
    # a feed on a closed loopback port fails too (connection refused), no network needed
    feed = f"local=http://127.0.0.1:{free_ports(1)[0]}/rss"
    proc = run_cli(["produce", "headlines", "--once", *missing, feed], tmp_path,
                   _producer_env(make_settings()))
    line = failure_line(proc, "produce")
    assert "every headline source failed" in line
    assert all(Path(m).stem in line for m in missing) and "local" in line


@pytest.mark.integration
def test_headlines_once_succeeds_when_one_source_worked(
    make_settings: Any, tmp_path: Path
) -> None:
    proc = run_cli(["produce", "headlines", "--once", str(tmp_path / "gone.jsonl"),
                    str(_headline_file(tmp_path))], tmp_path, _producer_env(make_settings()))
    assert proc.returncode == 0, proc.stderr
    assert "published 1 headlines; failed sources: gone" in proc.stdout
