"""The message contract: every message type on the wire, its units, validation and JSON form.

This module is the single definition used by the producers, the Faust workers, the recorder,
the replayer and the backtest.  Wire format (DESIGN.md): one UTF-8 JSON object per Kafka
value; ``ts`` and every other time is event time in integer milliseconds since the Unix epoch,
UTC; ``v`` is the schema version; prices are in the quote currency of the symbol (JPY per USD
for ``USDJPY``, index points for ``N225``); returns are natural-log returns (dimensionless);
horizons and windows are in seconds.

Decoding never trusts its input: any problem raises :class:`~tariffmon.errors.ContractError`
naming the field, the value and the rule.  Upper time bounds depend on "now", which this module
never reads: callers pass ``Limits.max_ts_ms`` (producers and workers use the wall clock plus a
day; the offline backtest leaves the fixed ceiling).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar, Literal, TypeVar

import orjson

from tariffmon.errors import ContractError

SCHEMA_VERSION = 1

#: 1990-01-01T00:00:00Z: nothing this monitor handles is older.
MIN_TS_MS = 631_152_000_000
#: 2100-01-01T00:00:00Z: a hard ceiling whatever the caller's notion of "now".
MAX_TS_MS = 4_102_444_800_000
#: How far beyond the newest data (the caller's "now") an event may lie.
FUTURE_SLACK_MS = 86_400_000

MAX_TITLE_CHARS = 1_000
MAX_SUMMARY_CHARS = 10_000
MAX_URL_CHARS = 2_048
MAX_ID_CHARS = 200
MAX_SOURCE_CHARS = 200
MAX_TAGS = 64
MAX_ATTRIBUTED = 20
#: The largest value accepted from Kafka before JSON parsing is even attempted.
MAX_MESSAGE_BYTES = 256 * 1024

TickKind = Literal["trade", "quote", "bar_close"]
Direction = Literal["escalation", "de-escalation", "neutral"]
MoveDirection = Literal["up", "down"]
TICK_KINDS: frozenset[str] = frozenset({"trade", "quote", "bar_close"})
DIRECTIONS: frozenset[str] = frozenset({"escalation", "de-escalation", "neutral"})
MOVE_DIRECTIONS: frozenset[str] = frozenset({"up", "down"})

#: Default canonical symbols; the settings may add more and pass them in ``Limits``.
DEFAULT_SYMBOLS: frozenset[str] = frozenset({"USDJPY", "N225"})


@dataclass(frozen=True, slots=True)
class Limits:
    """What a validator needs to know beyond the message itself."""

    symbols: frozenset[str] = DEFAULT_SYMBOLS
    #: newest acceptable event time; ``None`` means the fixed ceiling (:data:`MAX_TS_MS`)
    max_ts_ms: int | None = None

    def ceiling(self) -> int:
        """The newest acceptable event time in epoch milliseconds."""
        if self.max_ts_ms is None:
            return MAX_TS_MS
        return min(MAX_TS_MS, self.max_ts_ms)

    @staticmethod
    def from_now(now_ms: int, symbols: Iterable[str]) -> Limits:
        """Limits for live input: events may lie up to a day past ``now_ms``."""
        return Limits(frozenset(symbols), now_ms + FUTURE_SLACK_MS)


DEFAULT_LIMITS = Limits()


# --------------------------------------------------------------------------- field checks


def _require(obj: Mapping[str, Any], name: str) -> Any:
    if name not in obj:
        raise ContractError(name, None, "is required", reason="missing_field")
    return obj[name]


def check_version(obj: Mapping[str, Any]) -> None:
    """The schema version must be one this code understands."""
    v = _require(obj, "v")
    if type(v) is not int or v != SCHEMA_VERSION:
        raise ContractError(
            "v", v, f"must be schema version {SCHEMA_VERSION}", reason="bad_version"
        )


def check_ts(name: str, value: Any, limits: Limits) -> int:
    """An event time: integer epoch milliseconds between 1990 and the caller's ceiling."""
    if type(value) is not int:
        if isinstance(value, float) and math.isfinite(value) and value.is_integer():
            value = int(value)
        else:
            raise ContractError(
                name, value, "must be integer epoch milliseconds", reason="bad_type"
            )
    ms: int = int(value)
    if ms < MIN_TS_MS:
        raise ContractError(name, value, "must not be before 1990-01-01 UTC", reason="ts_range")
    ceiling = limits.ceiling()
    if ms > ceiling:
        raise ContractError(
            name, value, f"must not be after {ceiling} (a day past the newest data)",
            reason="ts_range",
        )
    return ms


