"""The live path end to end on the bundled sample: broker, worker, replay, reactions.

``tariffmon demo`` starts the local broker (unless a bootstrap address is configured), starts a
worker process, replays ``data/sample`` (in the base folder, see
:func:`tariffmon.settings.home_dir`) at full speed into topics of its own (so a second demo
never mixes with the first), prints each reaction as the worker publishes it, and then leaves
the worker and its metrics endpoint up until Ctrl-C, saying where to look.
"""

from __future__ import annotations

import datetime as dt
import logging
import signal
import sys
import time
from pathlib import Path
from typing import TextIO

from kafka import KafkaConsumer

from tariffmon.contract import Reaction
from tariffmon.errors import ContractError, TariffmonError
from tariffmon.kafkaclient import client_config, ensure_topics, wait_for_broker
from tariffmon.localkafka import LocalBroker
from tariffmon.settings import Settings, TopicSettings, home_dir, load_settings
from tariffmon.workerproc import WorkerProcess

log = logging.getLogger(__name__)

#: the bundled sample, relative to the base folder (the checkout when running from a clone)
SAMPLE_DIR = Path("data") / "sample"


class DemoError(TariffmonError):
    """The demo could not run one of its steps."""


def sample_files(folder: Path | None = None) -> list[Path]:
    """The recorded-stream files of ``folder``, by default ``data/sample`` in the base folder."""
    folder = home_dir() / SAMPLE_DIR if folder is None else folder
    if not folder.is_dir():
        raise DemoError(f"{folder} does not exist: pass --files, or write the sample there "
                        f"with: tariffmon sample --out {folder}")
    files = sorted(p for p in folder.iterdir() if p.name.endswith((".jsonl", ".jsonl.gz")))
    if not files:
        raise DemoError(f"no recorded-stream files in {folder} (run: tariffmon sample)")
    return files


def demo_settings(base: Settings, bootstrap: str, run_id: str, metrics_port: int) -> Settings:
    """The settings of one demo run: its own topics, worker group and data folder (``demo/``
    next to the worker's data folder, ``var/demo/RUN`` by default)."""
    topics = {s: f"tariffmon.demo-{run_id}.{s}" for s in TopicSettings().all_topics()}
    return load_settings(
        kafka={**base.kafka.model_dump(exclude_none=True), "bootstrap_servers": bootstrap},
        topics={**base.topics.model_dump(), **topics},
        worker={**base.worker.model_dump(), "app_id": f"tariffmon-demo-{run_id}",
                "data_dir": str(Path(base.worker.data_dir).parent / "demo" / run_id)},
        metrics={**base.metrics.model_dump(), "worker_port": metrics_port},
    )


def format_reaction(r: Reaction) -> str:
    """One line per reaction: when, what, how much, how unusual."""
    t0 = dt.datetime.fromtimestamp(r.t0 / 1000, dt.UTC).strftime("%a %d %b %H:%M")
    z = "   n/a" if r.z is None else f"{r.z:+6.1f}"
    marks = ("SIG " if r.significant else "    ") + ("GAP " if r.gap else "    ")
    return (f"{t0}  {r.symbol:<6} {r.horizon_s // 60:>3}m  {r.ret * 10_000:+8.1f} bp  z {z}  "
            f"{marks}{r.direction:<13.13} {r.title[:60]}")


