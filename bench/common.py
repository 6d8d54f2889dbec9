"""Shared parts of the Kafka benchmarks: a private broker, settings, generated data, the worker.

Every benchmark runs against its own broker (:class:`BenchBroker`: a
:class:`~tariffmon.localkafka.LocalBroker` on free loopback ports with its data in a temporary
folder) unless ``--bootstrap host:port`` names an existing one; topics, the worker's app id and
its data folder are unique per run, so runs never see each other's records.

The benchmark scripts import this module as ``common`` (Python puts the script's folder first
on ``sys.path``); nothing here imports from ``tests/``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from tariffmon.kafkaclient import ensure_topics, wait_for_broker
from tariffmon.localkafka import LocalBroker
from tariffmon.recorded import RecordedEvent, RecordedWriter
from tariffmon.settings import PROJECT_ROOT, LocalBrokerSettings, Settings, load_settings
from tariffmon.workerproc import WorkerProcess

RESULTS = PROJECT_ROOT / "bench" / "results"
VENV_BIN = Path(sys.executable).parent
#: Monday 2025-04-07 00:00:00 UTC
START_MS = 1_743_984_000_000

#: symbols the Kafka benchmarks use, all on an "always open" calendar (every second ticks)
SYMBOLS_3 = ("USDJPY", "N225", "NKD")
SYMBOLS_10 = ("USDJPY", "N225", "NKD", "EURJPY", "EURUSD", "GBPJPY", "AUDJPY", "TOPIX",
              "SPX", "HSI")

ACTORS = ["Trump", "Washington", "The White House", "Lutnick", "Bessent", "Greer", "USTR",
           "The US president", "Commerce Department", "US trade representative"]
COUNTRIES = ["Japan", "Korea", "Mexico", "Canada", "China", "Vietnam", "India", "Taiwan",
              "Germany", "Brazil", "Thailand", "Indonesia", "the EU", "Australia"]
SECTORS = ["steel", "aluminium", "auto", "chip", "pharmaceutical", "lumber", "copper",
            "solar panel", "rice", "beef", "machinery", "textile", "electronics", "ship"]
_TEMPLATES = [
    "{actor} raises tariffs on {country} {sector} imports to {pct}%",
    "{actor} threatens {pct}% import levy on {sector} from {country}",
    "{country} retaliates with {pct}% duties on US {sector}",
    "{actor} pauses {sector} tariffs on {country} for {days} days",
    "{country} and US reach trade deal cutting {sector} tariffs to {pct}%",
    "{actor} grants {country} exemption from {sector} levies",
]


# --------------------------------------------------------------------------- machine


def machine_facts() -> dict[str, Any]:
    """What the figures were measured on: cores, memory, CPU, versions, date and load."""
    cpu = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    facts: dict[str, Any] = {
        "date_utc": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "nproc": os.cpu_count(),
        "cpu_model": cpu,
        "mem_total_gib": _mem_total_gib(),
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
        "java": _first_line(["java", "-version"]),
        "kafka": _kafka_version(),
        "kcat": _kcat_version(),
    }
    return facts


def _mem_total_gib() -> float:
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    return 0.0


def _first_line(cmd: list[str]) -> str:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return ""
    text = (done.stdout or done.stderr).strip().splitlines()
    return text[0] if text else ""


def _kcat_version() -> str:
    try:
        done = subprocess.run(["kcat", "-V"], capture_output=True, text=True, timeout=30,
                              check=False)
    except (OSError, subprocess.SubprocessError):
        return ""
    lines = [ln for ln in (done.stdout + done.stderr).splitlines() if "ersion" in ln]
    return "; ".join(ln.strip() for ln in lines)


def _kafka_version() -> str:
    libs = Path(LocalBrokerSettings().libs_dir)
    for jar in sorted(libs.glob("kafka_2.13-*.jar")):
        return jar.stem.removeprefix("kafka_")
    return ""


def exit_cleanly_on_signals() -> None:
    """SIGTERM (and SIGINT, even where a background shell ignores it) raise SystemExit.

    So that ``finally`` blocks stop the worker and the private broker and remove the
    temporary folders instead of leaving them behind.
    """
    def _exit(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _exit)
    signal.signal(signal.SIGINT, _exit)


def wait_for_quiet(max_load: float, max_wait_s: float) -> float:
    """Wait (bounded) until the 1-minute load average is below ``max_load``; return it."""
    deadline = time.monotonic() + max_wait_s
    while os.getloadavg()[0] >= max_load and time.monotonic() < deadline:
        time.sleep(5)
    return os.getloadavg()[0]


def write_result(name: str, result: dict[str, Any], out: Path | None, smoke: bool) -> Path:
    """Write the result JSON (``bench/results/<name>[_smoke].json`` unless ``out``); print it."""
    path = out or RESULTS / (f"{name}_smoke.json" if smoke else f"{name}.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result), flush=True)
    return path


# --------------------------------------------------------------------------- broker


def free_ports(n: int, host: str = "127.0.0.1") -> list[int]:
    """``n`` distinct TCP ports nothing listens on right now."""
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(n):
            s = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            s.bind((host, 0))
            ports.append(s.getsockname()[1])
        return ports


class BenchBroker:
    """A private broker for one benchmark run, or an existing one given by ``bootstrap``."""

    def __init__(self, bootstrap: str | None = None, heap: str = "768m") -> None:
        self.given = bootstrap
        self.heap = heap
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._broker: LocalBroker | None = None
        self.bootstrap = bootstrap or ""

    def __enter__(self) -> BenchBroker:
        if self.given:
            wait_for_broker(load_settings(kafka={"bootstrap_servers": self.given}).kafka, 20)
            return self
        self._tmp = tempfile.TemporaryDirectory(prefix="tariffmon-bench-kafka-")
        port, controller = free_ports(2)
        self._broker = LocalBroker(
            LocalBrokerSettings(host="127.0.0.1", port=port, controller_port=controller,
                                home=Path(self._tmp.name), heap=self.heap),
            detach=False,
        )
        self._broker.start(timeout=120)
        self.bootstrap = self._broker.bootstrap
        return self

    @property
    def pid(self) -> int | None:
        """The private broker's JVM process id (None for a given broker)."""
        return None if self._broker is None else self._broker.status().pid

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._broker is not None:
            self._broker.stop(timeout=30)
        if self._tmp is not None:
            self._tmp.cleanup()