def check_price(name: str, value: Any) -> float:
    """A price: a finite number strictly above zero."""
    if type(value) is bool or not isinstance(value, int | float):
        raise ContractError(name, value, "must be a number", reason="bad_type")
    f = float(value)
    if not math.isfinite(f):
        raise ContractError(name, value, "must be finite", reason="not_finite")
    if f <= 0.0:
        raise ContractError(name, value, "must be positive", reason="not_positive")
    return f


def check_number(name: str, value: Any, *, allow_none: bool = False) -> float | None:
    """A finite number (or ``None`` where allowed)."""
    if value is None and allow_none:
        return None
    if type(value) is bool or not isinstance(value, int | float):
        raise ContractError(name, value, "must be a number", reason="bad_type")
    f = float(value)
    if not math.isfinite(f):
        raise ContractError(name, value, "must be finite", reason="not_finite")
    return f


def check_text(name: str, value: Any, max_chars: int, *, required: bool = True) -> str:
    """Text: a string, non-empty after stripping when required, at most ``max_chars`` long."""
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise ContractError(name, value, "must be a string", reason="bad_type")
    if required and not value.strip():
        raise ContractError(name, value, "must not be empty", reason="empty_text")
    if len(value) > max_chars:
        raise ContractError(
            name, value, f"must be at most {max_chars} characters (got {len(value)})",
            reason="too_long",
        )
    return value


def check_symbol(value: Any, limits: Limits, name: str = "symbol") -> str:
    """A canonical symbol known to the settings."""
    if not isinstance(value, str):
        raise ContractError(name, value, "must be a string", reason="bad_type")
    if value not in limits.symbols:
        raise ContractError(
            name, value, f"must be one of {sorted(limits.symbols)}", reason="unknown_symbol"
        )
    return value


def check_choice(name: str, value: Any, choices: frozenset[str]) -> str:
    """One of a fixed set of strings."""
    if not isinstance(value, str) or value not in choices:
        raise ContractError(name, value, f"must be one of {sorted(choices)}", reason="bad_value")
    return value


def check_bool(name: str, value: Any) -> bool:
    """A JSON boolean."""
    if type(value) is not bool:
        raise ContractError(name, value, "must be true or false", reason="bad_type")
    return value


def check_positive_int(name: str, value: Any) -> int:
    """A strictly positive integer."""
    if type(value) is not int or value <= 0:
        raise ContractError(name, value, "must be a positive integer", reason="bad_value")
    return value


def check_tags(name: str, value: Any) -> tuple[str, ...]:
    """A list of short non-empty strings."""
    if not isinstance(value, list | tuple):
        raise ContractError(name, value, "must be a list of strings", reason="bad_type")
    if len(value) > MAX_TAGS:
        raise ContractError(name, value, f"must hold at most {MAX_TAGS} tags", reason="too_long")
    for tag in value:
        check_text(name, tag, 64)
    return tuple(value)


def _reject_unknown(obj: Mapping[str, Any], allowed: frozenset[str], kind: str) -> None:
    extra = set(obj) - allowed
    if extra:
        name = sorted(extra)[0]
        raise ContractError(
            name, obj[name], f"is not a field of a {kind} message", reason="unknown_field"
        )


# --------------------------------------------------------------------------- JSON


def loads(data: bytes | str) -> dict[str, Any]:
    """Parse one JSON object from bytes (UTF-8) or text; anything else is a ContractError."""
    if isinstance(data, bytes | bytearray | memoryview) and len(data) > MAX_MESSAGE_BYTES:
        raise ContractError(
            "$", f"<{len(data)} bytes>", f"must be at most {MAX_MESSAGE_BYTES} bytes",
            reason="too_large",
        )
    if isinstance(data, memoryview):
        data = bytes(data)
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        shown = data[:80] if isinstance(data, bytes | bytearray | str) else data
        raise ContractError("$", shown, f"must be UTF-8 JSON ({exc})", reason="bad_json") from exc
    if not isinstance(obj, dict):
        raise ContractError("$", obj, "must be a JSON object", reason="bad_json")
    return obj


