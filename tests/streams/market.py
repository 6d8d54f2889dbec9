"""A small synthetic market for the stream tests: ticks, a tariff headline and its answer."""

from __future__ import annotations

import math
import random

import numpy as np

from tariffmon.contract import Headline, Reaction, Tick
from tariffmon.core.engine import EngineOutput, ReactionEngine
from tariffmon.core.headlines import classify_headline, reaction_requests
from tariffmon.core.params import engine_params
from tariffmon.settings import Settings

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
    """What the core says, driven directly in event-time order (the reference answer)."""
    from tariffmon.core.classifier import TariffClassifier
    from tariffmon.core.clustering import StoryClusterer

    clf = TariffClassifier.from_file(settings.classifier.rules_file,
                                     settings.classifier.threshold)
    clu = StoryClusterer(settings.engine.cluster_window_s * 1000,
                         settings.engine.cluster_similarity)
    eng = ReactionEngine(engine_params(settings))
    out = EngineOutput()
    events: list[tuple[int, int, object]] = [(h.ts, 0, h) for h in headlines]
    events += [(t.ts, 1, t) for t in tick_list]
    events.sort(key=lambda e: (e[0], e[1]))
    for _, _, ev in events:
        if isinstance(ev, Headline):
            ch = classify_headline(ev, clf, clu)
            for req in reaction_requests(ch, [s.name for s in settings.symbols]):
                out.extend(eng.on_request(req))
        else:
            assert isinstance(ev, Tick)
            out.extend(eng.on_ticks(ev.symbol, np.array([ev.ts], dtype=np.int64),
                                    np.array([ev.price]), np.zeros(1, dtype=np.int64)))
    return {r.key: r for r in out.reactions}