def symbol_config(names: Sequence[str]) -> list[dict[str, Any]]:
    """Symbol settings, every calendar always open (synthetic ticks every second)."""
    return [{"name": n, "yahoo": f"{n}=X", "calendar": ["always"], "staleness_s": 300}
            for n in names]


def bench_settings(bootstrap: str, tag: str, symbols: Sequence[str], data_dir: Path,
                   **overrides: Any) -> Settings:
    """Settings with topics, app id and data folder unique to ``tag``; topics created."""
    run = f"{tag}-{uuid.uuid4().hex[:6]}"
    names = {s: f"bench.{run}.{s}" for s in (
        "ticks", "headlines", "classified", "requests", "reactions", "alerts", "deadletter")}
    settings = load_settings(
        kafka={"bootstrap_servers": bootstrap},
        topics=names,
        symbols=symbol_config(symbols),
        worker={"app_id": f"bench-{run}", "data_dir": str(data_dir / "faust")},
        **overrides,
    )
    ensure_topics(settings)
    return settings


# --------------------------------------------------------------------------- data


def headline_title(rng: np.random.Generator) -> str:
    """A synthetic tariff headline (random parts, so most are distinct stories)."""
    return str(rng.choice(_TEMPLATES)).format(
        actor=rng.choice(ACTORS), country=rng.choice(COUNTRIES),
        sector=rng.choice(SECTORS), pct=int(rng.integers(5, 60)),
        days=int(rng.choice([30, 60, 90, 120])),
    )


@dataclass(frozen=True, slots=True)
class Dataset:
    """A generated recorded-stream file and what is in it."""

    path: Path
    ticks: int
    headlines: int
    symbols: tuple[str, ...]
    seconds: int
    headline_ts: list[int] = field(default_factory=list)


def write_dataset(
    path: Path,
    symbols: Sequence[str],
    seconds: int,
    headline_every_s: float,
    *,
    first_headline_s: int = 600,
    seed: int = 20250407,
    start_ms: int = START_MS,
) -> Dataset:
    """One tick per second per symbol for ``seconds``, and a headline every ~N seconds.

    Headlines sit on whole seconds (jittered around the spacing), each followed by a small
    drift in every price so that reactions are not all noise.  Written merged by event time
    (a headline before the ticks of its own second), as ``tariffmon record`` would.
    """
    rng = np.random.default_rng(seed)
    n_head = max(0, int((seconds - first_headline_s) / headline_every_s))
    base = first_headline_s + np.arange(n_head) * headline_every_s
    jitter = rng.uniform(-0.3, 0.3, n_head) * headline_every_s
    at = np.unique(np.clip(np.round(base + jitter), first_headline_s, seconds - 1).astype(int))
    sigma = 0.6e-4
    prices: dict[str, np.ndarray] = {}
    for i, sym in enumerate(symbols):
        steps = rng.normal(0.0, sigma, seconds)
        drift = np.zeros(seconds + 300)
        sign = np.where(rng.random(len(at)) < 0.6, -1.0, 1.0) * 0.003 / 300
        np.add.at(drift, at, sign)
        np.add.at(drift, at + 300, -sign)
        steps += np.cumsum(drift)[:seconds]
        prices[sym] = np.round((100.0 + 50 * i) * np.exp(np.cumsum(steps)), 4)
    head_ts = [start_ms + int(k) * 1000 for k in at]
    titles = [headline_title(rng) for _ in at]
    k_head = 0
    price_lists = {s: prices[s].tolist() for s in symbols}
    with RecordedWriter(path) as w:
        for k in range(seconds):
            t = start_ms + k * 1000
            while k_head < len(at) and head_ts[k_head] <= t:
                hid = f"bench-h{k_head:05d}"
                w.write(RecordedEvent("headlines", hid, head_ts[k_head], {
                    "v": 1, "id": hid, "ts": head_ts[k_head], "source": "bench",
                    "title": titles[k_head]}))
                k_head += 1
            for s in symbols:
                w.write_line(b'{"stream":"ticks","key":"%s","ts":%d,"value":{"kind":"quote",'
                             b'"price":%r,"source":"bench","symbol":"%s","ts":%d,"v":1}}'
                             % (s.encode(), t, price_lists[s][k], s.encode(), t))
    return Dataset(path, seconds * len(symbols), len(at), tuple(symbols), seconds, head_ts)


