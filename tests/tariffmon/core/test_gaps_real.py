"""Gap reactions on the real 2021-2026 daily files (skipped when ../shared/data/real is absent).

The Nikkei's ticks here are two a day from its daily file (the open at 09:00 JST, the close at
15:30 JST), so the engine sees the same close-to-open gaps the file shows, and its seed is the
file itself: every April 2025 gap is judged against the gaps of its kind before it.
"""

from __future__ import annotations

import csv
import datetime as dt
import itertools
import math
import statistics
from pathlib import Path

import numpy as np
import pytest

from tariffmon.assembly import engine_params, gap_seed, trading_calendar
from tariffmon.contract import Reaction, ReactionRequest
from tariffmon.core.engine import ReactionEngine
from tariffmon.core.params import EngineParams
from tariffmon.settings import PROJECT_ROOT, load_settings

REAL = PROJECT_ROOT.parent / "shared" / "data" / "real"
N225_DAILY = REAL / "n225" / "n225_daily_yahoo_jst_2021-05-28_2026-05-29.csv"
USDJPY_DAILY = REAL / "usdjpy" / "usdjpy_d1_mt5_2022-06-20_2026-04-28.csv"
USDJPY_15M = REAL / "usdjpy" / "usdjpy_15m_oanda_utc_2025-01-01_2026-03-13.csv"

pytestmark = pytest.mark.skipif(
    not (N225_DAILY.is_file() and USDJPY_DAILY.is_file() and USDJPY_15M.is_file()),
    reason="real data not present",
)
DAY = 86_400_000


def _ms(text: str) -> int:
    return int(dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC).timestamp() * 1000)


def _params_with_seed(symbol: str, seed_file: Path) -> EngineParams:
    settings = load_settings()
    p = engine_params(settings)
    sym = settings.symbol(symbol).model_copy(update={"gap_seed": seed_file})
    params = p.symbols[symbol]
    seeded = type(params)(params.name, params.calendar, params.staleness_ms,
                          params.sharp_thresholds, gap_seed(sym, trading_calendar(sym)))
    return EngineParams(**{**{f: getattr(p, f) for f in p.__dataclass_fields__},
                           "symbols": {**p.symbols, symbol: seeded}})


def _n225_days(first: str, last: str) -> list[tuple[str, float, float]]:
    with N225_DAILY.open() as fh:
        return [(r["Date"][:10], float(r["Open"]), float(r["Close"]))
                for r in csv.DictReader(fh) if first <= r["Date"][:10] <= last]


def _n225_reactions(heads: dict[str, int]) -> tuple[dict[str, Reaction], list[tuple[str, float]]]:
    """60 s reactions of headlines ``{id: t0}`` on the daily file's opens and closes of
    March-May 2025, and the file's gaps by reopen day."""
    days = _n225_days("2025-03-01", "2025-05-31")
    ts, px = [], []
    gaps = []
    for i, (d, o, c) in enumerate(days):
        ts += [_ms(d + " 00:00:05"), _ms(d + " 06:30:00")]
        px += [o, c]
        if i:
            gaps.append((d, math.log(o / days[i - 1][2])))
    eng = ReactionEngine(_params_with_seed("N225", N225_DAILY))
    out = []
    for hid, t0 in heads.items():
        out += eng.on_request(ReactionRequest(hid, hid, "N225", t0, hid)).reactions
    out += eng.on_ticks("N225", np.array(ts, dtype=np.int64), np.array(px)).reactions
    return {r.headline_id: r for r in out if r.horizon_s == 60}, gaps