def dumps(obj: Mapping[str, Any]) -> bytes:
    """Serialise to compact UTF-8 JSON, keys in a stable order (byte-identical on replay)."""
    return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)


_M = TypeVar("_M", bound="Message")


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _field_names(cls: type) -> tuple[str, ...]:
    """The data fields of a message class (``dataclasses.fields`` skips the ClassVars)."""
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(f.name for f in fields(cls))
    return names


class Message:
    """Behaviour shared by every message dataclass: JSON both ways."""

    KIND: ClassVar[str] = "message"
    __slots__ = ()

    def to_dict(self) -> dict[str, Any]:
        """The wire form as a dict; optional fields that are unset are left out."""
        # getattr over the fields, not dataclasses.asdict: asdict deep-copies every value and
        # dominated the cost of encoding on the replay and worker hot paths
        out: dict[str, Any] = {"v": SCHEMA_VERSION}
        for k in _field_names(type(self)):
            val = getattr(self, k)
            if val is None:
                continue
            out[k] = list(val) if isinstance(val, tuple) else val
        return out

    def encode(self) -> bytes:
        """The Kafka value: UTF-8 JSON."""
        return dumps(self.to_dict())

    @classmethod
    def from_dict(cls: type[_M], obj: Mapping[str, Any], limits: Limits = DEFAULT_LIMITS) -> _M:
        """Validate a decoded JSON object and build the message."""
        raise NotImplementedError  # every subclass defines its own validation

    @classmethod
    def decode(cls: type[_M], data: bytes | str, limits: Limits = DEFAULT_LIMITS) -> _M:
        """Parse and validate a Kafka value."""
        return cls.from_dict(loads(data), limits)


# --------------------------------------------------------------------------- messages


@dataclass(frozen=True, slots=True)
class Tick(Message):
    """A price observation for one symbol at event time ``ts``.

    ``kind`` is ``trade`` or ``quote`` for a point observation, ``bar_close`` for the close of a
    bar of ``interval_s`` seconds, whose ``ts`` is the bar's *end*: the close is only known then,
    so a bar never leaks into a reaction that starts before it closes.
    Key on Kafka: the symbol.
    """

    KIND: ClassVar[str] = "tick"
    FIELDS: ClassVar[frozenset[str]] = frozenset(
        {"v", "symbol", "ts", "price", "source", "volume", "kind", "interval_s"}
    )

    symbol: str
    ts: int
    price: float
    source: str
    kind: TickKind = "quote"
    volume: float | None = None
    interval_s: int | None = None

    @property
    def key(self) -> str:
        """The Kafka key."""
        return self.symbol

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any], limits: Limits = DEFAULT_LIMITS) -> Tick:
        check_version(obj)
        _reject_unknown(obj, cls.FIELDS, cls.KIND)
        kind = check_choice("kind", obj.get("kind", "quote"), TICK_KINDS)
        interval = obj.get("interval_s")
        if kind == "bar_close":
            interval = check_positive_int("interval_s", interval)
        elif interval is not None:
            raise ContractError(
                "interval_s", interval, "is only allowed on bar_close ticks", reason="bad_value"
            )
        volume = obj.get("volume")
        if volume is not None:
            volume = check_number("volume", volume)
            if volume is not None and volume < 0:
                raise ContractError("volume", volume, "must not be negative", reason="bad_value")
        return cls(
            symbol=check_symbol(_require(obj, "symbol"), limits),
            ts=check_ts("ts", _require(obj, "ts"), limits),
            price=check_price("price", _require(obj, "price")),
            source=check_text("source", _require(obj, "source"), MAX_SOURCE_CHARS),
            kind=kind,  # type: ignore[arg-type]
            volume=volume,
            interval_s=interval,
        )


