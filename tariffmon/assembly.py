"""The one place that builds the pure core from the settings.

The live worker's stages, the offline backtest, the benchmarks and every test reference call
these functions, so they all run the same classifier, story clustering, engine parameters,
symbol order and input limits: one implementation of each, however it is driven.  The core
itself only ever sees the plain values built here, never :class:`~tariffmon.settings.Settings`.
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import math
import warnings
from dataclasses import dataclass
from pathlib import Path

from tariffmon.contract import Limits
from tariffmon.core.calendar import MS_PER_DAY, TradingCalendar
from tariffmon.core.classifier import TariffClassifier
from tariffmon.core.clustering import StoryClusterer
from tariffmon.core.engine import ReactionEngine
from tariffmon.core.gaps import SeedGap, seed_from_daily
from tariffmon.core.headlines import HeadlineDesk
from tariffmon.core.params import MS, EngineParams, SymbolParams
from tariffmon.errors import ConfigError
from tariffmon.settings import Settings, SymbolSettings

#: the range of exchange sessions built from the calendar library: fixed, so that the
#: answer never depends on the day the process starts (the library's default range does)
EXCHANGE_SESSIONS_FROM = "2007-01-01"
EXCHANGE_SESSIONS_TO = "2030-12-31"


@dataclass(frozen=True, slots=True)
class CoreSetup:
    """Everything the core needs, in plain values, and factories for its stateful parts."""

    params: EngineParams
    classifier: TariffClassifier
    #: the configured symbols, in settings order (the order requests fan out in)
    symbols: tuple[str, ...]
    cluster_window_ms: int
    cluster_similarity: float

    def new_engine(self) -> ReactionEngine:
        """An empty reaction engine."""
        return ReactionEngine(self.params)

    def new_clusterer(self) -> StoryClusterer:
        """An empty story clusterer."""
        return StoryClusterer(self.cluster_window_ms, self.cluster_similarity)

    def new_desk(self) -> HeadlineDesk:
        """Classification, story clustering and fan-out, with an empty clusterer."""
        return HeadlineDesk(self.classifier, self.new_clusterer(), self.symbols)


def engine_params(settings: Settings) -> EngineParams:
    """Translate the settings into the core's parameters (milliseconds, log returns)."""
    eng = settings.engine
    symbols = {}
    for s in settings.symbols:
        bp = dict(eng.sharp_bp)
        calendar = trading_calendar(s)
        if s.sharp_bp:
            bp.update(s.sharp_bp)
        symbols[s.name] = SymbolParams(
            name=s.name,
            calendar=calendar,
            staleness_ms=s.staleness_s * MS,
            sharp_thresholds={int(w) * MS: v / 10_000 for w, v in bp.items()},
            gap_seed=gap_seed(s, calendar),
        )
    return EngineParams(
        symbols=symbols,
        horizons_ms=tuple(h * MS for h in sorted(set(eng.horizons_s))),
        baseline_ms=eng.baseline_s * MS,
        lateness_ms=eng.lateness_s * MS,
        significance_z=eng.significance_z,
        significance_ret=eng.significance_bp / 10_000,
        min_baseline_returns=eng.min_baseline_returns,
        sharp_windows_ms=tuple(w * MS for w in sorted(set(eng.sharp_windows_s))),
        sharp_z=eng.sharp_z,
        cooldown_ms=eng.cooldown_s * MS,
        lookback_ms=eng.lookback_s * MS,
        gap_min_count=eng.gap_min_count,
        gap_significance_z=eng.gap_significance_z,
        gap_max_count=eng.gap_max_count,
        gap_memory_ms=eng.gap_memory_s * MS,
        confound_window_ms=eng.confound_window_s * MS,
    )


def trading_calendar(symbol: SymbolSettings) -> TradingCalendar:
    """The symbol's calendar: its weekly hours, and its exchange's sessions when named.

    exchange-calendars computes sessions from its holiday rules (no download); the range
    is fixed (:data:`EXCHANGE_SESSIONS_FROM` to :data:`EXCHANGE_SESSIONS_TO`), lunch breaks
    are closed and half days end at their own close.
    """
    weekly = symbol.trading_calendar()
    if symbol.exchange_calendar is None:
        return weekly
    bounds = exchange_sessions(symbol.exchange_calendar,
                               f"symbols.{symbol.name}.exchange_calendar")
    lo = _day_ms(EXCHANGE_SESSIONS_FROM)
    hi = _day_ms(EXCHANGE_SESSIONS_TO) + MS_PER_DAY
    return weekly.with_sessions(bounds, lo, hi)


