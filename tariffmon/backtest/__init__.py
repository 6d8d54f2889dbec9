"""The offline backtest: the pure core over recorded-stream files, reports and charts.

:func:`run_backtest` drives the same core calls as the live worker (no Kafka, no Java);
:mod:`tariffmon.backtest.report` writes reactions, alerts, the summary table and the HTML
report; :mod:`tariffmon.backtest.charts` draws the event-study and price-timeline charts.
"""

from tariffmon.backtest.runner import (
    BacktestCore,
    BacktestCounts,
    BacktestError,
    BacktestResult,
    IncompleteInputError,
    InvalidInput,
    PriceSeries,
    backtest_reactions,
    run_backtest,
    run_events,
)

__all__ = [
    "BacktestCore",
    "BacktestCounts",
    "BacktestError",
    "BacktestResult",
    "IncompleteInputError",
    "InvalidInput",
    "PriceSeries",
    "backtest_reactions",
    "run_backtest",
    "run_events",
]
