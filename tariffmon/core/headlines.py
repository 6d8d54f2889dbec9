"""From a raw headline to a classified one, and from a tariff story to per-symbol requests.

The Faust agent and the offline backtest both call these two functions, so a headline is
judged and fanned out the same way live and in replay.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from tariffmon.contract import ClassifiedHeadline, Headline, ReactionRequest
from tariffmon.core.classifier import TariffClassifier
from tariffmon.core.clustering import StoryClusterer
from tariffmon.core.text import normalize


def classify_headline(
    headline: Headline, classifier: TariffClassifier, clusterer: StoryClusterer
) -> ClassifiedHeadline:
    """Classify a headline's title and, if it is about tariffs, find its story cluster.

    Only tariff headlines enter the clusterer: a non-tariff rewrite of a story must not make
    the later tariff version a duplicate, and it would only fill the clusterer's memory.  A
    non-tariff headline is its own cluster.  The summary is not classified: feeds pad it with
    boilerplate that would drag unrelated stories over the threshold.
    """
    verdict = classifier.classify(headline.title)
    if verdict.is_tariff:
        cluster_id, duplicate = clusterer.assign(
            headline.id, headline.ts, normalize(headline.title)
        )
    else:
        cluster_id, duplicate = headline.id, False
    return ClassifiedHeadline(
        id=headline.id,
        ts=headline.ts,
        source=headline.source,
        title=headline.title,
        is_tariff=verdict.is_tariff,
        score=verdict.score,
        tags=verdict.tags,
        direction=verdict.direction,
        cluster_id=cluster_id,
        duplicate=duplicate,
        url=headline.url,
        summary=headline.summary,
        ts_estimated=headline.ts_estimated,
    )


def reaction_requests(ch: ClassifiedHeadline, symbols: Iterable[str]) -> list[ReactionRequest]:
    """One reaction request per symbol for a tariff headline that starts a story.

    Non-tariff headlines and later members of a story (``duplicate``) ask for nothing: the
    story is measured once, from its first headline.  Symbols keep their given order, each
    once.
    """
    if not ch.is_tariff or ch.duplicate:
        return []
    return [
        ReactionRequest(
            headline_id=ch.id,
            cluster_id=ch.cluster_id,
            symbol=symbol,
            t0=ch.ts,
            title=ch.title,
            tags=ch.tags,
            direction=ch.direction,
            score=ch.score,
        )
        for symbol in dict.fromkeys(symbols)
    ]


class HeadlineDesk:
    """Classification, story clustering and fan-out to the symbols, as one stateful object.

    The live worker's headline stage and the backtest hold one each; both call
    :meth:`process` for each headline in the order they meet them.
    """

    def __init__(
        self, classifier: TariffClassifier, clusterer: StoryClusterer, symbols: Sequence[str]
    ) -> None:
        self.classifier = classifier
        self.clusterer = clusterer
        self.symbols = tuple(dict.fromkeys(symbols))

    def process(self, headline: Headline) -> tuple[ClassifiedHeadline, list[ReactionRequest]]:
        """The classified headline and the reaction requests it asks for (maybe none)."""
        ch = classify_headline(headline, self.classifier, self.clusterer)
        return ch, reaction_requests(ch, self.symbols)

    def restore(self, classified: Iterable[ClassifiedHeadline]) -> int:
        """Re-learn story clusters from decisions already published; returns how many.

        The published decisions are restored as they were, not decided again: the rules may
        have changed since, or the tail read back may miss a story's first member.
        """
        n = 0
        for ch in classified:
            if ch.is_tariff:
                self.clusterer.restore(ch.id, ch.ts, normalize(ch.title), ch.cluster_id)
                n += 1
        return n
