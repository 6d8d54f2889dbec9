"""Read the pipeline's output topics with kafka-python and keep the terminal picture fresh.

``tariffmon watch`` is a read-only viewer: it assigns every partition of the classified,
reactions, alerts and ticks topics explicitly (no consumer group, so it never takes partitions
from anyone, commits nothing and leaves no group behind), seeks each partition to the chosen
start and follows the topics, feeding :class:`~tariffmon.watch.view.WatchState`.

Where reading starts (:class:`StartAt`): the beginning of the topics, an event time, or a span
before the newest tick on the topics (the default, 6 hours; the newest event of any topic when
there are no ticks).  The market's newest tick rather than the wall clock so that watching a
replay of a past week shows that week's last hours; and rather than the newest event of any
topic, so that one headline typed by hand "now" after a replay (``publish-headline`` with the
default time) does not move the picture to a time where the topics hold no ticks and no
reactions: everything after the start is read, that headline included.  On a live pipeline
all of these coincide.  Kafka timestamps are event times (docs/ARCHITECTURE.md), so
``offsets_for_times`` finds the offsets.  The ticks topic starts no earlier than the view
needs (the longest rolling window before each partition's newest tick), however far back the
other topics start: prices and rolling returns need minutes of ticks, not days.

A record that does not decode is counted (shown in the header) and logged with its topic,
partition and offset; it is not dead-lettered, as the viewer changes nothing on the broker.
"""

from __future__ import annotations

import contextlib
import logging
import math
import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal, TextIO

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError

from tariffmon.contract import Alert, ClassifiedHeadline, Limits, Message, Reaction, Tick
from tariffmon.errors import ContractError, TariffmonError
from tariffmon.kafkaclient import client_config, describe
from tariffmon.settings import Settings
from tariffmon.watch.view import WatchState, render

log = logging.getLogger(__name__)

#: ANSI: cursor home, clear the screen
CLEAR = "\x1b[H\x1b[2J"
#: unreadable records logged at WARNING before the rest go to DEBUG (all are counted)
MAX_WARNINGS = 20
#: how long to try reaching the broker before giving up with an error naming it
BOOTSTRAP_TIMEOUT_S = 10.0
#: how long to wait for the topics' partitions to be known (a topic just created by a
#: starting worker takes a moment to show in the metadata)
TOPIC_TIMEOUT_S = 5.0
#: slack on the tick history the view needs, beyond the longest window and staleness bound
TICK_MARGIN_MS = 60_000
#: records per poll: large, so that catching up on hours of ticks takes few round trips
MAX_POLL_RECORDS = 5_000


class WatchError(TariffmonError):
    """The watch cannot start: no broker, or the topics it reads do not exist."""


@dataclass(frozen=True, slots=True)
class StartAt:
    """Where reading starts.

    ``kind`` is ``beginning`` (``ms`` unused), ``time`` (the first event at or after epoch
    ms ``ms``) or ``before_newest`` (``ms`` milliseconds before the newest event on the
    watched topics).
    """

    kind: Literal["beginning", "time", "before_newest"]
    ms: int = 0


@dataclass(frozen=True, slots=True)
class WatchOptions:
    """How ``tariffmon watch`` reads and refreshes."""

    start: StartAt = StartAt("before_newest", 6 * 3_600_000)
    interval_s: float = 2.0
    #: ANSI clear before each picture; False appends the pictures one after another
    clear: bool = True
    #: stop after this many seconds (None: until Ctrl-C)
    duration_s: float | None = None
    #: stop after this many pictures (None: no limit)
    max_refreshes: int | None = None
    #: line width; None follows the terminal (120 when not a terminal)
    width: int | None = None
    max_headlines: int = 8
    max_alerts: int = 6


def watch_state(settings: Settings, options: WatchOptions) -> WatchState:
    """An empty state for the configured symbols, horizons and windows."""
    return WatchState(
        [s.name for s in settings.symbols],
        settings.engine.horizons_s,
        settings.engine.sharp_windows_s,
        staleness_s={s.name: s.staleness_s for s in settings.symbols},
        max_headlines=options.max_headlines,
        max_alerts=options.max_alerts,
    )


