"""Typed settings: defaults here, a TOML settings file, then ``TARIFFMON_*``.

Precedence, strongest first: keyword arguments, environment variables (``TARIFFMON_`` prefix,
``__`` between nested names, e.g. ``TARIFFMON_KAFKA__BOOTSTRAP_SERVERS``), a ``.env`` file,
the TOML settings file, the defaults below.  The variables are read by :class:`EnvSource`: a
list takes JSON or commas (``60,300``), a table or section JSON; a value that does not parse
names its variable; a variable that matches no setting is ignored, and
:func:`unknown_variables` lists those with the nearest valid names (the command line warns).

The settings file is the first of: the file named by ``TARIFFMON_CONFIG`` (which must
exist), ``config/tariffmon.toml`` in the base folder if there is one; else only the defaults
below apply.  The base folder is ``TARIFFMON_HOME`` when set, else the current working
directory (the checkout when running from a clone, so ``make demo`` and ``make test`` find
``config/tariffmon.toml``, ``var/`` and ``.cache/`` there).  Everything written by default goes
under it - the local broker's data in ``var/kafka``, its jars in ``.cache/kafka/libs``, the
worker's data in ``var/faust`` - never into the installed package.  The files the code needs
(the classifier rules, the local broker's Maven pom and log4j2 config) are package data in
``tariffmon/defaults/``, found with :mod:`importlib.resources`.

:func:`load_settings` is the only entry point: it turns every validation failure into a
:class:`~tariffmon.errors.ConfigError` naming the setting (dotted path) and the reason, so a
process fails at start-up rather than later.
"""

from __future__ import annotations

import difflib
import json
import os
import types
import typing
from collections.abc import Mapping
from importlib.resources import files
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from tariffmon.core.calendar import TradingCalendar
from tariffmon.errors import ConfigError, TariffmonError

#: The folder above the package: the checkout when running from a clone (the tests and the
#: benchmarks find ``data/sample`` and ``bench/`` there).  For an installed package it is
#: ``site-packages``, so no default depends on it.
PROJECT_ROOT = Path(__file__).resolve().parent.parent
#: The variable naming the base folder of the relative defaults (else the working directory).
HOME_ENV = "TARIFFMON_HOME"
#: The settings file looked for in the base folder when TARIFFMON_CONFIG is not set.
CONFIG_FILE_NAME = Path("config") / "tariffmon.toml"
#: The prefix of every settings variable; ``__`` separates a section from its setting.
ENV_PREFIX = "TARIFFMON_"
#: ``TARIFFMON_*`` variables that are not settings but are read elsewhere: the settings file
#: and base folder, the Compose file's headline feeds, and the test suite's broker address.
NON_SETTING_VARIABLES = frozenset({
    "TARIFFMON_CONFIG", HOME_ENV, "TARIFFMON_FEEDS",
    "TARIFFMON_TEST_BOOTSTRAP", "TARIFFMON_TEST_BOOTSTRAP_TIMEOUT_S",
})


def home_dir() -> Path:
    """The base folder: ``TARIFFMON_HOME`` when set, else the current working directory."""
    explicit = os.environ.get(HOME_ENV)
    return Path(explicit).expanduser().resolve() if explicit else Path.cwd()


def packaged_file(name: str) -> Path:
    """A file shipped in ``tariffmon/defaults/`` (``name`` relative to it, ``/``-separated).

    The package must be installed as files (as pip installs a wheel), not run from a zip.
    """
    resource = files("tariffmon").joinpath("defaults", *name.split("/"))
    if not isinstance(resource, Path):  # pragma: no cover - a zip import
        raise ConfigError("tariffmon.defaults", f"{name} is not a file on disk ({resource})")
    return resource


