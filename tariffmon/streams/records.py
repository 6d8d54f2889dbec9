"""Kafka records as the stages see them, and the one way every input record is decoded.

Every path that reads ticks or reaction requests from Kafka (the live agents, the rebuild
after a restart, the read-back for late headlines) decodes them with :class:`InputDecoder`,
so they all apply the same contract, the same limits and the same key rule: a record one path
would refuse, no other path uses.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from tariffmon.assembly import input_limits, tick_limits
from tariffmon.contract import MAX_TS_MS, Headline, Limits, Message, ReactionRequest, Tick
from tariffmon.errors import ContractError
from tariffmon.settings import Settings

Clock = Callable[[], float]
_M = TypeVar("_M", bound=Message)


@dataclass(frozen=True, slots=True)
class InRecord:
    """One consumed Kafka record."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None

    @staticmethod
    def of(m: Any) -> InRecord:
        """From a kafka-python ``ConsumerRecord`` (timestamps already in ms)."""
        return InRecord(m.topic, m.partition, m.offset, m.timestamp, m.key, m.value)


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

    def limits(self) -> BatchLimits:
        """The limits for records decoded now."""
        now_ms = int(self._clock() * 1000)
        return BatchLimits(input_limits(self._settings, now_ms),
                           tick_limits(self._settings, now_ms))

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
