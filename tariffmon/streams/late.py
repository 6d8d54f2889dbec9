"""The late path: reactions of requests whose ticks have left the engine's memory.

A headline that arrives beyond the lateness bound, or whose p0 the engine no longer holds
(after a restart, or a market closed for days), is measured on its symbol's ticks read back
from Kafka: the same decoder and limits as the live path
(:mod:`tariffmon.streams.records`), the same
engine entry points (:class:`tariffmon.core.engine.LateMeasurement`), so the answer is the one
it would have had on time.  Horizons the ticks on Kafka do not reach yet stay pending: the
stage keeps the measurement and feeds it the symbol's newer ticks as they come.  The engine
marked the request as seen when it refused it, so a repeat of its id is ignored as on time.

Blocking (kafka-python): the agent runs :meth:`LatePath.measure` in a worker thread.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from kafka import TopicPartition

from tariffmon.contract import Tick
from tariffmon.core.engine import LateMeasurement, late_reach_back, late_read_from
from tariffmon.core.params import EngineParams
from tariffmon.errors import ContractError
from tariffmon.settings import Settings
from tariffmon.streams.records import InputDecoder, InRecord
from tariffmon.streams.stages import LateRequest
from tariffmon.topic_reader import end_offsets, offsets_at, read_offsets

log = logging.getLogger(__name__)

#: how often a read reaches further back for a market closed long before a t0, and how far
#: back at most (longer than any exchange closes; a symbol with no tick that old has none)
LATE_READ_ATTEMPTS = 8
LATE_MAX_REACH_BACK_MS = 21 * 86_400_000

#: ``(partition, symbol, from_ts, t0) -> ticks``: one symbol's ticks from ``from_ts`` until
#: a tick lies the longest horizon past the first tick after ``t0``
TickSource = Callable[[int, str, int, int], list[Tick]]


class LatePath:
    """Measure a batch's late requests on ticks read back from Kafka."""

    def __init__(self, params: EngineParams, read: TickSource) -> None:
        self.params = params
        self._read = read

    def measure(self, lates: Sequence[LateRequest]
                ) -> list[tuple[LateRequest, LateMeasurement]]:
        """Each late request with its measurement (pending horizons are for the caller).

        One read per partition and symbol covers the whole batch (a worker catching up on a
        backlog meets late requests in bursts); a request that needs older ticks than that
        read holds (a market closed before its t0) reads further back on its own.
        """
        groups: dict[tuple[int, str], list[LateRequest]] = {}
        for late in dedupe(lates):
            groups.setdefault((late.record.partition, late.request.symbol), []).append(late)
        out: list[tuple[LateRequest, LateMeasurement]] = []
        for (partition, symbol), group in groups.items():
            from_ts = min(late_read_from(self.params, g.request.t0) for g in group)
            last_t0 = max(g.request.t0 for g in group)
            ticks = self._read(partition, symbol, from_ts, last_t0)
            for late in group:
                mine = self._enough(late, ticks, from_ts)
                res = LateMeasurement(self.params, late.request, mine)
                log.info("late headline %s for %s measured on %d ticks read back from Kafka",
                         late.request.headline_id, symbol, len(mine))
                out.append((late, res))
        return out

    def _enough(self, late: LateRequest, ticks: list[Tick], from_ts: int) -> list[Tick]:
        req = late.request
        for _ in range(LATE_READ_ATTEMPTS):
            need = late_reach_back(self.params, ticks, req.t0, from_ts)
            if need is None or need <= 0:
                return ticks
            need = max(need, req.t0 - LATE_MAX_REACH_BACK_MS)
            if need >= from_ts:
                return ticks
            from_ts = need
            ticks = self._read(late.record.partition, req.symbol, from_ts, req.t0)
        return ticks


def dedupe(lates: Sequence[LateRequest]) -> list[LateRequest]:
    """The first request of each (headline id, symbol): a repeated id is not measured twice."""
    seen: set[tuple[str, str]] = set()
    out = []
    for late in lates:
        key = (late.request.headline_id, late.request.symbol)
        if key not in seen:
            seen.add(key)
            out.append(late)
    return out


def kafka_tick_source(settings: Settings, decoder: InputDecoder, params: EngineParams
                      ) -> TickSource:
    """Read one symbol's ticks back from the ticks topic, decoded as the live path does."""
    topic = settings.topics.ticks
    horizon = params.max_horizon_ms

    def read(partition: int, symbol: str, from_ts: int, t0: int) -> list[Tick]:
        tp = TopicPartition(topic, partition)
        start = offsets_at(settings, [tp], from_ts)[tp]
        stop = end_offsets(settings, [tp])[tp]
        limits = decoder.limits()
        want = symbol.encode()
        ticks: list[Tick] = []
        newest: int | None = None
        first_after: int | None = None
        for m in read_offsets(settings, tp, start, stop):
            if m.key != want:
                continue
            rec = InRecord.of(m)
            try:
                tick = decoder.tick(rec, limits)
            except ContractError as exc:
                # dead-lettered when the live path met it; skipped here for the same reason
                log.debug("read-back skips %s[%d]@%d: %s", rec.topic, rec.partition,
                          rec.offset, exc)
                continue
            if newest is not None and tick.ts < newest:
                continue  # the live engine refused it as out of order
            newest = tick.ts
            if tick.ts < from_ts:
                continue
            ticks.append(tick)
            if first_after is None and tick.ts > t0:
                first_after = tick.ts
            if first_after is not None and tick.ts > first_after + horizon:
                break
        return ticks

    return read
