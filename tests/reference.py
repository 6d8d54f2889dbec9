"""The reference answer every stream and reliability test compares the worker with.

It is the offline backtest (:func:`tariffmon.backtest.runner.run_events`) over the same
events in event-time order, headlines first at equal times: the one driver of the core that
is not the worker, so a test compares the two drivers, never a third copy of the glue.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from tariffmon.backtest.runner import run_events
from tariffmon.contract import Alert, Headline, Reaction, Tick
from tariffmon.recorded import RecordedEvent
from tariffmon.settings import Settings


@dataclass
class Reference:
    """What the core says when driven in event-time order."""

    reactions: dict[str, Reaction] = field(default_factory=dict)
    #: the last value of each alert key (a late headline may re-issue an alert)
    alerts: dict[str, Alert] = field(default_factory=dict)


def events_in_time_order(ticks: Sequence[Tick], headlines: Sequence[Headline]
                         ) -> list[RecordedEvent]:
    """Ticks and headlines as recorded events, by event time, headlines first at ties."""
    events = [(h.ts, 0, i, RecordedEvent("headlines", h.key, h.ts, h.to_dict()))
              for i, h in enumerate(headlines)]
    events += [(t.ts, 1, i, RecordedEvent("ticks", t.key, t.ts, t.to_dict()))
               for i, t in enumerate(ticks)]
    events.sort(key=lambda e: (e[0], e[1], e[2]))
    return [e[3] for e in events]


def reference(settings: Settings, ticks: Sequence[Tick], headlines: Sequence[Headline]
              ) -> Reference:
    """The backtest's reactions and final alerts for these events."""
    result = run_events(events_in_time_order(ticks, headlines), settings)
    assert not result.invalid, result.invalid[:3]
    return Reference(reactions={r.key: r for r in result.reactions},
                     alerts={a.key: a for a in result.alerts})