class TopicFollower:
    """A group-less kafka-python consumer of the four topics, decoding contract messages."""

    def __init__(self, settings: Settings, state: WatchState) -> None:
        t = settings.topics
        self.settings = settings
        self.state = state
        self.types: dict[str, type[Message]] = {
            t.classified: ClassifiedHeadline, t.reactions: Reaction, t.alerts: Alert,
            t.ticks: Tick,
        }
        self.limits = Limits(settings.symbol_names())
        self.consumer: Any = None
        self.parts: list[TopicPartition] = []
        #: end offsets when reading started: "caught up" once every position reaches them
        self.initial_end: dict[TopicPartition, int] = {}
        self._warned = 0

    # ------------------------------------------------------------------ start

    def open(self, start: StartAt) -> None:
        """Connect, assign every partition and seek each to ``start``."""
        try:
            self.consumer = KafkaConsumer(
                **client_config(self.settings.kafka),
                group_id=None,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                max_poll_records=MAX_POLL_RECORDS,
                bootstrap_timeout_ms=int(BOOTSTRAP_TIMEOUT_S * 1000),
            )
        except KafkaError as exc:
            raise WatchError(f"cannot reach Kafka at {describe(self.settings.kafka)}: {exc}"
                             ) from exc
        self.parts = self._partitions()
        self.consumer.assign(self.parts)
        begin = self.consumer.beginning_offsets(self.parts)
        end = self.consumer.end_offsets(self.parts)
        self.initial_end = dict(end)
        newest = self._newest_per_partition(begin, end)
        since: int | None
        if start.kind == "beginning":
            since = None
        elif start.kind == "time":
            since = start.ms
        else:
            ticks = self.settings.topics.ticks
            market = [ts for tp, ts in newest.items() if tp.topic == ticks]
            latest = max(market or newest.values(), default=None)
            since = None if latest is None else latest - start.ms
        self._seek(since, newest, end)

    def _partitions(self) -> list[TopicPartition]:
        deadline = time.monotonic() + TOPIC_TIMEOUT_S
        missing = list(self.types)
        parts: list[TopicPartition] = []
        while True:
            for topic in list(missing):
                ids = self.consumer.partitions_for_topic(topic)
                if ids:
                    parts += [TopicPartition(topic, p) for p in sorted(ids)]
                    missing.remove(topic)
            if not missing:
                return parts
            if time.monotonic() >= deadline:
                self.close()
                raise WatchError(
                    f"topics {missing} do not exist at {describe(self.settings.kafka)}: start "
                    "the worker (tariffmon worker) or a replay, which create them, or check "
                    "the topics.* settings"
                )
            time.sleep(0.2)

    def _newest_per_partition(
        self, begin: dict[TopicPartition, int], end: dict[TopicPartition, int]
    ) -> dict[TopicPartition, int]:
        """The Kafka (event) timestamp of the last record of each non-empty partition."""
        pending = {tp for tp in self.parts if end[tp] > begin[tp]}
        for tp in pending:
            self.consumer.seek(tp, end[tp] - 1)
        newest: dict[TopicPartition, int] = {}
        deadline = time.monotonic() + TOPIC_TIMEOUT_S
        while pending and time.monotonic() < deadline:
            for tp, records in self.consumer.poll(timeout_ms=200).items():
                for rec in records:
                    newest[tp] = max(newest.get(tp, rec.timestamp), rec.timestamp)
                pending.discard(tp)
            # a control record at the end (a transaction marker) yields nothing: skip it
            pending = {tp for tp in pending if self.consumer.position(tp) < end[tp]}
        return newest

    def _seek(self, since: int | None, newest: dict[TopicPartition, int],
              end: dict[TopicPartition, int]) -> None:
        ticks_topic = self.settings.topics.ticks
        tick_span = TICK_MARGIN_MS + 1_000 * (
            max(self.settings.engine.sharp_windows_s)
            + max(s.staleness_s for s in self.settings.symbols)
        )
        wanted: dict[TopicPartition, int] = {}
        for tp in self.parts:
            t = since
            if tp.topic == ticks_topic and tp in newest:
                t = max(t if t is not None else 0, newest[tp] - tick_span)
            if t is not None:
                wanted[tp] = max(0, t)
        found = self.consumer.offsets_for_times(wanted) if wanted else {}
        for tp in wanted:
            hit = found.get(tp)
            # no record at or after the time: nothing to show yet from this partition
            self.consumer.seek(tp, end[tp] if hit is None else hit.offset)
        if since is None:
            self.consumer.seek_to_beginning(*[tp for tp in self.parts if tp not in wanted])

    # ------------------------------------------------------------------ follow

    def caught_up(self) -> bool:
        """Whether every partition has been read up to its end offset at start."""
        return all(self.consumer.position(tp) >= off for tp, off in self.initial_end.items())

    def poll(self, timeout_s: float) -> int:
        """Read what arrived within ``timeout_s`` into the state; returns how many records."""
        batch = self.consumer.poll(timeout_ms=max(0, int(timeout_s * 1000)))
        n = 0
        for tp in sorted(batch, key=lambda p: (p.topic, p.partition)):
            cls = self.types[tp.topic]
            for rec in batch[tp]:
                n += 1
                try:
                    msg = cls.decode(rec.value or b"", self.limits)
                except ContractError as exc:
                    self._unreadable(rec, exc)
                    continue
                self.state.apply(msg)
        return n

    def _unreadable(self, rec: Any, exc: ContractError) -> None:
        self.state.counts.unreadable += 1
        self._warned += 1
        level = logging.WARNING if self._warned <= MAX_WARNINGS else logging.DEBUG
        log.log(level, "unreadable record %s[%d]@%d (%s): %s", rec.topic, rec.partition,
                rec.offset, exc.reason, exc)
        if self._warned == MAX_WARNINGS:
            log.warning("more unreadable records are only counted (in the header); -vv logs "
                        "each")

    def close(self) -> None:
        """Leave the broker; nothing to commit."""
        if self.consumer is not None:
            self.consumer.close(autocommit=False)
            self.consumer = None


