"""Per-key event-time watermarks: what a producer already published, so nothing goes twice.

A tick is admitted only if its event time is strictly later than the last one published for
its symbol; at start-up the watermarks come from the tail of the ticks topic, so a restart
neither repeats a quote or bar nor leaves a hole behind what the topic already holds.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from tariffmon.contract import Tick, loads
from tariffmon.errors import ContractError

log = logging.getLogger(__name__)


class Watermarks:
    """The newest event time published per symbol."""

    def __init__(self, initial: Mapping[str, int] | None = None) -> None:
        self._last: dict[str, int] = dict(initial or {})

    def get(self, symbol: str) -> int | None:
        """The newest published event time of ``symbol`` (``None``: nothing yet)."""
        return self._last.get(symbol)

    def admit(self, tick: Tick) -> bool:
        """Whether ``tick`` is new (later than anything published for its symbol); records it."""
        last = self._last.get(tick.symbol)
        if last is not None and tick.ts <= last:
            return False
        self._last[tick.symbol] = tick.ts
        return True

    def publish_if_new(self, tick: Tick, publish: Callable[[Tick], None]) -> bool:
        """Publish ``tick`` if it is new; the watermark moves only if ``publish`` returned.

        A send that fails at once leaves the watermark where it was, so the same tick (or
        bar) is offered again by the next poll instead of leaving a hole.
        """
        last = self._last.get(tick.symbol)
        if not self.admit(tick):
            return False
        try:
            publish(tick)
        except BaseException:
            if last is None:
                del self._last[tick.symbol]
            else:
                self._last[tick.symbol] = last
            raise
        return True

    def as_dict(self) -> dict[str, int]:
        """A copy of the watermarks."""
        return dict(self._last)


def watermarks_from_records(records: Iterable[Any]) -> Watermarks:
    """Watermarks from Kafka records of the ticks topic (undecodable ones are skipped, logged)."""
    last: dict[str, int] = {}
    for rec in records:
        try:
            obj = loads(rec.value)
            symbol, ts = obj["symbol"], obj["ts"]
        except (ContractError, KeyError, TypeError) as exc:
            log.warning("ticks topic %s[%d]@%d: not a tick, ignored for resume: %s",
                        rec.topic, rec.partition, rec.offset, exc)
            continue
        if isinstance(symbol, str) and isinstance(ts, int) and ts > last.get(symbol, -1):
            last[symbol] = ts
    return Watermarks(last)
