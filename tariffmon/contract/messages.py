"""The message types on the wire, one frozen dataclass each, and their JSON form.

Every type's wire fields are its dataclass fields plus the schema version ``v``
(:func:`wire_message` derives them), and every ``from_dict`` starts with the same envelope
checks (:meth:`Message._validate_envelope`) before the type's own field rules.  Topics and
Kafka keys: ``docs/ARCHITECTURE.md``, "Topics and keys".
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any, ClassVar, Protocol, Self, TypeVar

from tariffmon.contract.codec import dumps, loads
from tariffmon.contract.fields import (
    DEFAULT_LIMITS,
    DIRECTIONS,
    MAX_ATTRIBUTED,
    MAX_ID_CHARS,
    MAX_MESSAGE_BYTES,
    MAX_SOURCE_CHARS,
    MAX_SUMMARY_CHARS,
    MAX_TITLE_CHARS,
    MAX_URL_CHARS,
    MOVE_DIRECTIONS,
    SCHEMA_VERSION,
    TICK_KINDS,
    Direction,
    Limits,
    MoveDirection,
    TickKind,
    check_bool,
    check_choice,
    check_float,
    check_non_negative_int,
    check_number,
    check_positive_int,
    check_price,
    check_price_band,
    check_symbol,
    check_tags,
    check_text,
    check_ts,
    check_version,
    reject_unknown,
    require,
)
from tariffmon.errors import ContractError

_R = TypeVar("_R", bound="type[Any]")


def wire_message(cls: _R) -> _R:
    """Finish a message dataclass: its wire field names are its dataclass fields (plus ``v``).

    Applied over ``@dataclass`` (which must run first: with ``slots=True`` it builds a new
    class), so a field added to a type is accepted on the wire without a second list to edit.
    """
    names = tuple(f.name for f in fields(cls))
    cls._NAMES = names
    cls.FIELDS = frozenset(("v", *names))
    return cls


def _wire_dict(
    obj: object, names: tuple[str, ...], keep_none: frozenset[str], prefix: str
) -> dict[str, Any]:
    # getattr over the fields, not dataclasses.asdict: asdict deep-copies every value and
    # dominated the cost of encoding on the replay and worker hot paths.  orjson writes NaN
    # and infinity as null, which would put a different number on the topic than the one
    # measured, so a non-finite float is refused here, at the one place every encode passes.
    out: dict[str, Any] = {}
    for k in names:
        val = getattr(obj, k)
        if val is None:
            if k in keep_none:
                out[k] = None
            continue
        if isinstance(val, float):
            if not math.isfinite(val):
                raise ContractError(prefix + k, val, "must be finite", reason="not_finite")
        elif isinstance(val, tuple):
            val = list(val)
        out[k] = val
    return out


class Message:
    """Behaviour shared by every message dataclass: JSON both ways."""

    KIND: ClassVar[str] = "message"
    #: the field names accepted on the wire, ``v`` included (set by :func:`wire_message`)
    FIELDS: ClassVar[frozenset[str]] = frozenset({"v"})
    #: the dataclass field names in declaration order (set by :func:`wire_message`)
    _NAMES: ClassVar[tuple[str, ...]] = ()
    #: optional fields written as ``null`` when unset instead of being left out
    _KEEP_NONE: ClassVar[frozenset[str]] = frozenset()
    __slots__ = ()

    def to_dict(self) -> dict[str, Any]:
        """The wire form as a dict; optional fields that are unset are left out.

        Raises :class:`ContractError` (reason ``not_finite``) for a NaN or infinite number.
        """
        out = _wire_dict(self, self._NAMES, self._KEEP_NONE, "")
        out["v"] = SCHEMA_VERSION
        return out

    def encode(self) -> bytes:
        """The Kafka value: UTF-8 JSON.  Refuses non-finite numbers, like :meth:`to_dict`."""
        return dumps(self.to_dict())

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any], limits: Limits = DEFAULT_LIMITS) -> Self:
        """Validate a decoded JSON object and build the message."""
        cls._validate_envelope(obj)
        return cls._from_fields(obj, limits)

    @classmethod
    def decode(cls, data: bytes | str, limits: Limits = DEFAULT_LIMITS) -> Self:
        """Parse and validate a Kafka value."""
        return cls.from_dict(loads(data), limits)

    @classmethod
    def _validate_envelope(cls, obj: Mapping[str, Any]) -> None:
        """The rules every type shares: an object, a known version, no unknown field."""
        # the exact-type test first: an ABC isinstance costs more than the rest of the envelope
        if type(obj) is not dict and not isinstance(obj, Mapping):
            raise ContractError("$", obj, "must be a JSON object", reason="bad_json")
        check_version(obj)
        reject_unknown(obj, cls.FIELDS, cls.KIND)

    @classmethod
    def _from_fields(cls, obj: Mapping[str, Any], limits: Limits) -> Self:
        """The type's own field rules, once the envelope is valid."""
        raise NotImplementedError  # every message type defines its own


