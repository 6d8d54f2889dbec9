"""`tariffmon produce`: each producer serves /metrics on the port it is configured with.

Compose runs the tick and the headline producer in separate containers with the same
``TARIFFMON_METRICS__PRODUCER_PORT``, and its health checks and Prometheus scrape that port
in each container, so neither producer may move to another one on its own.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import tariffmon.producers.runtime
import tariffmon.topic_reader
from tariffmon.cli.failures import EXIT_UNEXPECTED
from tariffmon.cli.main import main


class _ReachedError(Exception):
    """Raised by the stand-in runtime once it knows the metrics port."""


@pytest.fixture
def served_ports(monkeypatch: pytest.MonkeyPatch) -> list[int | None]:
    """The metrics ports the producers ask their runtime for (no Kafka, no server)."""
    ports: list[int | None] = []

    @contextlib.contextmanager
    def runtime(settings: Any, *, metrics_port: int | None) -> Iterator[Any]:
        ports.append(metrics_port)
        raise _ReachedError
        yield  # pragma: no cover - a generator, for contextmanager

    monkeypatch.setattr(tariffmon.producers.runtime, "producer_runtime", runtime)
    monkeypatch.setattr(tariffmon.producers.runtime, "ensure_stream_topics", lambda *a, **k: None)
    monkeypatch.setattr(tariffmon.topic_reader, "read_tail", lambda *a, **k: [])
    return ports


def _produce(argv: list[str]) -> None:
    # the command line reports the stand-in's error as an unforeseen failure
    assert main(["produce", *argv]) == EXIT_UNEXPECTED


@pytest.mark.parametrize("kind", ["ticks", "headlines"])
def test_each_producer_serves_the_configured_port(
    kind: str, served_ports: list[int | None], monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    monkeypatch.setenv("TARIFFMON_METRICS__PRODUCER_PORT", "39465")
    source = tmp_path / "headlines.jsonl"
    source.write_text('{"title": "US imposes 24% tariffs on Japan"}\n')
    _produce(["ticks", "--once"] if kind == "ticks" else ["headlines", "--once", str(source)])
    assert served_ports == [39465]


def test_metrics_port_flag_wins_and_zero_turns_it_off(
    served_ports: list[int | None], tmp_path: Path,
) -> None:
    source = tmp_path / "headlines.jsonl"
    source.write_text('{"title": "US imposes 24% tariffs on Japan"}\n')
    _produce(["headlines", "--once", "--metrics-port", "39466", str(source)])
    _produce(["headlines", "--once", "--metrics-port", "0", str(source)])
    _produce(["ticks", "--once", "--metrics-port", "39467"])
    assert served_ports == [39466, None, 39467]
