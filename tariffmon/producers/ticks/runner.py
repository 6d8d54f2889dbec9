"""The tick producer's loops: poll one-minute bars, or stream quotes with polling as fallback.

The network is reached only through functions passed in (``fetch_bars`` and
``ws_factory``), so tests drive the same code with recorded payloads.  Every tick goes through
the :class:`~tariffmon.producers.watermarks.Watermarks`, so the same bar or quote is never published
twice, and a source failure is counted, logged and retried with backoff: the loops run until
asked to stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import urllib.error
from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd

from tariffmon.contract import Tick
from tariffmon.producers.backoff import Backoff
from tariffmon.producers.errors import SourceError
from tariffmon.producers.kafka_producer import StopFlag
from tariffmon.producers.metrics import ProducerMetrics
from tariffmon.producers.ticks.convert import bars_to_ticks, interval_seconds, quote_to_tick
from tariffmon.producers.watermarks import Watermarks

log = logging.getLogger(__name__)

#: fetch_bars(yahoo_ticker, period, interval) -> DataFrame as yfinance's Ticker.history returns
FetchBars = Callable[[str, str, str], pd.DataFrame]
PublishTick = Callable[[Tick], None]


def wall_ms() -> int:
    """The wall clock in epoch milliseconds (only producers read it, never the core)."""
    return time.time_ns() // 1_000_000


def fetch_bars_yfinance(ticker: str, period: str, interval: str) -> pd.DataFrame:
    """The real network call: ``yf.Ticker(ticker).history(period, interval)``, errors raised."""
    import yfinance as yf  # heavy import, and only the live producer needs it

    frame: pd.DataFrame = yf.Ticker(ticker).history(
        period=period, interval=interval, auto_adjust=False, actions=False, raise_errors=True
    )
    return frame


#: exception class names (anywhere in the class's ancestry) that mean "timed out":
#: curl_cffi's and requests' Timeout family, whatever the library raises them from
_TIMEOUT_CLASS_NAMES = frozenset({"Timeout", "ReadTimeout", "ConnectTimeout", "TimeoutError"})


def http_status(exc: BaseException) -> int | None:
    """The HTTP status an error carries, if any.

    urllib's HTTPError has it as ``code``; requests', curl_cffi's (yfinance) and websockets'
    errors as ``response.status_code``.  (curl_cffi's own ``code`` is a curl error number,
    not an HTTP status, so ``code`` is read from urllib's errors only.)
    """
    if isinstance(exc, urllib.error.HTTPError):
        return int(exc.code)
    status = getattr(getattr(exc, "response", None), "status_code", None)
    return status if isinstance(status, int) else None


def _is_timeout(exc: BaseException) -> bool:
    if isinstance(exc, TimeoutError):  # socket.timeout is TimeoutError since Python 3.10
        return True
    if isinstance(exc, urllib.error.URLError) and isinstance(exc.reason, TimeoutError):
        return True  # urlopen's connect timeout arrives wrapped
    return any(c.__name__ in _TIMEOUT_CLASS_NAMES for c in type(exc).__mro__)


def classify_error(exc: BaseException) -> str:
    """A bounded error kind for metrics and logs.

    A SourceError's own kind (``bad_frame``, ``parse`` ...); ``rate_limit`` (HTTP 429,
    yfinance's YFRateLimitError); ``timeout``; ``http_5xx`` / ``http_4xx`` for other HTTP
    failures; ``bad_payload`` for a body that does not decode (an HTML error page where
    JSON was expected); ``fetch`` for anything else (connection refused, DNS, a missing file).
    """
    if isinstance(exc, SourceError):
        return exc.kind
    status = http_status(exc)
    if status == 429 or "RateLimit" in type(exc).__name__ or "Too Many Requests" in str(exc):
        return "rate_limit"
    if _is_timeout(exc):
        return "timeout"
    if status is not None and status >= 500:
        return "http_5xx"
    if status is not None and status >= 400:
        return "http_4xx"
    if isinstance(exc, json.JSONDecodeError | UnicodeDecodeError):
        return "bad_payload"
    return "fetch"


class BarPoller:
    """Publishes each symbol's complete one-minute bars, at their close, exactly once."""

    def __init__(
        self,
        symbols: Mapping[str, str],
        fetch_bars: FetchBars,
        publish: PublishTick,
        watermarks: Watermarks,
        metrics: ProducerMetrics | None = None,
        *,
        interval: str = "1m",
        now_ms: Callable[[], int] = wall_ms,
    ) -> None:
        #: canonical symbol -> Yahoo ticker
        self.symbols = dict(symbols)
        self.fetch_bars = fetch_bars
        self.publish = publish
        self.watermarks = watermarks
        self.metrics = metrics
        self.interval = interval
        self.interval_s = interval_seconds(interval)
        self.now_ms = now_ms

    def _period(self, symbol: str, now: int) -> str:
        # 1m bars: Yahoo serves up to 8 days per request; ask for more only after a gap
        last = self.watermarks.get(symbol)
        if last is None or now - last > 20 * 3_600_000:
            return "5d"
        return "1d"

    def poll_once(self) -> tuple[int, list[str]]:
        """One poll of every symbol: (ticks published, symbols whose fetch failed)."""
        published = 0
        failed: list[str] = []
        for symbol, yahoo in self.symbols.items():
            source = f"yfinance_bars:{symbol}"
            now = self.now_ms()
            try:
                frame = self.fetch_bars(yahoo, self._period(symbol, now), self.interval)
                ticks = bars_to_ticks(frame, symbol, self.interval_s, now_ms=now)
            except Exception as exc:  # noqa: BLE001 - any source failure is counted and retried
                kind = classify_error(exc)
                log.warning("%s (%s): fetch failed (%s): %s", symbol, yahoo, kind, exc)
                if self.metrics is not None:
                    self.metrics.fetch_failed(source, kind)
                failed.append(symbol)
                continue
            if self.metrics is not None:
                self.metrics.fetch_ok(source, now / 1000)
            for tick in ticks:
                if self.watermarks.publish_if_new(tick, self.publish):
                    published += 1
        return published, failed

    def run(self, stop: StopFlag, poll_interval_s: float, backoff: Backoff) -> None:
        """Poll until ``stop``: every ``poll_interval_s``, or after a backoff when a fetch fails."""
        while not stop.is_set():
            n, failed = self.poll_once()
            log.info("bars: published %d, failed symbols %s", n, failed or "none")
            if failed:
                delay = backoff.next_delay()
                log.warning("bars: retrying in %.1f s", delay)
                stop.wait(delay)
            else:
                backoff.reset()
                stop.wait(poll_interval_s)


class QuoteStreamer:
    """Publishes quotes from yfinance's streaming client; polls bars while the stream is down.

    ``ws_factory()`` returns a fresh ``yf.AsyncWebSocket``-like object (``subscribe``,
    ``listen(handler)``, ``close``).  A session ends when the connection fails or stays silent
    for ``silence_s``; then the poller (if any) fills the gap and, after a backoff, a new
    session starts.
    """

    def __init__(
        self,
        symbols: Mapping[str, str],
        ws_factory: Callable[[], Any],
        publish: PublishTick,
        watermarks: Watermarks,
        metrics: ProducerMetrics | None = None,
        *,
        poller: BarPoller | None = None,
        silence_s: float = 180.0,
        now_ms: Callable[[], int] = wall_ms,
    ) -> None:
        #: canonical symbol -> Yahoo ticker
        self.symbols = dict(symbols)
        self._by_yahoo = {y: s for s, y in self.symbols.items()}
        self.ws_factory = ws_factory
        self.publish = publish
        self.watermarks = watermarks
        self.metrics = metrics
        self.poller = poller
        self.silence_s = silence_s
        self.now_ms = now_ms
        self._last_message = time.monotonic()
        self._session_messages = 0
        self.published = 0

    def handle(self, message: Mapping[str, Any]) -> Tick | None:
        """Handle one decoded streaming message: publish it if new.  Never raises."""
        self._last_message = time.monotonic()
        self._session_messages += 1
        try:
            tick = quote_to_tick(message, self._by_yahoo)
        except SourceError as exc:
            log.warning("stream: %s", exc)
            if self.metrics is not None:
                self.metrics.source_errors.labels(source="yfinance_stream", kind=exc.kind).inc()
            return None
        if tick is None:
            return None
        if self.metrics is not None:
            self.metrics.source_last_success.labels(
                source=f"yfinance_stream:{tick.symbol}").set(self.now_ms() / 1000)
        try:
            if not self.watermarks.publish_if_new(tick, self.publish):
                return None
        except Exception as exc:  # noqa: BLE001 - counted by the producer; keep streaming
            log.error("stream: could not publish %s@%d: %s", tick.symbol, tick.ts, exc)
            return None
        self.published += 1
        return tick

    async def session(self, stop: asyncio.Event) -> None:
        """One connection: subscribe and listen until it fails, goes silent, or ``stop``."""
        ws = self.ws_factory()
        if self.metrics is not None:
            self.metrics.source_fetches.labels(source="yfinance_stream").inc()
        try:
            await ws.subscribe(sorted(self._by_yahoo))
            self._last_message = time.monotonic()
            listener = asyncio.ensure_future(ws.listen(self.handle))
            try:
                while not stop.is_set():
                    done, _ = await asyncio.wait({listener}, timeout=1.0)
                    if done:
                        listener.result()  # re-raise what ended it
                        raise SourceError("yfinance_stream", "closed", "the stream ended")
                    if time.monotonic() - self._last_message > self.silence_s:
                        raise SourceError("yfinance_stream", "silent",
                                          f"no message for {self.silence_s:g} s")
            finally:
                listener.cancel()
                await asyncio.gather(listener, return_exceptions=True)
        finally:
            try:
                await ws.close()
            except Exception as exc:  # noqa: BLE001 - closing a dead socket may fail; noted
                log.debug("stream: close failed: %s", exc)

    async def run(self, stop: asyncio.Event, backoff: Backoff) -> None:
        """Sessions until ``stop``; between them, poll bars and wait with backoff."""
        while not stop.is_set():
            self._session_messages = 0
            try:
                await self.session(stop)
                continue  # only returns when stopping
            except Exception as exc:  # noqa: BLE001 - any stream failure: count, fall back, retry
                kind = classify_error(exc)
                log.warning("stream: session ended (%s): %s", kind, exc)
                if self.metrics is not None:
                    self.metrics.source_errors.labels(source="yfinance_stream", kind=kind).inc()
            if self.poller is not None and not stop.is_set():
                n, _ = await asyncio.to_thread(self.poller.poll_once)
                log.info("stream down: published %d bars meanwhile", n)
            if self._session_messages:
                backoff.reset()  # the connection worked for a while: retry soon
            delay = backoff.next_delay()
            with contextlib.suppress(TimeoutError):  # the backoff elapsed: reconnect
                await asyncio.wait_for(stop.wait(), timeout=delay)


def yfinance_ws_factory(verbose: bool = False) -> Callable[[], Any]:
    """The real streaming client constructor (``yf.AsyncWebSocket``), imported lazily."""
    def make() -> Any:
        import yfinance as yf

        return yf.AsyncWebSocket(verbose=verbose)

    return make


def run_stream_blocking(streamer: QuoteStreamer, stop: StopFlag, backoff: Backoff) -> None:
    """Run the streamer's asyncio loop in this thread until ``stop`` is set."""
    async def main() -> None:
        done = asyncio.Event()

        async def watch() -> None:
            while not stop.is_set():
                await asyncio.sleep(0.2)
            done.set()

        watcher = asyncio.ensure_future(watch())
        try:
            await streamer.run(done, backoff)
        finally:
            watcher.cancel()

    asyncio.run(main())
