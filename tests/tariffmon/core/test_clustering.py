"""Story clustering: one cluster per story across feeds, bounded by an event-time window."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tariffmon.core.clustering import (
    StoryClusterer,
    content_words,
    strip_outlet,
    title_similarity,
)
from tariffmon.core.text import normalize

MIN = 60_000
HOUR = 60 * MIN
T0 = 1_744_219_080_000  # 2025-04-09 17:18 UTC, the 90-day pause
WINDOW = 6 * HOUR
SIMILARITY = 0.6

REUTERS = "Trump pauses reciprocal tariffs for 90 days, except China - Reuters"
NIKKEI = "Trump announces 90-day pause on reciprocal tariffs, raises China levy | Nikkei Asia"
KYODO = "Trump suspends reciprocal tariffs for 90 days; China excluded"
OTHER = "Japan seeks exemption from US auto tariffs"


def _clusterer() -> StoryClusterer:
    return StoryClusterer(WINDOW, SIMILARITY)


def test_same_story_from_several_sources_is_one_cluster() -> None:
    c = _clusterer()
    assert c.assign("reuters-1", T0, normalize(REUTERS)) == ("reuters-1", False)
    assert c.assign("nikkei-7", T0 + 4 * MIN, normalize(NIKKEI)) == ("reuters-1", True)
    assert c.assign("kyodo-3", T0 + 30 * MIN, normalize(KYODO)) == ("reuters-1", True)


def test_outside_the_window_is_a_new_cluster() -> None:
    c = _clusterer()
    c.assign("reuters-1", T0, normalize(REUTERS))
    assert c.assign("nikkei-7", T0 + WINDOW + 1, normalize(NIKKEI)) == ("nikkei-7", False)


def test_window_edge_is_inclusive() -> None:
    c = _clusterer()
    c.assign("reuters-1", T0, normalize(REUTERS))
    assert c.assign("nikkei-7", T0 + WINDOW, normalize(NIKKEI)) == ("reuters-1", True)


def test_window_counts_from_the_story_s_first_member() -> None:
    # Each rewrite is within the window of the previous one, but the story must not chain
    # on for ever: the third is more than a window after the first.
    c = _clusterer()
    c.assign("a", T0, normalize(REUTERS))
    assert c.assign("b", T0 + 5 * HOUR, normalize(NIKKEI)) == ("a", True)
    assert c.assign("c", T0 + 7 * HOUR, normalize(KYODO))[1] is False


def test_different_stories_are_different_clusters() -> None:
    c = _clusterer()
    stories = [
        REUTERS,
        OTHER,
        "Japan's Nikkei slumps to 8-month low on Trump's tariff shock",
        "Akazawa meets Trump at White House for tariff talks",
        "Trump imposes 24% reciprocal tariffs on Japan",
    ]
    results = [c.assign(f"h{i}", T0 + i * MIN, normalize(s)) for i, s in enumerate(stories)]
    assert results == [(f"h{i}", False) for i in range(len(stories))]


def test_repeated_id_gets_its_original_answer() -> None:
    c = _clusterer()
    c.assign("reuters-1", T0, normalize(REUTERS))
    first = c.assign("nikkei-7", T0 + MIN, normalize(NIKKEI))
    # same id again, even with another title or time: idempotent
    assert c.assign("nikkei-7", T0 + 2 * MIN, normalize(NIKKEI)) == first == ("reuters-1", True)
    assert c.assign("reuters-1", T0 + 3 * MIN, normalize(OTHER)) == ("reuters-1", False)
    assert len(c) == 2


def test_a_late_copy_published_earlier_still_joins() -> None:
    c = _clusterer()
    c.assign("reuters-1", T0, normalize(REUTERS))
    assert c.assign("nikkei-7", T0 - 10 * MIN, normalize(NIKKEI)) == ("reuters-1", True)


def test_state_is_bounded_by_the_window() -> None:
    c = StoryClusterer(HOUR, SIMILARITY)
    for i in range(500):
        c.assign(f"h{i}", T0 + i * MIN, normalize(f"Story number {i} about tariffs and widget{i}"))
    # only the last hour (plus the newest) is remembered
    assert len(c) <= 62
    # evicted ids are forgotten; recent ones are remembered
    assert c.assign("h499", T0, normalize("anything")) == ("h499", False)


def test_zero_window_only_joins_at_the_same_instant() -> None:
    c = StoryClusterer(0, SIMILARITY)
    c.assign("a", T0, normalize(REUTERS))
    assert c.assign("b", T0, normalize(NIKKEI)) == ("a", True)
    assert c.assign("c", T0 + 1, normalize(KYODO)) == ("c", False)


@pytest.mark.parametrize(("window", "similarity"), [(-1, 0.6), (HOUR, 0.0), (HOUR, 1.5)])
def test_bad_parameters(window: int, similarity: float) -> None:
    with pytest.raises(ValueError):
        StoryClusterer(window, similarity)


def test_outlet_suffix_is_dropped() -> None:
    assert strip_outlet("trump pauses tariffs for 90 days - reuters") == (
        "trump pauses tariffs for 90 days"
    )
    assert strip_outlet("yen jumps | nikkei asia") == "yen jumps | nikkei asia"  # too short
    assert strip_outlet("us-japan talks resume in washington") == (
        "us-japan talks resume in washington"
    )


def test_content_words_are_stemmed_and_canonical() -> None:
    a = content_words(normalize("Nikkei sinks to eight-month low on tariff shock - Reuters"))
    b = content_words(normalize("Japan's Nikkei slumps to 8-month low on Trump's tariff shock"))
    assert {"8", "low", "nikkei", "fall", "tariff", "shock"} <= a & b
    assert "reuters" not in a
    assert title_similarity(a, b) >= SIMILARITY


def test_similarity_bounds() -> None:
    a = content_words(normalize(REUTERS))
    assert title_similarity(a, a) == pytest.approx(1.0)
    assert title_similarity(a, frozenset()) == 0.0
    assert title_similarity(a, content_words(normalize(OTHER))) < SIMILARITY


_TITLES = st.sampled_from([REUTERS, NIKKEI, KYODO, OTHER, "Yen jumps on tariff relief"])
_EVENTS = st.lists(
    st.tuples(st.integers(0, 20), st.integers(0, 12 * HOUR), _TITLES), max_size=30
)


@given(_EVENTS)
def test_assignments_are_a_pure_function_of_the_inputs(events: list[tuple[int, int, str]]) -> None:
    def run() -> list[tuple[str, bool]]:
        c = _clusterer()
        return [c.assign(f"id{i}", T0 + ts, normalize(title)) for i, ts, title in events]

    first, second = run(), run()
    assert first == second
    for (i, _, _), (cluster_id, duplicate) in zip(events, first, strict=True):
        assert duplicate == (cluster_id != f"id{i}")


def test_restore_rebuilds_state_after_a_restart() -> None:
    before = _clusterer()
    assigned = [
        ("reuters-1", T0, REUTERS, *before.assign("reuters-1", T0, normalize(REUTERS))),
        ("nikkei-7", T0 + MIN, NIKKEI, *before.assign("nikkei-7", T0 + MIN, normalize(NIKKEI))),
    ]
    after = _clusterer()
    for hid, ts, title, cluster_id, _ in assigned:
        after.restore(hid, ts, normalize(title), cluster_id)
    assert after.assign("nikkei-7", T0, normalize(NIKKEI)) == ("reuters-1", True)
    assert after.assign("kyodo-3", T0 + 2 * MIN, normalize(KYODO)) == ("reuters-1", True)
    assert after.assign("x", T0 + 3 * MIN, normalize(OTHER)) == ("x", False)


# The same announcement as two outlets word it: another verb, another word for the levy,
# another name for the US side.  Each pair is one story.
REWORDED_PAIRS = [
    ("US president announces sweeping reciprocal tariffs, 24% on imports from Japan",
     "Japan faces 24% 'reciprocal' duty as Washington unveils new tariff regime"),
    ("Trump unveils 25% levy on imported cars and parts",
     "US president announces 25% tariffs on car imports"),
    ("Washington declares 10% baseline duty on all imports",
     "Trump announces 10% baseline tariff on all imports"),
]


@pytest.mark.parametrize(("first", "second"), REWORDED_PAIRS)
def test_a_reworded_announcement_is_the_same_story(first: str, second: str) -> None:
    for a, b in ((first, second), (second, first)):
        c = _clusterer()
        c.assign("a", T0, normalize(a))
        assert c.assign("b", T0 + 2 * MIN, normalize(b)) == ("a", True), (a, b)


def test_announcements_of_different_measures_stay_apart() -> None:
    # the shared verbs and the levy's names must not merge different measures or actors
    c = _clusterer()
    stories = [
        "US president announces sweeping reciprocal tariffs, 24% on imports from Japan",
        "China announces 34% retaliatory tariff on all US goods",
        "Trump unveils 25% levy on imported cars and parts",
        "Japan announces support package for exporters hit by US duties",
        "Trump rolls back tariffs on smartphones and computers",
    ]
    results = [c.assign(f"h{i}", T0 + i * MIN, normalize(s)) for i, s in enumerate(stories)]
    assert results == [(f"h{i}", False) for i in range(len(stories))]
