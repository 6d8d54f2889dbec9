"""Source failures are logged one line per retry, with the error kind, the cause and the time
of the next attempt; yfinance's own lines (tracebacks) stay off the terminal; history's final
error says the cause yfinance logged, not its "possibly delisted".

The network calls are the thin functions passed in; here they fail the way yfinance does: it
logs the cause (a traceback for a WebSocket) and raises.
"""

from __future__ import annotations

import asyncio
import logging
import re
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tariffmon.producers.backoff import Backoff
from tariffmon.producers.errors import ProducerError
from tariffmon.producers.history import download_history
from tariffmon.producers.kafka_producer import StopFlag
from tariffmon.producers.ticks.runner import BarPoller, QuoteStreamer, library_logs
from tariffmon.producers.watermarks import Watermarks

SYMBOLS = {"USDJPY": "JPY=X", "N225": "^N225"}
NOW = 1_743_624_000_000
CURL_DNS = ("Failed to perform, curl: (6) Could not resolve host: query2.finance.yahoo.com. "
            "See https://curl.se/libcurl/c/libcurl-errors.html first for more details.")
NEXT = re.compile(r"next attempt at \d\d:\d\d:\d\d UTC \(in \d+\.\d s\)")
yf_log = logging.getLogger("yfinance")


class CurlError(Exception):
    """Stands in for curl_cffi's error as yfinance lets it through."""


class YFPricesMissingError(Exception):
    """yfinance's "no data" error, raised whatever the cause."""


def _fail_like_yfinance(exc: Exception) -> None:
    try:
        raise exc
    except Exception:
        yf_log.error("Failed to get ticker 'JPY=X' reason: %s", exc, exc_info=True)
        yf_log.warning("Cookie/crumb fetch failed (DNSError), continuing without crumb")
        raise


def _shown(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.WARNING]


def _check_retry_lines(records: list[logging.LogRecord], retries: int) -> list[str]:
    assert all(r.name.startswith("tariffmon.") for r in records), [r.name for r in records]
    lines = [r.getMessage() for r in records]
    assert len(lines) == retries, lines
    for line, record in zip(lines, records, strict=True):
        assert "\n" not in line and record.exc_info is None
        assert NEXT.search(line), line
        assert "fetch: " in line and "Could not resolve host" in line
        assert "curl.se" not in line  # the pointer to curl's documentation is cut
    return lines


@pytest.mark.parametrize("retries", [1, 3, 6])
def test_bar_polling_logs_one_line_per_retry(
    retries: int, caplog: pytest.LogCaptureFixture
) -> None:
    stop = StopFlag()
    calls: list[str] = []

    def fetch(ticker: str, period: str, interval: str) -> pd.DataFrame:
        calls.append(ticker)
        if len(calls) == retries * len(SYMBOLS):
            stop.set()
        _fail_like_yfinance(CurlError(CURL_DNS))
        raise AssertionError("unreachable")

    poller = BarPoller(SYMBOLS, fetch, lambda t: None, Watermarks(), now_ms=lambda: NOW)
    with caplog.at_level(logging.INFO), library_logs("yfinance"):
        caplog.clear()
        poller.run(stop, 60.0, Backoff(0.001, 0.002))
    lines = _check_retry_lines(_shown(caplog), retries)
    assert all("USDJPY, N225: fetch: " in line for line in lines)


class _DeadSocket:
    async def subscribe(self, symbols: list[str]) -> None:
        _fail_like_yfinance(socket.gaierror(-2, "Name or service not known"))

    async def listen(self, handler: Any) -> None:  # pragma: no cover - never connected
        raise AssertionError

    async def close(self) -> None:
        return None


class _QuietSocket(_DeadSocket):
    async def subscribe(self, symbols: list[str]) -> None:
        return None

    async def listen(self, handler: Any) -> None:
        await asyncio.sleep(3600)


