"""RSS 2.0 and Atom feeds, parsed with feedparser from bytes fetched by a function passed in.

The live fetch is :func:`fetch_url`; the poller takes it as an argument, so tests feed it
recorded payloads instead.  The feeds polled by default are ``settings.DEFAULT_FEEDS``.
"""

from __future__ import annotations

import calendar
import logging
import re
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import feedparser

from tariffmon.contract import Headline
from tariffmon.core.text import normalize_cased
from tariffmon.producers.errors import SourceError
from tariffmon.producers.headlines.build import make_headline

log = logging.getLogger(__name__)

#: fetch(url) -> the feed document's bytes; raises on failure
FetchFeed = Callable[[str], bytes]

_NAMED = re.compile(r"^([A-Za-z0-9_.-]{1,64})=(.+)$")


@dataclass(frozen=True, slots=True)
class FeedSource:
    """A feed to poll: ``name`` (the headlines' source and the metric label) and its location."""

    name: str
    location: str

    @staticmethod
    def parse(spec: str) -> FeedSource:
        """``NAME=URL`` or a bare URL/path (named after the host, or the file's stem)."""
        m = _NAMED.match(spec.strip())
        if m and "://" not in m[1]:
            return FeedSource(m[1], m[2].strip())
        loc = spec.strip()
        parsed = urlparse(loc)
        if parsed.scheme in ("http", "https") and parsed.hostname:
            return FeedSource(parsed.hostname.removeprefix("www."), loc)
        return FeedSource(Path(parsed.path or loc).stem or "feed", loc)


def fetch_url(url: str, timeout_s: float = 20.0) -> bytes:
    """The real network call (http/https), or a local file for a path or ``file://`` URL."""
    parsed = urlparse(url)
    if parsed.scheme in ("", "file"):
        return Path(parsed.path if parsed.scheme else url).read_bytes()
    if parsed.scheme not in ("http", "https"):
        raise SourceError(url, "bad_url", f"unsupported scheme {parsed.scheme!r}")
    req = urllib.request.Request(url, headers={"User-Agent": "tariffmon/0.1 (+feed poller)"})
    with urllib.request.urlopen(req, timeout=timeout_s) as resp:
        data: bytes = resp.read(20 * 1024 * 1024)
        return data


def _entry_time_ms(entry: Any) -> int | None:
    for name in ("published_parsed", "updated_parsed", "created_parsed"):
        st = entry.get(name)
        if st:
            try:
                return calendar.timegm(st) * 1000  # feedparser normalises to UTC struct_time
            except (TypeError, ValueError, OverflowError):
                continue
    return None


def _without_outlet(title: str, entry: Any) -> str:
    """The title without a trailing " - Outlet" when the entry names that outlet itself.

    News aggregators (Google News) append the outlet to every title and name it again in the
    entry's ``<source>``: dropped, it neither reaches the classifier (an outlet called "The
    Japan Times" would count as the entity Japan) nor splits one wording into many ids.
    """
    src = entry.get("source")
    outlet = normalize_cased(src.get("title") or "") if isinstance(src, dict) else ""
    clean = normalize_cased(title or "")
    if outlet:
        for sep in (" - ", " | "):
            if clean.endswith(sep + outlet) and len(clean) > len(sep + outlet):
                return clean[: -len(sep + outlet)].rstrip()
    return title


def parse_feed(content: bytes, source: str, fetched_ms: int) -> tuple[list[Headline], int]:
    """Headlines of a feed document and the number of entries skipped as unusable.

    A document feedparser cannot read at all (no feed, no entries, and a parse error) raises
    SourceError(kind="parse"); a usable but malformed one is logged and its entries kept.
    """
    parsed = feedparser.parse(content)
    entries = list(parsed.get("entries") or [])
    bozo = parsed.get("bozo")
    if bozo and not entries:
        raise SourceError(source, "parse", f"not a readable feed: {parsed.get('bozo_exception')}")
    if not entries and not parsed.get("feed"):
        raise SourceError(source, "parse", "no feed element and no entries")
    if bozo:
        log.warning("feed %s is malformed but readable (%s); keeping %d entries",
                    source, parsed.get("bozo_exception"), len(entries))
    out: list[Headline] = []
    skipped = 0
    for entry in entries:
        try:
            out.append(make_headline(
                _without_outlet(entry.get("title", ""), entry), source, _entry_time_ms(entry),
                fetched_ms,
                url=entry.get("link"), summary=entry.get("summary"),
            ))
        except SourceError as exc:
            skipped += 1
            log.warning("feed %s: entry skipped: %s", source, exc)
    return out, skipped