class Demo:
    """One demo run; :meth:`run` drives it, every step printing to ``out``."""

    def __init__(self, base: Settings, *, metrics_port: int, out: TextIO = sys.stdout,
                 bootstrap: str | None = None, files: list[Path] | None = None) -> None:
        self.base = base
        self.metrics_port = metrics_port
        self.out = out
        self.bootstrap = bootstrap
        self.files = files or sample_files()
        self.worker: WorkerProcess | None = None
        self.expected: dict[str, Reaction] = {}
        self.worker_log: Path | None = None

    def say(self, text: str) -> None:
        """Print a line for the user."""
        print(text, file=self.out, flush=True)

    def run(self, *, keep_running: bool, idle_s: float = 120.0, max_wait_s: float = 900.0
            ) -> list[Reaction]:
        """Broker, worker, replay, reactions; then wait for Ctrl-C when ``keep_running``.

        The offline backtest of the same files says how many reactions to wait for, and the
        live ones are checked against it.
        """
        from tariffmon.backtest import backtest_reactions

        bootstrap = self._broker()
        run_id = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
        settings = demo_settings(self.base, bootstrap, run_id, self.metrics_port)
        wait_for_broker(settings.kafka)  # an unreachable cluster fails before the backtest
        self.expected = {r.key: r for r in backtest_reactions(self.files, settings)}
        ensure_topics(settings)
        self.say(f"topics: tariffmon.demo-{run_id}.*  (worker group {settings.worker.app_id})")
        self._start_worker(settings)
        try:
            self._replay(settings)
            reactions = self._print_reactions(settings, idle_s, max_wait_s)
            self._where_to_look(settings, run_id, reactions)
            if keep_running:
                self._wait_for_interrupt()
            return reactions
        finally:
            self._stop_worker()

    def _broker(self) -> str:
        if self.bootstrap:
            self.say(f"using the Kafka cluster at {self.bootstrap}")
            return self.bootstrap
        broker = LocalBroker(self.base.local_broker)
        self.say(f"starting the local Kafka broker on {broker.bootstrap} "
                 "(first run: Maven fetches its jars) ...")
        broker.start()
        self.say(f"broker up at {broker.bootstrap}; data in {self.base.local_broker.home}")
        return broker.bootstrap

    def _start_worker(self, settings: Settings) -> None:
        self.worker_log = Path(settings.worker.data_dir) / "worker.log"
        self.worker = WorkerProcess(settings, self.worker_log, settings.metrics.worker_port,
                                    loglevel="WARNING").start()
        self.say(f"worker running (pid {self.worker.pid}); metrics on {self.worker.metrics_url}")

    def _replay(self, settings: Settings) -> None:
        from tariffmon.producers.replay import replay
        from tariffmon.producers.runtime import producer_runtime

        here = Path.cwd()
        names = [str(p.relative_to(here)) if p.is_absolute() and p.is_relative_to(here)
                 else str(p) for p in self.files]
        self.say(f"replaying {', '.join(names)} at full speed ...")
        with producer_runtime(settings, metrics_port=None) as (producer, _m, stop):
            result = replay(self.files, producer, settings.topics.all_topics(), stop=stop)
        self.say(f"replayed {result.acked} events in {result.elapsed_s:.1f}s "
                 f"({result.rate:,.0f}/s); failed: {result.failed}")
        if result.failed or result.interrupted:
            raise DemoError("the replay did not complete")

    def _print_reactions(self, settings: Settings, idle_s: float, max_wait_s: float
                         ) -> list[Reaction]:
        self.say("reactions as the worker publishes them "
                 "(time UTC, symbol, horizon, log return, z, significant, gap):")
        consumer = KafkaConsumer(
            settings.topics.reactions, group_id=None, auto_offset_reset="earliest",
            enable_auto_commit=False, **client_config(settings.kafka),
        )
        seen: dict[str, Reaction] = {}
        started = last_new = time.monotonic()
        try:
            while (len(seen) < len(self.expected)
                   and time.monotonic() - last_new < idle_s
                   and time.monotonic() - started < max_wait_s):
                for batch in consumer.poll(timeout_ms=500).values():
                    for rec in batch:
                        try:
                            r = Reaction.decode(rec.value)
                        except ContractError as exc:
                            log.warning("unreadable reaction at offset %d: %s", rec.offset, exc)
                            continue
                        if r.key not in seen:
                            seen[r.key] = r
                            last_new = time.monotonic()
                            self.say("  " + format_reaction(r))
                if self.worker is not None and not self.worker.running():
                    raise DemoError(f"the worker stopped; see {self.worker_log}")
        finally:
            consumer.close()
        return sorted(seen.values(), key=lambda r: (r.t0, r.symbol, r.horizon_s))

    def _where_to_look(self, settings: Settings, run_id: str, live: list[Reaction]) -> None:
        host, port = settings.metrics.host, settings.metrics.worker_port
        same = sum(1 for r in live if self.expected.get(r.key) == r)
        self.say("")
        self.say(f"{len(live)} reactions measured live; {same} of the offline backtest's "
                 f"{len(self.expected)} are identical. Where to look:")
        self.say(f"  metrics:    http://{host}:{port}/metrics  (tariffmon_* series)")
        self.say("  Prometheus: prometheus --config.file=config/prometheus/prometheus.yml "
                 "(rules and alerts included)")
        env_file = Path(settings.worker.data_dir) / "topics.env"
        env_file.write_text("".join(
            f"TARIFFMON_TOPICS__{stream.upper()}={topic}\n"
            for stream, topic in settings.topics.all_topics().items()
        ) + f"TARIFFMON_KAFKA__BOOTSTRAP_SERVERS={settings.kafka.bootstrap_servers}\n")
        self.say(f"  terminal:   set -a; . {env_file}; set +a; tariffmon watch")
        self.say(f"  worker log: {self.worker_log}")
        self.say("  offline:    tariffmon backtest data/sample/* --out out/backtest")

    def _wait_for_interrupt(self) -> None:
        self.say("The worker keeps running. Ctrl-C stops it; `tariffmon kafka stop` stops the "
                 "broker.")
        stopped: list[int] = []

        def handler(signum: int, _frame: object) -> None:
            stopped.append(signum)

        old = signal.signal(signal.SIGTERM, handler)
        try:
            while not stopped:
                if self.worker is not None and not self.worker.running():
                    raise DemoError(f"the worker stopped; see {self.worker_log}")
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            signal.signal(signal.SIGTERM, old)

    def _stop_worker(self) -> None:
        if self.worker is None or not self.worker.running():
            return
        self.say("stopping the worker ...")
        self.worker.stop()