def _under_home(*parts: str) -> Path:
    return home_dir().joinpath(*parts)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class KafkaSettings(_Model):
    """How to reach the Kafka cluster."""

    bootstrap_servers: str = "127.0.0.1:9092"
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    #: never logged or exposed: read it from TARIFFMON_KAFKA__SASL_PASSWORD
    sasl_password: SecretStr | None = None
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    client_id: str = "tariffmon"
    #: per request; kafka-python retries retriable errors until delivery_timeout_ms
    request_timeout_ms: int = Field(30_000, ge=1_000)
    delivery_timeout_ms: int = Field(120_000, ge=1_000)
    #: how long a command waits for the cluster to answer at start-up before it fails with
    #: one line naming kafka.bootstrap_servers (TARIFFMON_KAFKA__CONNECT_TIMEOUT_S)
    connect_timeout_s: float = Field(10.0, gt=0, le=600)

    @model_validator(mode="after")
    def _security_complete(self) -> KafkaSettings:
        if self.security_protocol.startswith("SASL"):
            if self.sasl_mechanism is None:
                raise ValueError("sasl_mechanism is required with SASL protocols")
            if not self.sasl_username or self.sasl_password is None:
                raise ValueError(
                    "sasl_username and sasl_password are required with SASL protocols "
                    "(set TARIFFMON_KAFKA__SASL_USERNAME / TARIFFMON_KAFKA__SASL_PASSWORD)"
                )
        for name in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
            path = getattr(self, name)
            if path is not None and not Path(path).is_file():
                raise ValueError(f"{name}: file {str(path)!r} does not exist")
        return self

    def bootstrap_list(self) -> list[str]:
        """The bootstrap addresses as a list of ``host:port``."""
        return [s.strip() for s in self.bootstrap_servers.split(",") if s.strip()]


class LocalBrokerSettings(_Model):
    """The development broker that ``tariffmon kafka start`` runs on the JVM."""

    host: str = "127.0.0.1"
    port: int = Field(9092, ge=1, le=65_535)
    controller_port: int = Field(9093, ge=1, le=65_535)
    #: data, logs and pid file; wipe it to start from nothing (default: var/kafka in the
    #: base folder, see home_dir)
    home: Path = Field(default_factory=lambda: _under_home("var", "kafka"))
    #: where Maven copies the broker's jars (default: .cache/kafka/libs in the base folder)
    libs_dir: Path = Field(default_factory=lambda: _under_home(".cache", "kafka", "libs"))
    java: str = "java"
    heap: str = "768m"
    start_timeout_s: float = Field(90.0, gt=0)


class TopicSettings(_Model):
    """Topic names and partition counts.  ticks and requests must be co-partitioned."""

    ticks: str = "tariffmon.ticks"
    headlines: str = "tariffmon.headlines"
    classified: str = "tariffmon.headlines.classified"
    requests: str = "tariffmon.reaction-requests"
    reactions: str = "tariffmon.reactions"
    alerts: str = "tariffmon.alerts"
    deadletter: str = "tariffmon.deadletter"
    #: shared by ticks and requests (key = symbol), so a symbol's both streams meet
    symbol_partitions: int = Field(3, ge=1, le=1_000)
    headline_partitions: int = Field(1, ge=1, le=1_000)
    output_partitions: int = Field(3, ge=1, le=1_000)
    replication_factor: int = Field(1, ge=1, le=7)

    def all_topics(self) -> dict[str, str]:
        """Logical stream name -> topic name."""
        return {
            "ticks": self.ticks, "headlines": self.headlines, "classified": self.classified,
            "requests": self.requests, "reactions": self.reactions, "alerts": self.alerts,
            "deadletter": self.deadletter,
        }

    def partitions_of(self, stream: str) -> int:
        """The partition count a logical stream's topic is created with."""
        if stream in ("ticks", "requests"):
            return self.symbol_partitions
        if stream in ("headlines", "classified"):
            return self.headline_partitions
        return self.output_partitions


class SymbolSettings(_Model):
    """One instrument: its canonical name, its Yahoo ticker and its trading calendar."""

    name: str = Field(pattern=r"^[A-Z0-9_.]{1,20}$")
    yahoo: str
    #: weekly open intervals in UTC (see tariffmon.core.calendar)
    calendar: list[str] = ["always"]
    #: no tick for longer than this while the calendar says open counts as closed (holiday)
    staleness_s: int = Field(600, gt=0)
    #: sharp-move thresholds in basis points per window, overriding engine.sharp_bp
    sharp_bp: dict[str, float] | None = None
    #: the sane price band, in the symbol's quote units: a tick outside it is dead-lettered
    #: (a unit mix-up or fat finger); its bounds keep every ratio of two prices, hence
    #: every log return and volatility the engine computes, finite
    price_min: float = Field(1e-6, ge=1e-12, le=1e15, allow_inf_nan=False)
    price_max: float = Field(1e9, ge=1e-12, le=1e15, allow_inf_nan=False)
    #: an exchange calendar of the exchange-calendars library (e.g. "XTKS", Tokyo): its
    #: sessions, holidays and half days take precedence over ``calendar`` within its range
    exchange_calendar: str | None = Field(None, pattern=r"^[A-Z0-9_]{2,12}$")
    #: daily bars (CSV with date, open and close columns, as yfinance's daily history
    #: writes them) seeding the baseline of gap reactions before the engine has seen gaps
    gap_seed: Path | None = None

    @model_validator(mode="after")
    def _calendar_parses(self) -> SymbolSettings:
        try:
            TradingCalendar.parse(self.calendar)
        except ConfigError as exc:
            raise ValueError(exc.reason) from None
        if not self.price_min < self.price_max:
            raise ValueError(
                f"price_min ({self.price_min:g}) must be below price_max ({self.price_max:g})"
            )
        return self

    def trading_calendar(self) -> TradingCalendar:
        """The parsed calendar."""
        return TradingCalendar.parse(self.calendar)


