"""The backtest's charts: an event study and a price timeline per symbol (matplotlib, Agg).

Event study: for each tariff headline that started a story (time ``t0``), the cumulative log
return ``ln(p(t0 + k) / p(t0))`` in basis points on a one-minute grid from 30 minutes before
to 60 minutes after, with ``p(t)`` the last price at or before ``t`` (the reactions' own
rule).  A grid point whose last price is older than the symbol's staleness bound plus its bar
length (market closed, data missing) is left out, and a headline whose ``p0`` is stale is not
an event for that symbol at all.  Confounded headlines count once: of the events of a symbol
less than ``confound_window_ms`` apart (a chain, whatever their directions), only the first
is an event (:func:`tariffmon.core.gaps.first_of_overlaps`); headlines of one closed window
are no events at all (their ``p0`` is stale).  Events are split by the headline's direction; each
direction's mean path is drawn with its interquartile band and the event count in the legend.

The computed series (:class:`EventStudy`) are returned alongside the figures, and every
plotted line carries a ``gid`` naming what it shows, so a test can read the plotted data
back and compare it with the computation.
"""

from __future__ import annotations

import datetime as dt
import io
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from tariffmon.backtest.runner import BacktestResult, PriceSeries
from tariffmon.contract import ClassifiedHeadline
from tariffmon.core.gaps import first_of_overlaps
from tariffmon.core.series import F64, I64

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: the directions the event study is split by (neutral headlines are not plotted)
STUDY_DIRECTIONS: tuple[str, ...] = ("escalation", "de-escalation")
DIRECTION_COLORS = {"escalation": "#c0392b", "de-escalation": "#1e8449", "neutral": "#7f8c8d"}
_DIRECTION_ORDER = {d: i for i, d in enumerate(DIRECTION_COLORS)}
#: units of the configured symbols' prices, for axis labels
PRICE_UNITS = {"USDJPY": "JPY per USD", "N225": "index points", "NKD": "index points"}
#: the price timeline draws at most this many points per symbol
MAX_TIMELINE_POINTS = 20_000
BEFORE_S = 1_800
AFTER_S = 3_600
STEP_S = 60


@dataclass(frozen=True, slots=True)
class EventStudy:
    """The average cumulative return path of one symbol around one direction's headlines."""

    symbol: str
    direction: str
    #: the grid, in seconds relative to the headline (0 = the headline)
    offsets_s: I64
    #: mean cumulative log return in basis points per grid point (NaN where no event has data)
    mean_bp: F64
    #: 25th and 75th percentiles across events (the band)
    lower_bp: F64
    upper_bp: F64
    #: how many events have a price at each grid point
    n_at: I64
    #: the headlines counted as events (their p0 was fresh)
    event_ids: tuple[str, ...]

    @property
    def n_events(self) -> int:
        """Events in this study."""
        return len(self.event_ids)

    @property
    def offsets_min(self) -> F64:
        """The grid in minutes (the x axis)."""
        return self.offsets_s.astype(np.float64) / 60.0


def event_paths(
    prices: PriceSeries,
    t0s: I64,
    staleness_ms: int,
    offsets_s: I64,
) -> tuple[F64, np.ndarray]:
    """Per event (rows) and grid point (columns): cumulative log return in bp, or NaN.

    Also returns which events have a fresh ``p0`` (a boolean array per event).
    """
    n = len(t0s)
    paths = np.full((n, len(offsets_s)), np.nan)
    ok = np.zeros(n, dtype=bool)
    if n == 0 or len(prices) == 0:
        return paths, ok
    ts, px, interval = prices.ts, prices.price, prices.interval

    def fresh_at(t: I64) -> tuple[I64, np.ndarray]:
        idx = np.searchsorted(ts, t, side="right") - 1
        safe = np.clip(idx, 0, None)
        fresh = (idx >= 0) & (t - ts[safe] <= staleness_ms + interval[safe])
        return safe, fresh

    i0, ok = fresh_at(t0s)
    grid = t0s[:, None] + offsets_s[None, :] * 1_000
    idx, fresh = fresh_at(grid)
    with np.errstate(divide="ignore", invalid="ignore"):
        bp = np.log(px[idx] / px[i0][:, None]) * 10_000.0
    paths = np.where(fresh & ok[:, None], bp, np.nan)
    return paths, ok