# --------------------------------------------------------------------------- worker


def read_status_kib(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS) of a process, in KiB, from /proc/<pid>/status."""
    out: dict[str, int] = {}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(("VmRSS:", "VmHWM:")):
                name, value = line.split(":", 1)
                out[name] = int(value.split()[0])
    return out


class WorkerProc(WorkerProcess):
    """``tariffmon worker`` as a child process, optionally started under ``py-spy record``."""

    def __init__(self, settings: Settings, log_path: Path, *,
                 profile_out: Path | None = None, profile_rate: int = 100) -> None:
        wrap = [] if profile_out is None else [
            str(VENV_BIN / "py-spy"), "record", "-r", str(profile_rate), "-f", "raw",
            "-o", str(profile_out), "--"]
        super().__init__(settings, log_path, free_ports(1)[0], loglevel="WARNING", wrap=wrap)
        self.profile_out = profile_out
        self.started_at = 0.0

    def start(self, timeout: float = 90.0) -> WorkerProc:
        """Start; return once /metrics answers."""
        self.started_at = time.monotonic()
        super().start(timeout)
        return self

    def worker_pid(self) -> int:
        """The Python worker's pid (the child of py-spy when profiling)."""
        assert self.proc is not None
        if self.profile_out is None:
            return self.proc.pid
        with contextlib.suppress(OSError, ValueError):
            kids = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text()
            if kids.split():
                return int(kids.split()[0])
        return self.proc.pid

    def metric_sum(self, name: str, text: str | None = None) -> float:
        """The sum of a metric's samples over all label sets (0 when absent)."""
        text = self.metrics_text() if text is None else text
        total = 0.0
        for line in text.splitlines():
            if line.startswith(name) and line[len(name):len(name) + 1] in ("{", " "):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def memory_kib(self) -> dict[str, int]:
        """The worker's current and peak RSS."""
        return read_status_kib(self.worker_pid())

    def stop(self, timeout: float = 60.0) -> int | None:
        """SIGTERM to the worker; under py-spy, which passes nothing on, to its child."""
        if self.proc is not None and self.profile_out is not None and self.running():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.worker_pid(), signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=timeout)  # py-spy writes its profile and exits
        return super().stop(timeout)

    def __enter__(self) -> WorkerProc:
        return self.start()


# --------------------------------------------------------------------------- consumers


class TopicCollector(threading.Thread):
    """Consume a topic from the beginning in a thread; first-seen wall time per key."""

    def __init__(self, settings: Settings, topic: str) -> None:
        super().__init__(daemon=True, name=f"collect-{topic}")
        from kafka import KafkaConsumer

        from tariffmon.kafkaclient import client_config

        self.topic = topic
        self._consumer = KafkaConsumer(
            topic, **client_config(settings.kafka), group_id=None,
            auto_offset_reset="earliest", enable_auto_commit=False, fetch_max_wait_ms=100,
            max_poll_records=5_000,
        )
        self.first_seen: dict[bytes, float] = {}
        self.values: dict[bytes, bytes] = {}
        self.records = 0
        self._stop_event = threading.Event()
        self.error: Exception | None = None

    def run(self) -> None:
        try:
            while not self._stop_event.is_set():
                batch = self._consumer.poll(timeout_ms=50)
                now = time.monotonic()
                for recs in batch.values():
                    for r in recs:
                        self.records += 1
                        if r.key not in self.first_seen:
                            self.first_seen[r.key] = now
                            self.values[r.key] = r.value
        except Exception as exc:  # noqa: BLE001 - wait_for() raises it in the caller
            self.error = exc
        finally:
            self._consumer.close()

    def wait_for(self, n: int, timeout: float, poll: float = 0.02) -> bool:
        """Wait until ``n`` distinct keys arrived; False on timeout."""
        deadline = time.monotonic() + timeout
        while len(self.first_seen) < n and time.monotonic() < deadline:
            if self.error is not None:
                raise RuntimeError(f"collector of {self.topic} failed: {self.error!r}")
            time.sleep(poll)
        return len(self.first_seen) >= n

    def stop(self) -> None:
        """Stop consuming and close."""
        self._stop_event.set()
        self.join(timeout=10)