#: CME Globex hours (Sunday to Friday 17:00-16:00 Chicago time, a daily hour's halt) as a
#: weekly UTC calendar.  Chicago's clock moves with US daylight saving, a weekly UTC calendar
#: does not: this one is closed whenever the market is closed under either offset (opening
#: Sunday 23:00, closing Friday 21:00, halted 21:00-23:00), so it never calls the market open
#: while it is shut; from March to November the futures also trade 22:00-23:00 UTC, and a
#: headline in that hour is measured from the next tick, flagged ``gap``.
CME_GLOBEX_CALENDAR = (
    "Sun 23:00 - Mon 21:00", "Mon 23:00 - Tue 21:00", "Tue 23:00 - Wed 21:00",
    "Wed 23:00 - Thu 21:00", "Thu 23:00 - Fri 21:00",
)


def _default_symbols() -> list[SymbolSettings]:
    return [
        SymbolSettings(
            name="USDJPY", yahoo="JPY=X", calendar=["Sun 21:00 - Fri 21:00"], staleness_s=300,
            price_min=50.0, price_max=500.0,
        ),
        SymbolSettings(
            name="N225", yahoo="^N225",
            calendar=["Mon-Fri 00:00-02:30", "Mon-Fri 03:30-06:30"], staleness_s=300,
            price_min=1_000.0, price_max=200_000.0, exchange_calendar="XTKS",
        ),
        # CME's yen-denominated Nikkei 225 futures: they trade while Tokyo is shut, so a
        # headline of the US evening is measured at once on them, not at Tokyo's reopen
        SymbolSettings(
            name="NIY", yahoo="NIY=F", calendar=list(CME_GLOBEX_CALENDAR), staleness_s=300,
            price_min=1_000.0, price_max=200_000.0,
        ),
    ]


class EngineSettings(_Model):
    """Parameters of the pure core: horizons, volatility baseline, thresholds, lateness."""

    horizons_s: list[int] = [60, 300, 900, 3600]
    baseline_s: int = Field(7_200, gt=0)
    #: how late (event time) a headline may arrive after the ticks that follow it
    lateness_s: int = Field(6 * 3_600, ge=0)
    significance_z: float = Field(3.0, gt=0)
    significance_bp: float = Field(10.0, ge=0)
    #: fewer baseline one-minute returns than this: z is still given but flagged sparse_baseline
    min_baseline_returns: int = Field(20, ge=2)
    sharp_windows_s: list[int] = [60, 300, 900]
    #: basis points per window length (seconds as strings, TOML keys)
    sharp_bp: dict[str, float] = {"60": 20.0, "300": 40.0, "900": 60.0}
    sharp_z: float = Field(6.0, gt=0)
    cooldown_s: int = Field(900, ge=0)
    lookback_s: int = Field(3_600, gt=0)
    #: headlines of the same story within this window share a cluster id
    cluster_window_s: int = Field(6 * 3_600, ge=0)
    cluster_similarity: float = Field(0.6, gt=0, le=1)
    #: a gap reaction's z needs at least this many past gaps of its kind
    gap_min_count: int = Field(20, ge=2)
    #: a gap reaction is significant from this |z| against past gaps of its kind on:
    #: gap distributions are short-tailed (the Nikkei's 2021-2025 opens never pass 2.7)
    gap_significance_z: float = Field(2.5, gt=0)
    #: ... and uses at most this many, the most recent
    gap_max_count: int = Field(500, ge=2)
    #: how far back (before a gap's close) the gaps seen in the ticks count; older ones
    #: come from the gap seed (a rebuild after a restart reads the ticks back this far)
    gap_memory_s: int = Field(7 * 86_400, ge=0)
    #: headlines of one symbol less than this apart while its market is open are
    #: confounded (counted once in the backtest's averages)
    confound_window_s: int = Field(900, ge=0)

    @model_validator(mode="after")
    def _consistent(self) -> EngineSettings:
        if not self.horizons_s or any(h <= 0 for h in self.horizons_s):
            raise ValueError("horizons_s must be a non-empty list of positive seconds")
        if not self.sharp_windows_s or any(w <= 0 for w in self.sharp_windows_s):
            raise ValueError("sharp_windows_s must be a non-empty list of positive seconds")
        missing = [w for w in self.sharp_windows_s if str(w) not in self.sharp_bp]
        if missing:
            raise ValueError(f"sharp_bp has no threshold for windows {missing}")
        return self