# --------------------------------------------------------------------------- messages


@wire_message
@dataclass(frozen=True, slots=True)
class Tick(Message):
    """A price observation for one symbol at event time ``ts``.

    ``kind`` is ``trade`` or ``quote`` for a point observation, ``bar_close`` for the close of a
    bar of ``interval_s`` seconds, whose ``ts`` is the bar's *end*: the close is only known then,
    so a bar never leaks into a reaction that starts before it closes.  ``price`` must be
    finite, positive and, when the caller's :class:`Limits` has a band for the symbol, within
    it.  Key on Kafka: the symbol.
    """

    KIND: ClassVar[str] = "tick"

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
    def _from_fields(cls, obj: Mapping[str, Any], limits: Limits) -> Self:
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
            volume = check_float("volume", volume)
            if volume < 0:
                raise ContractError("volume", volume, "must not be negative", reason="bad_value")
        symbol = check_symbol(require(obj, "symbol"), limits)
        price = check_price("price", require(obj, "price"))
        return cls(
            symbol=symbol,
            ts=check_ts("ts", require(obj, "ts"), limits),
            price=check_price_band("price", price, symbol, limits),
            source=check_text("source", require(obj, "source"), MAX_SOURCE_CHARS),
            kind=kind,  # type: ignore[arg-type]
            volume=volume,
            interval_s=interval,
        )


def _headline_fields(obj: Mapping[str, Any], limits: Limits) -> dict[str, Any]:
    """The fields a classified headline shares with a headline."""
    url = obj.get("url")
    summary = obj.get("summary")
    est = obj.get("ts_estimated")
    return {
        "id": check_text("id", require(obj, "id"), MAX_ID_CHARS),
        "ts": check_ts("ts", require(obj, "ts"), limits),
        "source": check_text("source", require(obj, "source"), MAX_SOURCE_CHARS),
        "title": check_text("title", require(obj, "title"), MAX_TITLE_CHARS),
        "url": None if url is None else check_text("url", url, MAX_URL_CHARS),
        "summary": None if summary is None else check_text(
            "summary", summary, MAX_SUMMARY_CHARS, required=False
        ),
        "ts_estimated": None if est is None else check_bool("ts_estimated", est),
    }


@wire_message
@dataclass(frozen=True, slots=True)
class Headline(Message):
    """A news headline published at event time ``ts``.

    ``ts_estimated`` is true when the source gave no usable publication time and the fetch time
    stood in for it.  Key on Kafka: the id.
    """

    KIND: ClassVar[str] = "headline"

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
    def _from_fields(cls, obj: Mapping[str, Any], limits: Limits) -> Self:
        return cls(**_headline_fields(obj, limits))


@wire_message
@dataclass(frozen=True, slots=True)
class ClassifiedHeadline(Message):
    """A headline with the classifier's verdict and its story cluster.

    ``cluster_id`` is the id of the first headline of the same story; ``duplicate`` is true
    for the later members, which are not measured again (``docs/ARCHITECTURE.md``,
    ``clustering.py``).  Key on Kafka: the headline id.
    """

    KIND: ClassVar[str] = "classified headline"

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
    def _from_fields(cls, obj: Mapping[str, Any], limits: Limits) -> Self:
        return cls(
            **_headline_fields(obj, limits),
            is_tariff=check_bool("is_tariff", require(obj, "is_tariff")),
            score=check_float("score", require(obj, "score")),
            tags=check_tags("tags", require(obj, "tags")),
            direction=check_choice(  # type: ignore[arg-type]
                "direction", require(obj, "direction"), DIRECTIONS
            ),
            cluster_id=check_text("cluster_id", require(obj, "cluster_id"), MAX_ID_CHARS),
            duplicate=check_bool("duplicate", obj.get("duplicate", False)),
        )