def test_the_largest_april_gaps_are_significant_against_past_gaps_a_median_one_is_not(
) -> None:
    _, gaps = _n225_reactions({})
    april = [(d, g) for d, g in gaps if d.startswith("2025-04")]
    # one headline two hours before each April reopen (22:00 UTC the evening before)
    heads = {d: _ms(d + " 00:00:00") - 2 * 3_600_000 for d, _ in april}
    got, _ = _n225_reactions(heads)
    by_size = sorted(april, key=lambda x: abs(x[1]))
    largest = [d for d, _ in by_size[-4:]]
    median = by_size[len(by_size) // 2][0]
    for d in largest:
        r = got[d]
        assert r.gap and r.gap_kind == "overnight" and r.gap_count is not None
        assert r.gap_count >= 500 and r.gap_z is not None
        assert abs(r.gap_z) >= 2.5 and r.significant, (d, r.gap_z)
    r = got[median]
    assert r.gap_z is not None and abs(r.gap_z) < 2 and not r.significant, (median, r.gap_z)
    # the weekend after Liberation Day is judged against weekends, not nights
    assert got["2025-04-07"].gap_kind == "weekend"
    assert got["2025-04-07"].gap_sigma != got["2025-04-08"].gap_sigma


@pytest.mark.parametrize(("t0", "reopen_day", "kind"), [
    ("2025-04-29 01:00", "2025-04-30", "holiday"),   # Showa Day, Tuesday, inside the hours
    ("2025-05-05 03:45", "2025-05-07", "holiday"),   # Children's Day
    ("2025-05-06 05:00", "2025-05-07", "holiday"),   # substitute holiday
])
def test_a_headline_on_a_tokyo_holiday_is_measured_at_the_next_open(
    t0: str, reopen_day: str, kind: str
) -> None:
    got, _ = _n225_reactions({"h": _ms(t0)})
    r = got["h"]
    assert r.gap and r.gap_kind == kind
    assert r.t_start == _ms(reopen_day + " 00:00:05")
    assert r.gap_count is not None and r.gap_count >= 20 and r.gap_z is not None


def _usdjpy_15m(first: str, last: str) -> tuple[np.ndarray, np.ndarray]:
    lo, hi = _ms(first), _ms(last)
    ts, px = [], []
    with USDJPY_15M.open() as fh:
        for row in csv.DictReader(fh):
            start = _ms(row["timestamp"])
            if lo <= start < hi:
                ts.append(start + 900_000)
                px.append(float(row["close"]))
    return np.array(ts, dtype=np.int64), np.array(px)


def _mt5_weekend_gaps_before(day: str) -> list[float]:
    """Monday open over the previous Friday's close in the MT5 daily file, up to ``day``."""
    with USDJPY_DAILY.open() as fh:
        rows = [(dt.date.fromisoformat(r["time"][:10].replace(".", "-")),
                 float(r["open"]), float(r["close"])) for r in csv.DictReader(fh)]
    out = []
    for (d0, _, c0), (d1, o1, _) in itertools.pairwise(rows):
        if d1.isoformat() <= day and d1.weekday() == 0 and (d1 - d0).days == 3:
            out.append(math.log(o1 / c0))
    return out


def test_a_usdjpy_weekend_gap_is_judged_against_past_weekend_gaps() -> None:
    ts, px = _usdjpy_15m("2025-04-01 00:00", "2025-04-14 00:00")
    eng = ReactionEngine(_params_with_seed("USDJPY", USDJPY_DAILY))
    t0 = _ms("2025-04-12 12:00")  # Saturday after the pause week
    out = eng.on_request(ReactionRequest("sat", "sat", "USDJPY", t0, "weekend headline"))
    out.extend(eng.on_ticks("USDJPY", ts, px, np.full(len(ts), 900_000, dtype=np.int64)))
    r = next(r for r in out.reactions if r.horizon_s == 60)
    assert r.gap and r.gap_kind == "weekend"
    assert r.p0_ts == _ms("2025-04-11 21:00") and r.t_start > _ms("2025-04-13 20:00")
    # the previous weekend was seen in the ticks; older ones come from the daily file
    past = _mt5_weekend_gaps_before("2025-04-04")
    seen = [g.ret for g in eng.state("USDJPY").gaps.seen
            if g.kind == "weekend" and g.close_ts < r.p0_ts]
    assert len(seen) == 1
    want = statistics.stdev(past + seen)
    assert r.gap_count == len(past) + 1 and r.gap_sigma == pytest.approx(want)
    assert r.gap_z == pytest.approx(math.log(float(px[np.searchsorted(ts, r.t_start)])
                                             / r.p0) / want)
    # an FX week has no overnight close: no other kind was seen
    assert {g.kind for g in eng.state("USDJPY").gaps.seen} == {"weekend"}