@pytest.mark.parametrize("retries", [1, 4])
def test_streaming_logs_one_line_per_retry_with_the_fallback(
    retries: int, caplog: pytest.LogCaptureFixture
) -> None:
    def fetch(ticker: str, period: str, interval: str) -> pd.DataFrame:
        _fail_like_yfinance(CurlError(CURL_DNS))
        raise AssertionError("unreachable")

    poller = BarPoller(SYMBOLS, fetch, lambda t: None, Watermarks(), now_ms=lambda: NOW)
    made: list[_DeadSocket] = []
    done = asyncio.Event()

    def factory() -> _DeadSocket:
        # the session after the last retry connects: the stop is then seen and nothing logged
        made.append(_DeadSocket() if len(made) < retries else _QuietSocket())
        if len(made) > retries:
            done.set()
        return made[-1]

    streamer = QuoteStreamer(SYMBOLS, factory, lambda t: None, Watermarks(), poller=poller,
                             now_ms=lambda: NOW)
    with caplog.at_level(logging.INFO), library_logs("yfinance"):
        caplog.clear()
        asyncio.run(streamer.run(done, Backoff(0.001, 0.002)))
    lines = _check_retry_lines(_shown(caplog), retries)
    for line in lines:
        assert line.startswith("stream: session ended (fetch: [Errno -2] Name or service")
        assert "bars meanwhile: fetch failed for USDJPY, N225: fetch: " in line


def test_library_lines_show_at_debug_only(caplog: pytest.LogCaptureFixture) -> None:
    for level, shown in ((logging.WARNING, False), (logging.DEBUG, True)):
        root = logging.getLogger()
        old = root.level
        root.setLevel(level)
        try:
            with caplog.at_level(level), library_logs("yfinance") as library:
                caplog.clear()
                yf_log.error("Failed to connect to WebSocket")
        finally:
            root.setLevel(old)
        assert any(r.name == "yfinance" for r in caplog.records) is shown
        assert library.errors == ["Failed to connect to WebSocket"]
    assert yf_log.propagate and library not in yf_log.handlers


def _history(fetch: Any, out: Path, attempts: int = 3) -> int:
    now = datetime(2026, 12, 1, tzinfo=UTC)
    return download_history({"USDJPY": "JPY=X"}, now - timedelta(days=2), now, "1m", out,
                            fetch=fetch, now=now, progress=False, attempts=attempts,
                            sleep=lambda s: None)


@pytest.mark.parametrize("vague_from", [1, 2, 3])
def test_history_names_the_cause_not_possibly_delisted(
    vague_from: int, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """From attempt ``vague_from`` on, yfinance raises only "possibly delisted" (having logged
    the DNS failure itself, or not at all after the first attempt)."""
    calls: list[int] = []

    def fetch(ticker: str, a: datetime, b: datetime, interval: str) -> pd.DataFrame:
        calls.append(1)
        if len(calls) < vague_from:
            raise CurlError(CURL_DNS)
        if len(calls) == vague_from:
            yf_log.error("Failed to get ticker 'JPY=X' reason: %s", CURL_DNS)
        raise YFPricesMissingError("$JPY=X: possibly delisted; no price data found")

    with caplog.at_level(logging.WARNING), pytest.raises(ProducerError) as info:
        _history(fetch, tmp_path / "h.jsonl")
    message = str(info.value)
    assert "Could not resolve host: query2.finance.yahoo.com" in message
    assert message.index("Could not resolve host") < message.find("possibly delisted") or (
        "possibly delisted" not in message)
    assert "after 3 attempts" in message and "\n" not in message
    retries = [r for r in caplog.records if r.name == "tariffmon.producers.history"]
    assert len(retries) == 2
    assert all(NEXT.search(r.getMessage()) and "Could not resolve host" in r.getMessage()
               for r in retries)
    assert not any(r.name == "yfinance" for r in caplog.records)
    assert not (tmp_path / "h.jsonl").exists()
