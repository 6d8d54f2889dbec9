"""The engine on real April 2025 USD/JPY bars (skipped when ../shared/data/real is absent)."""

from __future__ import annotations

import csv
import datetime as dt
import math
from pathlib import Path

import numpy as np
import pytest

from tariffmon.assembly import engine_params
from tariffmon.contract import ReactionRequest
from tariffmon.core.engine import ReactionEngine
from tariffmon.settings import PROJECT_ROOT, load_settings

REAL = PROJECT_ROOT.parent / "shared" / "data" / "real"
BARS_15M = REAL / "usdjpy" / "usdjpy_15m_oanda_utc_2025-01-01_2026-03-13.csv"

pytestmark = pytest.mark.skipif(not BARS_15M.is_file(), reason="real data not present")


def _ms(text: str) -> int:
    t = dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)
    return int(t.timestamp() * 1000)


def _bars(path: Path, first: str, last: str) -> tuple[np.ndarray, np.ndarray]:
    """15-minute bar closes stamped at the bar's end (the file stamps the start)."""
    lo, hi = _ms(first), _ms(last)
    ts, px = [], []
    with path.open() as fh:
        for row in csv.DictReader(fh):
            start = _ms(row["timestamp"])
            if lo <= start < hi:
                ts.append(start + 900_000)
                px.append(float(row["close"]))
    return np.array(ts, dtype=np.int64), np.array(px)


def test_ninety_day_pause_moves_usdjpy_about_two_percent_in_an_hour() -> None:
    ts, px = _bars(BARS_15M, "2025-04-07 00:00", "2025-04-11 00:00")
    t0 = _ms("2025-04-09 17:18")  # 13:18 ET: the 90-day pause is announced
    eng = ReactionEngine(engine_params(load_settings()))
    interval = np.full(len(ts), 900_000, dtype=np.int64)
    out = eng.on_request(
        ReactionRequest("pause", "pause", "USDJPY", t0, "Trump pauses tariffs for 90 days")
    )
    out.extend(eng.on_ticks("USDJPY", ts, px, interval))
    r60 = {r.horizon_s: r for r in out.reactions}[3600]
    assert r60.p0_ts == _ms("2025-04-09 17:15")  # the 17:00 bar; the 17:15 bar closes after t0
    assert math.isclose(r60.ret, 0.020, abs_tol=0.002)
    assert r60.significant and not r60.gap
    assert r60.z is not None and r60.z > 3
    assert any(a.window_s == 900 and a.direction == "up" for a in out.alerts)
