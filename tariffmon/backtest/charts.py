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

The mean and the band are taken over one fixed set of events: those with a fresh price at
every grid point from the headline to the end of the window, and drawn only at the grid points
where every one of them has a price (so the part before the headline may start later).
Averaging whatever events had data at each minute made the line jump where one event's data
ran out (a market closing, the input ending): the USD/JPY de-escalation mean went from +20 to
-8 bp at minute 25, which reads as a reversal of the market and is only a change of which
events are averaged.  Events left out are counted in the legend and the caption
(:attr:`EventStudy.partial_ids`).

Price timeline: closed periods (gaps longer than twice the staleness bound) are compressed
to a narrow hatched strip so the chart shows the trading, and each tariff headline is a
numbered line keyed to a table of short titles under the chart.

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
    from matplotlib.artist import Artist
    from matplotlib.figure import Figure

#: the directions the event study is split by (neutral headlines are not plotted)
STUDY_DIRECTIONS: tuple[str, ...] = ("escalation", "de-escalation")
DIRECTION_COLORS = {"escalation": "#c0392b", "de-escalation": "#1e8449", "neutral": "#7f8c8d"}
_DIRECTION_ORDER = {d: i for i, d in enumerate(DIRECTION_COLORS)}
#: units of the configured symbols' prices, for axis labels
PRICE_UNITS = {"USDJPY": "JPY per USD", "N225": "index points", "NIY": "index points",
               "NKD": "index points"}
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
    #: how many of the averaged events have a price at each grid point: all of them from
    #: the headline on; the mean is drawn only where it is all of them
    n_at: I64
    #: the averaged headlines: a fresh p0 and a price at every grid point after it
    event_ids: tuple[str, ...]
    #: headlines with a fresh p0 but a gap after it in the window: left out of the mean
    partial_ids: tuple[str, ...] = ()

    @property
    def n_events(self) -> int:
        """Events averaged in this study (the complete ones)."""
        return len(self.event_ids)

    @property
    def n_partial(self) -> int:
        """Events left out because their prices do not cover the whole window."""
        return len(self.partial_ids)

    def legend(self) -> str:
        """What the mean line is, in words: direction, events averaged, events left out."""
        left = f", {self.n_partial} partial left out" if self.n_partial else ""
        return f"{self.direction}: mean (n={self.n_events} events{left})"

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
    complete = ok & ~np.isnan(paths[:, offsets >= 0]).any(axis=1)
    paths = paths[complete]
    n_at = np.sum(~np.isnan(paths), axis=0).astype(np.int64)
    mean = np.full(len(offsets), np.nan)
    lower = np.full(len(offsets), np.nan)
    upper = np.full(len(offsets), np.nan)
    has = (n_at == len(paths)) & (n_at > 0)
    if has.any():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns stay NaN
            mean[has] = np.nanmean(paths[:, has], axis=0)
            lower[has] = np.nanpercentile(paths[:, has], 25, axis=0)
            upper[has] = np.nanpercentile(paths[:, has], 75, axis=0)
    ids = tuple(h.id for h, good in zip(chosen, complete, strict=True) if good)
    partial = tuple(h.id for h, fresh, good in zip(chosen, ok, complete, strict=True)
                    if fresh and not good)
    return EventStudy(symbol, direction, offsets, mean, lower, upper, n_at, ids, partial)


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
        (line,) = ax.plot(x, st.mean_bp, color=color, linewidth=2.0, label=st.legend())
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
        partial = sum(st.n_partial for st in studies)
        why = (f"no tariff headline with prices for the hour after it ({partial} partial)"
               if partial else "no tariff headlines with prices for this symbol")
        ax.text(0.5, 0.5, why, transform=ax.transAxes, ha="center", va="center",
                color="grey")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", fontsize="small")
    return fig


def _date_num(ts_ms: I64 | int) -> F64:
    """Epoch milliseconds as matplotlib date numbers (days since its epoch)."""
    import matplotlib.dates as mdates

    origin = float(mdates.date2num(dt.datetime(1970, 1, 1, tzinfo=dt.UTC)))  # type: ignore[no-untyped-call]
    return np.asarray(ts_ms, dtype=np.float64) / 86_400_000.0 + origin


