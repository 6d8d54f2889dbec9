"""Kafka records as the stages see them, and the one way every input record is decoded.

Every path that reads ticks or reaction requests from Kafka (the live agents, the rebuild
after a restart, the read-back for late headlines) decodes them with :class:`InputDecoder`,
so they all apply the same contract, the same limits and the same key rule: a record one path
would refuse, no other path uses.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from typing import Any, NamedTuple, TypeVar, cast

import numpy as np
import orjson

from tariffmon.assembly import input_limits, tick_limits
from tariffmon.contract import (
    MAX_MESSAGE_BYTES,
    MAX_SOURCE_CHARS,
    MAX_TS_MS,
    MIN_TS_MS,
    SCHEMA_VERSION,
    Headline,
    Limits,
    Message,
    ReactionRequest,
    Tick,
)
from tariffmon.core.series import F64, I64
from tariffmon.errors import ContractError
from tariffmon.settings import Settings

Clock = Callable[[], float]
_M = TypeVar("_M", bound=Message)


class InRecord(NamedTuple):
    """One consumed Kafka record.

    A named tuple rather than a frozen dataclass: as immutable and hashable, and built for
    each consumed record in a seventh of the time (0.24 against 1.8 µs, measured), which at
    tens of thousands of ticks a second was the single largest cost of the bulk path's glue.
    """

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None

    @staticmethod
    def of(m: Any) -> InRecord:
        """From a kafka-python or aiokafka ``ConsumerRecord`` (timestamps already in ms)."""
        return _new_record(InRecord, (m.topic, m.partition, m.offset, m.timestamp, m.key,
                                      m.value))

    @staticmethod
    def all_of(messages: Iterable[Any]) -> list[InRecord]:
        """:meth:`of` for a whole fetch, without a call per record."""
        new, cls = _new_record, InRecord
        return [new(cls, (m.topic, m.partition, m.offset, m.timestamp, m.key, m.value))
                for m in messages]


#: a tuple's own constructor: skips the named tuple's Python-level ``__new__``
_new_record: Callable[[type[InRecord], tuple[Any, ...]], InRecord] = tuple.__new__


@dataclass(frozen=True, slots=True)
class OutRecord:
    """One record to publish; its Kafka timestamp is the event time it describes."""

    topic: str
    key: str
    value: bytes
    timestamp_ms: int
    #: for a dead letter: (input topic, reason), counted once it is handed to the producer
    dead_letter_of: tuple[str, str] | None = None

    @staticmethod
    def of(topic: str, msg: Message, key: str, ts_ms: int) -> OutRecord:
        """Wrap a contract message (encoding refuses non-finite numbers)."""
        return OutRecord(topic, key, msg.encode(), kafka_timestamp(ts_ms))


def kafka_timestamp(ts_ms: int) -> int:
    """A timestamp every Kafka client can send: inside ``[0, MAX_TS_MS]``.

    An input may carry any 64-bit timestamp (the broker accepts it); echoing an absurd one on
    a dead letter made the producer fail and the agent stop.
    """
    return min(max(0, ts_ms), MAX_TS_MS)


@dataclass(frozen=True, slots=True)
class BatchLimits:
    """The limits of one batch, fixed at its start (the clock is read once per batch)."""

    inputs: Limits
    ticks: Limits


class InputDecoder:
    """Decode and check headlines, ticks and reaction requests as the live worker does."""

    def __init__(self, settings: Settings, clock: Clock = time.time) -> None:
        self._settings = settings
        self._clock = clock
        #: the symbols and price bands, validated once (a live round asks for limits)
        self._base = input_limits(settings)

    def limits(self) -> BatchLimits:
        """The limits for records decoded now."""
        now_ms = int(self._clock() * 1000)
        base = self._base
        return BatchLimits(input_limits(self._settings, now_ms, base=base),
                           tick_limits(self._settings, now_ms, base=base))

    @staticmethod
    def headline(rec: InRecord, limits: BatchLimits) -> Headline:
        """A raw headline (its key is not checked: one partition, ids may be re-keyed)."""
        return _decoded(Headline, rec, limits.inputs)

    @staticmethod
    def tick(rec: InRecord, limits: BatchLimits) -> Tick:
        """A tick; its key must be its symbol (the key decides the partition it meets)."""
        tick = _decoded(Tick, rec, limits.ticks)
        _check_key(rec, tick.symbol)
        return tick

    @staticmethod
    def ticks(records: Sequence[InRecord], limits: BatchLimits) -> DecodedTicks:
        """Decode a batch of tick records at once, grouped by symbol in arrival order.

        Accepts exactly what :meth:`tick` accepts, with the same values, and refuses the
        rest with the same error: a record of the usual shape is checked inline and its
        price and band for the whole run at once; any other record, and every record a
        check refuses, goes through :meth:`tick` itself, so the reasons are its own.
        """
        return _decode_ticks(records, limits)

    @staticmethod
    def request(rec: InRecord, limits: BatchLimits) -> ReactionRequest:
        """A reaction request; keyed by its symbol, like the ticks it must meet."""
        req = _decoded(ReactionRequest, rec, limits.inputs)
        _check_key(rec, req.symbol)
        return req


def _decoded(cls: type[_M], rec: InRecord, limits: Limits) -> _M:
    try:
        return cls.decode(rec.value or b"", limits)
    except ContractError:
        raise
    except Exception as exc:
        raise ContractError(
            "$", f"<{len(rec.value or b'')} bytes>", f"could not be decoded ({exc!r:.200})",
            reason="internal_error",
        ) from exc


def _check_key(rec: InRecord, symbol: str) -> None:
    if rec.key != symbol.encode():
        raise ContractError(
            "key", rec.key, f"must be the symbol {symbol!r}", reason="bad_key"
        )


@dataclass(slots=True)
class TickRun:
    """One symbol's accepted ticks of a batch, in arrival order, as columns."""

    symbol: str
    #: position of each tick's record in the batch given to :meth:`InputDecoder.ticks`
    index: list[int] = field(default_factory=list)
    ts: I64 = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    price: F64 = field(default_factory=lambda: np.empty(0, dtype=np.float64))
    #: bar length in ms (0 for point observations), as the core takes it
    interval_ms: I64 = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    #: the decoded JSON object (fast path) or the :class:`Tick` (per-record path) of each
    items: list[dict[str, Any] | Tick] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.index)

    def tick(self, j: int) -> Tick:
        """The ``j``-th tick as a contract object (built on demand: most are never needed)."""
        item = self.items[j]
        if isinstance(item, Tick):
            return item
        return Tick(symbol=self.symbol, ts=int(self.ts[j]), price=float(self.price[j]),
                    source=item["source"], kind=item.get("kind", "quote"),
                    interval_s=item.get("interval_s"))

    def ticks(self) -> list[Tick]:
        """Every tick of the run as contract objects."""
        return [self.tick(j) for j in range(len(self))]


