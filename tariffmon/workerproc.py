"""Run ``tariffmon worker`` as a child process: the demo, the benchmarks and the tests do.

The child gets the parent's settings through ``TARIFFMON_*`` variables
(:meth:`~tariffmon.settings.Settings.to_env`), secrets included, never on its command line.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from tariffmon.errors import TariffmonError
from tariffmon.settings import Settings


class WorkerProcessError(TariffmonError):
    """The worker child process exited or did not come up."""


def child_env(settings: Settings, *, metrics_port: int | None = None) -> dict[str, str]:
    """This process's environment with ``settings`` as TARIFFMON_* variables.

    ``metrics_port`` overrides ``metrics.worker_port`` (0: let the OS pick, e.g. for a child
    that serves no metrics), and the metrics bind to loopback.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("TARIFFMON_")}
    env.update(settings.to_env())
    if metrics_port is not None:
        env["TARIFFMON_METRICS__WORKER_PORT"] = str(metrics_port)
        env["TARIFFMON_METRICS__HOST"] = "127.0.0.1"
    return env


class WorkerProcess:
    """A ``tariffmon worker`` child process with its own metrics port and log file."""

    def __init__(self, settings: Settings, log_path: Path, metrics_port: int,
                 *, loglevel: str = "INFO", wrap: Sequence[str] = ()) -> None:
        self.settings = settings
        self.metrics_port = metrics_port
        self.log_path = log_path
        self.loglevel = loglevel
        #: a command the worker runs under, e.g. a profiler: ``[..., "--"]``
        self.wrap = list(wrap)
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def metrics_url(self) -> str:
        """Where the worker serves its Prometheus metrics."""
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    @property
    def pid(self) -> int | None:
        """The child's process id, once started."""
        return None if self.proc is None else self.proc.pid

    def start(self, timeout: float = 60.0) -> WorkerProcess:
        """Start the worker and wait until its metrics endpoint answers."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [*self.wrap, sys.executable, "-m", "tariffmon.cli.main", "worker",
                 "--loglevel", self.loglevel],
                env=child_env(self.settings, metrics_port=self.metrics_port),
                stdout=log, stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise WorkerProcessError(
                    f"worker exited with {self.proc.returncode}: {self.log_tail()}"
                )
            try:
                urllib.request.urlopen(self.metrics_url, timeout=1).close()
                return self
            except OSError:
                time.sleep(0.2)
        self.stop()  # do not leave a half-started worker holding its group and port
        raise WorkerProcessError(
            f"worker metrics did not answer on {self.metrics_url} in {timeout:g}s: "
            f"{self.log_tail()}"
        )

    def running(self) -> bool:
        """Whether the child is alive."""
        return self.proc is not None and self.proc.poll() is None

    def metrics_text(self) -> str:
        """The current /metrics page."""
        with urllib.request.urlopen(self.metrics_url, timeout=5) as resp:
            body: bytes = resp.read()
        return body.decode()

    def kill(self) -> None:
        """SIGKILL: no commit, no flush, no goodbye."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM and wait; SIGKILL if it does not stop in time."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        return self.proc.returncode

    def log_tail(self, chars: int = 3_000) -> str:
        """The end of the worker's log."""
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def __enter__(self) -> WorkerProcess:
        return self.start()

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