async def _drain(bootstrap: str, topic: str, partitions: int) -> tuple[int, float, int]:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    # the same fetch sizes the worker's Faust consumer is configured with (streams/app.py)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
        auto_offset_reset="earliest", max_partition_fetch_bytes=8 * 1024 * 1024,
        fetch_max_bytes=50 * 1024 * 1024,
    )
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        want = sum(ends.values())
        n = 0
        nbytes = 0
        t0 = time.perf_counter()
        while n < want:
            got = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            for recs in got.values():
                n += len(recs)
                nbytes += sum(len(r.value or b"") for r in recs)
        return n, time.perf_counter() - t0, nbytes
    finally:
        await consumer.stop()


def aiokafka_drain(bootstrap: str, topic: str, partitions: int) -> dict[str, Any]:
    """Read ``topic`` from start to end with a plain aiokafka consumer (no group, no work)."""
    import asyncio

    n, wall, nbytes = asyncio.run(_drain(bootstrap, topic, partitions))
    return {"records": n, "wall_s": round(wall, 3), "records_per_s": round(n / wall),
            "value_bytes": nbytes}


# --------------------------------------------------------------------------- profiles


def summarise_raw_profile(path: Path, top: int = 25) -> dict[str, Any]:
    """Self and inclusive shares of the busiest frames in a ``py-spy record -f raw`` file.

    Each line is ``frame;frame;...;leaf count`` (root first).  Idle samples (py-spy only
    records active threads unless ``--idle``) do not appear.
    """
    self_count: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    by_thread: Counter[str] = Counter()
    buckets: Counter[str] = Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_s = line.rpartition(" ")
        if not stack or not count_s.isdigit():
            continue
        count = int(count_s)
        frames = stack.split(";")
        total += count
        by_thread[frames[0]] += count
        self_count[_short(frames[-1])] += count
        for f in {_short(f) for f in frames}:
            incl[f] += count
        buckets[_bucket(frames)] += count

    def share(c: Counter[str]) -> list[list[Any]]:
        return [[name, round(n / total, 4)] for name, n in c.most_common(top)] if total else []
    return {"samples": total, "buckets": share(buckets), "threads": share(by_thread),
            "self": share(self_count), "inclusive": share(incl)}


#: (bucket, substring of a frame), checked leaf first; the first match names the sample
_BUCKETS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("idle: waiting in select/poll/condition", ("selectors.py", "Condition.wait",
                                                "_worker (")),
    ("late requests: ticks read back from Kafka (kafka-python)", ("streams/late.py",)),
    ("state recovery / clusters (kafka-python)", ("rebuild_partition (",
                                                  "read_recent_classified (")),
    ("pure core (tariffmon/core)", ("tariffmon/core/",)),
    ("contract decode/encode", ("tariffmon/contract/",)),
    ("metrics (prometheus_client)", ("prometheus_client/",)),
    ("stages glue (streams/stages.py, records.py, agents.py)",
     ("streams/stages.py", "streams/records.py", "streams/agents.py")),
    ("Faust/mode stream machinery", ("faust/", "mode/")),
    ("aiokafka client (fetch, parse, produce)", ("aiokafka/",)),
    ("asyncio event loop", ("asyncio/",)),
)


def _bucket(frames: list[str]) -> str:
    leaf = frames[-1]
    for name, marks in _BUCKETS[:1]:
        if any(m in leaf for m in marks):
            return name
    for name, marks in _BUCKETS[1:3]:
        if any(m in f for f in frames for m in marks):
            return name
    for f in reversed(frames):
        for name, marks in _BUCKETS[3:]:
            if any(m in f for m in marks):
                return name
    return "other"


def _short(frame: str) -> str:
    """``func (path/to/module.py:123)`` -> ``func (module.py)``: one entry per function."""
    name, _, where = frame.partition(" (")
    file = where.rstrip(")").rsplit(":", 1)[0]
    parts = Path(file).parts
    tail = "/".join(parts[-2:]) if parts else file
    return f"{name} ({tail})"


@contextlib.contextmanager
def temp_dir(prefix: str, keep: bool = False) -> Iterator[Path]:
    """A temporary folder, removed afterwards unless ``keep``."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        if not keep:
            shutil.rmtree(path, ignore_errors=True)
