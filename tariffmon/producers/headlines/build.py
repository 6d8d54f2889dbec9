"""Build contract headlines: normalised text, UTC event time, a stable id.

The id is a hash of the source and the *canonical* title (:func:`tariffmon.core.text.normalize`:
entities decoded, NFKC, quotes and dashes unified, whitespace collapsed, case folded), so
re-polling a feed, or the same feed re-escaping a title, never yields a second headline.  The
published title keeps its case (:func:`~tariffmon.core.text.normalize_cased`).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from tariffmon.contract import (
    MAX_SOURCE_CHARS,
    MAX_SUMMARY_CHARS,
    MAX_TITLE_CHARS,
    MAX_URL_CHARS,
    MIN_TS_MS,
    Headline,
)
from tariffmon.core.text import normalize, normalize_cased
from tariffmon.producers.errors import SourceError

#: how far past the fetch time a publication time may lie before it counts as unusable
#: (clock skew only; and Kafka 4 rejects timestamps over an hour ahead by default)
FUTURE_TOLERANCE_MS = 600_000


def headline_id(title: str, source: str) -> str:
    """The stable id: a hash of the source and the canonical title."""
    digest = hashlib.sha256(f"{source.strip().casefold()}\x1f{normalize(title)}".encode())
    return "h" + digest.hexdigest()[:23]


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def make_headline(
    title: str,
    source: str,
    published_ms: int | None,
    fetched_ms: int,
    *,
    url: str | None = None,
    summary: str | None = None,
) -> Headline:
    """A headline; a missing, implausible or future publication time becomes the fetch time.

    Raises SourceError(kind="empty_title") when nothing is left of the title.
    """
    clean = normalize_cased(title or "")
    if not clean:
        raise SourceError(source, "empty_title", f"headline without a title (url={url!r})")
    clean = _clip(clean, MAX_TITLE_CHARS)
    estimated = (
        published_ms is None
        or published_ms < MIN_TS_MS
        or published_ms > fetched_ms + FUTURE_TOLERANCE_MS
    )
    ts = fetched_ms if estimated or published_ms is None else published_ms
    summ = _clip(normalize_cased(summary), MAX_SUMMARY_CHARS) if summary else None
    link = url.strip() if url and len(url.strip()) <= MAX_URL_CHARS and url.strip() else None
    src = _clip(source.strip(), MAX_SOURCE_CHARS)
    return Headline(
        id=headline_id(clean, src), ts=ts, source=src, title=clean, url=link,
        summary=summ or None, ts_estimated=True if estimated else None,
    )


def parse_time_ms(value: object) -> int | None:
    """Epoch ms from an int/float (ms, or seconds if small) or ISO-8601 text; None if unusable.

    Text without a zone is taken as UTC.
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        v = float(value)
        if v != v:  # NaN
            return None
        return int(v * 1000) if abs(v) < 1e11 else int(v)
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        if text.lstrip("-").replace(".", "", 1).isdigit():
            return parse_time_ms(float(text))
        try:
            dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return None
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        return int(dt.timestamp() * 1000)
    return None
