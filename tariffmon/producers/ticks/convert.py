"""Turn yfinance payloads into contract ticks (pure functions, no network).

Two shapes arrive from yfinance:

* a decoded streaming message (``yf.WebSocket`` / ``yf.AsyncWebSocket`` hand the handler the
  protobuf ``PricingData`` as a dict: ``id`` the Yahoo ticker, ``price`` a float, ``time``
  epoch milliseconds *as a string*, plus ``exchange``, ``quote_type``, ``market_hours``,
  ``change_percent``, ``day_volume`` ...): one ``quote`` tick;
* the DataFrame of ``Ticker.history(interval="1m")``: a tz-aware DatetimeIndex of bar *starts*
  with Open/High/Low/Close/Volume columns: one ``bar_close`` tick per complete bar, at the
  bar's end, with ``interval_s``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pandas as pd

from tariffmon.contract import Tick
from tariffmon.producers.errors import SourceError

SOURCE = "yfinance"

#: yfinance interval strings -> seconds
INTERVAL_SECONDS: dict[str, int] = {
    "1m": 60, "2m": 120, "5m": 300, "15m": 900, "30m": 1_800, "60m": 3_600, "90m": 5_400,
    "1h": 3_600, "1d": 86_400, "5d": 432_000, "1wk": 604_800,
}


def interval_seconds(interval: str) -> int:
    """Seconds of a yfinance interval string such as ``"1m"``."""
    try:
        return INTERVAL_SECONDS[interval]
    except KeyError:
        raise SourceError(SOURCE, "bad_interval",
                          f"unknown interval {interval!r}; use one of {sorted(INTERVAL_SECONDS)}"
                          ) from None


def _price_decimals(price: float) -> int:
    # float32 on the wire leaves noise in the last digits; keep what a quote shows
    return 3 if price < 1_000 else 2


def quote_to_tick(message: Mapping[str, Any], symbols: Mapping[str, str]) -> Tick | None:
    """A ``quote`` tick from one decoded streaming message.

    ``symbols`` maps Yahoo tickers to canonical names; a message for another ticker gives
    ``None``.  A malformed message raises SourceError(kind="bad_message").
    """
    if "error" in message:
        raise SourceError(SOURCE, "bad_message", f"undecodable message: {message.get('error')}")
    yahoo = message.get("id")
    if not isinstance(yahoo, str):
        raise SourceError(SOURCE, "bad_message", f"no ticker id in {dict(message)!r:.200}")
    symbol = symbols.get(yahoo)
    if symbol is None:
        return None
    try:
        price = float(message["price"])
        ts = int(message["time"])
    except (KeyError, TypeError, ValueError) as exc:
        raise SourceError(SOURCE, "bad_message",
                          f"{yahoo}: price/time unusable ({exc!r}) in {dict(message)!r:.200}"
                          ) from None
    if not math.isfinite(price) or price <= 0:
        raise SourceError(SOURCE, "bad_message", f"{yahoo}: price {price!r} is not positive")
    if ts < 10_000_000_000:  # seconds, not milliseconds: older streamer versions
        ts *= 1000
    return Tick(symbol=symbol, ts=ts, price=round(price, _price_decimals(price)),
                source=SOURCE, kind="quote")


def bars_to_ticks(
    frame: pd.DataFrame, symbol: str, interval_s: int, now_ms: int | None = None
) -> list[Tick]:
    """``bar_close`` ticks, oldest first, for the complete bars of a yfinance bar DataFrame.

    A bar is complete when its end (start + ``interval_s``) is at or before ``now_ms``; the
    bar still forming is left for a later poll.  Rows without a usable close are skipped.
    """
    if frame is None or len(frame) == 0:
        return []
    if "Close" not in frame.columns:
        raise SourceError(SOURCE, "bad_frame",
                          f"{symbol}: no Close column in {list(frame.columns)}")
    index = frame.index
    if not isinstance(index, pd.DatetimeIndex):
        raise SourceError(SOURCE, "bad_frame", f"{symbol}: index is not a DatetimeIndex")
    if index.tz is None:
        raise SourceError(SOURCE, "bad_frame", f"{symbol}: index has no time zone")
    starts_ms = (index.tz_convert("UTC").as_unit("ms").asi8).tolist()
    try:
        closes = frame["Close"].to_numpy(dtype="float64", na_value=math.nan)
        volumes = (frame["Volume"].to_numpy(dtype="float64", na_value=math.nan)
                   if "Volume" in frame.columns else [math.nan] * len(frame))
    except (TypeError, ValueError) as exc:  # e.g. "N/A" strings: the payload, not the network
        raise SourceError(SOURCE, "bad_frame", f"{symbol}: non-numeric Close/Volume: {exc}"
                          ) from None
    step = interval_s * 1000
    out: list[Tick] = []
    for start, close, vol in zip(starts_ms, closes, volumes, strict=True):
        end = int(start) + step
        if now_ms is not None and end > now_ms:
            continue
        if not math.isfinite(close) or close <= 0:
            continue
        volume = float(vol) if math.isfinite(vol) and vol > 0 else None
        out.append(Tick(symbol=symbol, ts=end, price=round(float(close), 6), source=SOURCE,
                        kind="bar_close", volume=volume, interval_s=interval_s))
    out.sort(key=lambda t: t.ts)
    return out
