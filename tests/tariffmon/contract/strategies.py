"""Hypothesis strategies for every message type, and small builders of wire objects."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import strategies as st

from tariffmon.contract import (
    GAP_KINDS,
    MAX_TS_MS,
    MIN_TS_MS,
    Alert,
    AttributedHeadline,
    ClassifiedHeadline,
    DeadLetter,
    Headline,
    Limits,
    Message,
    Reaction,
    ReactionRequest,
    Tick,
)
from tariffmon.errors import ContractError

LIMITS = Limits(frozenset({"USDJPY", "N225"}))
TS = 1_743_624_000_000  # 2025-04-02T20:00:00Z

ts_ms = st.integers(min_value=MIN_TS_MS, max_value=MAX_TS_MS)
prices = st.floats(min_value=1e-6, max_value=1e9, allow_nan=False, allow_infinity=False)
numbers = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)
symbols = st.sampled_from(sorted(LIMITS.symbols))
directions = st.sampled_from(["escalation", "de-escalation", "neutral"])


def text(max_size: int) -> st.SearchStrategy[str]:
    """Non-blank text (any Unicode, including non-BMP and JSON-hostile characters)."""
    return st.text(min_size=1, max_size=max_size).filter(lambda s: s.strip() != "")


tags = st.lists(text(20), max_size=5).map(tuple)
optional_text = st.none() | text(50)

ticks = st.one_of(
    st.builds(Tick, symbol=symbols, ts=ts_ms, price=prices, source=text(20),
              kind=st.sampled_from(["trade", "quote"]),
              volume=st.none() | st.floats(min_value=0, max_value=1e12)),
    st.builds(Tick, symbol=symbols, ts=ts_ms, price=prices, source=text(20),
              kind=st.just("bar_close"), interval_s=st.sampled_from([60, 900, 3600, 86400])),
)
headlines = st.builds(
    Headline, id=text(40), ts=ts_ms, source=text(20), title=text(200), url=optional_text,
    summary=optional_text, ts_estimated=st.none() | st.booleans(),
)
classified = st.builds(
    ClassifiedHeadline, id=text(40), ts=ts_ms, source=text(20), title=text(200),
    is_tariff=st.booleans(), score=numbers, tags=tags, direction=directions,
    cluster_id=text(40), duplicate=st.booleans(), url=optional_text, summary=optional_text,
)
requests = st.builds(
    ReactionRequest, headline_id=text(40), cluster_id=text(40), symbol=symbols, t0=ts_ms,
    title=text(100), tags=tags, direction=directions, score=numbers,
)
reactions = st.builds(
    Reaction, headline_id=text(40), cluster_id=text(40), symbol=symbols,
    horizon_s=st.sampled_from([60, 300, 900, 3600]), t0=ts_ms, t_start=ts_ms, t1=ts_ms,
    p0=prices, p0_ts=ts_ms, p1=prices, p1_ts=ts_ms, ret=numbers, z=st.none() | numbers,
    sigma_1m=st.none() | numbers, max_up=numbers, max_down=numbers,
    significant=st.booleans(), gap=st.booleans(), n_ticks=st.integers(0, 10_000),
    flags=tags, direction=directions, tags=tags, title=st.text(max_size=100),
    gap_kind=st.none() | st.sampled_from(sorted(GAP_KINDS)), gap_ret=st.none() | numbers,
    gap_sigma=st.none() | numbers, gap_count=st.none() | st.integers(0, 10_000),
    gap_z=st.none() | numbers, confound_id=st.none() | text(40),
)
alerts = st.builds(
    Alert, symbol=symbols, window_s=st.sampled_from([60, 300, 900]), ts=ts_ms,
    start_ts=ts_ms, p_start=prices, p_end=prices, ret=numbers, z=st.none() | numbers,
    direction=st.sampled_from(["up", "down"]), threshold_bp=numbers, threshold_z=numbers,
    headlines=st.lists(
        st.builds(AttributedHeadline, id=text(40), ts=ts_ms, title=text(100),
                  direction=directions),
        max_size=5,
    ).map(tuple),
)
dead_letters = st.builds(
    DeadLetter, topic=text(50), partition=st.integers(0, 1000),
    offset=st.integers(0, 2**62), ts=st.integers(0, MAX_TS_MS), reason=text(30),
    error=text(200), stage=text(20), value_b64=st.text("ABCD+/=", max_size=40),
    value_size=st.integers(0, 10**9), key_b64=st.none() | st.text("ABCD", max_size=8),
    value_text=st.none() | st.text(max_size=50),
)

any_message = st.one_of(ticks, headlines, classified, requests, reactions, alerts,
                         dead_letters)


# --------------------------------------------------------------------------- wire objects

#: marks a field to leave out of a wire object built by :func:`tick_obj` / :func:`headline_obj`
DROP = object()


def tick_obj(**changes: Any) -> dict[str, Any]:
    """A valid tick's wire object with ``changes`` applied."""
    obj: dict[str, Any] = {"v": 1, "symbol": "USDJPY", "ts": TS, "price": 146.5, "source": "t"}
    obj.update(changes)
    return {k: v for k, v in obj.items() if v is not DROP}


