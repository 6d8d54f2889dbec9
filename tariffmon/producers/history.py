"""Download historical bars with yfinance into a recorded-stream file.

Yahoo serves intraday history only so far back, and only so much per request:

=========================  ===================  ==================
interval                   oldest start         longest request
=========================  ===================  ==================
1m                         30 days ago          7 days
2m 5m 15m 30m 90m          60 days ago          60 days
60m / 1h                   730 days ago         365 days
1d and longer              any                  any
=========================  ===================  ==================

:func:`plan_requests` clips the range to those limits (saying so) and cuts it into requests;
:func:`download_history` fetches them through a function passed in, turns complete bars into
``bar_close`` ticks at the bar's end and writes them sorted by event time.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from tariffmon.producers.backoff import Backoff
from tariffmon.producers.errors import HistoryRangeError, ProducerError
from tariffmon.producers.ticks.convert import bars_to_ticks, interval_seconds
from tariffmon.producers.ticks.runner import (
    classify_error,
    library_logs,
    next_attempt,
    short_cause,
    wall_ms,
)
from tariffmon.recorded import RecordedEvent, write_events

log = logging.getLogger(__name__)

#: fetch_history(yahoo_ticker, start, end, interval) -> DataFrame as Ticker.history returns
FetchHistory = Callable[[str, datetime, datetime, str], pd.DataFrame]


@dataclass(frozen=True, slots=True)
class IntervalLimit:
    """How far back Yahoo serves an interval, and the longest span of one request."""

    max_age: timedelta | None
    max_span: timedelta | None


_INTRADAY = IntervalLimit(timedelta(days=60), timedelta(days=60))
LIMITS: dict[str, IntervalLimit] = {
    "1m": IntervalLimit(timedelta(days=30), timedelta(days=7)),
    "2m": _INTRADAY, "5m": _INTRADAY, "15m": _INTRADAY, "30m": _INTRADAY, "90m": _INTRADAY,
    "60m": IntervalLimit(timedelta(days=730), timedelta(days=365)),
    "1h": IntervalLimit(timedelta(days=730), timedelta(days=365)),
    "1d": IntervalLimit(None, None), "5d": IntervalLimit(None, None),
    "1wk": IntervalLimit(None, None),
}
#: keep clear of the exact edge: Yahoo counts the limit from its own clock
_EDGE_MARGIN = timedelta(hours=1)


def plan_requests(
    interval: str, start: datetime, end: datetime, now: datetime
) -> list[tuple[datetime, datetime]]:
    """The ``[start, end)`` requests covering the range within Yahoo's limits for ``interval``.

    A start older than the limit is moved forward (logged); a range entirely outside it
    raises HistoryRangeError naming the interval and the limit.
    """
    if interval not in LIMITS:
        raise HistoryRangeError(f"interval={interval!r}: use one of {sorted(LIMITS)}")
    if start.tzinfo is None or end.tzinfo is None:
        raise HistoryRangeError("start and end must be time-zone aware (UTC)")
    if end <= start:
        raise HistoryRangeError(f"end {end.isoformat()} is not after start {start.isoformat()}")
    limit = LIMITS[interval]
    end = min(end, now)
    if limit.max_age is not None:
        oldest = now - limit.max_age + _EDGE_MARGIN
        if end <= oldest:
            raise HistoryRangeError(
                f"interval={interval}: Yahoo serves it only for the last "
                f"{limit.max_age.days} days (since {oldest:%Y-%m-%d %H:%M} UTC); "
                f"the range ends {end:%Y-%m-%d %H:%M} UTC - use a longer interval"
            )
        if start < oldest:
            log.warning("interval=%s: start moved from %s to %s (Yahoo keeps %d days)",
                        interval, start.isoformat(), oldest.isoformat(), limit.max_age.days)
            start = oldest
    if limit.max_span is None:
        return [(start, end)]
    out: list[tuple[datetime, datetime]] = []
    t = start
    while t < end:
        u = min(end, t + limit.max_span)
        out.append((t, u))
        t = u
    return out


def fetch_history_yfinance(ticker: str, start: datetime, end: datetime,
                           interval: str) -> pd.DataFrame:
    """The real network call: ``yf.Ticker(ticker).history(start, end, interval)``."""
    import yfinance as yf

    frame: pd.DataFrame = yf.Ticker(ticker).history(
        start=start, end=end, interval=interval, auto_adjust=False, actions=False,
        raise_errors=True,
    )
    return frame


def _is_vague(exc: BaseException) -> bool:
    """yfinance's "no data" errors, which it raises whatever the cause (a DNS failure too)."""
    return "Missing" in type(exc).__name__ or "possibly delisted" in str(exc)