@dataclass(frozen=True, slots=True)
class Headline(Message):
    """A news headline published at event time ``ts``.

    ``ts_estimated`` is true when the source gave no usable publication time and the fetch time
    stood in for it.  Key on Kafka: the id.
    """

    KIND: ClassVar[str] = "headline"
    FIELDS: ClassVar[frozenset[str]] = frozenset(
        {"v", "id", "ts", "source", "title", "url", "summary", "ts_estimated"}
    )

    id: str
    ts: int
    source: str
    title: str
    url: str | None = None
    summary: str | None = None
    ts_estimated: bool | None = None

    @property
    def key(self) -> str:
        """The Kafka key."""
        return self.id

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any], limits: Limits = DEFAULT_LIMITS) -> Headline:
        check_version(obj)
        _reject_unknown(obj, cls.FIELDS, cls.KIND)
        return cls(**_headline_fields(obj, limits))


def _headline_fields(obj: Mapping[str, Any], limits: Limits) -> dict[str, Any]:
    url = obj.get("url")
    summary = obj.get("summary")
    est = obj.get("ts_estimated")
    return {
        "id": check_text("id", _require(obj, "id"), MAX_ID_CHARS),
        "ts": check_ts("ts", _require(obj, "ts"), limits),
        "source": check_text("source", _require(obj, "source"), MAX_SOURCE_CHARS),
        "title": check_text("title", _require(obj, "title"), MAX_TITLE_CHARS),
        "url": None if url is None else check_text("url", url, MAX_URL_CHARS),
        "summary": None if summary is None else check_text(
            "summary", summary, MAX_SUMMARY_CHARS, required=False
        ),
        "ts_estimated": None if est is None else check_bool("ts_estimated", est),
    }


@dataclass(frozen=True, slots=True)
class ClassifiedHeadline(Message):
    """A headline with the classifier's verdict and its story cluster.

    ``cluster_id`` is the id of the first headline of the same story; ``duplicate`` is true
    for the later members, which are not measured again.  Key on Kafka: the headline id.
    """

    KIND: ClassVar[str] = "classified headline"
    FIELDS: ClassVar[frozenset[str]] = Headline.FIELDS | frozenset(
        {"is_tariff", "score", "tags", "direction", "cluster_id", "duplicate"}
    )

    id: str
    ts: int
    source: str
    title: str
    is_tariff: bool
    score: float
    tags: tuple[str, ...]
    direction: Direction
    cluster_id: str
    duplicate: bool = False
    url: str | None = None
    summary: str | None = None
    ts_estimated: bool | None = None

    @property
    def key(self) -> str:
        """The Kafka key."""
        return self.id

    @classmethod
    def from_dict(
        cls, obj: Mapping[str, Any], limits: Limits = DEFAULT_LIMITS
    ) -> ClassifiedHeadline:
        check_version(obj)
        _reject_unknown(obj, cls.FIELDS, cls.KIND)
        return cls(
            **_headline_fields(obj, limits),
            is_tariff=check_bool("is_tariff", _require(obj, "is_tariff")),
            score=check_number("score", _require(obj, "score")),  # type: ignore[arg-type]
            tags=check_tags("tags", _require(obj, "tags")),
            direction=check_choice(  # type: ignore[arg-type]
                "direction", _require(obj, "direction"), DIRECTIONS
            ),
            cluster_id=check_text("cluster_id", _require(obj, "cluster_id"), MAX_ID_CHARS),
            duplicate=check_bool("duplicate", obj.get("duplicate", False)),
        )


