"""Every command that needs the cluster fails fast and quietly when nothing listens.

Each command runs against a closed loopback port: it must exit 2 within the connect timeout
(plus the interpreter's start-up), print a last line naming the address and the bootstrap
setting, and show each client library message at most once, nothing below WARNING.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from tariffmon.settings import PROJECT_ROOT, KafkaSettings
from tests.kafka_helpers import free_port

CONNECT_TIMEOUT_S = 4.0
#: from the first connection attempt to the exit: the wait, and the error's way out
EXIT_SLACK_S = 5.0
#: the whole run, the start-up and imports of four interpreters at once included, on a busy
#: two-core machine (idle, a command starts in about a second); it used to take 61-72 s
TOTAL_BOUND_S = 40.0
COMMANDS = {
    "worker": ["worker"],
    "publish-headline": ["publish-headline", "US and Japan agree on tariffs"],
    "demo": ["demo", "--exit-when-done"],
    "replay": ["replay", "--no-progress"],
}


def test_the_default_connect_timeout_leaves_room_within_fifteen_seconds() -> None:
    assert KafkaSettings().connect_timeout_s <= 10


def test_commands_fail_within_the_connect_timeout_with_one_clear_line(tmp_path: Path) -> None:
    port = free_port()
    env = dict(os.environ)
    env.update({
        "TARIFFMON_KAFKA__BOOTSTRAP_SERVERS": f"127.0.0.1:{port}",
        "TARIFFMON_KAFKA__CONNECT_TIMEOUT_S": str(CONNECT_TIMEOUT_S),
        "TARIFFMON_METRICS__ENABLED": "false",
        "TARIFFMON_WORKER__DATA_DIR": str(tmp_path / "worker"),
    })
    recording = tmp_path / "one.jsonl"
    recording.write_text('{"stream":"ticks","key":"USDJPY","ts":1743552000000,"value":'
                         '{"kind":"quote","price":149.5,"source":"t","symbol":"USDJPY",'
                         '"ts":1743552000000,"v":1}}\n')
    argv = {name: args + ([str(recording)] if name == "replay" else [])
            for name, args in COMMANDS.items()}
    # all at once: the bound is per command, and the machine is shared
    started = time.monotonic()
    procs = {name: subprocess.Popen(
        [sys.executable, "-m", "tariffmon.cli.main", *args], env=env, cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for name, args in argv.items()}
    ended: dict[str, float] = {}
    outputs: dict[str, str] = {}
    try:
        deadline = started + 120
        while len(ended) < len(procs) and time.monotonic() < deadline:
            for name, proc in procs.items():
                if name not in ended and proc.poll() is not None:
                    ended[name] = time.time()
            time.sleep(0.05)
        for name, proc in procs.items():
            outputs[name] = proc.communicate(timeout=10)[0]
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
    wall_start = time.time() - (time.monotonic() - started)
    problems = []
    for name, proc in procs.items():
        lines = [line for line in outputs[name].splitlines() if line.strip()]
        last = lines[-1] if lines else ""
        client = [line for line in lines
                  if any(f" {lib}." in line for lib in ("kafka", "aiokafka", "faust", "mode"))]
        repeats = {k: n for k, n in Counter(line.split(" ", 2)[-1] for line in client).items()
                   if n > 1}
        if proc.returncode != 2:
            problems.append(f"{name}: exit {proc.returncode}")
        if ended[name] - wall_start > TOTAL_BOUND_S:
            problems.append(f"{name}: took {ended[name] - wall_start:.1f} s")
        if client:
            # the log's own clock: from the first attempt to connect to the exit
            first = dt.datetime.strptime(" ".join(client[0].split(" ", 2)[:2]),
                                         "%Y-%m-%d %H:%M:%S,%f").timestamp()
            if ended[name] - first > CONNECT_TIMEOUT_S + EXIT_SLACK_S:
                problems.append(f"{name}: waited {ended[name] - first:.1f} s")
        else:
            problems.append(f"{name}: no client log at all: did it try to connect?")
        if f"127.0.0.1:{port}" not in last or "kafka.bootstrap_servers" not in last:
            problems.append(f"{name}: last line {last!r}")
        if len(lines) > 10 or repeats:
            problems.append(f"{name}: {len(lines)} lines, repeated {repeats}")
        if any(" INFO " in line or " DEBUG " in line for line in client):
            problems.append(f"{name}: client logs below WARNING")
    assert not problems, "\n".join(problems) + "\n" + "\n".join(
        f"--- {n}\n{o}" for n, o in outputs.items())


@pytest.mark.parametrize("timeout_s", [1.0, 3.0])
def test_the_wait_follows_the_setting(tmp_path: Path, timeout_s: float) -> None:
    env = dict(os.environ)
    env.update({"TARIFFMON_KAFKA__BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}",
                "TARIFFMON_KAFKA__CONNECT_TIMEOUT_S": str(timeout_s)})
    t0 = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "tariffmon.cli.main", "publish-headline", "Tariff talks"],
        env=env, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120, check=False)
    took = time.monotonic() - t0
    assert done.returncode == 2, done.stderr
    assert f"within {timeout_s:g} s" in done.stderr.splitlines()[-1]
    assert timeout_s <= took < TOTAL_BOUND_S
