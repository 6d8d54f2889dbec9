"""Calendars built from exchange-calendars, gap seeds read from daily bars (tariffmon.assembly)."""

from __future__ import annotations

import datetime as dt
import socket
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tariffmon.assembly import (
    EXCHANGE_SESSIONS_FROM,
    EXCHANGE_SESSIONS_TO,
    engine_params,
    exchange_sessions,
    gap_seed,
    read_daily_bars,
    trading_calendar,
)
from tariffmon.contract import ReactionRequest
from tariffmon.core.calendar import MS_PER_DAY
from tariffmon.core.engine import ReactionEngine
from tariffmon.errors import ConfigError
from tariffmon.settings import SymbolSettings, load_settings

HOUR = 3_600_000


def _ms(text: str) -> int:
    return int(dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC).timestamp() * 1000)


def test_the_calendar_library_is_computed_locally_without_the_network(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refuse(*_: object, **__: object) -> None:
        raise AssertionError("the calendar tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    exchange_sessions.cache_clear()
    bounds = exchange_sessions("XTKS", "symbols.N225.exchange_calendar")
    assert len(bounds) > 2 * 4_000  # two sessions (lunch) a day, 2007-2030


def test_an_unknown_exchange_calendar_names_the_setting() -> None:
    sym = SymbolSettings(name="X", yahoo="X", exchange_calendar="NOPE")
    with pytest.raises(ConfigError, match=r"symbols\.X\.exchange_calendar.*NOPE"):
        trading_calendar(sym)


N225 = load_settings().symbol("N225")


@pytest.mark.parametrize(("when", "is_open"), [
    ("2025-04-28 01:00", True),
    ("2025-04-29 01:00", False),  # Showa Day
    ("2025-05-05 01:00", False),  # Children's Day
    ("2025-05-06 04:00", False),  # substitute holiday
    ("2025-05-07 00:00", True),
    ("2025-01-01 01:00", False), ("2025-01-03 01:00", False), ("2025-01-06 01:00", True),
    ("2024-11-01 06:15", False),  # before 5 Nov 2024 Tokyo closed at 15:00 JST
    ("2024-11-05 06:15", True),   # since then at 15:30
    ("2025-04-28 02:45", False),  # lunch
])
def test_tokyo_holidays_and_hours_from_xtks(when: str, is_open: bool) -> None:
    assert trading_calendar(N225).is_open(_ms(when)) is is_open


@settings(max_examples=200, deadline=None)
@given(st.integers(_ms("2007-01-02 00:00"), _ms("2030-12-30 00:00")))
def test_xtks_sessions_lie_within_the_weekly_hours_and_next_open_is_open(ts: int) -> None:
    cal, weekly = trading_calendar(N225), N225.trading_calendar()
    if cal.is_open(ts) and ts >= _ms("2024-11-05 00:00"):
        assert weekly.is_open(ts)
    nxt = cal.next_open(ts)
    assert nxt >= ts and cal.is_open(nxt)
    if nxt > ts:
        assert cal.open_ms_between(ts, nxt) == 0
    assert 0 <= cal.open_ms_between(ts, ts + 7 * MS_PER_DAY) <= 7 * MS_PER_DAY


def test_the_range_is_fixed_not_the_librarys_default_around_today() -> None:
    cal = trading_calendar(N225)
    assert cal.sessions_from == _ms(EXCHANGE_SESSIONS_FROM + " 00:00")
    assert cal.sessions_to == _ms(EXCHANGE_SESSIONS_TO + " 00:00") + MS_PER_DAY


def test_a_headline_on_showa_day_is_a_gap_reaction_at_the_next_open() -> None:
    """No real data needed: the settings' N225 calendar on synthetic ticks."""
    params = engine_params(load_settings())
    eng = ReactionEngine(params)
    mon = [_ms("2025-04-28 00:00") + k * 60_000 for k in range(1, 151)]
    wed = [_ms("2025-04-30 00:00") + k * 60_000 for k in range(1, 151)]
    ts = np.array(mon + wed, dtype=np.int64)
    px = 35_000 + np.arange(len(ts), dtype=np.float64)
    t0 = _ms("2025-04-29 01:00")  # inside the weekly hours, a holiday by XTKS
    out = eng.on_request(ReactionRequest("showa", "showa", "N225", t0, "holiday headline"))
    out.extend(eng.on_ticks("N225", ts, px))
    rs = [r for r in out.reactions if r.headline_id == "showa"]
    assert rs and all(r.gap and r.t_start == wed[0] and r.p0_ts == mon[-1] for r in rs)
    assert {r.gap_kind for r in rs} == {"holiday"}
    assert all("few_past_gaps" in r.flags for r in rs)  # no seed, one night seen


def test_daily_bars_in_yfinance_and_mt5_layouts(tmp_path: Path) -> None:
    yf = tmp_path / "yf.csv"
    yf.write_text("Date,Close,High,Low,Open,Volume\n"
                  "2025-04-25 09:00:00+09:00,35705.7,35800,35300,35387.6,1\n"
                  "2025-04-28 09:00:00+09:00,35839.9,36000,35700,35962.8,1\n"
                  "2025-04-30 09:00:00+09:00,36045.3,36100,35800,35946.8,1\n")
    mt5 = tmp_path / "mt5.csv"
    mt5.write_text("symbol,time,open,high,low,close,volume\n"
                   "USDJPY,2025.04.11 00:00,144.5,145,143,143.5,1\n"
                   "USDJPY,2025.04.14 00:00,143.2,144,142,143.0,1\n"
                   "USDJPY,2025.04.15 00:00,143.1,144,142,143.2,1\n")
    n225 = N225.model_copy(update={"gap_seed": yf})
    kinds = [g.kind for g in gap_seed(n225, trading_calendar(n225))]
    assert kinds == ["weekend", "holiday"]
    fx = load_settings().symbol("USDJPY").model_copy(update={"gap_seed": mt5})
    seed = gap_seed(fx, trading_calendar(fx))
    assert [g.kind for g in seed] == ["weekend"]  # Monday to Tuesday is no FX gap
    assert seed[0].ret == pytest.approx(np.log(143.2 / 143.5))





@pytest.mark.parametrize(("text", "match"), [
    ("when,price\n2025-01-01,1\n", "needs date, open and close"),
    ("Date,Open,Close\n2025-01-01,x,1\n", "line 2"),
    ("", "is empty"),
])
def test_a_bad_seed_file_names_the_setting(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "seed.csv"
    path.write_text(text)
    with pytest.raises(ConfigError, match=rf"symbols\.N225\.gap_seed.*{match}"):
        read_daily_bars(path, "symbols.N225.gap_seed")


def test_a_missing_seed_file_names_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"symbols\.N225\.gap_seed.*cannot read"):
        read_daily_bars(tmp_path / "absent.csv", "symbols.N225.gap_seed")
