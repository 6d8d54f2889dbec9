"""The backtest over real April 2025 data, converted in the test (skipped without the data).

USD/JPY 15-minute OANDA bars become ``bar_close`` ticks stamped at the bar's end with
``interval_s=900``; the real headlines CSV gives the headlines that carry a UTC publication
time.  The file has no timestamped headline of the 90-day pause itself (its rows about the
pause are dated only), so the announcement is added at its documented time, 13:18 ET =
17:18 UTC on 9 April 2025 (see PROVENANCE.md).  Nothing is copied into the project: the
recorded-stream files live in the test's temporary folder.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
from pathlib import Path

import pytest

from tariffmon.backtest import run_backtest
from tariffmon.backtest.report import format_summary
from tariffmon.recorded import RecordedEvent, write_events
from tariffmon.settings import PROJECT_ROOT, load_settings

REAL = PROJECT_ROOT.parent / "shared" / "data" / "real"
BARS_15M = REAL / "usdjpy" / "usdjpy_15m_oanda_utc_2025-01-01_2026-03-13.csv"
HEADLINES = REAL / "headlines" / "us_japan_tariff_headlines_2025-03-26_2025-05-22.csv"

pytestmark = pytest.mark.skipif(
    not (BARS_15M.is_file() and HEADLINES.is_file()), reason="real data not present"
)

FIRST, LAST = "2025-03-24 00:00", "2025-05-24 00:00"
PAUSE_T0 = "2025-04-09 17:18"


def _ms(text: str) -> int:
    t = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.UTC)
    return int(t.timestamp() * 1000)


def _tick_events() -> list[RecordedEvent]:
    lo, hi = _ms(FIRST), _ms(LAST)
    out = []
    with BARS_15M.open(newline="") as fh:
        for row in csv.DictReader(fh):
            start = _ms(row["timestamp"])  # the file stamps the bar's start, in UTC
            if not lo <= start < hi:
                continue
            end = start + 900_000
            value = {"v": 1, "symbol": "USDJPY", "ts": end, "price": float(row["close"]),
                     "source": "oanda-15m", "kind": "bar_close", "interval_s": 900}
            out.append(RecordedEvent("ticks", "USDJPY", end, value))
    return out


def _headline_events() -> list[RecordedEvent]:
    out = []
    with HEADLINES.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            if not row["published_utc"].strip():
                continue  # dated only: no event time to measure from
            ts = _ms(row["published_utc"])
            hid = f"real-{row['id']}"
            value: dict[str, object] = {"v": 1, "id": hid, "ts": ts,
                                        "source": row["outlet"] or "unknown",
                                        "title": row["text"][:1000]}
            if row["url"]:
                value["url"] = row["url"][:2048]
            out.append(RecordedEvent("headlines", hid, ts, value))
    pause = _ms(PAUSE_T0)
    out.append(RecordedEvent("headlines", "pause-90d", pause, {
        "v": 1, "id": "pause-90d", "ts": pause, "source": "truth-social",
        "title": "Trump announces 90-day pause on reciprocal tariffs, except for China",
    }))
    return sorted(out, key=lambda e: e.ts)


def test_ninety_day_pause_gives_a_significant_two_percent_hour(tmp_path: Path) -> None:
    ticks, heads = tmp_path / "usdjpy_15m.jsonl.gz", tmp_path / "headlines.jsonl"
    write_events(ticks, _tick_events())
    write_events(heads, _headline_events())

    result = run_backtest([ticks, heads], load_settings())

    assert result.counts.invalid_total == 0 and result.counts.rejected_total == 0
    pause = {r.horizon_s: r for r in result.reactions
             if r.headline_id == "pause-90d" and r.symbol == "USDJPY"}
    assert set(pause) == {60, 300, 900, 3600}
    hour = pause[3600]
    assert hour.direction == "de-escalation"
    assert hour.p0_ts == _ms("2025-04-09 17:15")  # the bar closing after t0 does not leak
    assert math.isclose(hour.ret, 0.020, abs_tol=0.003)
    assert hour.significant and not hour.gap
    assert hour.z is not None and hour.z > 3
    # the other real headlines with a time were classified and measured too
    measured = result.measured_headlines()
    assert len(measured) >= 10
    assert any(r.headline_id.startswith("real-") for r in result.reactions)
    assert "pause" in format_summary(result).lower()
