"""The classify agent under Faust's own test context (no broker involved)."""

from __future__ import annotations

import asyncio

from tariffmon.contract import ClassifiedHeadline, DeadLetter, ReactionRequest
from tariffmon.settings import load_settings
from tariffmon.streams.agents import Pipeline
from tariffmon.streams.app import build_app
from tariffmon.streams.stages import OutRecord
from tests.tariffmon.streams.market import pause_headline


def test_classify_agent_yields_classified_headline_requests_and_dead_letters() -> None:
    settings = load_settings()
    app = build_app(settings)
    pipeline = Pipeline(settings, app, restore_clusters=False)
    topics = settings.topics

    async def scenario() -> tuple[list[OutRecord], list[OutRecord]]:
        async with pipeline.classify_agent.test_context(sink=[]) as agent:
            good = await agent.put(pause_headline().encode(), key=b"h-pause")
            bad = await agent.put(b"not json", key=b"x")
            return agent.results[good.message.offset], agent.results[bad.message.offset]

    good, bad = asyncio.run(scenario())
    # one request per configured symbol
    assert [r.topic for r in good] == [topics.classified] + [topics.requests] * len(
        settings.symbols)
    ch = ClassifiedHeadline.decode(good[0].value)
    assert ch.is_tariff and ch.id == "h-pause"
    assert {ReactionRequest.decode(r.value).symbol for r in good[1:]} == set(
        settings.symbol_names())
    assert all(r.key == ReactionRequest.decode(r.value).symbol for r in good[1:])
    [dead] = bad
    assert dead.topic == topics.deadletter
    assert DeadLetter.decode(dead.value).reason == "bad_json"
