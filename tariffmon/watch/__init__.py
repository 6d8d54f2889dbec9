"""``tariffmon watch``: the live picture in the terminal, for a user without Grafana.

:mod:`tariffmon.watch.view` is the pure part (a state fed by contract messages, rendered as
text); :mod:`tariffmon.watch.consumer` reads the topics with kafka-python and refreshes the
terminal.
"""

from tariffmon.watch.view import HeadlineRow, WatchState, render

__all__ = ["HeadlineRow", "WatchState", "render"]
