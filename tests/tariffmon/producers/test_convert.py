"""yfinance payloads -> contract ticks: streaming messages and 1-minute bar DataFrames."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

from tariffmon.contract import Tick
from tariffmon.producers.errors import SourceError
from tariffmon.producers.ticks.convert import bars_to_ticks, interval_seconds, quote_to_tick

SYMBOLS = {"JPY=X": "USDJPY", "^N225": "N225"}


def test_stream_message_becomes_a_quote_tick(stream_messages: list[dict[str, Any]]) -> None:
    tick = quote_to_tick(stream_messages[0], SYMBOLS)
    assert tick == Tick(symbol="USDJPY", ts=1743624005000, price=149.312, source="yfinance",
                        kind="quote")
    # and it is a valid contract message
    assert Tick.decode(tick.encode()) == tick


def test_float32_noise_is_rounded(stream_messages: list[dict[str, Any]]) -> None:
    tick = quote_to_tick(stream_messages[8], SYMBOLS)
    assert tick is not None and tick.price == 148.952


def test_other_tickers_are_ignored(stream_messages: list[dict[str, Any]]) -> None:
    assert quote_to_tick(stream_messages[4], SYMBOLS) is None


@pytest.mark.parametrize("index", [6, 7])
def test_bad_messages_raise_source_errors(stream_messages: list[dict[str, Any]],
                                          index: int) -> None:
    with pytest.raises(SourceError) as info:
        quote_to_tick(stream_messages[index], SYMBOLS)
    assert info.value.kind == "bad_message"


def test_time_in_seconds_is_converted() -> None:
    tick = quote_to_tick({"id": "JPY=X", "price": 150.0, "time": "1743624005"}, SYMBOLS)
    assert tick is not None and tick.ts == 1743624005000


def test_bars_become_bar_close_ticks_at_the_bar_end(
    bars_by_ticker: dict[str, pd.DataFrame],
) -> None:
    frame = bars_by_ticker["JPY=X"]
    ticks = bars_to_ticks(frame, "USDJPY", 60)
    # 15 bars, one all-NaN row dropped
    assert len(ticks) == 14
    first = ticks[0]
    # first bar starts 21:00 BST = 20:00 UTC and ends a minute later
    assert first.ts == int(pd.Timestamp("2025-04-02 20:01", tz="UTC").timestamp() * 1000)
    assert first.kind == "bar_close" and first.interval_s == 60
    assert first.price == float(frame["Close"].iloc[0])
    assert first.volume is None  # Yahoo's zero FX volume is not a volume
    assert [t.ts for t in ticks] == sorted(t.ts for t in ticks)
    for t in ticks:
        assert Tick.decode(t.encode()) == t


def test_tokyo_bars_convert_to_utc(bars_by_ticker: dict[str, pd.DataFrame]) -> None:
    ticks = bars_to_ticks(bars_by_ticker["^N225"], "N225", 60)
    # 09:00 JST = 00:00 UTC bar start, end 00:01 UTC
    assert ticks[0].ts == int(pd.Timestamp("2025-04-03 00:01", tz="UTC").timestamp() * 1000)


def test_the_bar_still_forming_is_not_published(bars_by_ticker: dict[str, pd.DataFrame]) -> None:
    frame = bars_by_ticker["^N225"]
    last_start = int(frame.index[-1].timestamp() * 1000)
    ticks = bars_to_ticks(frame, "N225", 60, now_ms=last_start + 30_000)
    assert len(ticks) == len(frame) - 1
    assert ticks[-1].ts == last_start


def test_naive_index_is_refused(bars_by_ticker: dict[str, pd.DataFrame]) -> None:
    frame = bars_by_ticker["^N225"].tz_localize(None)
    with pytest.raises(SourceError, match="time zone"):
        bars_to_ticks(frame, "N225", 60)


def test_empty_frame_gives_nothing() -> None:
    assert bars_to_ticks(pd.DataFrame(), "N225", 60) == []


def test_interval_seconds() -> None:
    assert interval_seconds("1m") == 60 and interval_seconds("1h") == 3600
    with pytest.raises(SourceError):
        interval_seconds("7m")