@dataclass(slots=True)
class DecodedTicks:
    """A decoded batch of tick records: the runs per symbol and the records refused."""

    runs: list[TickRun]
    #: ``(position in the batch, why)`` of each refused record, in batch order
    errors: list[tuple[int, ContractError]]


_FAST_TICK_KEYS = frozenset(("v", "symbol", "ts", "price", "source", "kind", "interval_s"))
_POINT_KINDS = frozenset(("quote", "trade"))


class _RunBuilder:
    __slots__ = ("index", "interval", "items", "price", "ts")

    def __init__(self) -> None:
        self.index: list[int] = []
        self.ts: list[int] = []
        self.price: list[float] = []
        self.interval: list[int] = []
        self.items: list[dict[str, Any] | Tick] = []


def _fast_tick(rec: InRecord, limits: Limits, ceiling: int, keys: dict[str, bytes]
               ) -> tuple[str, int, float, int, dict[str, Any]] | None:
    """The fields of a tick of the usual shape whose inline checks pass, else None.

    Conservative: None only sends the record to the per-record path, which decides.
    """
    value = rec.value
    if type(value) is not bytes or len(value) > MAX_MESSAGE_BYTES:
        return None
    try:
        obj = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    if type(obj) is not dict or not obj.keys() <= _FAST_TICK_KEYS:
        return None
    v = obj.get("v")
    if type(v) is not int or v != SCHEMA_VERSION:
        return None
    kind = obj.get("kind", "quote")
    if kind == "bar_close":
        iv = obj.get("interval_s")
        if type(iv) is not int or iv <= 0:
            return None
        interval_ms = iv * 1_000
    elif kind in _POINT_KINDS and "interval_s" not in obj:
        interval_ms = 0
    else:
        return None
    symbol = obj.get("symbol")
    ts = obj.get("ts")
    price = obj.get("price")
    source = obj.get("source")
    if (type(symbol) is not str or symbol not in limits.symbols or type(ts) is not int
            or not MIN_TS_MS <= ts <= ceiling or type(price) is not float
            or type(source) is not str or len(source) > MAX_SOURCE_CHARS
            or not source.strip() or rec.key != keys.get(symbol)):
        return None
    return symbol, ts, price, interval_ms, obj


