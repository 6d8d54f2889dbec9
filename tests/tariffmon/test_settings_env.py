"""``TARIFFMON_*`` variables: the forms people write, errors naming the variable, typos warned."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tariffmon.errors import ConfigError
from tariffmon.settings import (
    NON_SETTING_VARIABLES,
    PROJECT_ROOT,
    EnvSource,
    Settings,
    load_settings,
    unknown_variables,
)

HORIZONS = "TARIFFMON_ENGINE__HORIZONS_S"


def _forms(values: list[int]) -> list[str]:
    """The ways a person writes a list in a variable."""
    return [json.dumps(values), ",".join(map(str, values)), " , ".join(map(str, values)),
            ",".join(map(str, values)) + ",", "[" + ",".join(map(str, values)) + "]"]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=10**6), min_size=1, max_size=8))
def test_a_list_setting_reads_json_and_comma_separated_alike(values: list[int]) -> None:
    with pytest.MonkeyPatch.context() as mp:
        seen = set()
        for form in _forms(values):
            mp.setenv(HORIZONS, form)
            seen.add(tuple(load_settings().engine.horizons_s))
        assert seen == {tuple(values)}


def test_a_list_of_text_splits_on_commas(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TARIFFMON_PRODUCER__FEEDS", "nhk=https://a.example/rss, https://b.example")
    assert load_settings().producer.feeds == ["nhk=https://a.example/rss", "https://b.example"]
    monkeypatch.setenv("TARIFFMON_PRODUCER__FEEDS", "")
    assert load_settings().producer.feeds == []


@pytest.mark.parametrize("value", ["[60, 300", "[60 300]", "[60,]"])
def test_a_list_that_does_not_parse_names_the_variable_and_the_forms(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv(HORIZONS, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert info.value.setting == HORIZONS
    assert "JSON list" in str(info.value) and value in str(info.value)


@pytest.mark.parametrize(("variable", "value", "setting"), [
    (HORIZONS, "60;300", "engine.horizons_s"),
    (HORIZONS, "60,five", "engine.horizons_s"),
    ("TARIFFMON_ENGINE__BASELINE_S", "two hours", "engine.baseline_s"),
    ("TARIFFMON_METRICS__WORKER_PORT", "-1", "metrics.worker_port"),
])
def test_a_bad_value_names_the_setting_and_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, setting: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert info.value.setting.startswith(setting)
    assert f"set by {variable}" in str(info.value)


def test_a_table_or_a_section_takes_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TARIFFMON_ENGINE__SHARP_BP", '{"60": 5, "300": 6, "900": 7}')
    monkeypatch.setenv("TARIFFMON_ENGINE", '{"cooldown_s": 7, "baseline_s": 11}')
    monkeypatch.setenv("TARIFFMON_ENGINE__BASELINE_S", "13")  # the single setting wins
    engine = load_settings().engine
    assert engine.sharp_bp == {"60": 5.0, "300": 6.0, "900": 7.0}
    assert (engine.cooldown_s, engine.baseline_s) == (7, 13)
    monkeypatch.setenv("TARIFFMON_ENGINE__SHARP_BP", "60=5")
    with pytest.raises(ConfigError, match="TARIFFMON_ENGINE__SHARP_BP: expected a JSON object"):
        load_settings()


@pytest.mark.parametrize(("typo", "nearest"), [
    ("TARIFFMON_ENIGNE__HORIZONS_S", "TARIFFMON_ENGINE__HORIZONS_S"),
    ("TARIFFMON_KAFKA_BOOTSTRAP_SERVERS", "TARIFFMON_KAFKA__BOOTSTRAP_SERVERS"),
    ("TARIFFMON_METRICS__WORKERPORT", "TARIFFMON_METRICS__WORKER_PORT"),
    ("TARIFFMON_CONFG", "TARIFFMON_CONFIG"),
    ("tariffmon_engine__horizon_s", "TARIFFMON_ENGINE__HORIZONS_S"),
    ("TARIFFMON_QQQQQQQQ", None),
])
def test_a_variable_matching_no_setting_is_reported_with_the_nearest(
    typo: str, nearest: str | None
) -> None:
    assert unknown_variables({typo: "1", "PATH": "/bin"}) == [(typo, nearest)]


def test_every_real_variable_is_known() -> None:
    """What the settings hand to a child process, and the non-setting variables, warn of nothing."""
    env = Settings().to_env()
    env.update({name: "x" for name in NON_SETTING_VARIABLES})
    env["TARIFFMON_KAFKA__SASL_PASSWORD"] = "secret"
    assert unknown_variables(env) == []
    # and ignored, not applied: the typo does not reach the settings
    assert EnvSource(Settings, {"TARIFFMON_ENIGNE__BASELINE_S": "1"})() == {}


def test_the_command_line_warns_of_each_typo_at_start_up(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TARIFFMON_")}
    env["PYTHONPATH"] = str(PROJECT_ROOT)
    env["TARIFFMON_ENIGNE__HORIZONS_S"] = "60,300"
    env["TARIFFMON_KAFKA_BOOTSTRAP_SERVERS"] = "10.0.0.1:9092"
    env[HORIZONS] = "60,300"
    proc = subprocess.run(
        [sys.executable, "-m", "tariffmon.cli.main", "classify", "US raises tariffs on Japan"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    warnings = [line for line in proc.stderr.splitlines() if "matches no setting" in line]
    assert len(warnings) == 2, proc.stderr
    assert any("TARIFFMON_ENIGNE__HORIZONS_S" in w and "did you mean "
               "TARIFFMON_ENGINE__HORIZONS_S?" in w for w in warnings)
    assert any("TARIFFMON_KAFKA_BOOTSTRAP_SERVERS " in w and "did you mean "
               "TARIFFMON_KAFKA__BOOTSTRAP_SERVERS?" in w for w in warnings)