class ClassifierSettings(_Model):
    """The tariff classifier's rules file and decision threshold."""

    #: default: the rules shipped with the package, tariffmon/defaults/classifier.yaml
    rules_file: Path = Field(default_factory=lambda: packaged_file("classifier.yaml"))
    threshold: float = Field(3.0, gt=0)

    @model_validator(mode="after")
    def _rules_exist(self) -> ClassifierSettings:
        if not Path(self.rules_file).is_file():
            raise ValueError(f"rules_file {str(self.rules_file)!r} does not exist")
        return self


class MetricsSettings(_Model):
    """Where each process serves /metrics; bind to loopback unless told otherwise."""

    host: str = "127.0.0.1"
    worker_port: int = Field(9464, ge=0, le=65_535)
    producer_port: int = Field(9465, ge=0, le=65_535)
    enabled: bool = True


class WorkerSettings(_Model):
    """The Faust worker."""

    app_id: str = "tariffmon"
    #: Faust's table and offset data (default: var/faust in the base folder)
    data_dir: Path = Field(default_factory=lambda: _under_home("var", "faust"))
    commit_interval_s: float = Field(1.0, gt=0)
    #: how long the group coordinator waits for a silent member (e.g. a crashed worker)
    #: before its partitions go to another member, or to the same worker restarted (at most
    #: Faust's 90 s request timeout; the broker's group.min.session.timeout.ms, 6 s by default,
    #: is the floor)
    session_timeout_s: float = Field(10.0, ge=1, le=90)
    #: a tick further ahead of the wall clock than this is dead-lettered: the engine refuses
    #: ticks older than a symbol's newest, so one bogus future tick would silence the symbol
    #: until the clock caught up with it
    max_tick_ahead_s: int = Field(300, ge=0, le=86_400)
    #: dead letters are logged as one summary line per reason and interval (the first of
    #: each reason at once, with its coordinates); the metrics count every one
    dead_letter_log_interval_s: float = Field(60.0, gt=0)


#: The headline feeds polled when none are configured: public RSS on US-Japan trade, as
#: ``NAME=URL`` (NAME is the headlines' source and the metric label).  Google News searches
#: in English and in Japanese (entries of the last day, outlet named in each title) and NHK
#: World's English news; the classifier picks the tariff stories out of them.  Set
#: ``producer.feeds`` to replace them (``[]`` for none).
DEFAULT_FEEDS = (
    "googlenews-en=https://news.google.com/rss/search?q=Japan+tariffs+when:1d"
    "&hl=en-US&gl=US&ceid=US:en",
    "googlenews-ja=https://news.google.com/rss/search?q=%E9%96%A2%E7%A8%8E+%E6%97%A5%E7%B1%B3"
    "+when:1d&hl=ja&gl=JP&ceid=JP:ja",
    "nhkworld-en=https://www3.nhk.or.jp/nhkworld/en/news/feeds/",
)


class ProducerSettings(_Model):
    """Sources and the kafka-python producer."""

    tick_mode: Literal["stream", "poll"] = "stream"
    poll_interval_s: float = Field(60.0, gt=0)
    feeds: list[str] = Field(default_factory=lambda: list(DEFAULT_FEEDS))
    feed_interval_s: float = Field(120.0, gt=0)
    linger_ms: int = Field(20, ge=0)
    batch_size: int = Field(256 * 1024, ge=1_024)
    compression: Literal["none", "gzip", "snappy", "lz4", "zstd"] = "lz4"
    backoff_initial_s: float = Field(1.0, gt=0)
    backoff_max_s: float = Field(300.0, gt=0)


