"""The backtest and the live pipeline give identical reactions and alerts on the sample."""

from __future__ import annotations

from pathlib import Path

import pytest

from tariffmon.backtest import run_backtest
from tariffmon.contract import DeadLetter, Reaction
from tariffmon.demo import sample_files
from tariffmon.producers.kafka_producer import TopicProducer
from tariffmon.producers.metrics import ProducerMetrics
from tariffmon.producers.replay import replay
from tariffmon.settings import PROJECT_ROOT
from tests.conftest import MakeSettings
from tests.kafka_helpers import committed_offsets, consume_all, wait_until
from tests.reliability.helpers import read_outputs
from tests.worker_process import WorkerProcess

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.mark.parametrize("lateness_s", [21_600, 600], ids=["default-lateness", "short-lateness"])
def test_backtest_equals_live_on_the_sample(
    make_settings: MakeSettings, tmp_path: Path, lateness_s: int
) -> None:
    """The whole sample is on the topics before the worker starts: a backlog of days.

    With a 10-minute lateness bound the headlines are published only once the worker has
    processed every tick (reaction requests are applied before any tick backlog, so they
    would otherwise be on time), and the worker measures them on ticks read back from Kafka;
    the answers must still be the backtest's.
    """
    from prometheus_client import CollectorRegistry

    settings = make_settings(engine={"lateness_s": lateness_s})
    files = sample_files(PROJECT_ROOT / "data" / "sample")
    backtest = run_backtest(files, settings)
    offline = {r.key: r for r in backtest.reactions}
    assert len(offline) > 40 and backtest.alerts
    headlines_after = lateness_s < 3_600
    topics = settings.topics.all_topics()
    first = {k: v for k, v in topics.items() if not (headlines_after and k == "headlines")}

    def publish(streams: dict[str, str]) -> int:
        producer = TopicProducer(settings, ProducerMetrics(CollectorRegistry()))
        try:
            result = replay(files, producer, streams)
        finally:
            producer.close()
        # every event of the streams given is acknowledged; the others are only skipped
        assert result.failed == 0
        assert result.acked + sum(result.skipped_streams.values()) == result.read
        return result.acked

    acked = publish(first)
    with WorkerProcess(settings, tmp_path / "worker.log") as worker:
        if headlines_after:
            wait_until(lambda: sum(committed_offsets(settings, settings.topics.ticks).values()),
                       240, "every tick committed", until=lambda n: n >= backtest.counts.ticks)
            acked += publish({"headlines": topics["headlines"]})
        assert acked >= backtest.counts.ticks + backtest.counts.headlines
        records = consume_all(settings, settings.topics.reactions, len(offline), timeout=240)
        # every input committed: every alert (and re-issue) it caused is on the topic
        wait_until(lambda: sum(committed_offsets(settings, settings.topics.ticks).values()),
                   120, "every tick committed", until=lambda n: n >= backtest.counts.ticks)
        alerts = read_outputs(settings).alerts
        late = sum(float(line.rsplit(" ", 1)[1]) for line in worker.metrics_text().splitlines()
                   if line.startswith("tariffmon_late_inputs_total{"))
        # the input ends before some horizons: those reactions are pending, as in the
        # backtest, never dead-lettered as too late, and the worker says so when it stops
        assert backtest.counts.pending > 0
        wait_until(lambda: _metric(worker.metrics_text(), "tariffmon_reactions_pending"), 60,
                   "the pending reactions reported", until=lambda n: n == backtest.counts.pending)
    reasons = [DeadLetter.decode(r.value).reason
               for r in consume_all(settings, settings.topics.deadletter, timeout=5)]
    assert reasons == []
    assert f"{backtest.counts.pending} reactions pending at shutdown" in \
        (tmp_path / "worker.log").read_text()
    if lateness_s < 3_600:
        assert late > 10  # the read-back path really ran
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
    # alerts: the last version of each key is the backtest's, attributed headlines included
    last = {k: v[-1] for k, v in alerts.items()}
    assert set(last) == {a.key for a in backtest.alerts}
    wrong = {a.key: ([h.id for h in last[a.key].headlines], [h.id for h in a.headlines])
             for a in backtest.alerts if last[a.key] != a}
    assert wrong == {}, f"{len(wrong)} of {len(backtest.alerts)} alerts differ (live, backtest)"


def _metric(text: str, name: str) -> float:
    return next(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                if line.startswith(f"{name} "))
