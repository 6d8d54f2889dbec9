"""The pure core's parameters: plain values in milliseconds, no settings object.

The core never reads settings files or the environment: :mod:`tariffmon.assembly` builds these
from the settings once, for the live worker, the backtest and the tests alike, which is what
makes their answers identical.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tariffmon.core.calendar import TradingCalendar
from tariffmon.core.gaps import SeedGap

MS = 1_000
MINUTE_MS = 60_000


@dataclass(frozen=True, slots=True)
class SymbolParams:
    """What the core needs to know about one symbol."""

    name: str
    calendar: TradingCalendar = field(default_factory=TradingCalendar.always)
    #: no tick for longer than this (plus the bar length) while "open" counts as closed
    staleness_ms: int = 300 * MS
    #: sharp-move thresholds as log returns, per window length in ms
    sharp_thresholds: dict[int, float] = field(default_factory=dict)
    #: past gaps from daily history: the gap baseline before the engine has seen its own
    gap_seed: tuple[SeedGap, ...] = ()


@dataclass(frozen=True, slots=True)
class EngineParams:
    """Horizons, volatility baseline, thresholds and lateness, all in ms or dimensionless."""

    symbols: dict[str, SymbolParams]
    horizons_ms: tuple[int, ...] = (60 * MS, 300 * MS, 900 * MS, 3_600 * MS)
    baseline_ms: int = 7_200 * MS
    lateness_ms: int = 6 * 3_600 * MS
    significance_z: float = 3.0
    #: minimum |log return| for significance (10 bp = 0.001)
    significance_ret: float = 0.001
    min_baseline_returns: int = 20
    #: the volatility grid never has fewer than this many steps in its baseline window
    min_baseline_steps: int = 20
    sharp_windows_ms: tuple[int, ...] = (60 * MS, 300 * MS, 900 * MS)
    sharp_z: float = 6.0
    #: a z-only sharp move must still move this fraction of the bp threshold (dead markets)
    sharp_z_floor_ratio: float = 0.5
    cooldown_ms: int = 900 * MS
    lookback_ms: int = 3_600 * MS
    max_attributed: int = 10
    #: how long the tariff headlines of a symbol stay known for attribution: far longer
    #: than the look-back, so that a headline measured late from Kafka (a backlog of days)
    #: still finds the others of its alerts' look-back (a few dozen a day: cheap)
    attribution_memory_ms: int = 7 * 86_400 * MS
    #: gap reactions: past gaps of the same kind needed for a z, used at most, and how far
    #: back before a gap's close the gaps seen in the ticks count
    gap_min_count: int = 20
    #: a gap reaction is significant from this |z| (against past gaps) on
    gap_significance_z: float = 2.5
    gap_max_count: int = 500
    gap_memory_ms: int = 7 * 86_400 * MS
    #: open-market headlines of a symbol less than this apart are confounded: the
    #: backtest's averages count their run once
    confound_window_ms: int = 900 * MS

    @property
    def max_horizon_ms(self) -> int:
        """The longest reaction horizon."""
        return max(self.horizons_ms)

    @property
    def retention_ms(self) -> int:
        """Tick history kept per symbol beyond the newest tick (before pending-request needs)."""
        return (
            self.max_horizon_ms + self.baseline_ms + self.lateness_ms + max(self.sharp_windows_ms)
        )
