"""Confounded headlines count once in the backtest's averages; closed windows are named."""

from __future__ import annotations

import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tariffmon.backtest.charts import counted_once
from tariffmon.backtest.report import closed_window_sizes
from tariffmon.backtest.runner import PriceSeries
from tariffmon.contract import ClassifiedHeadline, Reaction
from tariffmon.core.gaps import first_of_overlaps

MIN = 60_000
WED = 1_744_156_800_000  # 2025-04-09 00:00 UTC


def head(hid: str, ts: int, direction: str = "escalation") -> ClassifiedHeadline:
    return ClassifiedHeadline(hid, ts, "test", f"headline {hid}", True, 5.0, ("tariff",),
                              direction, hid)  # type: ignore[arg-type]


def prices(start: int, minutes: int) -> PriceSeries:
    ts = start + MIN * np.arange(minutes, dtype=np.int64)
    return PriceSeries(ts, np.full(minutes, 150.0), np.zeros(minutes, dtype=np.int64))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 600), min_size=0, max_size=30, unique=True),
       st.integers(1, 60), st.randoms())
def test_runs_closer_than_the_window_count_once_whatever_the_order(
    minutes: list[int], window_min: int, rnd: random.Random
) -> None:
    t0s = [(WED + m * MIN, f"h{m:03d}") for m in minutes]
    shuffled = list(t0s)
    rnd.shuffle(shuffled)
    kept = first_of_overlaps(shuffled, window_min * MIN)
    assert kept == first_of_overlaps(t0s, window_min * MIN)
    srt = sorted(minutes)
    # a headline is kept exactly when the previous one is at least a window before it
    want = [f"h{m:03d}" for i, m in enumerate(srt) if i == 0 or m - srt[i - 1] >= window_min]
    assert kept == want


def test_event_study_keeps_the_first_of_overlapping_headlines_of_any_direction() -> None:
    px = prices(WED, 600)
    heads = [head("a", WED + 60 * MIN), head("b", WED + 65 * MIN, "de-escalation"),
             head("c", WED + 75 * MIN), head("d", WED + 200 * MIN),
             head("late", WED + 2_000 * MIN)]  # after the prices end: stale, no event
    got = [h.id for h in counted_once(px, heads, 300_000, 15 * MIN)]
    assert got == ["a", "d"]
    assert [h.id for h in counted_once(px, heads, 300_000, 3 * MIN)] == ["a", "b", "c", "d"]


def _reaction(hid: str, symbol: str, gap: bool, cid: str | None, horizon: int) -> Reaction:
    return Reaction(hid, hid, symbol, horizon, WED, WED, WED + horizon * 1000, 150.0, WED,
                    150.0, WED, 0.0, None, None, 0.0, 0.0, False, gap, 1, confound_id=cid)


@pytest.mark.parametrize("horizons", [(60,), (60, 300, 900)])
def test_closed_windows_count_headlines_not_reactions(horizons: tuple[int, ...]) -> None:
    rs = [_reaction(h, "N225", True, "gap:N225:1", z) for h in ("x", "y", "z") for z in horizons]
    rs += [_reaction("w", "N225", True, "gap:N225:2", 60)]
    rs += [_reaction("x", "USDJPY", True, "gap:USDJPY:1", 60)]
    rs += [_reaction("o", "N225", False, None, 60)]
    assert closed_window_sizes(rs) == {("N225", "gap:N225:1"): 3, ("N225", "gap:N225:2"): 1,
                                       ("USDJPY", "gap:USDJPY:1"): 1}