class Settings(BaseSettings):
    """Everything configurable, built once at start-up by :func:`load_settings`."""

    model_config = SettingsConfigDict(
        env_prefix="TARIFFMON_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
        toml_file=None,
    )

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    local_broker: LocalBrokerSettings = Field(default_factory=LocalBrokerSettings)
    topics: TopicSettings = Field(default_factory=TopicSettings)
    symbols: list[SymbolSettings] = Field(default_factory=_default_symbols)
    engine: EngineSettings = Field(default_factory=EngineSettings)
    classifier: ClassifierSettings = Field(default_factory=ClassifierSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    worker: WorkerSettings = Field(default_factory=WorkerSettings)
    producer: ProducerSettings = Field(default_factory=ProducerSettings)

    @model_validator(mode="after")
    def _unique_symbols(self) -> Settings:
        names = [s.name for s in self.symbols]
        if not names:
            raise ValueError("symbols: at least one symbol is required")
        if len(set(names)) != len(names):
            raise ValueError(f"symbols: duplicate names in {names}")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_path = _config_file()
        # our own environment source instead of pydantic-settings': it names the variable in
        # every error and reads lists written the way people write them (see EnvSource)
        sources: list[PydanticBaseSettingsSource] = [
            init_settings, EnvSource(settings_cls), dotenv_settings,
        ]
        if toml_path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_path))
        return tuple(sources)

    def symbol(self, name: str) -> SymbolSettings:
        """The settings of one canonical symbol."""
        for s in self.symbols:
            if s.name == name:
                return s
        raise ConfigError("symbols", f"unknown symbol {name!r}")

    def to_env(self) -> dict[str, str]:
        """``TARIFFMON_*`` variables that make another process load these same settings.

        Used to hand settings to child processes (the demo's worker); includes secrets, so
        the result belongs in a child's environment only, never in a log.
        """
        out: dict[str, str] = {}
        for section, value in self.model_dump(mode="json").items():
            if isinstance(value, dict):
                for key, item in value.items():
                    out[f"TARIFFMON_{section.upper()}__{key.upper()}"] = _env_value(item)
            else:
                out[f"TARIFFMON_{section.upper()}"] = _env_value(value)
        if self.kafka.sasl_password is not None:
            out["TARIFFMON_KAFKA__SASL_PASSWORD"] = self.kafka.sasl_password.get_secret_value()
        return {k: v for k, v in out.items() if v != "null"}

    def symbol_names(self) -> frozenset[str]:
        """The canonical symbols, for contract validation."""
        return frozenset(s.name for s in self.symbols)

    def price_bands(self) -> dict[str, tuple[float, float]]:
        """Each symbol's sane price band ``(lowest, highest)``, for contract validation."""
        return {s.name: (s.price_min, s.price_max) for s in self.symbols}


def _env_value(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value)