def event_study(
    symbol: str,
    direction: str,
    prices: PriceSeries | None,
    headlines: Sequence[ClassifiedHeadline],
    staleness_ms: int,
    *,
    before_s: int = BEFORE_S,
    after_s: int = AFTER_S,
    step_s: int = STEP_S,
) -> EventStudy:
    """The event study of ``symbol`` over the headlines of one ``direction``."""
    offsets = np.arange(-before_s, after_s + step_s, step_s, dtype=np.int64)
    chosen = [h for h in headlines if h.direction == direction]
    t0s = np.array([h.ts for h in chosen], dtype=np.int64)
    if prices is None:
        prices = PriceSeries(
            np.empty(0, np.int64), np.empty(0, np.float64), np.empty(0, np.int64)
        )
    paths, ok = event_paths(prices, t0s, staleness_ms, offsets)
    paths = paths[ok]
    n_at = np.sum(~np.isnan(paths), axis=0).astype(np.int64)
    mean = np.full(len(offsets), np.nan)
    lower = np.full(len(offsets), np.nan)
    upper = np.full(len(offsets), np.nan)
    has = n_at > 0
    if has.any():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns stay NaN
            mean[has] = np.nanmean(paths[:, has], axis=0)
            lower[has] = np.nanpercentile(paths[:, has], 25, axis=0)
            upper[has] = np.nanpercentile(paths[:, has], 75, axis=0)
    ids = tuple(h.id for h, good in zip(chosen, ok, strict=True) if good)
    return EventStudy(symbol, direction, offsets, mean, lower, upper, n_at, ids)


def counted_once(
    prices: PriceSeries | None, headlines: Sequence[ClassifiedHeadline], staleness_ms: int,
    window_ms: int,
) -> list[ClassifiedHeadline]:
    """The headlines that are events of a symbol, each run of overlapping ones once.

    Events are those with a fresh ``p0`` (the market open); among them a run of headlines
    less than ``window_ms`` apart is confounded and kept by its first headline only.
    """
    if prices is None or not headlines:
        return []
    t0s = np.array([h.ts for h in headlines], dtype=np.int64)
    _, ok = event_paths(prices, t0s, staleness_ms, np.zeros(1, dtype=np.int64))
    fresh = [h for h, good in zip(headlines, ok, strict=True) if good]
    keep = set(first_of_overlaps([(h.ts, h.id) for h in fresh], window_ms))
    return [h for h in fresh if h.id in keep]


def event_studies(result: BacktestResult) -> dict[str, list[EventStudy]]:
    """Per symbol, one study per direction in :data:`STUDY_DIRECTIONS`."""
    heads = result.measured_headlines()
    out: dict[str, list[EventStudy]] = {}
    for symbol in result.symbols:
        stale = result.params.symbols[symbol].staleness_ms
        prices = result.prices.get(symbol)
        events = counted_once(prices, heads, stale, result.params.confound_window_ms)
        out[symbol] = [
            event_study(symbol, d, prices, events, stale) for d in STUDY_DIRECTIONS
        ]
    return out


def _agg_figure(width: float, height: float) -> Figure:
    # the Agg canvas is attached directly: no pyplot, no GUI backend, no global figure list
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def event_study_figure(symbol: str, studies: Sequence[EventStudy]) -> Figure:
    """Mean path (line, gid ``mean:<direction>``) and IQR band per direction."""
    fig = _agg_figure(8.0, 4.8)
    ax = fig.add_subplot()
    drawn = 0
    for st in studies:
        color = DIRECTION_COLORS.get(st.direction, "#34495e")
        if st.n_events == 0:
            continue
        x = st.offsets_min
        (line,) = ax.plot(
            x, st.mean_bp, color=color, linewidth=2.0,
            label=f"{st.direction}: mean (n={st.n_events} events)",
        )
        line.set_gid(f"mean:{st.direction}")
        band = ax.fill_between(
            x, st.lower_bp, st.upper_bp, color=color, alpha=0.18, linewidth=0,
            label=f"{st.direction}: interquartile range",
        )
        band.set_gid(f"band:{st.direction}")
        drawn += 1
    ax.axvline(0.0, color="black", linewidth=1.0, linestyle="--", label="headline (t = 0)")
    ax.axhline(0.0, color="grey", linewidth=0.8)
    ax.set_xlim(-BEFORE_S / 60, AFTER_S / 60)
    ax.set_xlabel("minutes from the headline")
    ax.set_ylabel("cumulative log return since the headline (bp)")
    ax.set_title(f"{symbol}: average move around tariff headlines, by direction")
    if drawn == 0:
        ax.text(0.5, 0.5, "no tariff headlines with prices for this symbol",
                transform=ax.transAxes, ha="center", va="center", color="grey")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", fontsize="small")
    return fig


def _date_num(ts_ms: I64 | int) -> F64:
    """Epoch milliseconds as matplotlib date numbers (days since its epoch)."""
    import matplotlib.dates as mdates

    origin = float(mdates.date2num(dt.datetime(1970, 1, 1, tzinfo=dt.UTC)))  # type: ignore[no-untyped-call]
    return np.asarray(ts_ms, dtype=np.float64) / 86_400_000.0 + origin


