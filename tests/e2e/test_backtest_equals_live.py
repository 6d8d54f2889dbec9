"""The backtest and the live pipeline give identical reactions on the bundled sample."""

from __future__ import annotations

from pathlib import Path

import pytest

from producers.kafka_producer import TopicProducer
from producers.metrics import ProducerMetrics
from producers.replay import replay
from tariffmon.backtest import backtest_reactions
from tariffmon.contract import Reaction
from tariffmon.demo import sample_files
from tests.conftest import MakeSettings
from tests.kafka_helpers import consume_all
from tests.worker_process import WorkerProcess

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_backtest_equals_live_on_the_sample(make_settings: MakeSettings, tmp_path: Path) -> None:
    from prometheus_client import CollectorRegistry

    settings = make_settings()
    files = sample_files()
    offline = {r.key: r for r in backtest_reactions(files, settings)}
    assert len(offline) > 40

    producer = TopicProducer(settings, ProducerMetrics(CollectorRegistry()))
    try:
        result = replay(files, producer, settings.topics.all_topics())
    finally:
        producer.close()
    assert result.failed == 0 and result.acked == result.read

    with WorkerProcess(settings, tmp_path / "worker.log"):
        records = consume_all(settings, settings.topics.reactions, len(offline), timeout=240)
    live: dict[str, Reaction] = {}
    for rec in records:
        r = Reaction.decode(rec.value)
        assert live.setdefault(r.key, r) == r  # a repeat is never a different answer
    assert set(live) == set(offline)
    differing = {
        key: {f: (getattr(live[key], f), getattr(r, f)) for f in r.__dataclass_fields__
              if getattr(live[key], f) != getattr(r, f)}
        for key, r in offline.items() if live[key] != r
    }
    assert differing == {}
