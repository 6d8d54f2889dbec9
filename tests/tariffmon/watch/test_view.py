"""The watch view: known contract messages in, exact text out (pure, no broker)."""

from __future__ import annotations

import dataclasses
import io
import math
import random
from typing import Any

import pytest

from tariffmon.contract import Alert, AttributedHeadline, ClassifiedHeadline, Reaction, Tick
from tariffmon.watch.consumer import CLEAR, WatchOptions, draw_picture
from tariffmon.watch.view import (
    WatchState,
    duration_label,
    format_reaction_cell,
    format_time,
    render,
    truncate,
)

T0 = 1_743_624_600_000  # 2025-04-02 20:10:00 UTC
HORIZONS = (60, 300, 900, 3600)
WINDOWS = (60, 300, 900)


def _state(**kw: int) -> WatchState:
    return WatchState(["USDJPY", "N225"], HORIZONS, WINDOWS,
                      staleness_s={"USDJPY": 300, "N225": 300}, **kw)


def _headline(hid: str, ts: int, title: str, *, direction: str = "escalation",
              is_tariff: bool = True, duplicate: bool = False,
              cluster: str | None = None) -> ClassifiedHeadline:
    return ClassifiedHeadline(
        id=hid, ts=ts, source="wire", title=title, is_tariff=is_tariff, score=5.0,
        tags=("japan", "tariff") if is_tariff else (), direction=direction,  # type: ignore[arg-type]
        cluster_id=cluster or hid, duplicate=duplicate,
    )


def _reaction(hid: str, symbol: str, horizon_s: int, ret_bp: float, z: float | None, *,
              t0: int = T0, significant: bool = False, gap: bool = False,
              title: str = "") -> Reaction:
    ret = ret_bp / 10_000
    return Reaction(
        headline_id=hid, cluster_id=hid, symbol=symbol, horizon_s=horizon_s, t0=t0,
        t_start=t0, t1=t0 + horizon_s * 1000, p0=150.0, p0_ts=t0, p1=150.0 * math.exp(ret),
        p1_ts=t0 + horizon_s * 1000, ret=ret, z=z, sigma_1m=0.0004, max_up=max(ret, 0.0),
        max_down=min(ret, 0.0), significant=significant, gap=gap, n_ticks=5,
        direction="escalation", title=title,
    )


def _alert(symbol: str, window_s: int, ts: int, ret_bp: float,
           heads: tuple[AttributedHeadline, ...] = ()) -> Alert:
    ret = ret_bp / 10_000
    return Alert(
        symbol=symbol, window_s=window_s, ts=ts, start_ts=ts - window_s * 1000,
        p_start=150.0, p_end=150.0 * math.exp(ret), ret=ret, z=-7.25,
        direction="down" if ret < 0 else "up", threshold_bp=40.0, threshold_z=6.0,
        headlines=heads,
    )


def test_labels_and_cells() -> None:
    assert [duration_label(s) for s in (60, 300, 3600, 90)] == ["1m", "5m", "60m", "90s"]
    sig = _reaction("h", "USDJPY", 60, -45.24, -5.06, significant=True)
    assert format_reaction_cell(sig) == "   -45.2bp z  -5.1* "
    gap = _reaction("h", "N225", 60, 120.0, None, gap=True)
    assert format_reaction_cell(gap) == "  +120.0bp z   n/a ^"
    huge = _reaction("h", "N225", 60, -300.0, -1234.0, significant=True, gap=True)
    assert format_reaction_cell(huge) == "  -300.0bp z <-999*^"
    assert format_reaction_cell(None) == " " * 11 + "pending  "
    assert len({len(format_reaction_cell(r)) for r in (sig, gap, huge, None)}) == 1
    assert truncate("abcdefgh", 6) == "abc..." and truncate("abc", 6) == "abc"


def test_headline_with_its_reactions_per_symbol_and_horizon() -> None:
    st = _state()
    title = "Trump announces 24% reciprocal tariff on Japan"
    st.apply(_headline("h1", T0, title))
    st.apply(_reaction("h1", "USDJPY", 60, -45.24, -5.06, significant=True))
    st.apply(_reaction("h1", "USDJPY", 300, -80.0, -4.0, significant=True))
    st.apply(_reaction("h1", "N225", 60, -150.5, -9.9, significant=True, gap=True))
    lines = render(st, width=140)
    text = "\n".join(lines)
    i = lines.index(f"  {title}")
    assert lines[i - 1] == "2025-04-02 20:10:00 UTC  escalation  [japan, tariff]  wire"
    assert lines[i + 1] == (
        "  USDJPY                         -45.2bp z  -5.1*    -80.0bp z  -4.0*"
        "            pending             pending  "
    )
    assert lines[i + 2].startswith("  N225                          -150.5bp z  -9.9*^")
    assert lines[i + 2].count("pending") == 3
    header = next(line for line in lines if line.startswith("TARIFF HEADLINES"))
    assert header.split()[-4:] == ["1m", "5m", "15m", "60m"]
    # the horizon labels sit over the z column of their cells
    assert header.index(" 1m") + 3 == lines[i + 1].index("-5.1") + 4
    assert "* significant" in text and "^ gap" in text
    assert "seen: 0 ticks, 1 headlines (1 tariff), 3 reactions, 0 alerts" in text