def _thin(prices: PriceSeries, staleness_ms: int) -> tuple[F64, F64]:
    """Times (as matplotlib date numbers) and prices to draw: thinned, with gaps broken by NaN."""
    ts, px = prices.ts, prices.price
    gap_ms = staleness_ms
    if len(ts) > MAX_TIMELINE_POINTS:
        # keep the lowest and the highest tick of each of MAX_TIMELINE_POINTS // 2 equal
        # time buckets: the line stays within a pixel of the full one, extremes included
        buckets = MAX_TIMELINE_POINTS // 2
        span = max(1, int(ts[-1] - ts[0]))
        bucket = (ts - ts[0]) * buckets // (span + 1)
        order = np.lexsort((px, bucket))
        starts = np.flatnonzero(np.r_[True, np.diff(bucket[order]) != 0])
        ends = np.r_[starts[1:], len(order)] - 1
        keep = np.unique(np.concatenate([order[starts], order[ends]]))
        ts, px = ts[keep], px[keep]
        gap_ms = max(gap_ms, span // buckets)
    gap_ms += int(prices.interval.max()) if len(prices.interval) else 0
    # a closed market is a break in the line, not a straight segment across it
    breaks = np.nonzero(np.diff(ts) > 2 * gap_ms)[0] + 1
    days = np.insert(_date_num(ts), breaks, np.nan)
    y = np.insert(px.astype(np.float64), breaks, np.nan)
    return days, y


def price_timeline_figure(
    symbol: str,
    prices: PriceSeries | None,
    headlines: Sequence[ClassifiedHeadline],
    staleness_ms: int,
) -> Figure:
    """The symbol's price over the backtest, tariff headlines as vertical lines by direction."""
    import matplotlib.dates as mdates
    from matplotlib.lines import Line2D

    fig = _agg_figure(10.0, 4.8)
    ax = fig.add_subplot()
    if prices is None or len(prices) == 0:
        ax.text(0.5, 0.5, f"no {symbol} ticks in the input", transform=ax.transAxes,
                ha="center", va="center", color="grey")
        ax.set_title(f"{symbol}: price with tariff headlines")
        return fig
    days, y = _thin(prices, staleness_ms)
    (line,) = ax.plot(days, y, color="#2c3e50", linewidth=0.9)
    line.set_gid("price")
    lo, hi = int(prices.ts[0]), int(prices.ts[-1])
    seen: dict[str, int] = {}
    for h in headlines:
        if not lo <= h.ts <= hi:
            continue
        color = DIRECTION_COLORS.get(h.direction, "#7f8c8d")
        mark = ax.axvline(float(_date_num(h.ts)), color=color, alpha=0.7, linewidth=1.0)
        mark.set_gid(f"headline:{h.id}")
        seen[h.direction] = seen.get(h.direction, 0) + 1
    handles = [Line2D([], [], color="#2c3e50", linewidth=0.9, label=f"{symbol} price")]
    handles += [
        Line2D([], [], color=DIRECTION_COLORS.get(d, "#7f8c8d"), linewidth=1.0,
               label=f"{d} headline ({n})")
        for d, n in sorted(seen.items(), key=lambda kv: _DIRECTION_ORDER.get(kv[0], 9))
    ]
    ax.legend(handles=handles, loc="best", fontsize="small")
    ax.xaxis_date(tz=dt.UTC)
    fmt = mdates.DateFormatter("%d %b\n%H:%M", tz=dt.UTC)  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_formatter(fmt)
    ax.set_xlabel("time (UTC)")
    ax.set_ylabel(f"price ({PRICE_UNITS.get(symbol, 'quote units')})")
    ax.set_title(f"{symbol}: price with tariff headlines (colour = direction)")
    ax.grid(True, alpha=0.3)
    return fig


def png_bytes(fig: Figure) -> bytes:
    """Render a figure to PNG."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


@dataclass(frozen=True, slots=True)
class Chart:
    """One rendered chart: a file name stem, a caption and the PNG."""

    name: str
    caption: str
    png: bytes


@dataclass(frozen=True, slots=True)
class Charts:
    """All charts of a backtest plus the event studies they plot."""

    charts: tuple[Chart, ...]
    studies: dict[str, list[EventStudy]]


def build_charts(result: BacktestResult) -> Charts:
    """Render every chart of a backtest (event study and timeline per symbol with ticks)."""
    studies = event_studies(result)
    heads = result.measured_headlines()
    charts: list[Chart] = []
    for symbol in result.traded_symbols:
        stale = result.params.symbols[symbol].staleness_ms
        fig = event_study_figure(symbol, studies[symbol])
        counts = ", ".join(f"{s.direction} n={s.n_events}" for s in studies[symbol])
        charts.append(Chart(
            f"event_study_{symbol}",
            f"{symbol}: mean cumulative log return (bp) from 30 min before to 60 min after "
            f"tariff headlines, interquartile band ({counts})",
            png_bytes(fig),
        ))
        fig = price_timeline_figure(symbol, result.prices.get(symbol), heads, stale)
        charts.append(Chart(
            f"timeline_{symbol}",
            f"{symbol}: price over the backtest with the {len(heads)} tariff headlines marked",
            png_bytes(fig),
        ))
    return Charts(tuple(charts), studies)
