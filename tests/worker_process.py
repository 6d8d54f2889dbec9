"""Run ``tariffmon worker`` as a real subprocess for integration tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import TracebackType

from tariffmon.settings import Settings
from tests.kafka_helpers import free_port


def settings_env(settings: Settings, metrics_port: int) -> dict[str, str]:
    """TARIFFMON_* variables that make a child process load the same settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TARIFFMON_")}
    env["TARIFFMON_KAFKA__BOOTSTRAP_SERVERS"] = settings.kafka.bootstrap_servers
    for stream, topic in settings.topics.all_topics().items():
        env[f"TARIFFMON_TOPICS__{stream.upper()}"] = topic
    env["TARIFFMON_TOPICS__SYMBOL_PARTITIONS"] = str(settings.topics.symbol_partitions)
    env["TARIFFMON_TOPICS__HEADLINE_PARTITIONS"] = str(settings.topics.headline_partitions)
    env["TARIFFMON_TOPICS__OUTPUT_PARTITIONS"] = str(settings.topics.output_partitions)
    env["TARIFFMON_WORKER__APP_ID"] = settings.worker.app_id
    env["TARIFFMON_WORKER__DATA_DIR"] = str(settings.worker.data_dir)
    env["TARIFFMON_WORKER__COMMIT_INTERVAL_S"] = str(settings.worker.commit_interval_s)
    env["TARIFFMON_WORKER__SESSION_TIMEOUT_S"] = str(settings.worker.session_timeout_s)
    env["TARIFFMON_METRICS__HOST"] = "127.0.0.1"
    env["TARIFFMON_METRICS__WORKER_PORT"] = str(metrics_port)
    env["TARIFFMON_ENGINE__LATENESS_S"] = str(settings.engine.lateness_s)
    env.update(security_env(settings))
    return env


def security_env(settings: Settings) -> dict[str, str]:
    """The TARIFFMON_KAFKA__* security variables of ``settings`` (none for PLAINTEXT).

    The password travels in the environment, as in production: never on a command line.
    """
    kafka = settings.kafka
    env: dict[str, str] = {}
    if kafka.security_protocol == "PLAINTEXT":
        return env
    env["TARIFFMON_KAFKA__SECURITY_PROTOCOL"] = kafka.security_protocol
    if kafka.sasl_mechanism is not None:
        env["TARIFFMON_KAFKA__SASL_MECHANISM"] = kafka.sasl_mechanism
    if kafka.sasl_username is not None:
        env["TARIFFMON_KAFKA__SASL_USERNAME"] = kafka.sasl_username
    if kafka.sasl_password is not None:
        env["TARIFFMON_KAFKA__SASL_PASSWORD"] = kafka.sasl_password.get_secret_value()
    for name in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
        path = getattr(kafka, name)
        if path is not None:
            env[f"TARIFFMON_KAFKA__{name.upper()}"] = str(path)
    return env


class WorkerProcess:
    """A ``tariffmon worker`` child process with its own metrics port and log file."""

    def __init__(self, settings: Settings, log_path: Path, metrics_port: int | None = None
                 ) -> None:
        self.settings = settings
        self.metrics_port = metrics_port or free_port()
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def metrics_url(self) -> str:
        """Where the worker serves its Prometheus metrics."""
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    def start(self, timeout: float = 60.0) -> WorkerProcess:
        """Start the worker and wait until its metrics endpoint answers."""
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tariffmon.cli.main", "worker", "--loglevel", "INFO"],
            env=settings_env(self.settings, self.metrics_port),
            stdout=log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited with {self.proc.returncode}: "
                                   f"{self.log_tail()}")
            try:
                urllib.request.urlopen(self.metrics_url, timeout=1).read()
                return self
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"worker metrics did not answer in {timeout}s: {self.log_tail()}")

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
