"""The headline feeds a user gets without configuring any: recorded payloads of each, no network.

Each default feed has a payload recorded in its own format in ``feeds/`` (Google News RSS in
English and in Japanese, NHK World's RSS): the poller reads them through the same fetch seam
the live producer fills with :func:`~tariffmon.producers.headlines.feeds.fetch_url`, which is
itself tested against an HTTP server on loopback.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest
from prometheus_client import CollectorRegistry

from tariffmon.assembly import core_setup
from tariffmon.contract import Headline
from tariffmon.producers.headlines.build import headline_id, parse_time_ms
from tariffmon.producers.headlines.feeds import FeedSource, fetch_url, parse_feed
from tariffmon.producers.headlines.poller import HeadlinePoller, SeenIds, split_sources
from tariffmon.producers.metrics import ProducerMetrics
from tariffmon.settings import DEFAULT_FEEDS, ProducerSettings, load_settings

from .conftest import FEEDS

#: default feed name -> its recorded payload
RECORDED = {
    "googlenews-en": FEEDS / "googlenews_en.xml",
    "googlenews-ja": FEEDS / "googlenews_ja.xml",
    "nhkworld-en": FEEDS / "nhkworld_en.xml",
}
FETCHED = 1_744_221_000_000  # 2025-04-09T17:50:00Z, after every recorded entry


def ms(iso: str) -> int:
    return parse_time_ms(iso) or 0


def default_feeds() -> list[FeedSource]:
    # the code's defaults, not the settings file's: what a user without one gets
    feeds, files = split_sources(ProducerSettings().feeds)
    assert files == []
    return feeds


def recorded_fetch(url: str) -> bytes:
    """The fetch seam filled with the recorded payloads, keyed by the default feeds' URLs."""
    by_url = {f.location: RECORDED[f.name] for f in default_feeds()}
    return by_url[url].read_bytes()


def test_defaults_are_public_https_feeds_each_with_a_recorded_payload() -> None:
    feeds = default_feeds()
    assert [f.name for f in feeds] == sorted(RECORDED)
    assert all(f.location.startswith("https://") for f in feeds)
    # the shipped settings file states the same list
    assert load_settings().producer.feeds == list(DEFAULT_FEEDS)


def test_an_empty_list_turns_the_default_feeds_off() -> None:
    assert load_settings(producer={"feeds": []}).producer.feeds == []


@pytest.mark.parametrize("name", sorted(RECORDED))
def test_each_default_feed_polls_into_valid_headlines(name: str) -> None:
    registry = CollectorRegistry()
    out: list[Headline] = []
    feed = next(f for f in default_feeds() if f.name == name)
    poller = HeadlinePoller([feed], [], out.append, SeenIds(), ProducerMetrics(registry),
                            fetch=recorded_fetch, now_ms=lambda: FETCHED)
    n, failed = poller.poll_once()
    assert failed == [] and n == len(out) >= 3
    for h in out:
        assert Headline.decode(h.encode()) == h
        assert h.source == name and h.url and h.url.startswith("https://")
        assert h.ts_estimated is None and h.ts < FETCHED  # every recorded entry is dated
        assert h.id == headline_id(h.title, name)
    assert [h.ts for h in out] == sorted(h.ts for h in out)  # published oldest first
    assert registry.get_sample_value("tariffmon_source_errors_total",
                                      {"source": name, "kind": "bad_entry"}) is None
    # polling the same payload again publishes nothing
    assert poller.poll_once() == (0, [])


def test_google_news_titles_lose_the_outlet_the_entry_names() -> None:
    heads, skipped = parse_feed(RECORDED["googlenews-en"].read_bytes(), "googlenews-en",
                                FETCHED)
    assert skipped == 0
    assert {h.title: h.ts for h in heads} == {
        "Trump pauses reciprocal tariffs for 90 days, keeps 10% baseline duty":
            ms("2025-04-09T17:25:00Z"),
        "Yen slides, Nikkei futures jump as US tariff pause lifts risk appetite":
            ms("2025-04-09T17:41:00Z"),
        "Japan's Akazawa to head to Washington for tariff talks next week":
            ms("2025-04-09T09:12:00Z"),
        # only the outlet the entry names goes; a section name before it stays
        "Tariff turmoil: what the 24% levy means for Japanese carmakers - Opinion":
            ms("2025-04-09T06:30:00Z"),
        # no suffix to drop: the title is kept as it is
        "Bank of Japan keeps an eye on tariff fallout as bond yields swing":
            ms("2025-04-09T03:05:00Z"),
    }
    # the summary is the aggregator's link text, without markup
    assert all(h.summary and "<" not in h.summary for h in heads)


