"""Settings: defaults, the TOML file, TARIFFMON_* overrides, errors that name the setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from tariffmon.errors import ConfigError
from tariffmon.settings import Settings, load_settings


def test_defaults_load() -> None:
    s = load_settings()
    assert isinstance(s, Settings)
    assert s.kafka.bootstrap_servers == "127.0.0.1:9092"
    assert s.kafka.security_protocol == "PLAINTEXT"
    assert s.symbol_names() == frozenset({"USDJPY", "N225", "NIY"})
    assert s.symbol("USDJPY").yahoo == "JPY=X"
    assert s.symbol("N225").yahoo == "^N225"
    assert s.symbol("NIY").yahoo == "NIY=F"
    assert s.engine.horizons_s == [60, 300, 900, 3600]
    assert s.engine.baseline_s == 7_200
    assert s.metrics.host == "127.0.0.1"
    assert s.topics.partitions_of("ticks") == s.topics.partitions_of("requests")


def test_shipped_file_states_the_code_defaults(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """config/tariffmon.toml documents the defaults; it must not silently differ from them."""
    from_file = load_settings()
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    monkeypatch.setenv("TARIFFMON_CONFIG", str(empty))
    assert load_settings() == from_file


def test_environment_override_wins_over_the_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TARIFFMON_ENGINE__BASELINE_S", "3600")
    monkeypatch.setenv("TARIFFMON_KAFKA__BOOTSTRAP_SERVERS", "10.0.0.1:9092,10.0.0.2:9092")
    monkeypatch.setenv("TARIFFMON_ENGINE__HORIZONS_S", "[60, 120]")
    s = load_settings()
    assert s.engine.baseline_s == 3600
    assert s.engine.horizons_s == [60, 120]
    assert s.kafka.bootstrap_list() == ["10.0.0.1:9092", "10.0.0.2:9092"]
    # the rest of the section still comes from the file/defaults
    assert s.engine.lateness_s == 21_600
    assert s.kafka.client_id == "tariffmon"


def test_keyword_override_wins_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TARIFFMON_ENGINE__BASELINE_S", "3600")
    monkeypatch.setenv("TARIFFMON_ENGINE__COOLDOWN_S", "60")
    s = load_settings(engine={"baseline_s": 1800})
    assert s.engine.baseline_s == 1800
    assert s.engine.cooldown_s == 60  # merged, not replaced


@pytest.mark.parametrize(
    ("env", "value", "setting"),
    [
        ("TARIFFMON_ENGINE__BASELINE_S", "-5", "engine.baseline_s"),
        ("TARIFFMON_ENGINE__BASELINE_S", "two hours", "engine.baseline_s"),
        ("TARIFFMON_LOCAL_BROKER__PORT", "70000", "local_broker.port"),
        ("TARIFFMON_KAFKA__SECURITY_PROTOCOL", "TLS", "kafka.security_protocol"),
        ("TARIFFMON_PRODUCER__COMPRESSION", "brotli", "producer.compression"),
        ("TARIFFMON_TOPICS__SYMBOL_PARTITIONS", "0", "topics.symbol_partitions"),
    ],
)
def test_bad_value_fails_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch, env: str, value: str, setting: str
) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert info.value.setting == setting
    assert str(info.value).startswith(f"setting {setting}: ")
    assert value in str(info.value)  # the offending value is shown


def test_inconsistent_section_fails_naming_it() -> None:
    with pytest.raises(ConfigError, match=r"setting engine: .*sharp_bp has no threshold"):
        load_settings(engine={"sharp_windows_s": [60, 120]})
    with pytest.raises(ConfigError, match=r"setting symbols\.0: bad time 25:00"):
        load_settings(symbols=[{"name": "X", "yahoo": "X", "calendar": ["Mon 25:00-26:00"]}])


def test_unknown_setting_is_rejected() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(engine={"baseline_seconds": 10})
    assert info.value.setting == "engine.baseline_seconds"


def test_sasl_without_credentials_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TARIFFMON_KAFKA__SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("TARIFFMON_KAFKA__SASL_MECHANISM", "SCRAM-SHA-512")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert info.value.setting == "kafka"
    assert "TARIFFMON_KAFKA__SASL_PASSWORD" in str(info.value)
    monkeypatch.setenv("TARIFFMON_KAFKA__SASL_USERNAME", "desk")
    monkeypatch.setenv("TARIFFMON_KAFKA__SASL_PASSWORD", "hunter2-secret")
    s = load_settings()
    assert s.kafka.sasl_password is not None
    assert s.kafka.sasl_password.get_secret_value() == "hunter2-secret"
    assert "hunter2" not in repr(s) and "hunter2" not in str(s.kafka)


def test_sasl_without_mechanism_fails() -> None:
    with pytest.raises(ConfigError, match="sasl_mechanism is required"):
        load_settings(kafka={"security_protocol": "SASL_PLAINTEXT", "sasl_username": "u",
                             "sasl_password": "p"})


def test_missing_ca_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"ssl_cafile: file .*missing\.pem.* does not exist"):
        load_settings(kafka={"security_protocol": "SSL",
                             "ssl_cafile": str(tmp_path / "missing.pem")})


def test_toml_file_from_tariffmon_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "desk.toml"
    cfg.write_text(
        '[kafka]\nbootstrap_servers = "kafka.desk:9092"\n'
        "[engine]\nbaseline_s = 5400\nhorizons_s = [300]\n"
        '[[symbols]]\nname = "USDJPY"\nyahoo = "JPY=X"\n'
    )
    monkeypatch.setenv("TARIFFMON_CONFIG", str(cfg))
    s = load_settings()
    assert s.kafka.bootstrap_servers == "kafka.desk:9092"
    assert s.engine.baseline_s == 5400 and s.engine.horizons_s == [300]
    assert s.symbol_names() == frozenset({"USDJPY"})
    assert s.engine.cooldown_s == 900  # not in the file: the default
    monkeypatch.setenv("TARIFFMON_ENGINE__BASELINE_S", "600")
    assert load_settings().engine.baseline_s == 600  # environment still wins over the file


def test_missing_config_file_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TARIFFMON_CONFIG", str(tmp_path / "nope.toml"))
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert info.value.setting == "TARIFFMON_CONFIG"
    assert "nope.toml" in str(info.value)


def test_bad_value_in_the_file_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[metrics]\nworker_port = -1\n")
    monkeypatch.setenv("TARIFFMON_CONFIG", str(cfg))
    with pytest.raises(ConfigError, match=r"setting metrics\.worker_port: .*-1"):
        load_settings()


def test_toml_syntax_error_fails(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cfg = tmp_path / "broken.toml"
    cfg.write_text("[engine\nbaseline_s = \n")
    monkeypatch.setenv("TARIFFMON_CONFIG", str(cfg))
    with pytest.raises(ConfigError):
        load_settings()


def test_duplicate_symbols_fail() -> None:
    with pytest.raises(ConfigError, match="duplicate"):
        load_settings(symbols=[{"name": "USDJPY", "yahoo": "JPY=X"},
                               {"name": "USDJPY", "yahoo": "JPY=X"}])


def test_settings_are_frozen() -> None:
    s = load_settings()
    with pytest.raises(Exception, match="frozen"):
        s.engine.baseline_s = 1  # type: ignore[misc]


def test_settings_file_search_order(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """TARIFFMON_CONFIG, else config/tariffmon.toml in the working directory, else defaults."""
    workdir = tmp_path / "work"
    monkeypatch.chdir(tmp_path)
    assert load_settings().engine.baseline_s == 7_200  # no file: the defaults
    (workdir / "config").mkdir(parents=True)
    (workdir / "config" / "tariffmon.toml").write_text("[engine]\nbaseline_s = 1234\n")
    monkeypatch.chdir(workdir)
    assert load_settings().engine.baseline_s == 1234
    explicit = tmp_path / "explicit.toml"
    explicit.write_text("[engine]\nbaseline_s = 4321\n")
    monkeypatch.setenv("TARIFFMON_CONFIG", str(explicit))
    assert load_settings().engine.baseline_s == 4321


def test_written_folders_follow_the_working_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    s = load_settings()
    assert s.local_broker.home == tmp_path / "var" / "kafka"
    assert s.local_broker.libs_dir == tmp_path / ".cache" / "kafka" / "libs"
    assert s.worker.data_dir == tmp_path / "var" / "faust"


def test_tariffmon_home_replaces_the_working_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    (home / "config").mkdir(parents=True)
    (home / "config" / "tariffmon.toml").write_text("[engine]\nbaseline_s = 1800\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TARIFFMON_HOME", str(home))
    s = load_settings()
    assert s.engine.baseline_s == 1800
    assert s.local_broker.home == home / "var" / "kafka"
    assert s.local_broker.libs_dir == home / ".cache" / "kafka" / "libs"
    assert s.worker.data_dir == home / "var" / "faust"


def test_classifier_rules_are_package_data(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import tariffmon

    monkeypatch.chdir(tmp_path)  # found wherever the process runs
    rules = load_settings().classifier.rules_file
    assert rules.is_file()
    assert rules == Path(tariffmon.__file__).parent / "defaults" / "classifier.yaml"
    own = tmp_path / "rules.yaml"
    own.write_bytes(rules.read_bytes())
    monkeypatch.setenv("TARIFFMON_CLASSIFIER__RULES_FILE", str(own))
    assert load_settings().classifier.rules_file == own


def test_the_local_broker_files_are_package_data() -> None:
    from tariffmon.localkafka.broker import DEFAULT_LOG4J, DEFAULT_POM

    assert DEFAULT_POM.is_file() and DEFAULT_POM.parent.name == "kafka"
    assert DEFAULT_LOG4J.is_file() and DEFAULT_LOG4J.parent == DEFAULT_POM.parent
