"""Headline feeds and files on shipped fixtures: parsing, times, stable ids, broken sources."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from tariffmon.contract import Headline
from tariffmon.producers.errors import SourceError
from tariffmon.producers.headlines.build import headline_id, make_headline, parse_time_ms
from tariffmon.producers.headlines.feeds import FeedSource, fetch_url, parse_feed
from tariffmon.producers.headlines.files import read_headline_file
from tariffmon.producers.headlines.poller import HeadlinePoller, SeenIds, split_sources
from tariffmon.producers.metrics import ProducerMetrics

from .conftest import FEEDS

FETCHED = 1_745_000_000_000  # 2025-04-18T18:13:20Z


def ms(iso: str) -> int:
    return parse_time_ms(iso) or 0


def test_rss2_entries() -> None:
    heads, skipped = parse_feed((FEEDS / "rss2.xml").read_bytes(), "wire", FETCHED)
    assert skipped == 1  # the entry with a blank title
    by_title = {h.title: h for h in heads}
    tariff = by_title['US announces 24% "reciprocal" tariff on Japanese imports']
    assert tariff.ts == ms("2025-04-02T20:10:00Z")  # -0400 converted to UTC
    assert tariff.ts_estimated is None
    assert tariff.url == "https://example.com/markets/1"
    assert tariff.summary == "The levy takes effect next week."
    assert "Bank of Japan keeps rates unchanged & signals patience" in by_title
    # no date, and an unparseable one: the fetch time, flagged
    for title in ("Japan's envoy to meet US officials on tariffs",
                  "Yen firms as tariff talks stall"):
        assert by_title[title].ts == FETCHED and by_title[title].ts_estimated is True
    for h in heads:
        assert Headline.decode(h.encode()) == h


def test_atom_entries_prefer_published_and_convert_zones() -> None:
    heads, _ = parse_feed((FEEDS / "atom.xml").read_bytes(), "policy", FETCHED)
    assert [(h.title, h.ts) for h in heads] == [
        ("US pauses reciprocal tariffs for 90 days", ms("2025-04-09T17:18:00Z")),
        ("Japan's tariff envoy arrives in Washington", ms("2025-04-16T11:05:00Z")),
    ]
    assert heads[0].summary == "Markets rally on the news."


def test_broken_feed_raises_a_parse_error() -> None:
    with pytest.raises(SourceError) as info:
        parse_feed((FEEDS / "broken.xml").read_bytes(), "broken", FETCHED)
    assert info.value.kind == "parse"


def test_jsonl_and_csv_files() -> None:
    heads, skipped = read_headline_file(FEEDS / "headlines.jsonl", FETCHED)
    assert skipped == 2  # a non-JSON line and a row without title
    assert [(h.source, h.ts, h.ts_estimated) for h in heads] == [
        ("sample-jsonl", ms("2025-04-02T21:30:00Z"), None),
        ("headlines", 1743660000000, None),
        ("headlines", FETCHED, True),
    ]
    later = ms("2025-05-01T00:00:00Z")
    heads, skipped = read_headline_file(FEEDS / "headlines.csv", later)
    assert skipped == 1
    assert [(h.title, h.ts, h.source) for h in heads] == [
        ("Japan, US to hold second round of tariff talks", ms("2025-04-30T12:00:00Z"),
         "sample-csv"),
        ("Yen weakens after trade deal hopes", 1745999000000, "headlines"),
    ]


def test_ids_are_stable_across_spellings_and_differ_by_source() -> None:
    a = make_headline("Japan&#8217;s  envoy — in Washington", "wire", None, FETCHED)
    b = make_headline("Japan's envoy - in Washington", "wire", 1, FETCHED + 5)
    assert a.id == b.id == headline_id("JAPAN'S ENVOY - IN WASHINGTON", "wire")
    assert a.title == "Japan's envoy - in Washington"
    assert make_headline("Japan's envoy - in Washington", "other", None, FETCHED).id != a.id


def test_future_publication_time_is_replaced_by_fetch_time() -> None:
    h = make_headline("Tariff news", "wire", FETCHED + 2 * 3_600_000, FETCHED)
    assert h.ts == FETCHED and h.ts_estimated is True


def test_feed_source_names() -> None:
    assert FeedSource.parse("https://www.example.com/rss") == FeedSource(
        "example.com", "https://www.example.com/rss")
    assert FeedSource.parse("nhk=https://example.jp/a.xml") == FeedSource(
        "nhk", "https://example.jp/a.xml")
    feeds, files = split_sources(["https://x.org/feed", "local/heads.csv", "a/feed.xml"])
    assert [f.name for f in feeds] == ["x.org", "feed"] and files == [Path("local/heads.csv")]


def test_poller_goes_on_past_a_broken_feed_and_never_republishes() -> None:
    registry = CollectorRegistry()
    out: list[Headline] = []
    feeds = [FeedSource("wire", str(FEEDS / "rss2.xml")),
             FeedSource("broken", str(FEEDS / "broken.xml")),
             FeedSource("missing", str(FEEDS / "does-not-exist.xml")),
             FeedSource("policy", str(FEEDS / "atom.xml"))]
    poller = HeadlinePoller(feeds, [FEEDS / "headlines.jsonl"], out.append, SeenIds(),
                            ProducerMetrics(registry), fetch=fetch_url, now_ms=lambda: FETCHED)
    n, failed = poller.poll_once()
    assert failed == ["broken", "missing"]
    assert n == len(out) == 4 + 2 + 3
    assert registry.get_sample_value("tariffmon_source_errors_total",
                                      {"source": "broken", "kind": "parse"}) == 1
    assert registry.get_sample_value("tariffmon_source_errors_total",
                                      {"source": "missing", "kind": "fetch"}) == 1
    assert registry.get_sample_value("tariffmon_source_errors_total",
                                      {"source": "wire", "kind": "bad_entry"}) == 1
    # a later poll (fetch time moved on) finds only known headlines
    poller.now_ms = lambda: FETCHED + 600_000
    assert poller.poll_once() == (0, ["broken", "missing"])
    # a restarted poller that read the ids back publishes nothing either
    seen = SeenIds(h.id for h in out)
    again: list[Headline] = []
    restarted = HeadlinePoller(feeds, [FEEDS / "headlines.jsonl"], again.append, seen,
                               fetch=fetch_url, now_ms=lambda: FETCHED + 900_000)
    assert restarted.poll_once()[0] == 0 and again == []


def test_seen_ids_are_bounded() -> None:
    seen = SeenIds(capacity=3)
    for i in range(5):
        seen.add(f"h{i}")
    assert len(seen) == 3 and "h0" not in seen and "h4" in seen


@pytest.mark.parametrize(("text", "expected"), [
    ("2025-04-02T20:10:00Z", 1743624600000), ("2025-04-02 20:10:00", 1743624600000),
    ("1743624600", 1743624600000), (1743624600000, 1743624600000), ("soon", None), ("", None),
])
def test_parse_time_ms(text: object, expected: int | None) -> None:
    assert parse_time_ms(text) == expected