@wire_message
@dataclass(frozen=True, slots=True)
class ReactionRequest(Message):
    """A tariff headline fanned out to one symbol, so that it meets that symbol's ticks.

    Keyed by the symbol and co-partitioned with the ticks topic.
    """

    KIND: ClassVar[str] = "reaction request"

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
    def _from_fields(cls, obj: Mapping[str, Any], limits: Limits) -> Self:
        return cls(
            headline_id=check_text("headline_id", require(obj, "headline_id"), MAX_ID_CHARS),
            cluster_id=check_text("cluster_id", require(obj, "cluster_id"), MAX_ID_CHARS),
            symbol=check_symbol(require(obj, "symbol"), limits),
            t0=check_ts("t0", require(obj, "t0"), limits),
            title=check_text("title", require(obj, "title"), MAX_TITLE_CHARS),
            tags=check_tags("tags", obj.get("tags", [])),
            direction=check_choice(  # type: ignore[arg-type]
                "direction", obj.get("direction", "neutral"), DIRECTIONS
            ),
            score=check_float("score", obj.get("score", 0.0)),
        )


def reaction_key(headline_id: str, symbol: str, horizon_s: int) -> str:
    """The stable Kafka key of a reaction: one answer per headline, symbol and horizon."""
    return f"{headline_id}|{symbol}|{horizon_s}"


@wire_message
@dataclass(frozen=True, slots=True)
class Reaction(Message):
    """How ``symbol`` moved after a tariff headline, over ``horizon_s`` seconds.

    As defined in ``docs/ARCHITECTURE.md``, "Reaction": ``p0`` is the last price at or before
    ``t0`` (at ``p0_ts``); the horizon runs from ``t_start`` to ``t1 = t_start + horizon_s``,
    and ``p1`` is the last price at or before ``t1`` (at ``p1_ts``); ``ret = ln(p1/p0)``;
    ``z = ret / (sigma_1m * sqrt(horizon_s / 60))`` with ``sigma_1m`` the realised volatility
    per minute ending at ``t0`` (``None``, and ``z`` too, without a baseline).
    ``max_up`` / ``max_down`` are the largest log moves from ``p0`` either way over the ticks
    of the horizon.  ``gap`` marks a headline that came while the market was closed or ``p0``
    was stale: the horizon then starts at the first tick after ``t0`` (the reopen).
    ``n_ticks`` counts the ticks of the horizon.  ``flags`` holds data-quality notes:
    ``no_baseline`` (no volatility estimate, so no ``z``), ``sparse_baseline`` (fewer baseline
    returns than the engine's minimum), ``no_ticks_in_horizon`` and, on a gap reaction,
    ``few_past_gaps`` (too few past gaps of its kind for a z: significance then rests on
    the return threshold alone).

    Gap reactions also carry (all absent on other reactions): ``gap_kind`` (``overnight``,
    ``weekend``, ``holiday``, ``break`` or ``stale``), ``gap_ret`` = ``ln(p_reopen / p0)``,
    ``gap_sigma`` the standard deviation of the symbol's past gaps of that kind and
    ``gap_count`` how many there were, ``gap_z = gap_ret / gap_sigma``, and ``confound_id``,
    the id of the closed window (``gap:<symbol>:<p0_ts>``): every headline of one closed
    window shares it, so its reactions are one move, confounded, counted once in averages.
    On a gap reaction ``z = ret / sqrt(gap_sigma^2 + sigma_1m^2 * horizon_s / 60)``: the
    gap against past gaps, the intraday part after the reopen against intraday volatility.
    Key on Kafka: :func:`reaction_key`.
    """

    KIND: ClassVar[str] = "reaction"
    _KEEP_NONE: ClassVar[frozenset[str]] = frozenset({"z", "sigma_1m"})

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
    gap_kind: str | None = None
    gap_ret: float | None = None
    gap_sigma: float | None = None
    gap_count: int | None = None
    gap_z: float | None = None
    confound_id: str | None = None

    @property
    def key(self) -> str:
        """The Kafka key."""
        return reaction_key(self.headline_id, self.symbol, self.horizon_s)

    @classmethod
    def _from_fields(cls, obj: Mapping[str, Any], limits: Limits) -> Self:
        return cls(
            headline_id=check_text("headline_id", require(obj, "headline_id"), MAX_ID_CHARS),
            cluster_id=check_text("cluster_id", require(obj, "cluster_id"), MAX_ID_CHARS),
            symbol=check_symbol(require(obj, "symbol"), limits),
            horizon_s=check_positive_int("horizon_s", require(obj, "horizon_s")),
            t0=check_ts("t0", require(obj, "t0"), limits),
            t_start=check_ts("t_start", require(obj, "t_start"), limits),
            t1=check_ts("t1", require(obj, "t1"), limits),
            p0=check_price("p0", require(obj, "p0")),
            p0_ts=check_ts("p0_ts", require(obj, "p0_ts"), limits),
            p1=check_price("p1", require(obj, "p1")),
            p1_ts=check_ts("p1_ts", require(obj, "p1_ts"), limits),
            ret=check_float("ret", require(obj, "ret")),
            z=check_number("z", obj.get("z"), allow_none=True),
            sigma_1m=check_number("sigma_1m", obj.get("sigma_1m"), allow_none=True),
            max_up=check_float("max_up", require(obj, "max_up")),
            max_down=check_float("max_down", require(obj, "max_down")),
            significant=check_bool("significant", require(obj, "significant")),
            gap=check_bool("gap", require(obj, "gap")),
            n_ticks=check_non_negative_int("n_ticks", require(obj, "n_ticks")),
            flags=check_tags("flags", obj.get("flags", [])),
            direction=check_choice(  # type: ignore[arg-type]
                "direction", obj.get("direction", "neutral"), DIRECTIONS
            ),
            tags=check_tags("tags", obj.get("tags", [])),
            title=check_text("title", obj.get("title", ""), MAX_TITLE_CHARS, required=False),
            gap_kind=_optional(obj, "gap_kind", lambda v: check_choice("gap_kind", v, GAP_KINDS)),
            gap_ret=check_number("gap_ret", obj.get("gap_ret"), allow_none=True),
            gap_sigma=check_number("gap_sigma", obj.get("gap_sigma"), allow_none=True),
            gap_count=_optional(obj, "gap_count",
                                lambda v: check_non_negative_int("gap_count", v)),
            gap_z=check_number("gap_z", obj.get("gap_z"), allow_none=True),
            confound_id=_optional(obj, "confound_id",
                                  lambda v: check_text("confound_id", v, MAX_ID_CHARS)),
        )