# --------------------------------------------------------------------------- the loop


class _Stop:
    """Set by SIGINT/SIGTERM so that the loop ends after its current poll."""

    def __init__(self) -> None:
        self.flag = False

    def __call__(self) -> bool:
        return self.flag

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield  # signals only reach the main thread; a caller elsewhere stops otherwise
            return

        def handler(signum: int, frame: Any) -> None:
            self.flag = True

        previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for s, h in previous.items():
                signal.signal(s, h)


def run_watch(
    settings: Settings,
    options: WatchOptions,
    out: TextIO,
    *,
    clock: Callable[[], float] = time.monotonic,
    wall_clock: Callable[[], float] = time.time,
) -> int:
    """Follow the topics and draw the picture on ``out`` until the duration, the refresh
    count or Ctrl-C/SIGTERM ends it; returns the exit status (0)."""
    state = watch_state(settings, options)
    follower = TopicFollower(settings, state)
    stop = _Stop()
    with stop.installed():
        follower.open(options.start)
        try:
            _loop(follower, state, options, out, stop, clock, wall_clock)
        except BrokenPipeError:
            log.debug("output closed; stopping")  # e.g. piped into head: nothing to draw on
        finally:
            follower.close()
    return 0


def _loop(
    follower: TopicFollower,
    state: WatchState,
    options: WatchOptions,
    out: TextIO,
    stop: Callable[[], bool],
    clock: Callable[[], float],
    wall_clock: Callable[[], float],
) -> None:
    started = clock()
    end = math.inf if options.duration_s is None else started + options.duration_s
    next_draw = started + options.interval_s
    drawn = 0
    while not stop():
        now = clock()
        follower.poll(max(0.0, min(0.2, next_draw - now, end - now)))
        now = clock()
        # the first picture as soon as the backlog is read, then one per interval
        first_ready = drawn == 0 and follower.caught_up()
        if now >= next_draw or now >= end or first_ready:
            draw_picture(state, options, out, wall_clock())
            drawn += 1
            next_draw = now + options.interval_s
            if options.max_refreshes is not None and drawn >= options.max_refreshes:
                return
        if now >= end:
            return


def draw_picture(state: WatchState, options: WatchOptions, out: TextIO, now_s: float) -> None:
    """Write one picture: after an ANSI clear, or appended after a blank line."""
    width = options.width or shutil.get_terminal_size((120, 40)).columns
    lines = render(state, width=width, refreshed_ms=int(now_s * 1000))
    text = "\n".join(lines) + "\n"
    out.write(CLEAR + text if options.clear else text + "\n")
    out.flush()
