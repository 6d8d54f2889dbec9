"""History downloads: Yahoo's per-interval limits, chunking, and the recorded file written."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from tariffmon.contract import Tick
from tariffmon.producers.errors import HistoryRangeError, ProducerError
from tariffmon.producers.history import download_history, plan_requests
from tariffmon.recorded import read_events

NOW = datetime(2025, 4, 20, 12, 0, tzinfo=UTC)


def test_1m_requests_are_cut_into_seven_days() -> None:
    plan = plan_requests("1m", NOW - timedelta(days=20), NOW, NOW)
    assert len(plan) == 3
    assert all(b - a <= timedelta(days=7) for a, b in plan)
    assert plan[0][0] == NOW - timedelta(days=20) and plan[-1][1] == NOW
    assert all(plan[i][1] == plan[i + 1][0] for i in range(len(plan) - 1))


def test_too_old_start_is_moved_forward() -> None:
    plan = plan_requests("1m", NOW - timedelta(days=45), NOW - timedelta(days=25), NOW)
    assert plan[0][0] > NOW - timedelta(days=30)


@pytest.mark.parametrize(("interval", "days"), [("1m", 31), ("5m", 61), ("1h", 731)])
def test_ranges_entirely_outside_the_limit_are_refused(interval: str, days: int) -> None:
    end = NOW - timedelta(days=days)
    with pytest.raises(HistoryRangeError, match=f"interval={interval}"):
        plan_requests(interval, end - timedelta(days=1), end, NOW)


def test_daily_bars_have_no_limit() -> None:
    start = datetime(2000, 1, 1, tzinfo=UTC)
    assert plan_requests("1d", start, NOW, NOW) == [(start, NOW)]


def test_download_writes_sorted_unique_bar_closes(
    tmp_path: Path, bars_by_ticker: dict[str, pd.DataFrame]
) -> None:
    calls: list[tuple[str, datetime, datetime, str]] = []

    def fetch(ticker: str, start: datetime, end: datetime, interval: str) -> pd.DataFrame:
        calls.append((ticker, start, end, interval))
        return bars_by_ticker[ticker]  # the same bars for every chunk: overlaps must dedupe

    out = tmp_path / "hist.jsonl.gz"
    start, end = datetime(2025, 4, 2, tzinfo=UTC), datetime(2025, 4, 4, tzinfo=UTC)
    n = download_history({"USDJPY": "JPY=X", "N225": "^N225"}, start, end, "1m", out,
                         fetch=fetch, now=NOW, progress=False)
    assert n == 14 + 12
    events = list(read_events(out))
    assert [e.ts for e in events] == sorted(e.ts for e in events)
    for e in events:
        tick = Tick.from_dict(e.value)
        assert e.stream == "ticks" and e.key == tick.symbol and e.ts == tick.ts
        assert tick.kind == "bar_close" and tick.interval_s == 60
    assert {c[0] for c in calls} == {"JPY=X", "^N225"}


def test_download_retries_then_reports(tmp_path: Path) -> None:
    attempts: list[int] = []

    def fetch(ticker: str, start: datetime, end: datetime, interval: str) -> pd.DataFrame:
        attempts.append(1)
        raise ConnectionError("no route to host")

    with pytest.raises(ProducerError, match="fetch: no route"):
        download_history({"USDJPY": "JPY=X"}, NOW - timedelta(days=2), NOW, "1m",
                         tmp_path / "x.jsonl", fetch=fetch, now=NOW, progress=False,
                         sleep=lambda s: None)
    assert len(attempts) == 3
