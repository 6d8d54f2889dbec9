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
import datetime as dt
import json
import logging
import re
import time
import urllib.error
from collections.abc import Callable, Iterator, Mapping
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


#: the most characters of an error's text in a log line
MAX_CAUSE_CHARS = 200
#: curl's (yfinance's HTTP client) pointer to its documentation, cut from messages
_CURL_SEE_ALSO = re.compile(r"\s*See https://curl\.se/\S*.*$")


def short_cause(exc: BaseException | str) -> str:
    """An error's text on one bounded line, without curl's pointer to its documentation."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    text = _CURL_SEE_ALSO.sub("", text)
    return text if len(text) <= MAX_CAUSE_CHARS else text[: MAX_CAUSE_CHARS - 3] + "..."


def next_attempt(now_ms: int, delay_s: float) -> str:
    """``next attempt at HH:MM:SS UTC (in N s)``: when a retry happens, for a log line."""
    at = dt.datetime.fromtimestamp(now_ms / 1000 + delay_s, dt.UTC)
    return f"next attempt at {at:%H:%M:%S} UTC (in {delay_s:.1f} s)"


class LibraryLog(logging.Handler):
    """Keeps a library's log records (yfinance's) off the terminal, remembering its errors.

    yfinance logs each failure itself, with a traceback for a failed WebSocket connection and
    several lines per fetch, and then raises (or, for a fetch, raises a vaguer error such as
    "possibly delisted" while the real cause, e.g. a DNS failure, was only logged).  The
    producers log one line per failure with the cause; this handler holds what the library
    said so that the cause can be taken from it (:meth:`take_errors`).
    """

    def __init__(self, limit: int = 20) -> None:
        super().__init__(level=logging.WARNING)
        self.limit = limit
        self.errors: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        """Remember the record's first line (records at ERROR and above only)."""
        if record.levelno >= logging.ERROR:
            self.errors.append(short_cause(record.getMessage().splitlines()[0]))
            del self.errors[: -self.limit]

    def take_errors(self) -> list[str]:
        """The errors logged since the last call, oldest first."""
        out, self.errors = self.errors, []
        return out


@contextlib.contextmanager
def library_logs(name: str = "yfinance") -> Iterator[LibraryLog]:
    """While inside, ``name``'s records go to a :class:`LibraryLog`, not to the terminal.

    With the root logger at DEBUG (``-vv``) they are shown as well, tracebacks included.
    """
    logger = logging.getLogger(name)
    handler = LibraryLog()
    propagate = logger.propagate
    logger.addHandler(handler)
    logger.propagate = logging.getLogger().isEnabledFor(logging.DEBUG)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


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
        #: symbol -> "kind: cause" of its last failed fetch (cleared when a fetch succeeds)
        self.failures: dict[str, str] = {}

    def describe_failures(self, failed: list[str]) -> str:
        """``USDJPY, N225: fetch: Could not resolve host ...``: the failed symbols by cause."""
        by_cause: dict[str, list[str]] = {}
        for symbol in failed:
            by_cause.setdefault(self.failures.get(symbol, "unknown"), []).append(symbol)
        return "; ".join(f"{', '.join(names)}: {cause}" for cause, names in by_cause.items())

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
                # the loops log one line per retry naming every failed symbol (run, QuoteStreamer)
                self.failures[symbol] = f"{kind}: {short_cause(exc)}"
                log.debug("%s (%s): fetch failed (%s): %s", symbol, yahoo, kind, exc)
                if self.metrics is not None:
                    self.metrics.fetch_failed(source, kind)
                failed.append(symbol)
                continue
            self.failures.pop(symbol, None)
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
                # one line per retry: what failed, why, and when it is tried again
                log.warning("bars: fetch failed for %s; %s", self.describe_failures(failed),
                            next_attempt(self.now_ms(), delay))
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
                ended = f"stream: session ended ({kind}: {short_cause(exc)})"
                if self.metrics is not None:
                    self.metrics.source_errors.labels(source="yfinance_stream", kind=kind).inc()
            bars = ""
            if self.poller is not None and not stop.is_set():
                n, failed = await asyncio.to_thread(self.poller.poll_once)
                bars = "; bars meanwhile: " + (
                    f"fetch failed for {self.poller.describe_failures(failed)}" if failed
                    else f"published {n}")
            if self._session_messages:
                backoff.reset()  # the connection worked for a while: retry soon
            delay = backoff.next_delay()
            # one line per retry: why the stream ended, how the fallback went, when it retries
            log.warning("%s%s; %s", ended, bars, next_attempt(self.now_ms(), delay))
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