@dataclass(frozen=True, slots=True)
class ReactionRequest(Message):
    """A tariff headline fanned out to one symbol, so that it meets that symbol's ticks.

    Keyed by the symbol and co-partitioned with the ticks topic.
    """

    KIND: ClassVar[str] = "reaction request"
    FIELDS: ClassVar[frozenset[str]] = frozenset(
        {"v", "headline_id", "cluster_id", "symbol", "t0", "title", "tags", "direction", "score"}
    )

    headline_id: str
    cluster_id: str
    symbol: str
    t0: int
    title: str
    tags: tuple[str, ...] = ()
    direction: Direction = "neutral"
    score: float = 0.0

    @property
    def key(self) -> str:
        """The Kafka key (the symbol, as for ticks)."""
        return self.symbol

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any], limits: Limits = DEFAULT_LIMITS) -> ReactionRequest:
        check_version(obj)
        _reject_unknown(obj, cls.FIELDS, cls.KIND)
        return cls(
            headline_id=check_text("headline_id", _require(obj, "headline_id"), MAX_ID_CHARS),
            cluster_id=check_text("cluster_id", _require(obj, "cluster_id"), MAX_ID_CHARS),
            symbol=check_symbol(_require(obj, "symbol"), limits),
            t0=check_ts("t0", _require(obj, "t0"), limits),
            title=check_text("title", _require(obj, "title"), MAX_TITLE_CHARS),
            tags=check_tags("tags", obj.get("tags", [])),
            direction=check_choice(  # type: ignore[arg-type]
                "direction", obj.get("direction", "neutral"), DIRECTIONS
            ),
            score=check_number("score", obj.get("score", 0.0)),  # type: ignore[arg-type]
        )


def reaction_key(headline_id: str, symbol: str, horizon_s: int) -> str:
    """The stable Kafka key of a reaction: one answer per headline, symbol and horizon."""
    return f"{headline_id}|{symbol}|{horizon_s}"


@dataclass(frozen=True, slots=True)
class Reaction(Message):
    """How ``symbol`` moved after a tariff headline, over ``horizon_s`` seconds.

    ``p0`` is the last price at or before ``t0`` (at ``p0_ts``), ``p1`` the last price at or
    before the horizon's end ``t1`` (at ``p1_ts``); ``ret = ln(p1/p0)``;
    ``z = ret / (sigma_1m * sqrt(horizon_s / 60))`` with ``sigma_1m`` the realised volatility
    of one-minute log returns over the baseline window before ``t0`` (``None`` without a
    baseline).  ``max_up`` / ``max_down`` are the largest log moves from ``p0`` either way
    within the horizon (``max_up >= 0 >= max_down``).  ``gap`` marks a headline that arrived
    while the market was closed: the horizon then starts at the reopen (``t_start``).
    ``flags`` holds data-quality notes (``no_baseline``, ``sparse``, ``stale_p0``).
    Key on Kafka: :func:`reaction_key`.
    """

    KIND: ClassVar[str] = "reaction"
    FIELDS: ClassVar[frozenset[str]] = frozenset(
        {"v", "headline_id", "cluster_id", "symbol", "horizon_s", "t0", "t_start", "t1",
         "p0", "p0_ts", "p1", "p1_ts", "ret", "z", "sigma_1m", "max_up", "max_down",
         "significant", "gap", "flags", "direction", "tags", "title", "n_ticks"}
    )

    headline_id: str
    cluster_id: str
    symbol: str
    horizon_s: int
    t0: int
    t_start: int
    t1: int
    p0: float
    p0_ts: int
    p1: float
    p1_ts: int
    ret: float
    z: float | None
    sigma_1m: float | None
    max_up: float
    max_down: float
    significant: bool
    gap: bool
    n_ticks: int
    flags: tuple[str, ...] = ()
    direction: Direction = "neutral"
    tags: tuple[str, ...] = ()
    title: str = ""

    @property
    def key(self) -> str:
        """The Kafka key."""
        return reaction_key(self.headline_id, self.symbol, self.horizon_s)

    def to_dict(self) -> dict[str, Any]:
        """Wire form; ``z`` and ``sigma_1m`` stay present (as null) when unknown."""
        out = Message.to_dict(self)
        out.setdefault("z", None)
        out.setdefault("sigma_1m", None)
        return out

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any], limits: Limits = DEFAULT_LIMITS) -> Reaction:
        check_version(obj)
        _reject_unknown(obj, cls.FIELDS, cls.KIND)
        return cls(
            headline_id=check_text("headline_id", _require(obj, "headline_id"), MAX_ID_CHARS),
            cluster_id=check_text("cluster_id", _require(obj, "cluster_id"), MAX_ID_CHARS),
            symbol=check_symbol(_require(obj, "symbol"), limits),
            horizon_s=check_positive_int("horizon_s", _require(obj, "horizon_s")),
            t0=check_ts("t0", _require(obj, "t0"), limits),
            t_start=check_ts("t_start", _require(obj, "t_start"), limits),
            t1=check_ts("t1", _require(obj, "t1"), limits),
            p0=check_price("p0", _require(obj, "p0")),
            p0_ts=check_ts("p0_ts", _require(obj, "p0_ts"), limits),
            p1=check_price("p1", _require(obj, "p1")),
            p1_ts=check_ts("p1_ts", _require(obj, "p1_ts"), limits),
            ret=check_number("ret", _require(obj, "ret")),  # type: ignore[arg-type]
            z=check_number("z", obj.get("z"), allow_none=True),
            sigma_1m=check_number("sigma_1m", obj.get("sigma_1m"), allow_none=True),
            max_up=check_number("max_up", _require(obj, "max_up")),  # type: ignore[arg-type]
            max_down=check_number("max_down", _require(obj, "max_down")),  # type: ignore[arg-type]
            significant=check_bool("significant", _require(obj, "significant")),
            gap=check_bool("gap", _require(obj, "gap")),
            n_ticks=_non_negative_int("n_ticks", _require(obj, "n_ticks")),
            flags=check_tags("flags", obj.get("flags", [])),
            direction=check_choice(  # type: ignore[arg-type]
                "direction", obj.get("direction", "neutral"), DIRECTIONS
            ),
            tags=check_tags("tags", obj.get("tags", [])),
            title=check_text("title", obj.get("title", ""), MAX_TITLE_CHARS, required=False),
        )