@functools.lru_cache(maxsize=8)
def exchange_sessions(name: str, setting: str) -> tuple[tuple[int, int], ...]:
    """Open intervals (epoch ms) of an exchange-calendars calendar over the fixed range.

    Cached per name: building a calendar takes about a second, and its rules never change
    within a process.
    """
    import exchange_calendars as xcals  # heavy (pandas): only when a symbol names one
    import numpy as np

    try:
        with warnings.catch_warnings():
            # the library's own use of a pandas API that pandas deprecates: not ours to fix
            warnings.filterwarnings("ignore", message="Series.values returning an ndarray")
            cal = xcals.get_calendar(name, start=EXCHANGE_SESSIONS_FROM,
                                     end=EXCHANGE_SESSIONS_TO)
    except xcals.errors.InvalidCalendarName:
        raise ConfigError(setting, f"unknown exchange calendar {name!r} "
                          "(exchange_calendars.get_calendar_names() lists them)") from None
    sched = cal.schedule
    nat = np.iinfo(np.int64).min

    def ms(col: str) -> list[int]:
        if col not in sched:
            return [nat] * len(sched)
        v = sched[col].to_numpy(dtype="datetime64[ns]").astype(np.int64)
        return [int(x) // 1_000_000 if x != nat else nat for x in v]

    bounds: list[tuple[int, int]] = []
    for o, c, bs, be in zip(ms("open"), ms("close"), ms("break_start"), ms("break_end"),
                            strict=True):
        if bs != nat and be != nat and o < bs < be < c:
            bounds += [(o, bs), (be, c)]  # the lunch break is closed
        else:
            bounds.append((o, c))
    return tuple(bounds)


def _day_ms(day: str) -> int:
    d = dt.date.fromisoformat(day)
    return (d - dt.date(1970, 1, 1)).days * MS_PER_DAY


_DATE_COLUMNS = ("date", "datetime", "time", "timestamp")


def read_daily_bars(path: Path, setting: str) -> list[tuple[int, float, float]]:
    """``(UTC day number, open, close)`` per row of a daily-bar CSV.

    Columns are found by name, any case: a date (``Date``/``time``/``timestamp``, whose first
    ten characters are the trading day, ``2025-04-07`` or ``2025.04.07``), ``Open`` and
    ``Close``: yfinance's daily history as ``DataFrame.to_csv`` writes it, or an MT5 export.
    """
    try:
        with Path(path).open(newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.reader(fh))
    except OSError as exc:
        raise ConfigError(setting, f"cannot read {str(path)!r}: {exc.strerror}") from None
    if not rows:
        raise ConfigError(setting, f"{str(path)!r} is empty")
    head = [h.strip().lower() for h in rows[0]]
    try:
        i_date = next(head.index(c) for c in _DATE_COLUMNS if c in head)
        i_open, i_close = head.index("open"), head.index("close")
    except (StopIteration, ValueError):
        raise ConfigError(setting, f"{str(path)!r} needs date, open and close columns, "
                          f"has {rows[0]}") from None
    out = []
    for n, row in enumerate(rows[1:], start=2):
        try:
            day = _day_ms(row[i_date].strip()[:10].replace(".", "-")) // MS_PER_DAY
            o, c = float(row[i_open]), float(row[i_close])
        except (IndexError, ValueError):
            raise ConfigError(setting, f"{str(path)!r} line {n}: no date, open and close in "
                              f"{row!r:.120}") from None
        if math.isfinite(o) and math.isfinite(c) and o > 0 and c > 0:
            out.append((day, o, c))
    return out


def gap_seed(symbol: SymbolSettings, calendar: TradingCalendar) -> tuple[SeedGap, ...]:
    """The symbol's seed gaps from its ``gap_seed`` file (none without one)."""
    if symbol.gap_seed is None:
        return ()
    bars = read_daily_bars(symbol.gap_seed, f"symbols.{symbol.name}.gap_seed")
    return seed_from_daily(calendar, bars)


def core_setup(settings: Settings, *, params: EngineParams | None = None) -> CoreSetup:
    """The core for ``settings`` (``params`` replaces the engine parameters, for benchmarks)."""
    return CoreSetup(
        params=params or engine_params(settings),
        classifier=TariffClassifier.from_file(
            settings.classifier.rules_file, settings.classifier.threshold
        ),
        symbols=tuple(s.name for s in settings.symbols),
        cluster_window_ms=settings.engine.cluster_window_s * MS,
        cluster_similarity=settings.engine.cluster_similarity,
    )


def input_limits(settings: Settings, now_ms: int | None = None, *,
                 base: Limits | None = None) -> Limits:
    """What headlines and requests must satisfy: known symbols, time up to a day past now.

    ``now_ms=None`` (the offline backtest) keeps only the fixed ceiling on time.  ``base``
    is ``input_limits(settings)`` built before, reused so that a caller asking at every
    batch does not rebuild (and re-validate) the symbols and price bands each time.
    """
    if base is None:
        base = Limits(settings.symbol_names(), None, settings.price_bands())
    elif base.max_ts_ms is not None:
        raise ValueError("base: must be input_limits(settings), without a time ceiling")
    if now_ms is None:
        return base
    return Limits.from_now(now_ms, base.symbols, price_bands=base.price_bands)


def tick_limits(settings: Settings, now_ms: int | None = None, *,
                base: Limits | None = None) -> Limits:
    """What a tick must satisfy, on every path that reads ticks from Kafka or files.

    Live, a tick may lie at most ``worker.max_tick_ahead_s`` ahead of the clock: the engine
    refuses ticks older than a symbol's newest, so one bogus future tick would silence the
    symbol.  Prices must lie in the symbol's band.  ``base`` as for :func:`input_limits`.
    """
    limits = input_limits(settings, None, base=base)
    if now_ms is None:
        return limits
    return limits.with_ceiling(now_ms + settings.worker.max_tick_ahead_s * MS)
