"""Session fixtures: the real Kafka broker every integration test talks to.

``kafka_bootstrap`` is ``host:port`` of a real broker.  With ``TARIFFMON_TEST_BOOTSTRAP``
set, that broker is used and the tests *fail* (never skip) when it does not answer within
``TARIFFMON_TEST_BOOTSTRAP_TIMEOUT_S`` (default 20 s).  Otherwise a private single-node
broker (:class:`tariffmon.localkafka.LocalBroker`) is started on free loopback ports with its
data in a temporary folder, once per session and only when an integration test asks for it,
and stopped at the end.

Every test starts without ``TARIFFMON_*`` environment variables (``isolated_env``), so that
none depends on the caller's environment; only the two above, which choose the broker, stay.

``make_settings(**overrides)`` builds :class:`~tariffmon.settings.Settings` pointing at that
broker, with topic names unique to the call (so tests never see each other's records), a
unique worker app id and data dir, and the topics created.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tariffmon.errors import BrokerError
from tariffmon.kafkaclient import ensure_topics, wait_for_broker
from tariffmon.localkafka import LocalBroker
from tariffmon.settings import LocalBrokerSettings, Settings, TopicSettings, load_settings
from tests.kafka_helpers import free_ports

TEST_BOOTSTRAP_ENV = "TARIFFMON_TEST_BOOTSTRAP"
TEST_BOOTSTRAP_TIMEOUT_ENV = "TARIFFMON_TEST_BOOTSTRAP_TIMEOUT_S"
#: the variables that choose the session's broker: kept by :func:`isolated_env`
KEPT_ENV = frozenset({TEST_BOOTSTRAP_ENV, TEST_BOOTSTRAP_TIMEOUT_ENV})
#: logical stream names, as TopicSettings.all_topics() lists them
STREAMS = tuple(TopicSettings().all_topics())

MakeSettings = Callable[..., Settings]


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Remove every ``TARIFFMON_*`` variable but :data:`KEPT_ENV` for the test's duration.

    Settings read ``TARIFFMON_*`` overrides (tariffmon/settings.py), so a variable left in
    the caller's shell would change what a test loads.  Tests that need one set it with
    ``monkeypatch.setenv``; the original environment is restored afterwards.
    """
    for name in list(os.environ):
        if name.startswith("TARIFFMON_") and name not in KEPT_ENV:
            monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``host:port`` of a real, answering Kafka broker for this test session."""
    given = os.environ.get(TEST_BOOTSTRAP_ENV, "").strip()
    if given:
        timeout = float(os.environ.get(TEST_BOOTSTRAP_TIMEOUT_ENV, "20"))
        kafka = load_settings(kafka={"bootstrap_servers": given}).kafka
        problem = ""
        try:
            wait_for_broker(kafka, timeout=timeout)
        except BrokerError as exc:
            problem = str(exc)
        if problem:  # fail, never skip: a given broker that is down is a broken test run
            pytest.fail(f"{TEST_BOOTSTRAP_ENV}={given}: {problem}", pytrace=False)
        yield given
        return

    port, controller_port = free_ports(2)
    broker = LocalBroker(
        LocalBrokerSettings(
            host="127.0.0.1",
            port=port,
            controller_port=controller_port,
            home=tmp_path_factory.mktemp("kafka-home"),
            heap="512m",
        ),
        detach=False,  # an interrupted or killed test run takes its broker along
    )
    problem = ""
    try:
        broker.start(timeout=120)
    except BrokerError as exc:
        problem = str(exc)
    if problem:
        broker.stop(timeout=10)
        pytest.fail(f"could not start the test broker: {problem}", pytrace=False)
    try:
        yield broker.bootstrap
    finally:
        broker.stop(timeout=20)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")[:40] or "test"


@pytest.fixture
def make_settings(
    kafka_bootstrap: str, tmp_path: Path, request: pytest.FixtureRequest
) -> MakeSettings:
    """A factory of Settings for this test: unique topics (created), app id and data dir.

    Keyword arguments are settings sections as dicts; ``kafka``, ``topics`` and ``worker``
    are merged into the generated ones (e.g. ``make_settings(topics={"symbol_partitions":
    1})``), the rest passed to ``load_settings`` as they are.  ``create_topics=False`` skips
    creating the topics.  The headline producer has no default feeds here (``producer.feeds``
    is empty unless a test names some): tests never reach the internet.
    """
    test_slug = _slug(request.node.name)

    def make(*, create_topics: bool = True, **overrides: Any) -> Settings:
        suffix = uuid.uuid4().hex[:8]
        topics: dict[str, Any] = {s: f"test.{test_slug}.{suffix}.{s}" for s in STREAMS}
        topics.update(overrides.pop("topics", {}))
        kafka = {"bootstrap_servers": kafka_bootstrap, **overrides.pop("kafka", {})}
        worker = {
            "app_id": f"tariffmon-test-{suffix}",
            "data_dir": str(tmp_path / f"worker-{suffix}"),
            **overrides.pop("worker", {}),
        }
        producer = {"feeds": [], **overrides.pop("producer", {})}
        settings = load_settings(kafka=kafka, topics=topics, worker=worker, producer=producer,
                                 **overrides)
        if create_topics:
            ensure_topics(settings)
        return settings

    return make
