"""The worker's Prometheus metrics, fed by contract objects.

:class:`WorkerMetrics` owns every metric the stream worker exposes.  Its ``observe_*`` methods
take the contract's messages (:class:`~tariffmon.contract.Tick`, ``ClassifiedHeadline``,
``Reaction``, ``Alert``) so that the Faust adapters only forward what they already hold.  It
reads no clock: the caller passes the processing time where a lag is measured, which keeps
the class deterministic under test and in replays.

Label values are bounded by configuration (symbols, horizons, windows, classifier tags, feed
sources, topic names, dead-letter reason codes): a headline's text or id never becomes a
label.  Horizons and windows are labelled by their length in seconds as a string (``"300"``).

``tariffmon_market_open{symbol}`` is the one metric that depends on the wall clock: whether
each market is open *now* by its trading calendar (exchange holidays included), evaluated at
each scrape from a clock the caller hands to :meth:`WorkerMetrics.watch_market_hours`.  The
event time of the newest tick cannot tell: a feed that died on Friday would leave the
market "open" all weekend, and a dead feed on a trading morning "closed".  StaleFeed pages
only while it is 1.

Counters that alert rules watch with ``increase()`` are created at zero for the configured
symbols, horizons and windows (see :meth:`WorkerMetrics.from_settings`): a counter whose first
sample is already 1 would show no increase, and its first event would page nobody.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    start_http_server,
)

from tariffmon.contract import (
    DIRECTIONS,
    MOVE_DIRECTIONS,
    Alert,
    ClassifiedHeadline,
    Reaction,
    Tick,
)

if TYPE_CHECKING:
    from tariffmon.core.calendar import TradingCalendar
    from tariffmon.settings import Settings

PREFIX = "tariffmon"

#: Event lag (processing time minus event time): milliseconds live, hours in a backlog.
LAG_BUCKETS_S: tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
    900.0, 3_600.0, 21_600.0, 86_400.0,
)
#: Reaction log returns, symmetric around zero: 5 bp to 5 %.
RETURN_BUCKETS: tuple[float, ...] = (
    -0.05, -0.02, -0.01, -0.005, -0.002, -0.001, -0.0005, 0.0,
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05,
)
#: |log return| of reactions: 2 bp to 5 %.
ABS_RETURN_BUCKETS: tuple[float, ...] = (
    0.0002, 0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.02, 0.05,
)
#: |z| of reactions: the significance threshold (3 by default) sits in the middle.
ABS_Z_BUCKETS: tuple[float, ...] = (0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 6.0, 10.0, 20.0)

#: ``kind`` label values of the event-lag metrics.
LAG_KINDS: tuple[str, ...] = ("tick", "headline")


def seconds_label(seconds: int) -> str:
    """A horizon or window as a label value: its length in whole seconds (``"300"``)."""
    return str(int(seconds))


@dataclass(frozen=True, slots=True)
class MetricsServer:
    """A running /metrics HTTP endpoint; :meth:`close` stops it."""

    server: WSGIServer
    thread: threading.Thread

    @property
    def host(self) -> str:
        """The address the endpoint is bound to."""
        return str(self.server.server_address[0])

    @property
    def port(self) -> int:
        """The port the endpoint listens on (the real one when 0 was asked for)."""
        return int(self.server.server_address[1])

    def close(self) -> None:
        """Stop serving and release the port."""
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5.0)


def serve(registry: CollectorRegistry, host: str, port: int) -> MetricsServer:
    """Serve ``registry`` at ``http://host:port/metrics`` from a daemon thread.

    ``host`` is bound exactly as given (the settings default to loopback); port 0 picks a free
    port, readable from the returned :class:`MetricsServer`.
    """
    server, thread = start_http_server(port, addr=host, registry=registry)
    return MetricsServer(server, thread)


#: distinct headline sources given their own label value; the rest count as "other"
MAX_SOURCE_LABELS = 50
#: titles of the latest sharp move's attributed headlines carried in its info metric
MAX_ALERT_TITLES = 5
#: longest title carried in the info metric, in characters (the rest is cut with "...")
MAX_ALERT_TITLE_CHARS = 160
#: separator of the titles in the info metric's ``headlines`` label
TITLE_SEPARATOR = " | "


def alert_titles(a: Alert) -> str:
    """The attributed headline titles of ``a`` as one label value, most recent first.

    Bounded (:data:`MAX_ALERT_TITLES` titles of at most :data:`MAX_ALERT_TITLE_CHARS`
    characters), with the separator removed from inside titles so that a reader can split it.
    """
    titles = []
    for h in a.headlines[:MAX_ALERT_TITLES]:
        title = " ".join(h.title.replace(TITLE_SEPARATOR.strip(), "/").split())
        if len(title) > MAX_ALERT_TITLE_CHARS:
            title = title[: MAX_ALERT_TITLE_CHARS - 3].rstrip() + "..."
        titles.append(title)
    return TITLE_SEPARATOR.join(titles)


class WorkerMetrics:
    """Every metric of the stream worker, registered on ``registry``.

    ``symbols``, ``horizons_s`` and ``windows_s`` pre-create the counters that alerts watch,
    at zero; events for other values still count, from their first occurrence.
    """

    def __init__(
        self,
        registry: CollectorRegistry,
        *,
        symbols: Iterable[str] = (),
        horizons_s: Iterable[int] = (),
        windows_s: Iterable[int] = (),
        staleness_s: Mapping[str, int] | None = None,
    ) -> None:
        self._sources: set[str] = set()
        p = PREFIX
        r = registry
        # --- ticks and prices
        self.last_price = Gauge(
            f"{p}_last_price", "Last price seen per symbol, in the symbol's quote currency "
            "(JPY per USD for USDJPY, index points for N225).", ["symbol"], registry=r,
        )
        self.last_tick_timestamp = Gauge(
            f"{p}_last_tick_timestamp_seconds",
            "Event time of the newest tick per symbol, Unix seconds.", ["symbol"], registry=r,
        )
        self.ticks = Counter(
            f"{p}_ticks", "Ticks processed per symbol.", ["symbol"], registry=r,
        )
        self.event_lag = Histogram(
            f"{p}_event_lag_seconds",
            "Processing time minus event time of each input, by input kind.",
            ["kind"], buckets=LAG_BUCKETS_S, registry=r,
        )
        self.latest_event_lag = Gauge(
            f"{p}_latest_event_lag_seconds",
            "Processing time minus event time of the last input processed, by input kind.",
            ["kind"], registry=r,
        )
        self.rolling_return = Gauge(
            f"{p}_rolling_return",
            "Log return over the trailing window ending at the newest tick (ratio).",
            ["symbol", "window"], registry=r,
        )
        self.market_open = Gauge(
            f"{p}_market_open",
            "1 while the symbol's market is open now by its trading calendar (exchange "
            "holidays and half days included), 0 while it is closed.", ["symbol"], registry=r,
        )
        # --- headlines
        self.headlines = Counter(
            f"{p}_headlines", "Headlines classified, by source.", ["source"], registry=r,
        )
        self.tariff_headlines = Counter(
            f"{p}_tariff_headlines",
            "Tariff headlines (first of their story only), by direction.",
            ["direction"], registry=r,
        )
        self.tariff_headline_tags = Counter(
            f"{p}_tariff_headline_tags",
            "Tags of tariff headlines (first of their story only); a headline counts once per "
            "tag.", ["tag", "direction"], registry=r,
        )
        self.duplicate_headlines = Counter(
            f"{p}_duplicate_tariff_headlines",
            "Tariff headlines recognised as a story already seen (not measured again).",
            registry=r,
        )
        self.last_tariff_headline_timestamp = Gauge(
            f"{p}_last_tariff_headline_timestamp_seconds",
            "Event time of the newest tariff headline, Unix seconds.", registry=r,
        )
        # --- reactions
        self.reaction_return = Histogram(
            f"{p}_reaction_return",
            "Log return of each reaction to a tariff headline (ratio).",
            ["symbol", "horizon"], buckets=RETURN_BUCKETS, registry=r,
        )
        # The signed histogram has negative buckets, so the exposition leaves out its _sum:
        # the absolute one carries the mean size of the move per horizon.
        self.reaction_abs_return = Histogram(
            f"{p}_reaction_abs_return",
            "Absolute log return of each reaction to a tariff headline (ratio).",
            ["symbol", "horizon"], buckets=ABS_RETURN_BUCKETS, registry=r,
        )
        self.reaction_abs_z = Histogram(
            f"{p}_reaction_abs_z",
            "Absolute z-score of each reaction (reactions without a baseline are left out).",
            ["symbol", "horizon"], buckets=ABS_Z_BUCKETS, registry=r,
        )
        self.reactions = Counter(
            f"{p}_reactions", "Reactions measured.", ["symbol", "horizon"], registry=r,
        )
        self.reactions_pending = Gauge(
            f"{p}_reactions_pending",
            "Reactions (headline, symbol, horizon) waiting for a tick past their horizon; "
            "pending is not lost: newer ticks complete them, after a restart too.",
            registry=r,
        )
        self.significant_reactions = Counter(
            f"{p}_significant_reactions",
            "Significant reactions, by the headline's direction.",
            ["symbol", "horizon", "direction"], registry=r,
        )
        self.gap_reactions = Counter(
            f"{p}_gap_reactions",
            "Reactions to headlines that came while the market was closed (measured from the "
            "reopen).", ["symbol", "horizon"], registry=r,
        )
        self.latest_reaction_return = Gauge(
            f"{p}_latest_reaction_return",
            "Log return of the reaction to the latest tariff headline (ratio).",
            ["symbol", "horizon"], registry=r,
        )
        self.latest_reaction_z = Gauge(
            f"{p}_latest_reaction_z",
            "z-score of the reaction to the latest tariff headline (NaN without a baseline).",
            ["symbol", "horizon"], registry=r,
        )
        self.latest_reaction_significant = Gauge(
            f"{p}_latest_reaction_significant",
            "1 when the reaction to the latest tariff headline is significant, else 0.",
            ["symbol", "horizon"], registry=r,
        )
        self.latest_reaction_headline_timestamp = Gauge(
            f"{p}_latest_reaction_headline_timestamp_seconds",
            "Event time of the headline whose reaction the latest_reaction gauges show.",
            ["symbol", "horizon"], registry=r,
        )
        # --- sharp moves
        self.sharp_moves = Counter(
            f"{p}_sharp_moves", "Sharp-move alerts, by window and move direction.",
            ["symbol", "window", "direction"], registry=r,
        )
        self.last_sharp_move_timestamp = Gauge(
            f"{p}_last_sharp_move_timestamp_seconds",
            "Event time of the latest sharp move, Unix seconds.", ["symbol", "window"],
            registry=r,
        )
        self.last_sharp_move_return = Gauge(
            f"{p}_last_sharp_move_return",
            "Log return of the latest sharp move over its window (ratio).",
            ["symbol", "window"], registry=r,
        )
        # The only way for Prometheus to hand text to Alertmanager is a label, so the titles
        # of the latest move's headlines ride on an info series; one series per symbol and
        # window (each new alert replaces the previous label set), so the cardinality stays
        # bounded by the configuration, never by the number of headlines.
        self.last_sharp_move_headlines = Info(
            f"{p}_last_sharp_move_headlines",
            "Titles of the tariff headlines attributed to the latest sharp move (most recent "
            f"first, at most {MAX_ALERT_TITLES}, separated by '{TITLE_SEPARATOR.strip()}'), "
            "and how many there were.", ["symbol", "window"], registry=r,
        )
        # --- alerting thresholds, from the settings (the rules compare against these)
        self.feed_stale_after = Gauge(
            f"{p}_feed_stale_after_seconds",
            "A symbol's feed is stale when its newest tick is older than this while its "
            "market is open (symbols[].staleness_s).", ["symbol"], registry=r,
        )
        for symbol, seconds in sorted((staleness_s or {}).items()):
            self.feed_stale_after.labels(symbol=symbol).set(seconds)
        # --- bad and late input
        self.dead_letters = Counter(
            f"{p}_dead_letters", "Inputs sent to the dead-letter topic, by source topic and "
            "reason code.", ["topic", "reason"], registry=r,
        )
        self.late_inputs = Counter(
            f"{p}_late_inputs", "Inputs that came later than the configured lateness bound "
            "(event time), by kind.", ["kind"], registry=r,
        )
        #: t0 (ms) of the headline currently shown per (symbol, horizon label)
        self._latest_t0: dict[tuple[str, str], int] = {}
        #: newest event times (ms) seen, so that late inputs never rewind a "last" gauge
        self._last_tick_ms: dict[str, int] = {}
        self._last_sharp_ms: dict[tuple[str, str], int] = {}
        self._last_tariff_headline_ms: int | None = None
        self._preinitialise(tuple(symbols), tuple(horizons_s), tuple(windows_s))

    @classmethod
    def from_settings(
        cls, registry: CollectorRegistry, settings: Settings,
        clock: Callable[[], float] | None = None,
    ) -> WorkerMetrics:
        """Metrics with the alert-watched counters pre-created for the configured values.

        With ``clock`` (Unix seconds, e.g. ``time.time``), ``tariffmon_market_open`` follows
        each configured symbol's calendar as :mod:`tariffmon.assembly` builds it.
        """
        metrics = cls(
            registry,
            symbols=sorted(settings.symbol_names()),
            horizons_s=settings.engine.horizons_s,
            windows_s=settings.engine.sharp_windows_s,
            staleness_s={s.name: s.staleness_s for s in settings.symbols},
        )
        if clock is not None:
            from tariffmon.assembly import trading_calendar

            metrics.watch_market_hours(
                {s.name: trading_calendar(s) for s in settings.symbols}, clock
            )
        return metrics

    def watch_market_hours(
        self, calendars: Mapping[str, TradingCalendar], clock: Callable[[], float]
    ) -> None:
        """Export ``tariffmon_market_open{symbol}``, read at each scrape from ``clock``."""
        for symbol, calendar in calendars.items():
            def is_open(cal: TradingCalendar = calendar) -> float:
                return 1.0 if cal.is_open(int(clock() * 1000)) else 0.0

            self.market_open.labels(symbol=symbol).set_function(is_open)

    def _preinitialise(
        self, symbols: tuple[str, ...], horizons_s: tuple[int, ...], windows_s: tuple[int, ...]
    ) -> None:
        for kind in LAG_KINDS:
            self.event_lag.labels(kind=kind)
        for direction in sorted(DIRECTIONS):
            self.tariff_headlines.labels(direction=direction)
        for symbol in symbols:
            self.ticks.labels(symbol=symbol)
            for h in horizons_s:
                horizon = seconds_label(h)
                self.reactions.labels(symbol=symbol, horizon=horizon)
                self.gap_reactions.labels(symbol=symbol, horizon=horizon)
                self.reaction_return.labels(symbol=symbol, horizon=horizon)
                self.reaction_abs_return.labels(symbol=symbol, horizon=horizon)
                self.reaction_abs_z.labels(symbol=symbol, horizon=horizon)
                for direction in sorted(DIRECTIONS):
                    self.significant_reactions.labels(
                        symbol=symbol, horizon=horizon, direction=direction
                    )
            for w in windows_s:
                for move in sorted(MOVE_DIRECTIONS):
                    self.sharp_moves.labels(
                        symbol=symbol, window=seconds_label(w), direction=move
                    )

    # ------------------------------------------------------------------ observations

    def observe_tick(self, tick: Tick, processed_at_s: float) -> None:
        """A tick was processed at ``processed_at_s`` (Unix seconds, the caller's clock)."""
        self.observe_ticks(tick.symbol, 1, tick, processed_at_s)

    def observe_ticks(self, symbol: str, count: int, last: Tick, processed_at_s: float,
                      oldest: Tick | None = None) -> None:
        """A batch of ``count`` ticks of ``symbol`` was processed, ``last`` the batch's last
        and ``oldest`` its first (``None``: the same as ``last``).

        Per-tick metric updates would cost more than the processing at replay speed, so the
        workers report once per batch: the counter grows by ``count``, the event-lag
        histogram gets one observation per batch, of its oldest tick (the worst lag: a bulk
        fetch of a backlog may hold an hour of ticks and end with one from a second ago),
        and the latest-lag gauge follows its newest.
        """
        self.ticks.labels(symbol=symbol).inc(count)
        # Ticks of one symbol can arrive out of order within the lateness bound: the gauges
        # follow the newest event time, so a late tick never rewinds "last price".
        if last.ts >= self._last_tick_ms.get(symbol, last.ts):
            self._last_tick_ms[symbol] = last.ts
            self.last_tick_timestamp.labels(symbol=symbol).set(last.ts / 1000.0)
            self.last_price.labels(symbol=symbol).set(last.price)
        first = last if oldest is None else oldest
        self.event_lag.labels(kind="tick").observe(processed_at_s - first.ts / 1000.0)
        self.latest_event_lag.labels(kind="tick").set(processed_at_s - last.ts / 1000.0)

    def observe_rolling_return(self, symbol: str, window_s: int, ret: float) -> None:
        """The log return of ``symbol`` over the trailing ``window_s`` seconds."""
        self.rolling_return.labels(symbol=symbol, window=seconds_label(window_s)).set(ret)

    def observe_headline(
        self, ch: ClassifiedHeadline, processed_at_s: float | None = None
    ) -> None:
        """A headline was classified; ``processed_at_s`` given, its event lag is recorded."""
        self.headlines.labels(source=self._source_label(ch.source)).inc()
        if processed_at_s is not None:
            self._observe_lag("headline", processed_at_s - ch.ts / 1000.0)
        if not ch.is_tariff:
            return
        if ch.duplicate:
            self.duplicate_headlines.inc()
            return
        self.tariff_headlines.labels(direction=ch.direction).inc()
        for tag in sorted(set(ch.tags)):
            self.tariff_headline_tags.labels(tag=tag, direction=ch.direction).inc()
        if self._last_tariff_headline_ms is None or ch.ts > self._last_tariff_headline_ms:
            self._last_tariff_headline_ms = ch.ts
            self.last_tariff_headline_timestamp.set(ch.ts / 1000.0)

    def _source_label(self, source: str) -> str:
        """The source as a label, bounded: sources are free text from feeds and the CLI."""
        if source in self._sources:
            return source
        if len(self._sources) < MAX_SOURCE_LABELS:
            self._sources.add(source)
            return source
        return "other"

    def observe_reaction(self, r: Reaction) -> None:
        """A reaction was measured: histograms, counters and the latest-reaction gauges."""
        horizon = seconds_label(r.horizon_s)
        labels = {"symbol": r.symbol, "horizon": horizon}
        self.reactions.labels(**labels).inc()
        self.reaction_return.labels(**labels).observe(r.ret)
        self.reaction_abs_return.labels(**labels).observe(abs(r.ret))
        if r.z is not None:
            self.reaction_abs_z.labels(**labels).observe(abs(r.z))
        if r.significant:
            self.significant_reactions.labels(**labels, direction=r.direction).inc()
        if r.gap:
            self.gap_reactions.labels(**labels).inc()
        # Horizons complete out of headline order (a 1m reaction to a new headline before the
        # 60m one to an older headline): only a headline at least as recent replaces the one
        # shown.
        key = (r.symbol, horizon)
        if r.t0 >= self._latest_t0.get(key, -1):
            self._latest_t0[key] = r.t0
            self.latest_reaction_return.labels(**labels).set(r.ret)
            self.latest_reaction_z.labels(**labels).set(math.nan if r.z is None else r.z)
            self.latest_reaction_significant.labels(**labels).set(1.0 if r.significant else 0.0)
            self.latest_reaction_headline_timestamp.labels(**labels).set(r.t0 / 1000.0)

    def observe_alert(self, a: Alert) -> None:
        """A sharp-move alert was raised."""
        window = seconds_label(a.window_s)
        self.sharp_moves.labels(symbol=a.symbol, window=window, direction=a.direction).inc()
        key = (a.symbol, window)
        if a.ts >= self._last_sharp_ms.get(key, a.ts):
            self._last_sharp_ms[key] = a.ts
            self.last_sharp_move_timestamp.labels(symbol=a.symbol, window=window).set(a.ts / 1000.0)
            self.last_sharp_move_return.labels(symbol=a.symbol, window=window).set(a.ret)
            self._set_headlines(a)

    def observe_alert_attribution(self, a: Alert) -> None:
        """An alert already raised was re-issued with a completed attribution (a late
        headline): the info metric shows the new titles if it is the latest move."""
        if a.ts == self._last_sharp_ms.get((a.symbol, seconds_label(a.window_s))):
            self._set_headlines(a)

    def _set_headlines(self, a: Alert) -> None:
        window = seconds_label(a.window_s)
        self.last_sharp_move_headlines.labels(symbol=a.symbol, window=window).info(
            {"headlines": alert_titles(a), "headline_count": str(len(a.headlines))}
        )

    def dead_letter(self, topic: str, reason: str) -> None:
        """An input from ``topic`` went to the dead-letter topic with ``reason`` (a code)."""
        self.dead_letters.labels(topic=topic, reason=reason).inc()

    def late_input(self, kind: str) -> None:
        """An input of ``kind`` (``tick``, ``headline``, ``request``) came too late to use."""
        self.late_inputs.labels(kind=kind).inc()

    def _observe_lag(self, kind: str, lag_s: float) -> None:
        self.event_lag.labels(kind=kind).observe(lag_s)
        self.latest_event_lag.labels(kind=kind).set(lag_s)
