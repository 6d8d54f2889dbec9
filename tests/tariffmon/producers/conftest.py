"""Fixtures of the producer tests: recorded yfinance payloads and feed files (no network)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

HERE = Path(__file__).resolve().parent
PAYLOADS = HERE / "payloads"
FEEDS = HERE / "feeds"

#: exchange time zones yfinance uses for the index of each payload
PAYLOAD_TZ = {"jpy_x_1m.csv": "Europe/London", "n225_1m.csv": "Asia/Tokyo"}


def load_bars(name: str) -> pd.DataFrame:
    """A recorded 1m-bar DataFrame with its exchange time zone restored, as yfinance gives it."""
    frame = pd.read_csv(PAYLOADS / name, index_col="Datetime")
    frame.index = pd.to_datetime(frame.index, utc=True).tz_convert(PAYLOAD_TZ[name])
    frame.index.name = "Datetime"
    return frame


def load_messages() -> list[dict[str, Any]]:
    """Decoded streaming messages as yfinance's WebSocket hands them to the handler."""
    data: list[dict[str, Any]] = json.loads((PAYLOADS / "stream_messages.json").read_text())
    return data


@pytest.fixture
def bars_by_ticker() -> dict[str, pd.DataFrame]:
    """Yahoo ticker -> recorded 1m bars."""
    return {"JPY=X": load_bars("jpy_x_1m.csv"), "^N225": load_bars("n225_1m.csv")}


@pytest.fixture
def stream_messages() -> list[dict[str, Any]]:
    """The recorded streaming messages."""
    return load_messages()


def settings_env(settings: Any) -> dict[str, str]:
    """Environment variables that make a ``tariffmon`` subprocess use these settings' broker
    and topics."""
    import os

    env = dict(os.environ)
    env["TARIFFMON_KAFKA__BOOTSTRAP_SERVERS"] = settings.kafka.bootstrap_servers
    for stream, topic in settings.topics.all_topics().items():
        env[f"TARIFFMON_TOPICS__{stream.upper()}"] = topic
    env["TARIFFMON_METRICS__ENABLED"] = "false"
    return env
