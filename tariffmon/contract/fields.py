"""Field-level rules of the contract: units, bounds and one check per kind of field.

Every check takes the field's name and the value found and either returns the value in its
Python type or raises :class:`~tariffmon.errors.ContractError` naming the field, the value and
the rule (its ``reason`` is the short code counted in dead letters, see ``docs/ARCHITECTURE.md``,
"Dead letters").  Upper time bounds depend on "now", which this module never reads: callers
pass it in :class:`Limits`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from tariffmon.errors import ConfigError, ContractError

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
DEFAULT_SYMBOLS: frozenset[str] = frozenset({"USDJPY", "N225", "NIY"})


class PriceBands(Mapping[str, tuple[float, float]]):
    """Immutable, hashable ``symbol -> (lowest, highest)`` sane prices, checked once when built.

    Hashable so that :class:`Limits` stays a hashable frozen value; validated here so that
    the per-tick check is a dict look-up and two comparisons.
    """

    __slots__ = ("_bands", "_hash")

    def __init__(self, bands: Mapping[str, tuple[float, float]] | None = None) -> None:
        checked: dict[str, tuple[float, float]] = {}
        for symbol, band in (bands or {}).items():
            try:
                lo, hi = (float(b) for b in band)
            except (TypeError, ValueError) as exc:
                raise ConfigError(
                    f"price_bands.{symbol}", f"must be two numbers (lowest, highest): {exc}"
                ) from exc
            if not (math.isfinite(lo) and math.isfinite(hi) and 0.0 < lo < hi):
                raise ConfigError(
                    f"price_bands.{symbol}", f"must satisfy 0 < lowest < highest (got {band!r})"
                )
            checked[symbol] = (lo, hi)
        self._bands = checked
        self._hash = hash(frozenset(checked.items()))

    def __getitem__(self, symbol: str) -> tuple[float, float]:
        return self._bands[symbol]

    def __iter__(self) -> Iterator[str]:
        return iter(self._bands)

    def __len__(self) -> int:
        return len(self._bands)

    def get(self, symbol: str, default: Any = None) -> Any:
        """The band of ``symbol``, or ``default`` (without the mixin's KeyError round trip)."""
        return self._bands.get(symbol, default)

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        if isinstance(other, PriceBands):
            return self._bands == other._bands
        if isinstance(other, Mapping):
            return self._bands == dict(other.items())
        return NotImplemented

    def __repr__(self) -> str:
        return f"PriceBands({self._bands!r})"


NO_PRICE_BANDS = PriceBands()


@dataclass(frozen=True, slots=True)
class Limits:
    """What a validator needs to know beyond the message itself.

    ``price_bands`` maps a symbol to the range of prices that can be real for it (a fat-finger
    or unit mix-up guard); a symbol without a band only needs a finite positive price.
    """

    symbols: frozenset[str] = DEFAULT_SYMBOLS
    #: newest acceptable event time; ``None`` means the fixed ceiling (:data:`MAX_TS_MS`)
    max_ts_ms: int | None = None
    price_bands: Mapping[str, tuple[float, float]] = field(default=NO_PRICE_BANDS)

    def __post_init__(self) -> None:
        # a mapping given by the caller is copied (and validated) once, so later changes to
        # it cannot change a frozen Limits; an existing PriceBands is shared as is
        if not isinstance(self.price_bands, PriceBands):
            object.__setattr__(self, "price_bands", PriceBands(self.price_bands))

    def ceiling(self) -> int:
        """The newest acceptable event time in epoch milliseconds."""
        if self.max_ts_ms is None:
            return MAX_TS_MS
        return min(MAX_TS_MS, self.max_ts_ms)

    def with_ceiling(self, max_ts_ms: int | None) -> Limits:
        """The same limits (symbols, price bands) with another newest acceptable event time."""
        return replace(self, max_ts_ms=max_ts_ms)

    @staticmethod
    def from_now(
        now_ms: int,
        symbols: Iterable[str],
        *,
        price_bands: Mapping[str, tuple[float, float]] = NO_PRICE_BANDS,
    ) -> Limits:
        """Limits for live input: events may lie up to a day past ``now_ms``."""
        return Limits(frozenset(symbols), now_ms + FUTURE_SLACK_MS, price_bands)


DEFAULT_LIMITS = Limits()


def require(obj: Mapping[str, Any], name: str, prefix: str = "") -> Any:
    """The value of a required field (``prefix`` names the object it sits in, if nested)."""
    if name not in obj:
        raise ContractError(prefix + name, None, "is required", reason="missing_field")
    return obj[name]


def check_version(obj: Mapping[str, Any]) -> None:
    """The schema version must be one this code understands."""
    v = require(obj, "v")
    if type(v) is not int or v != SCHEMA_VERSION:
        raise ContractError(
            "v", v, f"must be schema version {SCHEMA_VERSION}", reason="bad_version"
        )


def reject_unknown(
    obj: Mapping[str, Any], allowed: frozenset[str], kind: str, prefix: str = ""
) -> None:
    """Refuse any field that is not one of ``allowed`` (naming the first, in sorted order)."""
    extra = obj.keys() - allowed
    if extra:
        # key=str: a mapping built in Python may mix key types, which plain sorting refuses
        name = min(extra, key=str)
        article = "an" if kind[:1] in "aeiou" else "a"
        raise ContractError(
            prefix + str(name), obj[name], f"is not a field of {article} {kind} message",
            reason="unknown_field",
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


def _finite(name: str, value: Any) -> float:
    if type(value) is bool or not isinstance(value, int | float):
        raise ContractError(name, value, "must be a number", reason="bad_type")
    try:
        f = float(value)
    except OverflowError:  # an integer beyond the range of a double
        f = math.inf
    if not math.isfinite(f):
        raise ContractError(name, value, "must be finite", reason="not_finite")
    return f


def check_price(name: str, value: Any) -> float:
    """A price: a finite number strictly above zero."""
    f = _finite(name, value)
    if f <= 0.0:
        raise ContractError(name, value, "must be positive", reason="not_positive")
    return f


def check_price_band(name: str, price: float, symbol: str, limits: Limits) -> float:
    """A checked price must also lie within its symbol's band, when ``limits`` has one."""
    band = limits.price_bands.get(symbol)
    if band is not None:
        lo, hi = band
        if not lo <= price <= hi:
            raise ContractError(
                name, price, f"must be within [{lo:g}, {hi:g}] for {symbol}",
                reason="price_range",
            )
    return price


def check_number(name: str, value: Any, *, allow_none: bool = False) -> float | None:
    """A finite number (or ``None`` where allowed)."""
    if value is None and allow_none:
        return None
    return _finite(name, value)


def check_float(name: str, value: Any) -> float:
    """A finite number, never ``None`` (:func:`check_number` for a required field)."""
    return _finite(name, value)


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


def check_non_negative_int(name: str, value: Any) -> int:
    """An integer at or above zero (counts, offsets)."""
    if type(value) is not int or value < 0:
        raise ContractError(name, value, "must be a non-negative integer", reason="bad_value")
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
