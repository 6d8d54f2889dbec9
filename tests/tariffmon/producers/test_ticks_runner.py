"""The tick loops on recorded payloads: exactly-once by watermark, failures counted, backoff."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pandas as pd
from prometheus_client import CollectorRegistry

from tariffmon.contract import Tick
from tariffmon.producers.backoff import Backoff
from tariffmon.producers.metrics import ProducerMetrics
from tariffmon.producers.ticks.runner import BarPoller, QuoteStreamer, classify_error
from tariffmon.producers.watermarks import Watermarks

SYMBOLS = {"USDJPY": "JPY=X", "N225": "^N225"}
NOW = int(pd.Timestamp("2025-04-03 06:00", tz="UTC").timestamp() * 1000)


class YFRateLimitError(Exception):
    """Stands in for yfinance's exception of that name (classified by name)."""


def metric(registry: CollectorRegistry, name: str, **labels: str) -> float:
    value = registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def make_poller(bars: dict[str, pd.DataFrame], out: list[Tick], marks: Watermarks,
                registry: CollectorRegistry | None = None, fail: set[str] | None = None,
                ) -> BarPoller:
    calls: list[tuple[str, str, str]] = []

    def fetch(ticker: str, period: str, interval: str) -> pd.DataFrame:
        calls.append((ticker, period, interval))
        if fail and ticker in fail:
            raise YFRateLimitError("Too Many Requests. Rate limited. Try after a while.")
        return bars[ticker]

    metrics = ProducerMetrics(registry) if registry is not None else None
    poller = BarPoller(SYMBOLS, fetch, out.append, marks, metrics, now_ms=lambda: NOW)
    poller.calls = calls  # type: ignore[attr-defined]
    return poller


def test_poll_publishes_each_bar_once(bars_by_ticker: dict[str, pd.DataFrame]) -> None:
    out: list[Tick] = []
    poller = make_poller(bars_by_ticker, out, Watermarks())
    n, failed = poller.poll_once()
    assert failed == [] and n == len(out) == 14 + 12
    assert {t.kind for t in out} == {"bar_close"}
    # polling again finds the same bars: nothing new
    assert poller.poll_once() == (0, [])
    assert len(out) == 26
    # first poll asks for 5 days (nothing known), later ones for 1 day
    assert [c[1] for c in poller.calls] == ["5d", "5d", "1d", "1d"]  # type: ignore[attr-defined]


def test_poll_resumes_after_the_watermark(bars_by_ticker: dict[str, pd.DataFrame]) -> None:
    jpy = bars_by_ticker["JPY=X"]
    fifth_end = int(jpy.index[4].timestamp() * 1000) + 60_000
    out: list[Tick] = []
    poller = make_poller(bars_by_ticker, out, Watermarks({"USDJPY": fifth_end}))
    poller.poll_once()
    usd = [t for t in out if t.symbol == "USDJPY"]
    assert usd and min(t.ts for t in usd) > fifth_end
    assert len(usd) == 14 - 5


def test_a_failing_symbol_is_counted_and_the_others_go_on(
    bars_by_ticker: dict[str, pd.DataFrame],
) -> None:
    registry = CollectorRegistry()
    out: list[Tick] = []
    poller = make_poller(bars_by_ticker, out, Watermarks(), registry, fail={"JPY=X"})
    n, failed = poller.poll_once()
    assert failed == ["USDJPY"] and n == 12
    assert metric(registry, "tariffmon_source_errors_total",
                  source="yfinance_bars:USDJPY", kind="rate_limit") == 1
    assert metric(registry, "tariffmon_source_fetches_total", source="yfinance_bars:N225") == 1
    assert metric(registry, "tariffmon_source_last_success_timestamp_seconds",
                  source="yfinance_bars:N225") == NOW / 1000


def test_classify_error() -> None:
    assert classify_error(YFRateLimitError("x")) == "rate_limit"
    assert classify_error(ConnectionError("down")) == "fetch"


def test_backoff_grows_with_jitter_and_resets() -> None:
    b = Backoff(1.0, 8.0, rng=random.Random(1))
    delays = [b.next_delay() for _ in range(6)]
    for d, cap in zip(delays, [1, 2, 4, 8, 8, 8], strict=True):
        assert cap / 2 <= d <= cap
    assert len(set(delays)) == len(delays)  # jittered
    b.reset()
    assert 0.5 <= b.next_delay() <= 1.0


