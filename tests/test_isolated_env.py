"""The autouse ``isolated_env`` fixture (tests/conftest.py): no test sees the caller's
``TARIFFMON_*`` variables, except the two that choose the session's broker."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tariffmon.settings import EngineSettings, load_settings
from tests.conftest import KEPT_ENV, TEST_BOOTSTRAP_TIMEOUT_ENV

#: set before any test of this module runs, as a caller's shell would
LEAKED = {
    "TARIFFMON_ENGINE__BASELINE_S": "1234",
    "TARIFFMON_KAFKA__BOOTSTRAP_SERVERS": "10.9.9.9:9092",
    "TARIFFMON_CONFIG": "/nonexistent/tariffmon.toml",
}


@pytest.fixture(scope="module", autouse=True)
def callers_environment() -> Iterator[dict[str, str]]:
    """``os.environ`` as a caller might leave it, set up before the function-scoped
    ``isolated_env`` and restored after the module."""
    with pytest.MonkeyPatch.context() as mp:
        for name, value in LEAKED.items():
            mp.setenv(name, value)
        # a kept variable: its present value (or the fixture's default) so nothing changes
        kept = os.environ.get(TEST_BOOTSTRAP_TIMEOUT_ENV, "20")
        mp.setenv(TEST_BOOTSTRAP_TIMEOUT_ENV, kept)
        yield {**LEAKED, TEST_BOOTSTRAP_TIMEOUT_ENV: kept}


def test_tariffmon_variables_set_before_the_test_are_gone(
    callers_environment: dict[str, str],
) -> None:
    leaked = sorted(n for n in os.environ if n.startswith("TARIFFMON_") and n not in KEPT_ENV)
    assert leaked == []
    # and settings load their defaults, not the caller's values (TARIFFMON_CONFIG would fail)
    settings = load_settings()
    assert settings.engine.baseline_s == EngineSettings().baseline_s
    assert settings.kafka.bootstrap_servers == "127.0.0.1:9092"


def test_the_broker_choosing_variables_stay(callers_environment: dict[str, str]) -> None:
    assert os.environ[TEST_BOOTSTRAP_TIMEOUT_ENV] == callers_environment[
        TEST_BOOTSTRAP_TIMEOUT_ENV]


def test_a_test_can_still_set_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TARIFFMON_ENGINE__BASELINE_S", "600")
    assert load_settings().engine.baseline_s == 600
