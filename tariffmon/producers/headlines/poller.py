"""Poll feeds and files for headlines and publish each new one once.

"New" means an id not published before: the ids of recent headlines on the topic are loaded at
start-up (:meth:`SeenIds.from_records`), so neither re-polling nor a restart republishes.  A
source that fails is logged and counted; the others go on.  With a backoff factory, a failed
source is left out of the polls until its own backoff (exponential, jittered, capped) has
elapsed, so a rate-limited or broken feed is not hit at every poll while the others are.
"""

from __future__ import annotations

import functools
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from tariffmon.contract import Headline, loads
from tariffmon.errors import ContractError
from tariffmon.producers.backoff import Backoff
from tariffmon.producers.errors import SourceError
from tariffmon.producers.headlines.feeds import FeedSource, FetchFeed, parse_feed
from tariffmon.producers.headlines.files import read_headline_file
from tariffmon.producers.kafka_producer import StopFlag
from tariffmon.producers.metrics import ProducerMetrics
from tariffmon.producers.ticks.runner import classify_error, wall_ms

log = logging.getLogger(__name__)

FILE_SUFFIXES = (".jsonl", ".ndjson", ".json", ".csv")


class SeenIds:
    """The ids already published, bounded (oldest forgotten first)."""

    def __init__(self, ids: Iterable[str] = (), capacity: int = 100_000) -> None:
        self.capacity = capacity
        self._ids: OrderedDict[str, None] = OrderedDict()
        for i in ids:
            self.add(i)

    def __contains__(self, item: object) -> bool:
        return item in self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, headline_id: str) -> None:
        """Remember an id."""
        self._ids[headline_id] = None
        self._ids.move_to_end(headline_id)
        while len(self._ids) > self.capacity:
            self._ids.popitem(last=False)

    @staticmethod
    def from_records(records: Iterable[Any], capacity: int = 100_000) -> SeenIds:
        """Ids of headline records read from the topic (keys, or the value's ``id``)."""
        seen = SeenIds(capacity=capacity)
        for rec in records:
            if rec.key:
                seen.add(rec.key.decode("utf-8", "replace"))
                continue
            try:
                hid = loads(rec.value).get("id")
            except ContractError as exc:
                log.warning("headlines topic %s[%d]@%d: unreadable, ignored for resume: %s",
                            rec.topic, rec.partition, rec.offset, exc)
                continue
            if isinstance(hid, str):
                seen.add(hid)
        return seen


class HeadlinePoller:
    """Fetches every source once per :meth:`poll_once` and publishes the unseen headlines.

    ``backoff`` makes a fresh :class:`Backoff` for a source that starts failing; while it
    runs, :meth:`poll_once` skips that source (``clock`` is monotonic seconds, injectable for
    tests).  Without it every poll fetches every source.
    """

    def __init__(
        self,
        feeds: Sequence[FeedSource],
        files: Sequence[Path],
        publish: Callable[[Headline], None],
        seen: SeenIds,
        metrics: ProducerMetrics | None = None,
        *,
        fetch: FetchFeed,
        now_ms: Callable[[], int] = wall_ms,
        backoff: Callable[[], Backoff] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.feeds = list(feeds)
        self.files = list(files)
        self.publish = publish
        self.seen = seen
        self.metrics = metrics
        self.fetch = fetch
        self.now_ms = now_ms
        self.backoff = backoff
        self.clock = clock
        self._backoffs: dict[str, Backoff] = {}
        #: source name -> clock time before which it is not fetched again
        self._retry_at: dict[str, float] = {}

    def backing_off(self) -> dict[str, float]:
        """Sources waiting out a backoff: name -> seconds left."""
        now = self.clock()
        return {name: at - now for name, at in self._retry_at.items() if at > now}

    def _failed(self, source: str) -> None:
        if self.backoff is None:
            return
        delay = self._backoffs.setdefault(source, self.backoff()).next_delay()
        self._retry_at[source] = self.clock() + delay
        log.warning("headline source %s: next attempt in %.1f s", source, delay)

    def _succeeded(self, source: str) -> None:
        self._retry_at.pop(source, None)
        b = self._backoffs.get(source)
        if b is not None:
            b.reset()

    def _fetch_one(self, source: str, load: Callable[[int], tuple[list[Headline], int]]
                   ) -> list[Headline] | None:
        now = self.now_ms()
        try:
            heads, skipped = load(now)
        except Exception as exc:  # noqa: BLE001 - a broken source must not stop the others
            kind = classify_error(exc)
            log.error("headline source %s failed (%s): %s", source, kind, exc)
            if self.metrics is not None:
                self.metrics.fetch_failed(source, kind)
            return None
        if self.metrics is not None:
            self.metrics.fetch_ok(source, now / 1000)
            if skipped:
                self.metrics.source_errors.labels(source=source, kind="bad_entry").inc(skipped)
        return heads

    def _load_feed(self, feed: FeedSource, now: int) -> tuple[list[Headline], int]:
        return parse_feed(self.fetch(feed.location), feed.name, now)

    def poll_once(self) -> tuple[int, list[str]]:
        """One pass over all sources: (headlines published, names of failed sources)."""
        published = 0
        failed: list[str] = []
        jobs: list[tuple[str, Callable[[int], tuple[list[Headline], int]]]] = []
        jobs += [(f.name, functools.partial(self._load_feed, f)) for f in self.feeds]
        jobs += [(p.stem, functools.partial(_load_file, p)) for p in self.files]
        waiting = self.backing_off()
        for name, load in jobs:
            if name in waiting:
                continue
            heads = self._fetch_one(name, load)
            if heads is None:
                failed.append(name)
                self._failed(name)
                continue
            self._succeeded(name)
            # oldest first, so the topic is in publication order for a fresh source
            for h in sorted(heads, key=lambda h: (h.ts, h.id)):
                if h.id in self.seen:
                    continue
                self.publish(h)
                self.seen.add(h.id)
                published += 1
        return published, failed

    def run(self, stop: StopFlag, interval_s: float) -> None:
        """Poll every ``interval_s`` until ``stop``."""
        while not stop.is_set():
            n, failed = self.poll_once()
            log.info("headlines: published %d; failed sources: %s; backing off: %s",
                     n, failed or "none", sorted(self.backing_off()) or "none")
            stop.wait(interval_s)


def _load_file(path: Path, now: int) -> tuple[list[Headline], int]:
    return read_headline_file(path, now)


def split_sources(specs: Iterable[str]) -> tuple[list[FeedSource], list[Path]]:
    """Feed specs and headline files: a local path ending in .jsonl/.csv/... is a file."""
    feeds: list[FeedSource] = []
    files: list[Path] = []
    for spec in specs:
        if "://" not in spec and spec.lower().endswith(FILE_SUFFIXES):
            files.append(Path(spec))
        else:
            feeds.append(FeedSource.parse(spec))
    return feeds, files


__all__ = ["HeadlinePoller", "SeenIds", "SourceError", "split_sources"]