#: the kinds of closed window a gap reaction spans (``tariffmon.core.gaps``)
GAP_KINDS: frozenset[str] = frozenset({"overnight", "weekend", "holiday", "break", "stale"})

def _optional(obj: Mapping[str, Any], name: str, check: Any) -> Any:
    """``check(value)`` for a present, non-null field; None otherwise."""
    value = obj.get(name)
    return None if value is None else check(value)


@dataclass(frozen=True, slots=True)
class AttributedHeadline:
    """A tariff headline named as a possible cause of a sharp move (within an alert)."""

    id: str
    ts: int
    title: str
    direction: Direction


_ATTRIBUTED_NAMES: tuple[str, ...] = tuple(f.name for f in fields(AttributedHeadline))
_ATTRIBUTED_FIELDS: frozenset[str] = frozenset(_ATTRIBUTED_NAMES)


def _attributed_headline(h: Any, limits: Limits) -> AttributedHeadline:
    if not isinstance(h, dict):
        raise ContractError("headlines", h, "must hold objects", reason="bad_type")
    p = "headlines."
    reject_unknown(h, _ATTRIBUTED_FIELDS, "attributed headline", p)
    return AttributedHeadline(
        id=check_text(p + "id", require(h, "id", p), MAX_ID_CHARS),
        ts=check_ts(p + "ts", require(h, "ts", p), limits),
        title=check_text(p + "title", require(h, "title", p), MAX_TITLE_CHARS),
        direction=check_choice(  # type: ignore[arg-type]
            p + "direction", h.get("direction", "neutral"), DIRECTIONS
        ),
    )


class SharpMoveLike(Protocol):
    """What :meth:`Alert.from_move` reads of a detected move (``tariffmon.core.sharpmove``)."""

    @property
    def symbol(self) -> str: ...
    @property
    def window_ms(self) -> int: ...
    @property
    def ts(self) -> int: ...
    @property
    def start_ts(self) -> int: ...
    @property
    def p_start(self) -> float: ...
    @property
    def p_end(self) -> float: ...
    @property
    def ret(self) -> float: ...
    @property
    def z(self) -> float | None: ...
    @property
    def threshold(self) -> float: ...