#: the fields of a point tick as the project's producers write it: the columnar path's shape
_COLUMN_FIELDS = ("v", "symbol", "ts", "price", "source", "kind")
_MISSING = object()


def _decode_ticks_columnar(records: Sequence[InRecord], limits: BatchLimits
                           ) -> DecodedTicks | None:
    """The whole batch at once when every record is a point tick of the usual shape whose
    checks pass, else None (then :func:`_decode_ticks` goes record by record).

    The same checks as :func:`_fast_tick`, applied to columns: each field of every record
    is gathered by one C-level ``map``, and a check holds for the batch when the set of the
    column's types (or values) is what it must be.  About two thirds of the per-record
    loop's time (bench/bench_core.py's ``decode``), for the batches that matter most: those
    of a healthy feed.
    A batch with a single exception is decoded by the per-record loop, which finds it.
    """
    n = len(records)
    values = [r.value for r in records]
    if (set(map(type, values)) != {bytes}
            or max(map(len, values)) > MAX_MESSAGE_BYTES):  # type: ignore[arg-type]
        return None
    try:
        objs = list(map(orjson.loads, cast(list[bytes], values)))
    except orjson.JSONDecodeError:
        return None
    if set(map(type, objs)) != {dict} or set(map(len, objs)) != {len(_COLUMN_FIELDS)}:
        return None
    cols = []
    for name in _COLUMN_FIELDS:
        col = list(map(dict.get, objs, repeat(name), repeat(_MISSING)))
        cols.append(col)
    v_col, sym_col, ts_col, price_col, src_col, kind_col = cols
    lim = limits.ticks
    try:
        if (set(map(type, v_col)) != {int} or set(v_col) != {SCHEMA_VERSION}
                or set(map(type, sym_col)) != {str} or not set(sym_col) <= lim.symbols
                or set(map(type, ts_col)) != {int} or set(map(type, price_col)) != {float}
                or set(map(type, src_col)) != {str} or not set(kind_col) <= _POINT_KINDS):
            return None
    except TypeError:  # an unhashable value in a column: not of the usual shape
        return None
    sources = set(src_col)
    if max(map(len, sources)) > MAX_SOURCE_CHARS or not all(map(str.strip, sources)):
        return None
    key_of = {sym: sym.encode() for sym in set(sym_col)}
    if list(map(key_of.__getitem__, sym_col)) != [r.key for r in records]:
        return None
    try:
        ts = np.array(ts_col, dtype=np.int64)
    except OverflowError:
        return None
    if n and (int(ts.min()) < MIN_TS_MS or int(ts.max()) > lim.ceiling()):
        return None
    price = np.array(price_col, dtype=np.float64)
    errors: list[tuple[int, ContractError]] = []
    runs = []
    symbols = list(key_of)
    if len(symbols) == 1:
        # one symbol: the run is the whole batch, its columns as they are
        runs.append(_checked_prices(
            TickRun(symbols[0], list(range(n)), ts, price, np.zeros(n, np.int64),
                    cast(list[dict[str, Any] | Tick], objs)), records, limits, errors))
    else:
        code = {sym: i for i, sym in enumerate(symbols)}
        codes = np.fromiter(map(code.__getitem__, sym_col), dtype=np.int32, count=n)
        groups = [(sym, np.flatnonzero(codes == i)) for i, sym in enumerate(symbols)]
        # each symbol's run in order of its first record, as the per-record loop builds them
        groups.sort(key=lambda g: int(g[1][0]))
        for sym, idx in groups:
            at = idx.tolist()
            run = TickRun(sym, at, ts[idx], price[idx], np.zeros(len(at), np.int64),
                          list(map(objs.__getitem__, at)))
            runs.append(_checked_prices(run, records, limits, errors))
    errors.sort(key=lambda e: e[0])
    return DecodedTicks([r for r in runs if len(r)], errors)


