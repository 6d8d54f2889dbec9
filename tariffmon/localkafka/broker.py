"""A single-node Apache Kafka broker (KRaft, broker + controller) run by the local JVM.

Layout of the home folder (wipe it to start from nothing)::

    server.properties   written on every start from the settings
    data/               the KRaft metadata log and the topics (formatted once)
    logs/broker.log     the JVM's output (previous run: broker.log.1)
    broker.pid          the running broker's process id
    .lock               serialises concurrent start/stop calls

The broker runs detached (its own session), so it outlives the command that started it;
:meth:`LocalBroker.stop` ends it.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from kafka.errors import KafkaError

from tariffmon.errors import BrokerError
from tariffmon.kafkaclient import probe
from tariffmon.localkafka.config import (
    Listener,
    random_cluster_id,
    render_properties,
    server_properties,
)
from tariffmon.localkafka.jars import ensure_jars
from tariffmon.settings import KafkaSettings, LocalBrokerSettings, packaged_file

log = logging.getLogger(__name__)

#: shipped with the package (tariffmon/defaults/kafka/), so an installed tariffmon runs it too
DEFAULT_POM = packaged_file("kafka/pom.xml")
DEFAULT_LOG4J = packaged_file("kafka/log4j2.properties")
_MAIN_CLASS = "kafka.Kafka"
_LOG_TAIL_LINES = 40


@dataclass(frozen=True, slots=True)
class BrokerStatus:
    """What :meth:`LocalBroker.status` found."""

    running: bool
    pid: int | None
    bootstrap: str
    home: Path
    log_file: Path

    def __str__(self) -> str:
        state = f"running (pid {self.pid})" if self.running else "stopped"
        return f"kafka {self.bootstrap} {state}, home {self.home}"


class LocalBroker:
    """Start, stop and inspect the development broker described by ``LocalBrokerSettings``.

    ``extra_listeners`` and ``extra_properties`` extend the generated ``server.properties``
    (e.g. a SASL_SSL listener with its JAAS and keystore properties); extra properties win
    over the defaults.  ``format_args`` are appended to ``kafka-storage format`` when the
    storage is formatted (first start only), e.g. ``["--add-scram",
    "SCRAM-SHA-512=[name=alice,password=...]"]`` to create SCRAM credentials up front; they
    may hold secrets, so they are never logged.  ``detach=False`` keeps the JVM in the
    caller's process group, so a test run that is interrupted or killed as a group takes its
    broker along.
    """

    def __init__(
        self,
        settings: LocalBrokerSettings,
        *,
        extra_listeners: Sequence[Listener] = (),
        extra_properties: Mapping[str, str] | None = None,
        format_args: Sequence[str] = (),
        pom: Path = DEFAULT_POM,
        log4j_config: Path = DEFAULT_LOG4J,
        detach: bool = True,
    ) -> None:
        self.settings = settings
        self.home = Path(settings.home).resolve()
        self.libs_dir = Path(settings.libs_dir).resolve()
        self.extra_listeners = tuple(extra_listeners)
        self.extra_properties = dict(extra_properties or {})
        self.format_args = tuple(format_args)
        self.pom = pom
        self.log4j_config = log4j_config
        self.detach = detach
        #: the process when this object started it (so it can be reaped, not left a zombie)
        self._proc: subprocess.Popen[bytes] | None = None

    # ------------------------------------------------------------------ paths

    @property
    def bootstrap(self) -> str:
        """The PLAINTEXT bootstrap address, ``host:port``."""
        return f"{self.settings.host}:{self.settings.port}"

    @property
    def properties_file(self) -> Path:
        """The generated ``server.properties``."""
        return self.home / "server.properties"

    @property
    def data_dir(self) -> Path:
        """The KRaft log directory."""
        return self.home / "data"

    @property
    def log_file(self) -> Path:
        """The broker's log (its stdout and stderr)."""
        return self.home / "logs" / "broker.log"

    @property
    def pid_file(self) -> Path:
        """Holds the running broker's process id."""
        return self.home / "broker.pid"

    def kafka_settings(self) -> KafkaSettings:
        """Client settings that reach this broker's PLAINTEXT listener."""
        return KafkaSettings(bootstrap_servers=self.bootstrap)

    # ------------------------------------------------------------------ public

    def ensure_jars(self) -> bool:
        """Fetch the broker's jars with Maven unless present; True when Maven ran."""
        return ensure_jars(self.libs_dir, self.pom)

    def status(self) -> BrokerStatus:
        """Whether this home's broker process runs (not whether it answers yet)."""
        pid = self._running_pid()
        return BrokerStatus(
            running=pid is not None, pid=pid, bootstrap=self.bootstrap, home=self.home,
            log_file=self.log_file,
        )

    def is_answering(self, timeout: float = 2.0) -> bool:
        """Whether a Kafka client gets an answer from the broker right now."""
        try:
            probe(self.kafka_settings(), timeout_s=timeout)
        except KafkaError:
            return False
        return True

    def start(self, timeout: float | None = None) -> BrokerStatus:
        """Start the broker unless it runs; return once it answers Kafka requests.

        Idempotent: when this home's broker already runs, only waits for it to answer.
        Raises BrokerError (with the tail of the broker's log) when it cannot start or does
        not answer within ``timeout`` seconds (default: the settings' start_timeout_s).
        """
        timeout = self.settings.start_timeout_s if timeout is None else timeout
        deadline = time.monotonic() + timeout
        self.home.mkdir(parents=True, exist_ok=True)
        with self._lock():
            pid = self._running_pid()
            if pid is None:
                self.ensure_jars()
                self._check_java()
                self._check_ports_free()
                self._write_properties()
                self._format_storage_once()
                pid = self._launch()
        self._wait_answering(pid, deadline, timeout)
        return self.status()

    def stop(self, timeout: float = 30.0) -> bool:
        """Stop the broker (SIGTERM, then SIGKILL after ``timeout`` s); True if it ran.

        Idempotent: stopping a stopped broker does nothing.
        """
        if not self.home.is_dir():
            return False
        with self._lock():
            pid = self._running_pid()
            if pid is None:
                self.pid_file.unlink(missing_ok=True)
                return False
            log.info("stopping the Kafka broker (pid %d)", pid)
            _signal(pid, signal.SIGTERM)
            if not self._wait_exit(pid, timeout):
                log.warning("broker pid %d ignored SIGTERM for %.0f s: killing it", pid, timeout)
                _signal(pid, signal.SIGKILL)
                if not self._wait_exit(pid, 10.0):
                    raise BrokerError(f"broker pid {pid} did not die after SIGKILL")
            self.pid_file.unlink(missing_ok=True)
            self._proc = None
            return True

    def log_tail(self, lines: int = _LOG_TAIL_LINES) -> str:
        """The last lines of the broker's log (empty when there is none)."""
        try:
            with self.log_file.open("rb") as fh:
                fh.seek(0, os.SEEK_END)
                fh.seek(max(0, fh.tell() - 64 * 1024))
                text = fh.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    # ------------------------------------------------------------------ start steps

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        with (self.home / ".lock").open("a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _java_cmd(self) -> list[str]:
        return [
            self.settings.java,
            f"-Xmx{self.settings.heap}",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.log4j_config}",
            f"-Dkafka.logs.dir={self.log_file.parent}",
            "-cp",
            f"{self.libs_dir}/*",
        ]

    def _check_java(self) -> None:
        try:
            subprocess.run(
                [self.settings.java, "-version"], capture_output=True, check=True, timeout=30
            )
        except (OSError, subprocess.SubprocessError) as exc:
            raise BrokerError(
                f"cannot run Java ({self.settings.java!r}, setting local_broker.java): {exc}; "
                "Kafka 4 needs Java 17 or newer"
            ) from exc
        if not self.log4j_config.is_file():
            raise BrokerError(f"the broker's logging config {self.log4j_config} is missing")

    def _check_ports_free(self) -> None:
        host = self.settings.host
        for setting, port in (("port", self.settings.port),
                              ("controller_port", self.settings.controller_port),
                              *((f"listener {x.name}", x.port) for x in self.extra_listeners)):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    s.bind((host, port))
                except OSError as exc:
                    raise BrokerError(
                        f"cannot start the broker: {host}:{port} (local_broker.{setting}) is "
                        f"in use by another process ({exc.strerror}); stop it or choose "
                        "another port"
                    ) from None

    def _write_properties(self) -> None:
        props = server_properties(
            host=self.settings.host,
            port=self.settings.port,
            controller_port=self.settings.controller_port,
            data_dir=self.data_dir,
            extra_listeners=self.extra_listeners,
            extra_properties=self.extra_properties,
        )
        tmp = self.properties_file.with_suffix(".tmp")
        tmp.write_text(render_properties(props))
        tmp.replace(self.properties_file)

    def _format_storage_once(self) -> None:
        if (self.data_dir / "meta.properties").is_file():
            return
        cluster_id = random_cluster_id()
        cmd = [
            *self._java_cmd(), "kafka.tools.StorageTool", "format", "--standalone",
            "-t", cluster_id, "-c", str(self.properties_file), *self.format_args,
        ]
        log.info("formatting KRaft storage in %s (cluster %s)", self.data_dir, cluster_id)
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
        except subprocess.TimeoutExpired:
            raise BrokerError("formatting the KRaft storage took over 120 s") from None
        if done.returncode != 0:
            out = "\n".join((done.stdout + done.stderr).strip().splitlines()[-20:])
            raise BrokerError(
                f"formatting the KRaft storage in {self.data_dir} failed "
                f"(exit {done.returncode}):\n{out}"
            )

    def _launch(self) -> int:
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        if self.log_file.exists():
            self.log_file.replace(self.log_file.with_name(self.log_file.name + ".1"))
        cmd = [*self._java_cmd(), _MAIN_CLASS, str(self.properties_file)]
        log.info("starting the Kafka broker at %s (home %s)", self.bootstrap, self.home)
        with self.log_file.open("ab") as out:
            # own session: Ctrl-C in the terminal that started it must not kill the broker
            self._proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                cwd=self.home, start_new_session=self.detach, close_fds=True,
            )
        self.pid_file.write_text(f"{self._proc.pid}\n")
        return self._proc.pid

    def _wait_answering(self, pid: int, deadline: float, timeout: float) -> None:
        kafka = self.kafka_settings()
        last: Exception | None = None
        while True:
            if not self._alive(pid):
                self.pid_file.unlink(missing_ok=True)
                raise BrokerError(
                    f"the Kafka broker exited during start-up; log {self.log_file}:\n"
                    f"{self.log_tail()}"
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            if _port_open(self.settings.host, self.settings.port):
                try:
                    probe(kafka, timeout_s=min(3.0, max(0.5, remaining)))
                    return
                except KafkaError as exc:
                    last = exc
            time.sleep(0.2)
        raise BrokerError(
            f"the Kafka broker (pid {pid}) did not answer at {self.bootstrap} within "
            f"{timeout:g} s (last error: {last}); it is left running, see {self.log_file}:\n"
            f"{self.log_tail()}"
        )

    # ------------------------------------------------------------------ processes

    def _running_pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        if self._alive(pid) and self._is_our_broker(pid):
            return pid
        return None

    def _alive(self, pid: int) -> bool:
        if self._proc is not None and self._proc.pid == pid:
            return self._proc.poll() is None
        return _pid_alive(pid)

    def _is_our_broker(self, pid: int) -> bool:
        """Guard against a stale pid file whose pid now belongs to another process."""
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return True  # no /proc (not Linux): trust the pid file
        return _MAIN_CLASS.encode() in cmdline and str(self.properties_file).encode() in cmdline

    def _wait_exit(self, pid: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self._alive(pid):
                return True
            time.sleep(0.1)
        return not self._alive(pid)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie (exited, not yet reaped by its parent) no longer runs
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):  # it exited meanwhile: that is the goal
        os.kill(pid, sig)


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False