def _non_negative_int(name: str, value: Any) -> int:
    if type(value) is not int or value < 0:
        raise ContractError(name, value, "must be a non-negative integer", reason="bad_value")
    return value


@dataclass(frozen=True, slots=True)
class AttributedHeadline:
    """A tariff headline named as a possible cause of a sharp move."""

    id: str
    ts: int
    title: str
    direction: Direction


@dataclass(frozen=True, slots=True)
class Alert(Message):
    """A sharp move: ``symbol`` moved ``ret`` (log return) over ``window_s`` ending at ``ts``.

    ``headlines`` are the tariff headlines of the look-back window before ``ts``, most recent
    first.  Key on Kafka: ``symbol|window_s|ts``.
    """

    KIND: ClassVar[str] = "alert"
    FIELDS: ClassVar[frozenset[str]] = frozenset(
        {"v", "symbol", "window_s", "ts", "start_ts", "p_start", "p_end", "ret", "z",
         "direction", "threshold_bp", "threshold_z", "headlines"}
    )

    symbol: str
    window_s: int
    ts: int
    start_ts: int
    p_start: float
    p_end: float
    ret: float
    z: float | None
    direction: MoveDirection
    threshold_bp: float
    threshold_z: float
    headlines: tuple[AttributedHeadline, ...] = field(default=())

    @property
    def key(self) -> str:
        """The Kafka key."""
        return f"{self.symbol}|{self.window_s}|{self.ts}"

    def to_dict(self) -> dict[str, Any]:
        """Wire form with the attributed headlines as a list of objects."""
        out = Message.to_dict(self)
        out.setdefault("z", None)
        out["headlines"] = [asdict(h) for h in self.headlines]
        return out

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any], limits: Limits = DEFAULT_LIMITS) -> Alert:
        check_version(obj)
        _reject_unknown(obj, cls.FIELDS, cls.KIND)
        raw = obj.get("headlines", [])
        if not isinstance(raw, list) or len(raw) > MAX_ATTRIBUTED:
            raise ContractError(
                "headlines", raw, f"must be a list of at most {MAX_ATTRIBUTED}", reason="bad_value"
            )
        heads = []
        for h in raw:
            if not isinstance(h, dict):
                raise ContractError("headlines", h, "must hold objects", reason="bad_type")
            heads.append(
                AttributedHeadline(
                    id=check_text("headlines.id", _require(h, "id"), MAX_ID_CHARS),
                    ts=check_ts("headlines.ts", _require(h, "ts"), limits),
                    title=check_text("headlines.title", _require(h, "title"), MAX_TITLE_CHARS),
                    direction=check_choice(  # type: ignore[arg-type]
                        "headlines.direction", h.get("direction", "neutral"), DIRECTIONS
                    ),
                )
            )
        return cls(
            symbol=check_symbol(_require(obj, "symbol"), limits),
            window_s=check_positive_int("window_s", _require(obj, "window_s")),
            ts=check_ts("ts", _require(obj, "ts"), limits),
            start_ts=check_ts("start_ts", _require(obj, "start_ts"), limits),
            p_start=check_price("p_start", _require(obj, "p_start")),
            p_end=check_price("p_end", _require(obj, "p_end")),
            ret=check_number("ret", _require(obj, "ret")),  # type: ignore[arg-type]
            z=check_number("z", obj.get("z"), allow_none=True),
            direction=check_choice(  # type: ignore[arg-type]
                "direction", _require(obj, "direction"), MOVE_DIRECTIONS
            ),
            threshold_bp=check_number(  # type: ignore[arg-type]
                "threshold_bp", _require(obj, "threshold_bp")
            ),
            threshold_z=check_number(  # type: ignore[arg-type]
                "threshold_z", _require(obj, "threshold_z")
            ),
            headlines=tuple(heads),
        )