#: fewer records than this are decoded one by one: the columnar path's fixed numpy cost
#: outweighs its per-record saving below about this size (a live round holds a few ticks)
COLUMNAR_MIN_RECORDS = 64


def _decode_ticks(records: Sequence[InRecord], limits: BatchLimits) -> DecodedTicks:
    columnar = (_decode_ticks_columnar(records, limits)
                if len(records) >= COLUMNAR_MIN_RECORDS else None)
    if columnar is not None:
        return columnar
    return _decode_ticks_by_record(records, limits)


def _decode_ticks_by_record(records: Sequence[InRecord], limits: BatchLimits
                            ) -> DecodedTicks:
    lim = limits.ticks
    ceiling = lim.ceiling()
    keys = {s: s.encode() for s in lim.symbols}
    builders: dict[str, _RunBuilder] = {}
    errors: list[tuple[int, ContractError]] = []
    item: dict[str, Any] | Tick
    for i, rec in enumerate(records):
        fast = _fast_tick(rec, lim, ceiling, keys)
        if fast is not None:
            symbol, ts, price, interval_ms, item = fast
        else:
            try:
                tick = InputDecoder.tick(rec, limits)
            except ContractError as exc:
                errors.append((i, exc))
                continue
            symbol, ts, price = tick.symbol, tick.ts, tick.price
            interval_ms, item = (tick.interval_s or 0) * 1_000, tick
        b = builders.get(symbol)
        if b is None:
            b = builders[symbol] = _RunBuilder()
        b.index.append(i)
        b.ts.append(ts)
        b.price.append(price)
        b.interval.append(interval_ms)
        b.items.append(item)
    runs = []
    for symbol, b in builders.items():
        run = TickRun(symbol, b.index, np.array(b.ts, dtype=np.int64),
                      np.array(b.price, dtype=np.float64),
                      np.array(b.interval, dtype=np.int64), b.items)
        runs.append(_checked_prices(run, records, limits, errors))
    errors.sort(key=lambda e: e[0])
    return DecodedTicks([r for r in runs if len(r)], errors)


def _checked_prices(run: TickRun, records: Sequence[InRecord], limits: BatchLimits,
                    errors: list[tuple[int, ContractError]]) -> TickRun:
    """Refuse the run's prices that are not positive or out of the symbol's band, at once."""
    price = run.price
    ok = np.isfinite(price) & (price > 0.0)
    band = limits.ticks.price_bands.get(run.symbol)
    if band is not None:
        ok &= (price >= band[0]) & (price <= band[1])
    if ok.all():
        return run
    for j in np.nonzero(~ok)[0]:
        i = run.index[j]
        try:
            InputDecoder.tick(records[i], limits)
        except ContractError as exc:
            errors.append((i, exc))
            continue
        ok[j] = True  # the per-record path decides; it accepted this one
    keep = np.nonzero(ok)[0]
    return TickRun(run.symbol, [run.index[j] for j in keep], run.ts[keep], run.price[keep],
                   run.interval_ms[keep], [run.items[j] for j in keep])