def test_prices_and_rolling_returns() -> None:
    st = _state()
    # USDJPY every 30 s for 20 minutes, rising 1 bp (log) per step
    for i in range(41):
        st.apply(Tick(symbol="USDJPY", ts=T0 + i * 30_000, price=150.0 * math.exp(i / 10_000),
                      source="t"))
    # N225 with one old tick then a gap longer than the staleness bound
    st.apply(Tick(symbol="N225", ts=T0, price=36_000.0, source="t"))
    st.apply(Tick(symbol="N225", ts=T0 + 1_500_000, price=36_360.0, source="t"))
    lines = render(st, width=120)
    usd = next(line for line in lines if line.startswith("USDJPY"))
    nik = next(line for line in lines if line.startswith("N225"))
    assert usd.split() == ["USDJPY", "150.601", "2025-04-02", "20:30:00",
                           "+2.0bp", "+10.0bp", "+30.0bp"]
    assert st.rolling_return("USDJPY", 900) == pytest.approx(30 / 10_000)
    # the N225 reference is 25 minutes old: staler than 15 minutes plus the 5-minute bound
    assert nik.split() == ["N225", "36,360.00", "2025-04-02", "20:35:00", "-", "-", "-"]
    assert "newest tick 2025-04-02 20:35:00 UTC" in lines[0]


def test_tick_history_is_bounded_and_out_of_order_ticks_are_counted() -> None:
    st = _state()
    for i in range(10_000):
        st.apply(Tick(symbol="USDJPY", ts=T0 + i * 1000, price=150.0, source="t"))
    assert len(st._ticks["USDJPY"]) <= 900 + 300 + 2
    st.apply(Tick(symbol="USDJPY", ts=T0, price=1.0, source="t"))
    assert st.counts.out_of_order_ticks == 1
    assert st.last_tick("USDJPY") == (T0 + 9_999_000, 150.0)


def test_alerts_latest_first_with_their_headlines() -> None:
    st = _state(max_alerts=2)
    head = AttributedHeadline(id="h1", ts=T0, title="US imposes tariffs on Japanese autos",
                              direction="escalation")
    st.apply(_alert("USDJPY", 300, T0 + 60_000, -62.3, (head,)))
    st.apply(_alert("USDJPY", 60, T0 + 120_000, 25.0))
    st.apply(_alert("N225", 900, T0 - 60_000, -10.0))  # oldest: dropped beyond max_alerts
    lines = render(st, width=120)
    i = lines.index("SHARP MOVES, latest first")
    assert lines[i + 1] == ("2025-04-02 20:12:00 UTC  USDJPY    1m up      +25.0bp  z -7.2  "
                            "150.000 -> 150.375")
    assert lines[i + 2] == "    no tariff headline in the look-back window"
    assert lines[i + 3].startswith("2025-04-02 20:11:00 UTC  USDJPY    5m down    -62.3bp")
    assert lines[i + 4] == ("    <- 2025-04-02 20:10:00 UTC  escalation  "
                            "US imposes tariffs on Japanese autos")
    assert "N225" not in "\n".join(lines[i:])
    # a re-issued alert (same key, a late headline joined) replaces the first version
    st.apply(_alert("USDJPY", 60, T0 + 120_000, 25.0, (head,)))
    assert len(st.alerts()) == 2 and st.alerts()[0].headlines == (head,)


def test_duplicates_count_on_their_story_and_non_tariff_headlines_are_not_rows() -> None:
    st = _state()
    st.apply(_headline("dup-early", T0 + 5, "same story, other feed", duplicate=True,
                       cluster="h1"))
    st.apply(_headline("h1", T0, "US raises tariffs on Japan"))
    st.apply(_headline("dup", T0 + 10, "same story again", duplicate=True, cluster="h1"))
    st.apply(_headline("n1", T0 + 20, "Yen steady before data", is_tariff=False))
    rows = st.headlines()
    assert [r.id for r in rows] == ["h1"] and rows[0].duplicates == 2
    assert "(+2 more reports)" in "\n".join(render(st))
    assert st.counts.headlines == 4 and st.counts.tariff_headlines == 3


def test_a_reaction_before_its_headline_makes_the_row_from_its_own_fields() -> None:
    st = _state()
    st.apply(_reaction("h9", "USDJPY", 60, 12.0, 2.0, title="Japan envoy meets Trump"))
    assert [(r.id, r.title) for r in st.headlines()] == [("h9", "Japan envoy meets Trump")]
    st.apply(_headline("h9", T0, "Japan's tariff envoy meets Trump in Washington",
                       direction="de-escalation"))
    (row,) = st.headlines()
    assert row.title.endswith("in Washington") and row.direction == "de-escalation"
    assert (("USDJPY", 60) in row.reactions)