@dataclass(frozen=True, slots=True)
class DeadLetter(Message):
    """An input that could not be processed, kept with where it came from and why.

    ``value_b64`` / ``key_b64`` hold the original bytes (base64) so nothing is lost, except
    that only the first half of :data:`MAX_MESSAGE_BYTES` of a value is kept (``value_size``
    tells the full length), so that the dead letter itself, base64 and all, stays decodable
    and within Kafka's size limit;
    ``value_text`` is a readable excerpt when the bytes are UTF-8.  ``ts`` is the original
    record's Kafka timestamp (event time), ``reason`` a short bounded code, ``error`` the
    full message (field, value and rule).  Key on Kafka: ``topic|partition|offset``.
    """

    KIND: ClassVar[str] = "dead letter"
    FIELDS: ClassVar[frozenset[str]] = frozenset(
        {"v", "topic", "partition", "offset", "ts", "reason", "error", "value_b64",
         "key_b64", "value_text", "stage", "value_size"}
    )

    topic: str
    partition: int
    offset: int
    ts: int
    reason: str
    error: str
    stage: str
    value_b64: str
    value_size: int = 0
    key_b64: str | None = None
    value_text: str | None = None

    @property
    def key(self) -> str:
        """The Kafka key: where the bad record sits."""
        return f"{self.topic}|{self.partition}|{self.offset}"

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any], limits: Limits = DEFAULT_LIMITS) -> DeadLetter:
        check_version(obj)
        _reject_unknown(obj, cls.FIELDS, cls.KIND)
        key_b64 = obj.get("key_b64")
        text = obj.get("value_text")
        return cls(
            topic=check_text("topic", _require(obj, "topic"), 249),
            partition=_non_negative_int("partition", _require(obj, "partition")),
            offset=_non_negative_int("offset", _require(obj, "offset")),
            ts=_non_negative_int("ts", _require(obj, "ts")),
            reason=check_text("reason", _require(obj, "reason"), 64),
            error=check_text("error", _require(obj, "error"), 4_000),
            stage=check_text("stage", _require(obj, "stage"), 64),
            value_b64=check_text("value_b64", _require(obj, "value_b64"), 2 * MAX_MESSAGE_BYTES,
                                 required=False),
            value_size=_non_negative_int("value_size", obj.get("value_size", 0)),
            key_b64=None if key_b64 is None else check_text("key_b64", key_b64, 4_096,
                                                            required=False),
            value_text=None if text is None else check_text("value_text", text, 4_000,
                                                            required=False),
        )


MESSAGE_TYPES: dict[str, type[Message]] = {
    "ticks": Tick,
    "headlines": Headline,
    "classified": ClassifiedHeadline,
    "requests": ReactionRequest,
    "reactions": Reaction,
    "alerts": Alert,
    "deadletter": DeadLetter,
}
"""The message type carried by each logical stream (recorded-stream ``stream`` names too)."""