def test_japanese_titles_are_normalised_and_lose_their_outlet() -> None:
    heads, _ = parse_feed(RECORDED["googlenews-ja"].read_bytes(), "googlenews-ja", FETCHED)
    titles = [h.title for h in heads]
    # NFKC: full-width digits and percent signs, the ideographic space; the outlet
    # (full-width "ＮＨＫニュース" too) is dropped
    assert titles == [
        "米、日本に24%の相互関税 自動車にも25%追加関税",
        "石破首相「極めて遺憾」 日米交渉で関税見直し求める",
        "日経平均、一時1500円安 トランプ関税を嫌気",
    ]
    assert heads[0].ts == ms("2025-04-02T20:31:00Z")


def test_nhk_world_times_convert_from_tokyo_time() -> None:
    heads, _ = parse_feed(RECORDED["nhkworld-en"].read_bytes(), "nhkworld-en", FETCHED)
    by_title = {h.title: h for h in heads}
    ishiba = by_title['Ishiba calls new US tariffs "extremely regrettable", urges review']
    assert ishiba.ts == ms("2025-04-03T00:48:00Z")  # 09:48 JST
    assert ishiba.url == "https://www3.nhk.or.jp/nhkworld/en/news/20250403_05/"
    assert ishiba.summary and ishiba.summary.startswith("Japan's Prime Minister Ishiba")


def test_the_classifier_picks_the_tariff_stories_out_of_the_default_feeds() -> None:
    classifier = core_setup(load_settings()).classifier
    heads = [h for name, path in RECORDED.items()
             for h in parse_feed(path.read_bytes(), name, FETCHED)[0]]
    verdict = {h.title: classifier.classify(h.title) for h in heads}
    assert verdict["Trump pauses reciprocal tariffs for 90 days, keeps 10% baseline duty"].is_tariff
    assert verdict["Japan's Akazawa to head to Washington for tariff talks next week"].is_tariff
    assert verdict['Ishiba calls new US tariffs "extremely regrettable", urges review'].is_tariff
    assert not verdict["Cherry blossoms reach full bloom in Tokyo"].is_tariff


# ------------------------------------------------------------------ the live fetch, on loopback


class _FeedServer(BaseHTTPRequestHandler):
    """Serves the recorded NHK payload at NHK's path; records each request's User-Agent."""

    agents: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        type(self).agents.append(self.headers.get("User-Agent", ""))
        if self.path != "/nhkworld/en/news/feeds/":
            self.send_error(404)
            return
        body = RECORDED["nhkworld-en"].read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", "application/rss+xml; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def feed_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FeedServer)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_live_fetch_reads_a_feed_over_http(feed_server: str) -> None:
    _FeedServer.agents.clear()
    url = f"{feed_server}/nhkworld/en/news/feeds/"
    assert fetch_url(url, timeout_s=5) == RECORDED["nhkworld-en"].read_bytes()
    assert _FeedServer.agents and _FeedServer.agents[0].startswith("tariffmon/")
    registry = CollectorRegistry()
    out: list[Headline] = []
    poller = HeadlinePoller(
        [FeedSource("nhkworld-en", url), FeedSource("gone", f"{feed_server}/no/such/feed")],
        [], out.append, SeenIds(), ProducerMetrics(registry),
        fetch=lambda u: fetch_url(u, timeout_s=5), now_ms=lambda: FETCHED,
    )
    n, failed = poller.poll_once()
    assert n == len(out) == 3 and failed == ["gone"]
    assert registry.get_sample_value("tariffmon_source_errors_total",
                                      {"source": "gone", "kind": "http_4xx"}) == 1