@dataclass(frozen=True, slots=True)
class TradingAxis:
    """A time axis with the closed periods squeezed: x is hours of trading time.

    ``real_ms`` and ``x_h`` are the knots of a strictly increasing piecewise-linear map:
    slope 1 (per hour) while the market trades, a fixed narrow width across each gap longer
    than the break threshold.  :attr:`closed` lists those gaps (real ms), drawn as strips.
    """

    real_ms: F64
    x_h: F64
    closed: tuple[tuple[int, int], ...]

    @staticmethod
    def of(ts: I64, break_ms: int) -> TradingAxis:
        """The axis of ticks ``ts`` (sorted), breaking at gaps longer than ``break_ms``."""
        if len(ts) == 0:
            return TradingAxis(np.zeros(2), np.array([0.0, 1.0]), ())
        cut = np.nonzero(np.diff(ts) > break_ms)[0]
        open_h = max(float(ts[-1] - ts[0]) - float(np.sum(np.diff(ts)[cut])), 1.0) / 3.6e6
        gap_h = max(open_h * 0.015, 1 / 60)
        real = [float(ts[0])]
        x = [0.0]
        closed = []
        for i in cut:
            close, reopen = int(ts[i]), int(ts[i + 1])
            real.append(float(close))
            x.append(x[-1] + (close - real[-2]) / 3.6e6)
            real.append(float(reopen))
            x.append(x[-1] + gap_h)
            closed.append((close, reopen))
        if float(ts[-1]) > real[-1]:
            real.append(float(ts[-1]))
            x.append(x[-1] + (float(ts[-1]) - real[-2]) / 3.6e6)
        if len(real) == 1:
            real.append(real[0] + 1.0)
            x.append(x[0] + 1 / 3.6e6)
        return TradingAxis(np.asarray(real), np.asarray(x), tuple(closed))

    def x(self, ts_ms: I64 | int | float) -> F64:
        """Trading-time x (hours) of real times; outside the data, slope 1 continues."""
        t = np.asarray(ts_ms, dtype=np.float64)
        inside = np.interp(t, self.real_ms, self.x_h)
        before = self.x_h[0] + (t - self.real_ms[0]) / 3.6e6
        after = self.x_h[-1] + (t - self.real_ms[-1]) / 3.6e6
        return np.where(t < self.real_ms[0], before,
                        np.where(t > self.real_ms[-1], after, inside))

    def real(self, x_h: float) -> float:
        """The real time (epoch ms) shown at trading-time ``x_h``."""
        return float(np.interp(x_h, self.x_h, self.real_ms))


def _thin(prices: PriceSeries, staleness_ms: int) -> tuple[I64, F64, int]:
    """Ticks to draw (at most MAX_TIMELINE_POINTS, extremes kept), with the gap threshold."""
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
    return ts, px.astype(np.float64), 2 * gap_ms


#: the table of headlines under a timeline lists at most this many
MAX_TABLE_ROWS = 40
_TITLE_CHARS = 90