def headline_obj(**changes: Any) -> dict[str, Any]:
    """A valid headline's wire object with ``changes`` applied."""
    obj: dict[str, Any] = {"v": 1, "id": "h1", "ts": TS, "source": "rss", "title": "Tariffs"}
    obj.update(changes)
    return {k: v for k, v in obj.items() if v is not DROP}


def rejects(cls: type[Message], obj: dict[str, Any], field: str, rule: str,
            limits: Limits = LIMITS) -> ContractError:
    """``cls.from_dict(obj)`` raises a ContractError naming ``field`` and ``rule``."""
    with pytest.raises(ContractError) as info:
        cls.from_dict(obj, limits)
    err = info.value
    assert err.field == field
    assert rule in err.rule
    assert str(err).startswith(f"{field}=")
    assert rule in str(err)
    return err


#: one valid message of each type, in wire form (every optional field set)
EXAMPLES: dict[type[Message], dict[str, Any]] = {
    Tick: Tick(symbol="USDJPY", ts=TS, price=146.5, source="t", kind="bar_close",
               volume=10.0, interval_s=60).to_dict(),
    Headline: Headline(id="h1", ts=TS, source="rss", title="Tariffs", url="https://x",
                       summary="s", ts_estimated=False).to_dict(),
    ClassifiedHeadline: ClassifiedHeadline(
        id="h1", ts=TS, source="rss", title="Tariffs", is_tariff=True, score=2.5,
        tags=("autos",), direction="escalation", cluster_id="h1", duplicate=False,
        url="https://x", summary="s", ts_estimated=True,
    ).to_dict(),
    ReactionRequest: ReactionRequest(
        headline_id="h1", cluster_id="h1", symbol="N225", t0=TS, title="Tariffs",
        tags=("autos",), direction="escalation", score=2.5,
    ).to_dict(),
    Reaction: Reaction(
        headline_id="h1", cluster_id="h1", symbol="USDJPY", horizon_s=300, t0=TS, t_start=TS,
        t1=TS + 300_000, p0=146.5, p0_ts=TS - 1_000, p1=146.9, p1_ts=TS + 299_000, ret=0.0027,
        z=3.1, sigma_1m=0.0004, max_up=0.003, max_down=-0.001, significant=True, gap=False,
        n_ticks=42, flags=("sparse_baseline",), direction="escalation", tags=("autos",),
        title="Tariffs", gap_kind="weekend", gap_ret=0.002, gap_sigma=0.004, gap_count=120,
        gap_z=0.5, confound_id="gap:USDJPY:1744405200000",
    ).to_dict(),
    Alert: Alert(
        symbol="USDJPY", window_s=60, ts=TS, start_ts=TS - 60_000, p_start=146.0,
        p_end=146.5, ret=0.0034, z=7.0, direction="up", threshold_bp=20.0, threshold_z=6.0,
        headlines=(AttributedHeadline(id="h1", ts=TS - 5_000, title="Tariffs",
                                      direction="escalation"),),
    ).to_dict(),
    DeadLetter: DeadLetter(
        topic="tariffmon.ticks", partition=0, offset=7, ts=TS, reason="bad_json",
        error="$='x': must be UTF-8 JSON", stage="react", value_b64="eA==", value_size=1,
        key_b64="eA==", value_text="x",
    ).to_dict(),
}