def _unwrap_optional(annotation: Any) -> Any:
    """``X | None`` -> ``X``; anything else unchanged."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _setting_variables() -> dict[str, tuple[str, ...]]:
    """Every settings variable (upper case) -> the path of the setting it sets."""
    out: dict[str, tuple[str, ...]] = {}
    for name, field in Settings.model_fields.items():
        out[f"{ENV_PREFIX}{name.upper()}"] = (name,)
        annotation = _unwrap_optional(field.annotation)
        if _is_model(annotation):
            for sub in annotation.model_fields:
                out[f"{ENV_PREFIX}{name.upper()}__{sub.upper()}"] = (name, sub)
    return out


def _field_at(path: tuple[str, ...]) -> FieldInfo:
    field = Settings.model_fields[path[0]]
    if len(path) == 2:
        field = _unwrap_optional(field.annotation).model_fields[path[1]]
    return field


def _parse_env_value(variable: str, raw: str, field: FieldInfo) -> Any:
    """The value of one variable for ``field``: lists as JSON or comma-separated, objects as
    JSON, anything else as the string itself (pydantic converts and validates it)."""
    annotation = _unwrap_optional(field.annotation)
    origin = typing.get_origin(annotation) or annotation
    text = raw.strip()
    if origin in (list, tuple, set, frozenset):
        item = (typing.get_args(annotation) or (str,))[0]
        if text.startswith("[") or _is_model(item):
            return _json_value(variable, text, "a JSON list, e.g. [60, 300]"
                               if not _is_model(item) else "a JSON list of objects")
        return [part.strip() for part in text.split(",") if part.strip()]
    if origin in (dict, Mapping) or _is_model(origin):
        return _json_value(variable, text, 'a JSON object, e.g. {"key": "value"}')
    return raw


def _json_value(variable: str, text: str, form: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ConfigError(variable, f"expected {form} ({exc}; got {text!r})") from None


class EnvSource(PydanticBaseSettingsSource):
    """The ``TARIFFMON_*`` variables, nested by ``__``, read the way people write them.

    A list setting takes a JSON list (``[60, 300]``) or a comma-separated one
    (``60,300``); a section, a table or a list of tables (``TARIFFMON_SYMBOLS``) takes JSON.
    A value that does not parse raises ConfigError naming the variable and the form
    expected.  A variable that matches no setting is left out here and reported by
    :func:`unknown_variables` (the command line warns at start-up).  Names are matched
    without regard to case, like pydantic-settings' own source.
    """

    def __init__(self, settings_cls: type[BaseSettings],
                 environ: Mapping[str, str] | None = None) -> None:
        super().__init__(settings_cls)
        self.environ = os.environ if environ is None else environ

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        """Unused: :meth:`__call__` reads every variable at once."""
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        """The nested settings dictionary the variables describe."""
        known = _setting_variables()
        out: dict[str, Any] = {}
        for variable, raw in self.environ.items():
            path = known.get(variable.upper())
            if path is None:
                continue
            value = _parse_env_value(variable, raw, _field_at(path))
            if len(path) == 1:
                section = out.get(path[0])
                # a whole section as JSON, merged under the single settings of that section
                if isinstance(section, dict) and isinstance(value, dict):
                    out[path[0]] = {**value, **section}
                else:
                    out[path[0]] = value
            else:
                target = out.setdefault(path[0], {})
                if isinstance(target, dict):
                    target[path[1]] = value
        return out


def env_variable_of(setting: str) -> str:
    """The ``TARIFFMON_*`` variable that sets a dotted setting (``engine.horizons_s``)."""
    parts = setting.split(".")[:2]
    return ENV_PREFIX + "__".join(p.upper() for p in parts)


def unknown_variables(environ: Mapping[str, str] | None = None) -> list[tuple[str, str | None]]:
    """``TARIFFMON_*`` variables that match no setting, each with the nearest valid name.

    The nearest name is the closest settings variable by spelling (None when nothing is
    close), so ``TARIFFMON_KAFKA_BOOTSTRAP_SERVERS`` (one underscore) suggests
    ``TARIFFMON_KAFKA__BOOTSTRAP_SERVERS``.
    """
    environ = os.environ if environ is None else environ
    valid = sorted(_setting_variables())
    out: list[tuple[str, str | None]] = []
    for variable in sorted(environ):
        upper = variable.upper()
        if not upper.startswith(ENV_PREFIX) or upper in NON_SETTING_VARIABLES:
            continue
        if upper in valid:
            continue
        # compared without the prefix, which every name shares and would make all close
        names = [v.removeprefix(ENV_PREFIX) for v in [*valid, *sorted(NON_SETTING_VARIABLES)]]
        close = difflib.get_close_matches(upper.removeprefix(ENV_PREFIX), names, n=1,
                                          cutoff=0.6)
        out.append((variable, ENV_PREFIX + close[0] if close else None))
    return out


def _config_file() -> Path | None:
    explicit = os.environ.get("TARIFFMON_CONFIG")
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError("TARIFFMON_CONFIG", f"file {explicit!r} does not exist")
        return path
    found = home_dir() / CONFIG_FILE_NAME
    return found if found.is_file() else None


def _set_by(setting: str) -> str:
    """`` (set by TARIFFMON_X__Y)`` when that variable is set, so the user knows where to look."""
    variable = env_variable_of(setting)
    names = {v.upper(): v for v in os.environ}
    if variable in names:
        return f" (set by {names[variable]})"
    if variable.split("__")[0] in names:
        return f" (set by {names[variable.split('__')[0]]})"
    return ""


def load_settings(**overrides: Any) -> Settings:
    """Load and validate the settings; a bad value raises ConfigError naming the setting."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"]) or "settings"
        msg = err["msg"].removeprefix("Value error, ")
        value = err.get("input")
        shown = "" if isinstance(value, dict | list) or loc.endswith("password") else (
            f" (got {value!r})"
        )
        raise ConfigError(loc, f"{msg}{shown}{_set_by(loc)}") from None
    except ValueError as exc:  # e.g. a TOML syntax error from the file source
        if isinstance(exc, TariffmonError):
            raise
        raise ConfigError("config file", str(exc)) from None