@wire_message
@dataclass(frozen=True, slots=True)
class Alert(Message):
    """A sharp move: ``symbol`` moved ``ret`` (log return) over ``window_s`` ending at ``ts``.

    As defined in ``docs/ARCHITECTURE.md``, "Sharp moves": ``p_start`` is the last price at or
    before ``start_ts = ts - window``, ``p_end`` the price at ``ts``; ``threshold_bp`` and
    ``threshold_z`` are the thresholds in force.  ``headlines`` are the tariff headlines of
    the look-back window before ``ts``, most recent first.  Key on Kafka:
    ``symbol|window_s|ts``.
    """

    KIND: ClassVar[str] = "alert"
    _KEEP_NONE: ClassVar[frozenset[str]] = frozenset({"z"})

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
    headlines: tuple[AttributedHeadline, ...] = ()

    @property
    def key(self) -> str:
        """The Kafka key."""
        return f"{self.symbol}|{self.window_s}|{self.ts}"

    @classmethod
    def from_move(
        cls,
        move: SharpMoveLike,
        *,
        threshold_z: float,
        headlines: Iterable[AttributedHeadline] = (),
    ) -> Self:
        """The alert for a detected move (``tariffmon.core.sharpmove.SharpMove``): the window
        in seconds, the threshold in basis points; the engine builds every alert with it."""
        return cls(
            symbol=move.symbol,
            window_s=move.window_ms // 1_000,
            ts=move.ts,
            start_ts=move.start_ts,
            p_start=move.p_start,
            p_end=move.p_end,
            ret=move.ret,
            z=move.z,
            direction="up" if move.ret > 0 else "down",
            threshold_bp=round(move.threshold * 10_000, 6),
            threshold_z=threshold_z,
            headlines=tuple(headlines),
        )

    def to_dict(self) -> dict[str, Any]:
        """Wire form with the attributed headlines as a list of objects."""
        out = Message.to_dict(self)
        out["headlines"] = [
            _wire_dict(h, _ATTRIBUTED_NAMES, frozenset(), "headlines.") for h in self.headlines
        ]
        return out

    @classmethod
    def _from_fields(cls, obj: Mapping[str, Any], limits: Limits) -> Self:
        raw = obj.get("headlines", [])
        if not isinstance(raw, list) or len(raw) > MAX_ATTRIBUTED:
            raise ContractError(
                "headlines", raw, f"must be a list of at most {MAX_ATTRIBUTED}", reason="bad_value"
            )
        return cls(
            symbol=check_symbol(require(obj, "symbol"), limits),
            window_s=check_positive_int("window_s", require(obj, "window_s")),
            ts=check_ts("ts", require(obj, "ts"), limits),
            start_ts=check_ts("start_ts", require(obj, "start_ts"), limits),
            p_start=check_price("p_start", require(obj, "p_start")),
            p_end=check_price("p_end", require(obj, "p_end")),
            ret=check_float("ret", require(obj, "ret")),
            z=check_number("z", obj.get("z"), allow_none=True),
            direction=check_choice(  # type: ignore[arg-type]
                "direction", require(obj, "direction"), MOVE_DIRECTIONS
            ),
            threshold_bp=check_float("threshold_bp", require(obj, "threshold_bp")),
            threshold_z=check_float("threshold_z", require(obj, "threshold_z")),
            headlines=tuple(_attributed_headline(h, limits) for h in raw),
        )


@wire_message
@dataclass(frozen=True, slots=True)
class DeadLetter(Message):
    """An input that could not be processed, kept with where it came from and why.

    ``value_b64`` / ``key_b64`` hold the original bytes (base64) so nothing is lost, except
    that only the first half of :data:`MAX_MESSAGE_BYTES` of a value is kept (``value_size``
    tells the full length), so that the dead letter itself, base64 and all, stays decodable
    and within Kafka's size limit;
    ``value_text`` is a readable excerpt when the bytes are UTF-8.  ``ts`` is the original
    record's Kafka timestamp (event time), ``reason`` a short bounded code, ``error`` the
    full message (field, value and rule); see ``docs/ARCHITECTURE.md``, "Dead letters".
    Key on Kafka: ``topic|partition|offset``.
    """

    KIND: ClassVar[str] = "dead letter"

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
    def _from_fields(cls, obj: Mapping[str, Any], limits: Limits) -> Self:
        key_b64 = obj.get("key_b64")
        text = obj.get("value_text")
        return cls(
            topic=check_text("topic", require(obj, "topic"), 249),
            partition=check_non_negative_int("partition", require(obj, "partition")),
            offset=check_non_negative_int("offset", require(obj, "offset")),
            ts=check_non_negative_int("ts", require(obj, "ts")),
            reason=check_text("reason", require(obj, "reason"), 64),
            error=check_text("error", require(obj, "error"), 4_000),
            stage=check_text("stage", require(obj, "stage"), 64),
            value_b64=check_text("value_b64", require(obj, "value_b64"), 2 * MAX_MESSAGE_BYTES,
                                 required=False),
            value_size=check_non_negative_int("value_size", obj.get("value_size", 0)),
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