def test_stream_handler_publishes_new_quotes_once(stream_messages: list[dict[str, Any]]) -> None:
    registry = CollectorRegistry()
    out: list[Tick] = []
    streamer = QuoteStreamer(SYMBOLS, lambda: None, out.append, Watermarks(),
                             ProducerMetrics(registry), now_ms=lambda: NOW)
    for m in stream_messages:
        streamer.handle(m)
    # repeated, late (older) and foreign quotes are dropped; bad ones counted
    assert [(t.symbol, t.ts) for t in out] == [
        ("USDJPY", 1743624005000), ("N225", 1743570000000), ("USDJPY", 1743624007000),
        ("USDJPY", 1743624012000), ("N225", 1743570001000),
    ]
    assert metric(registry, "tariffmon_source_errors_total",
                  source="yfinance_stream", kind="bad_message") == 2


class FakeSocket:
    """Stands in for yf.AsyncWebSocket: replays recorded messages, then drops the connection."""

    def __init__(self, messages: list[dict[str, Any]], fail_connect: bool = False) -> None:
        self.messages = messages
        self.fail_connect = fail_connect
        self.subscribed: list[str] = []
        self.closed = False

    async def subscribe(self, symbols: list[str]) -> None:
        if self.fail_connect:
            raise ConnectionError("streamer unreachable")
        self.subscribed = symbols

    async def listen(self, handler: Any) -> None:
        for m in self.messages:
            handler(m)
            await asyncio.sleep(0)
        raise ConnectionError("connection dropped")

    async def close(self) -> None:
        self.closed = True


def test_streamer_reconnects_through_outages(stream_messages: list[dict[str, Any]],
                                              bars_by_ticker: dict[str, pd.DataFrame]) -> None:
    sockets = [FakeSocket([], fail_connect=True), FakeSocket(stream_messages[:4]),
               FakeSocket(stream_messages[4:])]
    made: list[FakeSocket] = []

    def factory() -> FakeSocket:
        made.append(sockets[len(made)])
        return made[-1]

    out: list[Tick] = []
    marks = Watermarks()
    poller = make_poller(bars_by_ticker, out, marks)
    streamer = QuoteStreamer(SYMBOLS, factory, out.append, marks, poller=poller,
                             now_ms=lambda: NOW)

    async def main() -> None:
        stop = asyncio.Event()

        async def stop_when_done() -> None:
            while len(made) < 3 or not made[-1].closed:
                await asyncio.sleep(0.01)
            stop.set()

        watcher = asyncio.ensure_future(stop_when_done())
        await asyncio.wait_for(streamer.run(stop, Backoff(0.01, 0.02)), timeout=10)
        await watcher

    asyncio.run(main())
    assert all(s.closed for s in made)
    assert made[1].subscribed == ["JPY=X", "^N225"]
    # bars were polled while the stream was down; nothing was published twice
    keys = [(t.symbol, t.ts) for t in out]
    assert len(keys) == len(set(keys))
    assert any(t.kind == "bar_close" for t in out)
    # quotes older than the polled bars are not re-published behind them
    for sym in ("USDJPY", "N225"):
        ts = [t.ts for t in out if t.symbol == sym]
        assert ts == sorted(ts)


def test_a_send_that_fails_at_once_leaves_no_hole() -> None:
    import pytest as _pytest

    from tariffmon.contract import Tick as _Tick
    from tariffmon.producers.watermarks import Watermarks

    marks = Watermarks({"USDJPY": 1_000})
    tick = _Tick("USDJPY", 2_000, 145.0, "yfinance")

    def refuse(_: _Tick) -> None:
        raise RuntimeError("buffer full")

    with _pytest.raises(RuntimeError):
        marks.publish_if_new(tick, refuse)
    assert marks.get("USDJPY") == 1_000  # offered again next time
    sent: list[_Tick] = []
    assert marks.publish_if_new(tick, sent.append) and sent == [tick]
    assert not marks.publish_if_new(tick, sent.append) and marks.get("USDJPY") == 2_000