def price_timeline_figure(
    symbol: str,
    prices: PriceSeries | None,
    headlines: Sequence[ClassifiedHeadline],
    staleness_ms: int,
) -> Figure:
    """The symbol's price over the backtest in trading time (closed periods squeezed into
    hatched strips), each tariff headline a numbered vertical line coloured by direction and
    keyed to a table of short titles under the chart."""
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FuncFormatter, MaxNLocator
    from matplotlib.transforms import blended_transform_factory

    if prices is None or len(prices) == 0:
        fig = _agg_figure(10.0, 4.8)
        ax = fig.add_subplot()
        ax.text(0.5, 0.5, f"no {symbol} ticks in the input", transform=ax.transAxes,
                ha="center", va="center", color="grey")
        ax.set_title(f"{symbol}: price with tariff headlines")
        return fig
    ts, px, break_ms = _thin(prices, staleness_ms)
    axis = TradingAxis.of(ts, break_ms)
    lo, hi = int(prices.ts[0]), int(prices.ts[-1])
    shown = [h for h in sorted(headlines, key=lambda h: (h.ts, h.id)) if lo <= h.ts <= hi]
    rows = min(len(shown), MAX_TABLE_ROWS) + (len(shown) > MAX_TABLE_ROWS)
    fig = _agg_figure(10.0, 4.8 + 0.17 * rows)
    grid = fig.add_gridspec(2, 1, height_ratios=[4.8, max(0.01, 0.17 * rows)])
    ax = fig.add_subplot(grid[0])
    # a closed market is a break in the line, not a segment across the strip
    x = axis.x(ts)
    breaks = np.nonzero(np.diff(ts) > break_ms)[0] + 1
    (line,) = ax.plot(np.insert(x, breaks, np.nan), np.insert(px, breaks, np.nan),
                      color="#2c3e50", linewidth=0.9)
    line.set_gid("price")
    for close, reopen in axis.closed:
        strip = ax.axvspan(float(axis.x(close)), float(axis.x(reopen)), facecolor="#ecf0f1",
                           edgecolor="#bdc3c7", hatch="//", linewidth=0)
        strip.set_gid(f"closed:{close}:{reopen}")
    top = blended_transform_factory(ax.transData, ax.transAxes)
    seen: dict[str, int] = {}
    table: list[str] = []
    # numbers of headlines close together go on staggered rows so they stay readable
    width = float(axis.x_h[-1] - axis.x_h[0]) or 1.0
    last_x = [-np.inf] * 3
    for n, h in enumerate(shown, start=1):
        color = DIRECTION_COLORS.get(h.direction, "#7f8c8d")
        hx = float(axis.x(h.ts))
        mark = ax.axvline(hx, color=color, alpha=0.7, linewidth=1.0)
        mark.set_gid(f"headline:{h.id}")
        row = next((r for r in range(3) if hx - last_x[r] > 0.02 * width), 0)
        last_x[row] = hx
        label = ax.text(hx, 1.005 + 0.04 * row, str(n), transform=top, ha="center",
                        va="bottom", fontsize="x-small", color=color)
        label.set_gid(f"label:{h.id}")
        seen[h.direction] = seen.get(h.direction, 0) + 1
        if n <= MAX_TABLE_ROWS:
            when = dt.datetime.fromtimestamp(h.ts / 1000, dt.UTC).strftime("%d %b %H:%M")
            title = h.title if len(h.title) <= _TITLE_CHARS else h.title[:_TITLE_CHARS - 1] + "…"
            table.append(f"{n:>2}  {when}  {h.direction:<13} {title}")
    if len(shown) > MAX_TABLE_ROWS:
        table.append(f"    … and {len(shown) - MAX_TABLE_ROWS} more (see the report's table)")
    handles: list[Artist] = [
        Line2D([], [], color="#2c3e50", linewidth=0.9, label=f"{symbol} price")
    ]
    handles += [
        Line2D([], [], color=DIRECTION_COLORS.get(d, "#7f8c8d"), linewidth=1.0,
               label=f"{d} headline ({n})")
        for d, n in sorted(seen.items(), key=lambda kv: _DIRECTION_ORDER.get(kv[0], 9))
    ]
    if axis.closed:
        from matplotlib.patches import Patch

        handles.append(Patch(facecolor="#ecf0f1", edgecolor="#bdc3c7", hatch="//",
                             label="market closed (compressed)"))
    ax.legend(handles=handles, loc="best", fontsize="small")
    ax.set_xlim(float(axis.x_h[0]), float(axis.x_h[-1]))
    ax.xaxis.set_major_locator(MaxNLocator(nbins=10))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: dt.datetime.fromtimestamp(
        axis.real(v) / 1000, dt.UTC).strftime("%d %b\n%H:%M")))
    ax.set_xlabel("time (UTC), closed periods compressed")
    ax.set_ylabel(f"price ({PRICE_UNITS.get(symbol, 'quote units')})")
    ax.set_title(f"{symbol}: price with tariff headlines (colour = direction, number = table)",
                 pad=30)
    ax.grid(True, alpha=0.3)
    if table:
        tab = fig.add_subplot(grid[1])
        tab.axis("off")
        text = tab.text(0.0, 1.0, "\n".join(table), transform=tab.transAxes, ha="left",
                        va="top", family="monospace", fontsize="x-small")
        text.set_gid("headline-table")
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
        counts = ", ".join(
            f"{s.direction} n={s.n_events}" + (f" ({s.n_partial} partial left out)"
                                               if s.n_partial else "")
            for s in studies[symbol])
        charts.append(Chart(
            f"event_study_{symbol}",
            f"{symbol}: mean cumulative log return (bp) from 30 min before to 60 min after "
            f"tariff headlines, over the events with prices for the whole hour after the "
            f"headline (drawn where all of them have one), with the interquartile band "
            f"({counts})",
            png_bytes(fig),
        ))
        fig = price_timeline_figure(symbol, result.prices.get(symbol), heads, stale)
        charts.append(Chart(
            f"timeline_{symbol}",
            f"{symbol}: price over the backtest with the {len(heads)} tariff headlines marked",
            png_bytes(fig),
        ))
    return Charts(tuple(charts), studies)
