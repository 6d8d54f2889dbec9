"""A real Prometheus server for tests: Debian's ``prometheus`` on a free loopback port.

:func:`running_prometheus` writes a config that scrapes the given targets (every second by
default), loads the given rule files, starts ``prometheus`` with its storage in a temporary
folder, waits until it is ready and yields a :class:`PrometheusServer` whose :meth:`query`
goes through the HTTP API (``/api/v1/query``).  The process is terminated on exit, whatever
happened.  Nothing here is mocked: the tests exercise the same binary CI installs.

Usage::

    with running_prometheus({"tariffmon-worker": ["127.0.0.1:9464"]},
                            rule_files=[RULES]) as prom:
        prom.wait_for_scrape("tariffmon-worker")
        prom.query('tariffmon_last_price{symbol="USDJPY"}')
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

#: ``PROMETHEUS_BIN`` overrides the binary found on PATH.
PROMETHEUS_ENV = "PROMETHEUS_BIN"


class PrometheusHarnessError(RuntimeError):
    """Prometheus could not be started, or answered a query with an error."""


def prometheus_binary() -> str | None:
    """Path of the ``prometheus`` binary, or None when it is not installed."""
    return os.environ.get(PROMETHEUS_ENV) or shutil.which("prometheus")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PrometheusServer:
    """A running Prometheus: its URL, folders and a query client."""

    url: str
    port: int
    workdir: Path
    log_path: Path
    process: subprocess.Popen[bytes]

    def api(self, path: str, params: Mapping[str, str] | None = None,
            timeout_s: float = 10.0) -> dict[str, Any]:
        """GET ``/api/v1/<path>`` and return the decoded JSON, whatever its status."""
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        request = urllib.request.Request(f"{self.url}/api/v1/{path}{query}")
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as resp:
                body: dict[str, Any] = json.loads(resp.read())
        except urllib.error.HTTPError as exc:  # 400/422/503 carry a JSON error body
            body = json.loads(exc.read() or b"{}")
            body.setdefault("status", "error")
            body.setdefault("error", f"HTTP {exc.code}")
        return body

    def query_raw(self, expr: str, at: float | None = None) -> dict[str, Any]:
        """The full ``/api/v1/query`` answer for ``expr`` (status, data, error, warnings)."""
        params = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        return self.api("query", params)

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        """Evaluate an instant query; returns the result list, raises on an error status."""
        body = self.query_raw(expr, at)
        if body.get("status") != "success":
            raise PrometheusHarnessError(
                f"query {expr!r} failed: {body.get('errorType')}: {body.get('error')}"
            )
        data = body["data"]
        if data["resultType"] in ("scalar", "string"):
            return [{"metric": {}, "value": data["result"]}]
        result: list[dict[str, Any]] = data["result"]
        return result

    def value(self, expr: str) -> float | None:
        """The single value of an instant query, None when it returns nothing."""
        result = self.query(expr)
        if not result:
            return None
        if len(result) > 1:
            raise PrometheusHarnessError(f"query {expr!r} returned {len(result)} series")
        return float(result[0]["value"][1])

    def wait_for(self, expr: str, timeout_s: float = 30.0,
                 until: Callable[[list[dict[str, Any]]], bool] = bool,
                 poll_s: float = 0.2) -> list[dict[str, Any]]:
        """Poll ``expr`` until ``until(result)`` holds (default: any result); the last result."""
        deadline = time.monotonic() + timeout_s
        while True:
            result = self.query(expr)
            if until(result):
                return result
            if time.monotonic() > deadline:
                raise PrometheusHarnessError(
                    f"{expr!r} did not reach the expected state in {timeout_s}s: {result}"
                )
            self.check_alive()
            time.sleep(poll_s)

    def wait_for_scrape(self, job: str, after: float | None = None,
                        timeout_s: float = 30.0) -> None:
        """Wait until every target of ``job`` was scraped (after Unix time ``after``)."""
        since = -1.0 if after is None else after
        expr = f'timestamp(up{{job="{job}"}})'
        self.wait_for(
            expr, timeout_s,
            until=lambda r: bool(r) and all(float(s["value"][1]) > since for s in r),
        )

    def targets(self) -> list[dict[str, Any]]:
        """The active scrape targets as /api/v1/targets reports them."""
        body = self.api("targets")
        active: list[dict[str, Any]] = body["data"]["activeTargets"]
        return active

    def rules(self) -> list[dict[str, Any]]:
        """The loaded rule groups as /api/v1/rules reports them."""
        groups: list[dict[str, Any]] = self.api("rules")["data"]["groups"]
        return groups

    def check_alive(self) -> None:
        """Raise with the log's tail when the process has exited."""
        if self.process.poll() is not None:
            raise PrometheusHarnessError(
                f"prometheus exited with {self.process.returncode}:\n{self.log_tail()}"
            )

    def log_tail(self, lines: int = 40) -> str:
        """The last lines of Prometheus's log."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


def write_config(
    path: Path,
    jobs: Mapping[str, Sequence[str]],
    *,
    rule_files: Sequence[Path] = (),
    scrape_interval_s: float = 1.0,
    evaluation_interval_s: float = 1.0,
    alertmanagers: Sequence[str] = (),
) -> None:
    """Write a Prometheus config scraping ``jobs`` (job name -> ``host:port`` targets)."""
    interval = f"{int(scrape_interval_s * 1000)}ms"
    config: dict[str, Any] = {
        "global": {
            "scrape_interval": interval,
            "scrape_timeout": interval,
            "evaluation_interval": f"{int(evaluation_interval_s * 1000)}ms",
        },
        "rule_files": [str(Path(p).resolve()) for p in rule_files],
        "scrape_configs": [
            {"job_name": job, "static_configs": [{"targets": list(targets)}]}
            for job, targets in jobs.items()
        ],
    }
    if alertmanagers:
        config["alerting"] = {
            "alertmanagers": [{"static_configs": [{"targets": list(alertmanagers)}]}]
        }
    path.write_text(yaml.safe_dump(config, sort_keys=False))


@contextlib.contextmanager
def running_prometheus(
    jobs: Mapping[str, Sequence[str]],
    *,
    rule_files: Sequence[Path] = (),
    scrape_interval_s: float = 1.0,
    evaluation_interval_s: float = 1.0,
    alertmanagers: Sequence[str] = (),
    workdir: Path | None = None,
    start_timeout_s: float = 30.0,
) -> Iterator[PrometheusServer]:
    """Run Prometheus on a free 127.0.0.1 port, scraping ``jobs``, until the block ends.

    ``workdir`` (default: a temporary folder removed afterwards) receives the config, the
    TSDB and the log.  Raises :class:`PrometheusHarnessError` when the binary is missing,
    the config is rejected or the server is not ready within ``start_timeout_s``.
    """
    binary = prometheus_binary()
    if binary is None:
        raise PrometheusHarnessError("prometheus is not installed (apt-get install prometheus)")
    with contextlib.ExitStack() as stack:
        if workdir is None:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="prom-")))
        workdir.mkdir(parents=True, exist_ok=True)
        config_path = workdir / "prometheus.yml"
        write_config(
            config_path, jobs, rule_files=rule_files, scrape_interval_s=scrape_interval_s,
            evaluation_interval_s=evaluation_interval_s, alertmanagers=alertmanagers,
        )
        server = _start(binary, config_path, workdir, start_timeout_s)
        try:
            yield server
        finally:
            _stop(server.process)


def _start(binary: str, config_path: Path, workdir: Path,
           start_timeout_s: float) -> PrometheusServer:
    # A port picked free may be taken before Prometheus binds it: try a few.
    last_error: PrometheusHarnessError | None = None
    for attempt in range(3):
        port = free_port()
        log_path = workdir / f"prometheus-{attempt}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [
                    binary,
                    f"--config.file={config_path}",
                    f"--storage.tsdb.path={workdir / 'data'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                    "--storage.tsdb.retention.time=1d",
                    "--log.level=info",
                ],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                cwd=workdir,
            )
        server = PrometheusServer(
            url=f"http://127.0.0.1:{port}", port=port, workdir=workdir, log_path=log_path,
            process=process,
        )
        try:
            _wait_ready(server, start_timeout_s)
            return server
        except PrometheusHarnessError as exc:
            _stop(process)
            last_error = exc
            if "address already in use" not in server.log_tail().lower():
                raise
    assert last_error is not None
    raise last_error


def _wait_ready(server: PrometheusServer, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        server.check_alive()
        try:
            with urllib.request.urlopen(f"{server.url}/-/ready", timeout=2) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass  # not listening yet: poll again until the deadline
        time.sleep(0.1)
    raise PrometheusHarnessError(
        f"prometheus not ready within {timeout_s}s:\n{server.log_tail()}"
    )


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


# --------------------------------------------------------------------------- Alertmanager

#: ``ALERTMANAGER_BIN`` overrides the binary found on PATH (Debian names it
#: prometheus-alertmanager).
ALERTMANAGER_ENV = "ALERTMANAGER_BIN"


def alertmanager_binary() -> str | None:
    """Path of the Alertmanager binary, or None when it is not installed."""
    return (os.environ.get(ALERTMANAGER_ENV) or shutil.which("prometheus-alertmanager")
            or shutil.which("alertmanager"))


@dataclass
class AlertmanagerServer:
    """A running Alertmanager and a small client of its v2 API."""

    url: str
    port: int
    log_path: Path
    process: subprocess.Popen[bytes]

    def post_alerts(self, alerts: Sequence[Mapping[str, Any]]) -> None:
        """POST alerts (each a dict with ``labels`` and optional ``annotations``)."""
        request = urllib.request.Request(
            f"{self.url}/api/v2/alerts", data=json.dumps(list(alerts)).encode(),
            headers={"Content-Type": "application/json"}, method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as resp:
            resp.read()

    def alerts(self) -> list[dict[str, Any]]:
        """Every alert Alertmanager holds, with its status (active, suppressed, inhibitedBy)."""
        with urllib.request.urlopen(f"{self.url}/api/v2/alerts", timeout=10) as resp:
            result: list[dict[str, Any]] = json.loads(resp.read())
        return result

    def states(self) -> dict[tuple[tuple[str, str], ...], str]:
        """Each alert's state (active, suppressed, ...) keyed by its sorted label pairs."""
        return {tuple(sorted(a["labels"].items())): a["status"]["state"] for a in self.alerts()}

    def states_once_settled(self, suppressed: int, *, timeout_s: float = 10.0,
                            ) -> dict[tuple[tuple[str, str], ...], str]:
        """Alert states once ``suppressed`` of them are muted, or as they stand at the deadline.

        Alertmanager's inhibitor learns of posted alerts from a subscription of its own, so
        for a moment after a POST the alerts that a source alert mutes still read as active.
        """
        deadline = time.monotonic() + timeout_s
        while True:
            states = self.states()
            muted = sum(state == "suppressed" for state in states.values())
            if muted >= suppressed or time.monotonic() > deadline:
                return states
            time.sleep(0.1)


