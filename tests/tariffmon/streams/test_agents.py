"""The classify agent under Faust's own test context (no broker involved)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest

from tariffmon.contract import ClassifiedHeadline, DeadLetter, ReactionRequest
from tariffmon.settings import load_settings
from tariffmon.streams import agents
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


class _ExitCalledError(Exception):
    """What the patched ``os._exit`` raises instead of ending the test process."""


def _delivery_outcome(monkeypatch: pytest.MonkeyPatch, settle: Any) -> list[int]:
    """The exit codes ``_exit_if_undelivered`` asks for on a future that ``settle`` settles."""
    codes: list[int] = []

    def fake_exit(code: int) -> None:
        codes.append(code)
        raise _ExitCalledError

    monkeypatch.setattr(agents.os, "_exit", fake_exit)

    async def run() -> None:
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        fut.add_done_callback(agents._exit_if_undelivered)
        settle(fut)
        with contextlib.suppress(_ExitCalledError):
            await asyncio.sleep(0)  # the callback runs at the loop's next turn

    asyncio.run(run())
    return codes


def test_an_output_kafka_refused_ends_the_worker_before_faust_can_commit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from kafka.errors import KafkaTimeoutError

    assert _delivery_outcome(
        monkeypatch, lambda f: f.set_exception(KafkaTimeoutError("expired"))
    ) == [agents.EXIT_SEND_FAILED]


def test_a_delivered_or_cancelled_output_does_not_end_the_worker(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert _delivery_outcome(monkeypatch, lambda f: f.set_result(None)) == []
    assert _delivery_outcome(monkeypatch, lambda f: f.cancel()) == []
