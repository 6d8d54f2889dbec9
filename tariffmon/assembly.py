"""The one place that builds the pure core from the settings.

The live worker's stages, the offline backtest, the benchmarks and every test reference call
these functions, so they all run the same classifier, story clustering, engine parameters,
symbol order and input limits: one implementation of each, however it is driven.  The core
itself only ever sees the plain values built here, never :class:`~tariffmon.settings.Settings`.
"""

from __future__ import annotations

from dataclasses import dataclass

from tariffmon.contract import Limits
from tariffmon.core.classifier import TariffClassifier
from tariffmon.core.clustering import StoryClusterer
from tariffmon.core.engine import ReactionEngine
from tariffmon.core.headlines import HeadlineDesk
from tariffmon.core.params import MS, EngineParams, SymbolParams
from tariffmon.settings import Settings


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
        if s.sharp_bp:
            bp.update(s.sharp_bp)
        symbols[s.name] = SymbolParams(
            name=s.name,
            calendar=s.trading_calendar(),
            staleness_ms=s.staleness_s * MS,
            sharp_thresholds={int(w) * MS: v / 10_000 for w, v in bp.items()},
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
    )


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


def input_limits(settings: Settings, now_ms: int | None = None) -> Limits:
    """What headlines and requests must satisfy: known symbols, time up to a day past now.

    ``now_ms=None`` (the offline backtest) keeps only the fixed ceiling on time.
    """
    bands = settings.price_bands()
    if now_ms is None:
        return Limits(settings.symbol_names(), None, bands)
    return Limits.from_now(now_ms, settings.symbol_names(), price_bands=bands)


def tick_limits(settings: Settings, now_ms: int | None = None) -> Limits:
    """What a tick must satisfy, on every path that reads ticks from Kafka or files.

    Live, a tick may lie at most ``worker.max_tick_ahead_s`` ahead of the clock: the engine
    refuses ticks older than a symbol's newest, so one bogus future tick would silence the
    symbol.  Prices must lie in the symbol's band.
    """
    limits = input_limits(settings, None)
    if now_ms is None:
        return limits
    return limits.with_ceiling(now_ms + settings.worker.max_tick_ahead_s * MS)
