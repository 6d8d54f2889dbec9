"""The charts tell the truth: a fixed set of events per mean line, labelled headlines,
closed periods compressed."""

from __future__ import annotations

import random

import numpy as np
import pytest

from tariffmon.backtest.charts import (
    TradingAxis,
    event_study,
    event_study_figure,
    price_timeline_figure,
)
from tariffmon.backtest.runner import PriceSeries
from tariffmon.contract import ClassifiedHeadline

MIN = 60_000
T0 = 1_743_600_000_000  # 2025-04-02 13:20 UTC


def _head(hid: str, ts: int, direction: str = "escalation", title: str = ""
          ) -> ClassifiedHeadline:
    return ClassifiedHeadline(
        id=hid, ts=ts, source="test", title=title or f"US tariff headline {hid}",
        is_tariff=True, score=1.0, tags=("tariff",), direction=direction,  # type: ignore[arg-type]
        cluster_id=hid,
    )


def _series(pieces: list[tuple[int, int]], seed: int) -> PriceSeries:
    """One tick a minute over each (start, end) piece, a random walk across them."""
    rng = random.Random(seed)
    ts = np.concatenate([np.arange(a, b, MIN, dtype=np.int64) for a, b in pieces])
    px = 150.0 * np.exp(np.cumsum([rng.gauss(0, 3e-4) for _ in ts]))
    return PriceSeries(ts, px, np.zeros(len(ts), np.int64))


@pytest.mark.parametrize("seed", range(8))
def test_the_mean_line_averages_one_fixed_set_of_events(seed: int) -> None:
    """An event whose prices stop inside the hour after it is left out of the mean, which is
    the plain mean of the complete events wherever it is drawn: no jump where data ends."""
    rng = random.Random(seed)
    n = rng.randint(2, 6)
    t0s = [T0 + i * 24 * 60 * MIN for i in range(n)]
    # data ends there, more than the staleness bound before the end of the hour
    cut = {i: rng.randint(1, 55) for i in range(n) if rng.random() < 0.4}
    pieces = [(t - 40 * MIN, t + cut.get(i, 70) * MIN)
              for i, t in enumerate(t0s)]
    prices = _series(pieces, seed)
    heads = [_head(f"h{i}", t) for i, t in enumerate(t0s)]
    st = event_study("USDJPY", "escalation", prices, heads, staleness_ms=2 * MIN)
    assert set(st.partial_ids) == {f"h{i}" for i in cut}
    assert set(st.event_ids) == {f"h{i}" for i in range(n) if i not in cut}
    drawn = ~np.isnan(st.mean_bp)
    assert np.all(st.n_at[drawn] == st.n_events)  # the same events at every drawn point
    if st.n_events:
        assert drawn[st.offsets_s >= 0].all()
        ts, px = prices.ts, prices.price
        for col in np.nonzero(drawn)[0]:
            vals = []
            for i in (int(e[1:]) for e in st.event_ids):
                p0 = px[np.searchsorted(ts, t0s[i], side="right") - 1]
                pk = px[np.searchsorted(ts, t0s[i] + st.offsets_s[col] * 1_000,
                                        side="right") - 1]
                vals.append(np.log(pk / p0) * 1e4)
            assert np.isclose(st.mean_bp[col], np.mean(vals), rtol=1e-12, atol=1e-9)
    fig = event_study_figure("USDJPY", [st])
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    box = fig.axes[0].get_legend()
    legend = [t.get_text() for t in box.get_texts()] if box else []
    if st.n_events:
        assert any(f"n={st.n_events} events" in t for t in legend)
        if cut:
            assert any(f"{len(cut)} partial left out" in t for t in legend)
    else:
        assert any(f"({len(cut)} partial)" in t for t in texts)


def test_timeline_numbers_every_headline_and_keys_it_to_a_table() -> None:
    prices = _series([(T0 - 60 * MIN, T0 + 600 * MIN)], 1)
    rng = random.Random(3)
    heads = [_head(f"h{i}", T0 + rng.randrange(0, 590) * MIN,
                   rng.choice(["escalation", "de-escalation", "neutral"]),
                   f"Headline number {i} about tariffs") for i in range(12)]
    fig = price_timeline_figure("USDJPY", prices, heads, 2 * MIN)
    ax = fig.axes[0]
    labels = {t.get_gid(): t.get_text() for t in ax.texts if (t.get_gid() or "")
              .startswith("label:")}
    in_order = sorted(heads, key=lambda h: (h.ts, h.id))
    assert labels == {f"label:{h.id}": str(n) for n, h in enumerate(in_order, start=1)}
    table = next(t.get_text() for a in fig.axes for t in a.texts
                 if t.get_gid() == "headline-table").splitlines()
    assert len(table) == len(heads)
    for n, h in enumerate(in_order, start=1):
        assert table[n - 1].split()[0] == str(n) and h.title in table[n - 1]


@pytest.mark.parametrize("closed_h", [16, 64, 24 * 9])
def test_closed_periods_are_compressed_to_a_narrow_strip(closed_h: int) -> None:
    """Two sessions with the market closed between them: the strip is a sliver of the axis
    whatever the length of the closure, and the axis labels give the real times back."""
    close = T0 + 360 * MIN
    reopen = close + closed_h * 60 * MIN
    prices = _series([(T0, close + MIN), (reopen, reopen + 360 * MIN)], 2)
    fig = price_timeline_figure("N225", prices, [_head("h", close + 60 * MIN)], 5 * MIN)
    ax = fig.axes[0]
    lo, hi = ax.get_xlim()
    strips = [p for p in ax.patches if (p.get_gid() or "").startswith("closed:")]
    assert len(strips) == 1
    x0 = strips[0].get_x()
    x1 = x0 + strips[0].get_width()
    assert 0 < (x1 - x0) / (hi - lo) <= 0.03
    axis = TradingAxis.of(prices.ts, 10 * MIN)
    for t in (T0, close, reopen, reopen + 100 * MIN):
        assert abs(axis.real(float(axis.x(t))) - t) < 1.0
    # a headline while closed sits inside the strip
    mark = next(ln for ln in ax.get_lines() if ln.get_gid() == "headline:h")
    assert x0 <= mark.get_xdata()[0] <= x1
