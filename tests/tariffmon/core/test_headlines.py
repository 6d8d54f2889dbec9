"""From headlines to classified headlines and reaction requests."""

from __future__ import annotations

import pytest

from tariffmon.contract import ClassifiedHeadline, Headline, ReactionRequest
from tariffmon.core.classifier import TariffClassifier
from tariffmon.core.clustering import StoryClusterer
from tariffmon.core.headlines import classify_headline, reaction_requests
from tariffmon.settings import packaged_file

T0 = 1_744_219_080_000  # 2025-04-09 17:18 UTC
MIN = 60_000
SYMBOLS = ["USDJPY", "N225"]


@pytest.fixture(scope="module")
def classifier() -> TariffClassifier:
    return TariffClassifier.from_file(packaged_file("classifier.yaml"), 3.0)


@pytest.fixture
def clusterer() -> StoryClusterer:
    return StoryClusterer(6 * 60 * MIN, 0.6)


def _headline(hid: str, ts: int, title: str, source: str = "reuters") -> Headline:
    return Headline(id=hid, ts=ts, source=source, title=title, url=f"https://example.test/{hid}")


def test_tariff_headline_is_classified_and_starts_a_story(
    classifier: TariffClassifier, clusterer: StoryClusterer
) -> None:
    h = _headline("r1", T0, "Trump pauses reciprocal tariffs for 90 days - Reuters")
    ch = classify_headline(h, classifier, clusterer)
    assert ch == ClassifiedHeadline(
        id="r1", ts=T0, source="reuters", title=h.title, is_tariff=True, score=4.5,
        tags=("reciprocal", "tariff", "trump"), direction="de-escalation", cluster_id="r1",
        duplicate=False, url=h.url,
    )
    assert ClassifiedHeadline.decode(ch.encode()) == ch


def test_later_copy_is_a_duplicate_and_asks_for_nothing(
    classifier: TariffClassifier, clusterer: StoryClusterer
) -> None:
    first = classify_headline(
        _headline("r1", T0, "Trump pauses reciprocal tariffs for 90 days - Reuters"),
        classifier, clusterer,
    )
    copy = classify_headline(
        _headline("n1", T0 + 3 * MIN, "Trump announces 90-day pause on reciprocal tariffs",
                  source="nikkei"),
        classifier, clusterer,
    )
    assert (copy.cluster_id, copy.duplicate) == ("r1", True)
    assert len(reaction_requests(first, SYMBOLS)) == 2
    assert reaction_requests(copy, SYMBOLS) == []


def test_non_tariff_headline_is_its_own_cluster_and_stays_out_of_the_clusterer(
    classifier: TariffClassifier, clusterer: StoryClusterer
) -> None:
    ch = classify_headline(
        _headline("x1", T0, "Yen weakens after BOJ holds rates"), classifier, clusterer
    )
    assert (ch.is_tariff, ch.cluster_id, ch.duplicate, ch.direction) == (
        False, "x1", False, "neutral"
    )
    assert len(clusterer) == 0
    assert reaction_requests(ch, SYMBOLS) == []


def test_a_non_tariff_rewrite_does_not_swallow_the_tariff_version(
    classifier: TariffClassifier, clusterer: StoryClusterer
) -> None:
    classify_headline(
        _headline("a", T0, "Japan's Nikkei slumps to 8-month low"), classifier, clusterer
    )
    ch = classify_headline(
        _headline("b", T0 + MIN, "Japan's Nikkei slumps to 8-month low on tariff shock"),
        classifier, clusterer,
    )
    assert (ch.is_tariff, ch.cluster_id, ch.duplicate) == (True, "b", False)


def test_reaction_requests_fan_out_per_symbol(
    classifier: TariffClassifier, clusterer: StoryClusterer
) -> None:
    ch = classify_headline(
        _headline("r2", T0, "Trump imposes 24% reciprocal tariffs on Japan"), classifier, clusterer
    )
    requests = reaction_requests(ch, ["USDJPY", "N225", "USDJPY"])
    assert requests == [
        ReactionRequest(
            headline_id="r2", cluster_id="r2", symbol=symbol, t0=T0, title=ch.title,
            tags=ch.tags, direction="escalation", score=ch.score,
        )
        for symbol in SYMBOLS
    ]
    assert [r.key for r in requests] == SYMBOLS
    for r in requests:
        assert ReactionRequest.decode(r.encode()) == r
