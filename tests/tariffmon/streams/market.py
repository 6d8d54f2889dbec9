"""A small synthetic market for the stream tests: ticks, a tariff headline and its answer."""

from __future__ import annotations

import math
import random

from tariffmon.contract import Headline, Reaction, Tick
from tariffmon.settings import Settings
from tests.reference import reference

#: 2025-04-09 17:18 UTC, the 90-day pause
T0 = 1_744_219_080_000
PAUSE_TITLE = "Trump pauses reciprocal tariffs on Japan for 90 days"


def ticks(symbol: str, start: int, seconds: int, seed: int, jump_at: int | None = None
          ) -> list[Tick]:
    """One tick a second; a +3% climb over the minute after ``jump_at`` (ms), if given."""
    rnd = random.Random(seed)
    price = 145.0 if symbol == "USDJPY" else 33_000.0
    out = []
    for i in range(seconds):
        ts = start + i * 1_000
        drift = 0.0005 if jump_at is not None and jump_at < ts <= jump_at + 60_000 else 0.0
        price *= math.exp(rnd.gauss(0, 2e-5) + drift)
        out.append(Tick(symbol, ts, round(price, 4), "test"))
    return out


def pause_headline(hid: str = "h-pause", ts: int = T0, source: str = "test") -> Headline:
    """The tariff headline of the synthetic market."""
    return Headline(id=hid, ts=ts, source=source, title=PAUSE_TITLE)


def expected_reactions(settings: Settings, tick_list: list[Tick], headlines: list[Headline]
                       ) -> dict[str, Reaction]:
    """What the core says in event-time order (the backtest's answer, the reference)."""
    return reference(settings, tick_list, headlines).reactions