@contextlib.contextmanager
def running_alertmanager(config_file: Path, *, workdir: Path | None = None,
                         start_timeout_s: float = 30.0) -> Iterator[AlertmanagerServer]:
    """Run Alertmanager with ``config_file`` on a free 127.0.0.1 port, clustering off."""
    binary = alertmanager_binary()
    if binary is None:
        raise PrometheusHarnessError(
            "alertmanager is not installed (apt-get install prometheus-alertmanager)"
        )
    with contextlib.ExitStack() as stack:
        if workdir is None:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="am-")))
        port = free_port()
        log_path = workdir / "alertmanager.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [binary, f"--config.file={config_file}", f"--storage.path={workdir / 'data'}",
                 f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=workdir,
            )
        try:
            server = AlertmanagerServer(f"http://127.0.0.1:{port}", port, log_path, process)
            deadline = time.monotonic() + start_timeout_s
            while True:
                if process.poll() is not None or time.monotonic() > deadline:
                    tail = log_path.read_text(errors="replace")[-3000:]
                    raise PrometheusHarnessError(f"alertmanager did not start:\n{tail}")
                try:
                    with urllib.request.urlopen(f"{server.url}/-/ready", timeout=2) as resp:
                        if resp.status == 200:
                            break
                except (urllib.error.URLError, ConnectionError, TimeoutError):
                    pass  # not listening yet
                time.sleep(0.1)
            yield server
        finally:
            _stop(process)