def test_only_the_newest_headlines_are_kept() -> None:
    st = _state(max_headlines=3)
    for i in range(10):
        st.apply(_headline(f"h{i}", T0 + i * 60_000, f"tariff story {i}"))
    st.apply(_reaction("h0", "USDJPY", 60, 1.0, 0.1, title="tariff story 0"))  # too old
    assert [r.id for r in st.headlines()] == ["h9", "h8", "h7"]


def test_lines_fit_the_width_and_long_titles_are_cut() -> None:
    st = _state()
    st.apply(_headline("h1", T0, "tariff " * 40))
    st.apply(_reaction("h1", "USDJPY", 60, -5.0, -1.0))
    for width in (60, 80, 200):
        lines = render(st, width=width)
        assert max(len(line) for line in lines) <= width
        assert any(line.startswith("  tariff tariff") and line.endswith("...")
                   for line in lines) == (width < 282)


def test_the_picture_does_not_depend_on_the_order_messages_are_read() -> None:
    heads = [_headline(f"h{i}", T0 + i * 600_000, f"tariff story {i}") for i in range(5)]
    reactions = [_reaction(f"h{i}", s, h, i * 3.0 - 5, i - 2.0, t0=T0 + i * 600_000,
                           significant=i % 2 == 0, gap=s == "N225")
                 for i in range(5) for s in ("USDJPY", "N225") for h in HORIZONS]
    alerts = [_alert("USDJPY", 60, T0 + i * 700_000, -30.0 - i) for i in range(8)]
    ticks = [Tick(symbol="USDJPY", ts=T0 + i * 10_000, price=150 + i / 100, source="t")
             for i in range(200)]
    ordered = _state(max_headlines=4, max_alerts=3)
    ordered.apply_all([*heads, *reactions, *alerts, *ticks])
    rng = random.Random(7)
    for _ in range(5):
        others: list = [*heads, *reactions, *alerts]  # type: ignore[type-arg]
        rng.shuffle(others)
        shuffled = _state(max_headlines=4, max_alerts=3)
        # ticks of a symbol keep their order (one partition); the rest interleave freely
        merged = others + ticks
        rng.shuffle(merged)
        merged.sort(key=lambda m: m.ts if isinstance(m, Tick) else -1)
        shuffled.apply_all(merged)
        assert render(shuffled, refreshed_ms=0) == render(ordered, refreshed_ms=0)


def test_pictures_are_drawn_after_a_clear_or_appended() -> None:
    st = _state()
    st.apply(_headline("h1", T0, "US raises tariffs on Japan"))
    cleared, appended = io.StringIO(), io.StringIO()
    for _ in range(2):
        draw_picture(st, WatchOptions(clear=True, width=100), cleared, T0 / 1000)
        draw_picture(st, WatchOptions(clear=False, width=100), appended, T0 / 1000)
    picture = "\n".join(render(st, width=100, refreshed_ms=T0)) + "\n"
    assert cleared.getvalue() == 2 * (CLEAR + picture)
    assert appended.getvalue() == 2 * (picture + "\n")
    assert "refreshed 2025-04-02 20:10:00 UTC" in picture


@pytest.mark.parametrize("order", ["oldest_first", "newest_first"])
def test_headlines_sharing_one_closed_market_gap_show_it_once(order: str) -> None:
    """Three headlines while Tokyo is closed share one gap reaction on N225: the earliest
    shows it, the later ones point to it; USD/JPY (open) is shown for each."""
    state = _state()
    gap = "gap:N225:" + str(T0 - 3_600_000)
    heads = [_headline(f"h{i}", T0 + i * 600_000, f"Tariff headline {i}") for i in range(3)]
    msgs: list[Any] = list(heads)
    for i, h in enumerate(heads):
        for hz in HORIZONS:
            msgs.append(_reaction(h.id, "USDJPY", hz, -5.0 - i, -2.0, t0=h.ts))
            msgs.append(dataclasses.replace(
                _reaction(h.id, "N225", hz, -120.0, -3.1, t0=h.ts, gap=True,
                          significant=True), confound_id=gap))
    state.apply_all(msgs if order == "oldest_first" else msgs[::-1])
    lines = render(state, width=160)
    n225 = [line for line in lines if line.startswith("  N225")]
    assert len(n225) == 3
    assert sum("-120.0bp" in line for line in n225) == 1
    pointers = [line for line in n225 if "same closed-market gap" in line]
    assert len(pointers) == 2 and all(format_time(heads[0].ts) in p for p in pointers)
    assert sum(1 for line in lines if line.startswith("  USDJPY") and "bp" in line) == 3
