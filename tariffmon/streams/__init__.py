"""The faust-streaming workers: thin adapters that move Kafka records through the pure core.

Nothing here computes a reaction: :mod:`tariffmon.core` does, the same code the backtest runs.
This package decodes records (dead-lettering the bad ones), partitions the work by symbol,
rebuilds the core's state after a restart, and publishes the core's outputs.
"""
