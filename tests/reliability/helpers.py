"""Shared by the reliability tests: reading outputs, metrics, offsets (and the reference)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kafka.errors import KafkaError
from prometheus_client.parser import text_string_to_metric_families

from tariffmon.contract import Alert, Headline, Reaction, Tick
from tariffmon.kafkaclient import admin_client
from tariffmon.recorded import RecordedEvent, merge_events
from tariffmon.settings import PROJECT_ROOT, Settings
from tests.kafka_helpers import consume_all

SAMPLE_FILES = (
    PROJECT_ROOT / "data" / "sample" / "ticks.jsonl.gz",
    PROJECT_ROOT / "data" / "sample" / "headlines.jsonl",
)
DAY_MS = 86_400_000


def sample_day(day_start_ms: int) -> list[RecordedEvent]:
    """One UTC day of the bundled sample, ticks and headlines merged in event-time order."""
    return list(merge_events(list(SAMPLE_FILES), day_start_ms, day_start_ms + DAY_MS))


def split_events(events: Iterable[RecordedEvent]) -> tuple[list[Tick], list[Headline]]:
    """The ticks and the headlines of recorded events, as contract messages."""
    ticks: list[Tick] = []
    headlines: list[Headline] = []
    for ev in events:
        if ev.stream == "ticks":
            ticks.append(Tick.from_dict(ev.value))
        elif ev.stream == "headlines":
            headlines.append(Headline.from_dict(ev.value))
    return ticks, headlines


@dataclass
class Outputs:
    """The reactions and alerts on the output topics, every record kept, by key."""

    reactions: dict[str, list[Reaction]]
    alerts: dict[str, list[Alert]]

    @property
    def reaction_records(self) -> int:
        """How many reaction records the topic holds (duplicates included)."""
        return sum(len(v) for v in self.reactions.values())

    @property
    def alert_records(self) -> int:
        """How many alert records the topic holds (re-issues and duplicates included)."""
        return sum(len(v) for v in self.alerts.values())

    def reaction_duplicates(self) -> int:
        """Reaction records beyond the first of their key."""
        return self.reaction_records - len(self.reactions)

    def conflicting_reactions(self) -> dict[str, list[Reaction]]:
        """Keys with two different reaction values (must never happen)."""
        return {k: v for k, v in self.reactions.items() if any(r != v[0] for r in v)}


def read_outputs(settings: Settings, timeout: float = 60.0) -> Outputs:
    """Everything on the reactions and alerts topics right now (ordered per partition)."""
    reactions: dict[str, list[Reaction]] = {}
    for rec in consume_all(settings, settings.topics.reactions, timeout=timeout):
        r = Reaction.decode(rec.value)
        assert rec.key.decode() == r.key
        reactions.setdefault(r.key, []).append(r)
    alerts: dict[str, list[Alert]] = {}
    for rec in consume_all(settings, settings.topics.alerts, timeout=timeout):
        a = Alert.decode(rec.value)
        assert rec.key.decode() == a.key
        alerts.setdefault(a.key, []).append(a)
    return Outputs(reactions, alerts)


def wait_for_reactions(settings: Settings, keys: Iterable[str], timeout: float,
                       alive: Any = None) -> Outputs:
    """Poll the output topics until every key in ``keys`` has a reaction (or time runs out).

    ``alive``, when given, is called on each round and may raise to stop early (a dead worker).
    """
    wanted = set(keys)
    deadline = time.monotonic() + timeout
    while True:
        if alive is not None:
            alive()
        out = read_outputs(settings)
        if wanted <= set(out.reactions) or time.monotonic() >= deadline:
            return out
        time.sleep(0.5)


def metric_samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    """Every sample called ``name`` in a /metrics page, with its labels."""
    out: list[tuple[dict[str, str], float]] = []
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name:
                out.append((dict(s.labels), float(s.value)))
    return out


def metric_value(text: str, name: str, **labels: str) -> float:
    """The sum of the samples of ``name`` whose labels include ``labels`` (0 when none)."""
    return sum(v for lab, v in metric_samples(text, name)
               if all(lab.get(k) == val for k, val in labels.items()))


class GroupProbe:
    """Asks the broker about the worker's consumer group (one admin connection, reused)."""

    def __init__(self, settings: Settings) -> None:
        self.group = settings.worker.app_id
        self._admin = admin_client(settings.kafka)

    def committed(self, topic: str) -> dict[int, int]:
        """The group's committed offset per partition of ``topic`` (missing: none yet)."""
        offsets = self._admin.list_group_offsets({self.group: None})
        return {tp.partition: meta.offset for tp, meta in offsets.get(self.group, {}).items()
                if tp.topic == topic and meta.offset >= 0}

    def state(self) -> tuple[str, list[str]]:
        """The group's state (``Stable``, ``PreparingRebalance``...) and its member ids."""
        # kafka-python warns at every call that it cannot decode Faust's subscription
        # metadata, which would bury a failing test's output; the state is all this reads
        logging.getLogger("kafka.admin._groups").setLevel(logging.ERROR)
        deadline = time.monotonic() + 30
        while True:
            try:
                group = self._admin.describe_groups([self.group])[self.group]
                break
            except KafkaError as exc:
                # a broker's first group has no coordinator until __consumer_offsets exists
                if not exc.retriable or time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        return str(group["group_state"]), [str(m["member_id"]) for m in group["members"]]

    def close(self) -> None:
        """Close the admin connection."""
        self._admin.close()


def wait_for_settled_worker(settings: Settings, alive: Callable[[], None],
                            timeout: float = 60.0) -> None:
    """Until the worker's group is Stable with both its consumers (Faust's and the react
    service's, which join one after the other); ``alive()`` raises if the worker died."""
    group = GroupProbe(settings)
    deadline = time.monotonic() + timeout
    try:
        while True:
            state, members = group.state()
            if state == "Stable" and len(members) >= 2:
                return
            alive()
            assert time.monotonic() < deadline, "the worker's group did not settle"
            time.sleep(0.5)
    finally:
        group.close()


def log_count(path: Path, needle: str) -> int:
    """How many lines of a worker log contain ``needle``."""
    try:
        with path.open("rb") as fh:
            return sum(1 for line in fh if needle.encode() in line)
    except OSError:
        return 0