def _fetch_with_retries(fetch: FetchHistory, ticker: str, a: datetime, b: datetime,
                        interval: str, attempts: int, sleep: Callable[[float], Any]
                        ) -> pd.DataFrame:
    """One request, retried with backoff; the final error names the real cause.

    yfinance logs the cause of a failed request (e.g. ``Could not resolve host``) and may
    then raise only "possibly delisted; no price data found": the cause it logged (in this
    attempt or an earlier one) is what the error and the retry lines say.
    """
    backoff = Backoff(2.0, 60.0)
    known: str | None = None  # the last specific cause seen, over all attempts
    with library_logs("yfinance") as library:
        for attempt in range(1, attempts + 1):
            try:
                return fetch(ticker, a, b, interval)
            except Exception as exc:  # retried, then re-raised with its kind and cause
                kind = classify_error(exc)
                said = library.take_errors()
                if not _is_vague(exc):
                    known = short_cause(exc)
                elif said:
                    known = f"{said[-1]} (yfinance then said: {short_cause(exc)})"
                cause = known or short_cause(exc)
                if attempt == attempts:
                    raise ProducerError(
                        f"{ticker} {interval} {a:%Y-%m-%d}..{b:%Y-%m-%d}: {kind}: {cause} "
                        f"(after {attempts} attempts)"
                    ) from exc
                delay = backoff.next_delay()
                log.warning("%s %s: %s: %s; retry %d of %d, %s", ticker, interval, kind, cause,
                            attempt, attempts - 1, next_attempt(wall_ms(), delay))
                sleep(delay)
    raise AssertionError("unreachable")


def download_history(
    symbols: Mapping[str, str],
    start: datetime,
    end: datetime,
    interval: str,
    out: str | Path,
    *,
    fetch: FetchHistory = fetch_history_yfinance,
    now: datetime | None = None,
    progress: bool = True,
    attempts: int = 3,
    sleep: Callable[[float], Any] = time.sleep,
) -> int:
    """Fetch ``symbols`` (canonical -> Yahoo) and write their bars as ``ticks`` events.

    Only complete bars whose start lies in ``[start, end)`` are kept, once each even where
    requests overlap.  Returns the number of events written.
    """
    from tqdm import tqdm

    now = now or datetime.now(UTC)
    plan = plan_requests(interval, start, end, now)
    step = interval_seconds(interval)
    lo_ms, hi_ms = int(start.timestamp() * 1000), int(end.timestamp() * 1000)
    now_ms = int(now.timestamp() * 1000)
    seen: set[tuple[str, int]] = set()
    events: list[tuple[int, int, RecordedEvent]] = []
    order = {s: i for i, s in enumerate(symbols)}
    with tqdm(total=len(plan) * len(symbols), unit="req", desc=f"history {interval}",
              disable=not progress) as bar:
        for symbol, ticker in symbols.items():
            for a, b in plan:
                bar.set_postfix_str(f"{symbol} {a:%Y-%m-%d}")
                frame = _fetch_with_retries(fetch, ticker, a, b, interval, attempts, sleep)
                for tick in bars_to_ticks(frame, symbol, step, now_ms=now_ms):
                    bar_start = tick.ts - step * 1000
                    if not lo_ms <= bar_start < hi_ms or (symbol, tick.ts) in seen:
                        continue
                    seen.add((symbol, tick.ts))
                    ev = RecordedEvent("ticks", symbol, tick.ts, tick.to_dict())
                    events.append((tick.ts, order[symbol], ev))
                bar.update(1)
    events.sort(key=lambda e: (e[0], e[1]))
    return write_events(out, (e[2] for e in events))
