"""The live path end to end on the bundled sample: broker, worker, replay, reactions.

``tariffmon demo`` starts the local broker (unless a bootstrap address is configured), starts a
worker process, replays ``data/sample`` (in the base folder, see
:func:`tariffmon.settings.home_dir`) at full speed into topics of its own (so a second demo
never mixes with the first), prints each reaction as the worker publishes it, and then leaves
the worker and its metrics endpoint up until Ctrl-C, saying where to look.

Each run's topics hold the whole sample (124k events); so that runs do not pile up in the
broker's data folder, a demo first deletes the topics (its own and Faust's) and the data
folders of earlier runs whose worker is gone (:func:`remove_earlier_runs`).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import shlex
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from kafka import KafkaConsumer

from tariffmon.contract import Reaction
from tariffmon.errors import ContractError, TariffmonError
from tariffmon.kafkaclient import admin_client, client_config, ensure_topics, wait_for_broker
from tariffmon.localkafka import LocalBroker
from tariffmon.settings import KafkaSettings, Settings, TopicSettings, home_dir, load_settings
from tariffmon.workerproc import WorkerProcess

log = logging.getLogger(__name__)

#: the bundled sample, relative to the base folder (the checkout when running from a clone)
SAMPLE_DIR = Path("data") / "sample"
#: a run's topics are TOPIC_PREFIX + RUN + "." + stream; its worker group, and so the topics
#: Faust names after it (changelogs), GROUP_PREFIX + RUN
TOPIC_PREFIX = "tariffmon.demo-"
GROUP_PREFIX = "tariffmon-demo-"
#: RUN: the start time, UTC
RUN_ID_FORMAT = "%Y%m%d-%H%M%S"
_RUN_ID = r"\d{8}-\d{6}"
#: group states in which a run's worker is still up (its topics are kept)
_LIVE_GROUP_STATES = frozenset({"Stable", "PreparingRebalance", "CompletingRebalance"})
#: a run whose worker never joined its group is kept this long after its start: it may be
#: another demo starting now (its topics exist a few seconds before its worker joins)
STARTING_GRACE_S = 15 * 60


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
    topics = {s: f"{TOPIC_PREFIX}{run_id}.{s}" for s in TopicSettings().all_topics()}
    return load_settings(
        kafka={**base.kafka.model_dump(exclude_none=True), "bootstrap_servers": bootstrap},
        topics={**base.topics.model_dump(), **topics},
        worker={**base.worker.model_dump(), "app_id": f"{GROUP_PREFIX}{run_id}",
                "data_dir": str(demo_data_root(base) / run_id)},
        metrics={**base.metrics.model_dump(), "worker_port": metrics_port},
    )


def demo_data_root(base: Settings) -> Path:
    """The folder of the runs' data folders: ``demo/`` next to the worker's data folder."""
    return Path(base.worker.data_dir).parent / "demo"


def remove_earlier_runs(kafka: KafkaSettings, data_root: Path | None = None, *,
                        keep: frozenset[str] = frozenset(), topic_prefix: str = TOPIC_PREFIX,
                        group_prefix: str = GROUP_PREFIX, now: dt.datetime | None = None,
                        ) -> list[str]:
    """Delete what earlier demo runs left: their topics and their data folders.

    Left alone: the runs in ``keep``, a run whose worker group has members (another demo
    running now), and a run whose worker never joined (no group) that started less than
    :data:`STARTING_GRACE_S` ago (another demo starting now).  Returns the run ids
    removed, oldest first.
    """
    now = now or dt.datetime.now(dt.UTC)
    pattern = re.compile(
        rf"^(?:{re.escape(topic_prefix)}|{re.escape(group_prefix)})({_RUN_ID})(?:[.-]|$)")
    admin = admin_client(kafka)
    try:
        by_run: dict[str, list[str]] = {}
        for topic in admin.list_topics():
            found = pattern.match(topic)
            if found and found.group(1) not in keep:
                by_run.setdefault(found.group(1), []).append(topic)
        runs = sorted(by_run)
        if runs:
            groups = admin.describe_groups([group_prefix + run for run in runs])
            runs = [run for run in runs
                    if _finished(_group_state(groups.get(group_prefix + run)), run, now)]
            doomed = sorted(t for run in runs for t in by_run[run])
            if doomed:
                admin.delete_topics(doomed, timeout_ms=30_000)
    finally:
        admin.close()
    if data_root is not None:
        for run in runs:
            folder = data_root / run
            if folder.is_dir():
                shutil.rmtree(folder, ignore_errors=True)
    return runs


def _finished(state: str, run: str, now: dt.datetime) -> bool:
    """Whether a run is over: its worker left (Empty), or never came and the run is old."""
    if state in _LIVE_GROUP_STATES:
        return False
    if state == "Empty":
        return True
    started = dt.datetime.strptime(run, RUN_ID_FORMAT).replace(tzinfo=dt.UTC)
    return (now - started).total_seconds() > STARTING_GRACE_S


def _group_state(group: Any) -> str:
    if not isinstance(group, dict):
        return "Dead"
    return str(group.get("group_state", "Dead"))


def cli_command() -> str:
    """How to run tariffmon as this process runs it, for commands printed to the user.

    ``tariffmon`` when that is what the shell finds (an activated venv, an installed
    package); else the console script next to this Python (``.venv/bin/tariffmon``,
    relative to the working directory when under it); else ``python -m tariffmon.cli.main``.
    """
    script = Path(sys.executable).parent / "tariffmon"
    found = shutil.which("tariffmon")
    if found and script.is_file() and Path(found).resolve() == script.resolve():
        return "tariffmon"
    if script.is_file() and os.access(script, os.X_OK):
        return shlex.quote(_relative(script))
    return f"{shlex.quote(sys.executable)} -m tariffmon.cli.main"


def _relative(path: Path) -> str:
    """``path`` relative to the working directory when it lies under it, else absolute."""
    here = Path.cwd()
    return str(path.relative_to(here)) if path.is_absolute() and path.is_relative_to(here) \
        else str(path)


def prometheus_config(settings: Settings, rules_dir: Path | None) -> str:
    """A Prometheus configuration scraping what the demo runs: its worker, nothing else.

    The shipped ``config/prometheus/prometheus.yml`` also scrapes both producers, which a
    demo does not start, so ``TargetDown`` would page for them.  The alert rules are
    included when ``rules_dir`` (``config/prometheus/rules`` of the checkout) exists; no
    Alertmanager is configured: alerts show on Prometheus's own Alerts page.
    """
    host, port = settings.metrics.host, settings.metrics.worker_port
    rules = (f"rule_files:\n  - {json_str(str(rules_dir / '*.rules.yml'))}\n\n"
             if rules_dir is not None and rules_dir.is_dir() else "")
    return (
        "# written by `tariffmon demo`: scrapes the demo's worker only\n"
        "global:\n  scrape_interval: 15s\n  evaluation_interval: 15s\n\n"
        f"{rules}"
        "scrape_configs:\n"
        "  - job_name: tariffmon-worker\n"
        f"    static_configs:\n      - targets: [{json_str(f'{host}:{port}')}]\n"
    )


def json_str(text: str) -> str:
    """A YAML scalar that is the text as it is (JSON strings are YAML)."""
    return json.dumps(text)


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
        run_id = dt.datetime.now(dt.UTC).strftime(RUN_ID_FORMAT)
        settings = demo_settings(self.base, bootstrap, run_id, self.metrics_port)
        wait_for_broker(settings.kafka)  # an unreachable cluster fails before the backtest
        removed = remove_earlier_runs(settings.kafka, demo_data_root(self.base),
                                      keep=frozenset({run_id}))
        if removed:
            self.say(f"removed the topics and data of {len(removed)} earlier demo run(s)")
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
        same = sum(1 for r in live if self.expected.get(r.key) == r)
        self.say("")
        self.say(f"{len(live)} reactions measured live; {same} of the offline backtest's "
                 f"{len(self.expected)} are identical. Where to look:")
        for line in self.hints(settings):
            self.say(line)

    def hints(self, settings: Settings) -> list[str]:
        """The closing hints, each a command that works as printed from the working folder.

        Writes the files they name into the run's data folder: ``topics.env`` (the run's
        topics and cluster, for ``watch``) and ``prometheus.yml`` (see
        :func:`prometheus_config`).
        """
        cli = cli_command()
        data = Path(settings.worker.data_dir)
        data.mkdir(parents=True, exist_ok=True)
        env_file = data / "topics.env"
        env_file.write_text("".join(
            f"TARIFFMON_TOPICS__{stream.upper()}={topic}\n"
            for stream, topic in settings.topics.all_topics().items()
        ) + f"TARIFFMON_KAFKA__BOOTSTRAP_SERVERS={settings.kafka.bootstrap_servers}\n")
        prom = data / "prometheus.yml"
        prom.write_text(prometheus_config(settings, home_dir() / "config" / "prometheus" / "rules"))
        files = " ".join(shlex.quote(_relative(p)) for p in self.files)
        q = shlex.quote
        host, port = settings.metrics.host, settings.metrics.worker_port
        return [
            f"  metrics:    http://{host}:{port}/metrics  (tariffmon_* series)",
            f"  Prometheus: prometheus --config.file={q(_relative(prom))} "
            f"--storage.tsdb.path={q(_relative(data / 'prometheus'))}  (the worker only)",
            f"  terminal:   set -a; . {q(_relative(env_file))}; set +a; {cli} watch",
            f"  worker log: {_relative(self.worker_log) if self.worker_log else '-'}",
            f"  offline:    {cli} backtest {files} --out out/backtest",
        ]

    def _wait_for_interrupt(self) -> None:
        self.say(f"The worker keeps running. Ctrl-C stops it; `{cli_command()} kafka stop` stops "
                 "the broker.")
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
