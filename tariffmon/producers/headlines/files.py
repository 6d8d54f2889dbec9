"""Headlines from JSON-lines and CSV files (``title`` required; ``ts``, ``source``, ``url``,
``summary`` optional; ``ts`` as epoch ms/seconds or ISO-8601, UTC when no zone is given)."""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson

from tariffmon.contract import Headline
from tariffmon.producers.errors import SourceError
from tariffmon.producers.headlines.build import make_headline, parse_time_ms

log = logging.getLogger(__name__)

_TIME_FIELDS = ("ts", "published", "time", "date")


def _row_to_headline(row: Mapping[str, Any], default_source: str, fetched_ms: int,
                     where: str) -> Headline:
    title = row.get("title")
    if not isinstance(title, str):
        raise SourceError(default_source, "bad_row", f"{where}: title={title!r} is not text")
    raw_ts = next((row[f] for f in _TIME_FIELDS if row.get(f) not in (None, "")), None)
    published = parse_time_ms(raw_ts)
    if raw_ts is not None and published is None:
        log.warning("%s: unparseable time %r; using the fetch time", where, raw_ts)
    source = row.get("source") or default_source
    url, summary = row.get("url") or None, row.get("summary") or None
    return make_headline(title, str(source), published, fetched_ms,
                         url=str(url) if url else None, summary=str(summary) if summary else None)


def read_headline_file(path: str | Path, fetched_ms: int,
                       default_source: str | None = None) -> tuple[list[Headline], int]:
    """Headlines of a ``.jsonl``/``.json``/``.ndjson`` or ``.csv`` file, and the rows skipped.

    A bad row is logged and skipped; an unreadable file raises SourceError(kind="io").
    """
    p = Path(path)
    source = default_source or p.stem
    try:
        text = p.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise SourceError(source, "io", f"cannot read {p}: {exc}") from None
    rows: list[tuple[str, Any]] = []
    if p.suffix.lower() == ".csv":
        for n, row in enumerate(csv.DictReader(io.StringIO(text)), start=2):
            rows.append((f"{p}:{n}", row))
    else:
        for n, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                rows.append((f"{p}:{n}", orjson.loads(line)))
            except orjson.JSONDecodeError as exc:
                rows.append((f"{p}:{n}", exc))
    out: list[Headline] = []
    skipped = 0
    for where, row in rows:
        try:
            if not isinstance(row, dict):
                raise SourceError(source, "bad_row", f"{where}: not a JSON object ({row})")
            out.append(_row_to_headline(row, source, fetched_ms, where))
        except SourceError as exc:
            skipped += 1
            log.warning("headline file row skipped: %s", exc)
    return out, skipped
