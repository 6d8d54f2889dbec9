"""The terminal picture of ``tariffmon watch``: a state fed by contract messages, and its text.

Pure: no Kafka, no clock, no terminal.  :class:`WatchState` takes the messages the pipeline
publishes (ticks, classified headlines, reactions, sharp-move alerts) in whatever order they
are read, and :func:`render` turns it into lines of text:

* prices: last price per symbol, its event time, and the rolling log return over each sharp-move
  window (in basis points);
* the latest tariff headlines, each with its reaction per symbol and horizon: log return in
  basis points, z-score, ``*`` when significant, ``^`` when measured across a market gap;
* the latest sharp-move alerts with the tariff headlines they are attributed to.

Memory is bounded whatever the input: a few minutes of ticks per symbol, the newest
``max_headlines`` headlines and ``max_alerts`` alerts.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from tariffmon.contract import Alert, ClassifiedHeadline, Message, Reaction, Tick

#: basis points per unit of log return
BP = 10_000.0
#: width of one reaction cell, e.g. ``"  -45.2bp z  -5.1*^"``
CELL = 20
LEGEND = ("* significant   ^ gap: the market was closed at the headline, measured from the "
          "reopen   returns: log, in basis points")


def duration_label(seconds: int) -> str:
    """A horizon or window as people say it: ``60`` -> ``1m``, ``3600`` -> ``60m``."""
    if seconds % 60 == 0:
        return f"{seconds // 60}m"
    return f"{seconds}s"


def format_time(ts_ms: int) -> str:
    """Event time as ``YYYY-MM-DD HH:MM:SS`` (UTC)."""
    return dt.datetime.fromtimestamp(ts_ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def format_price(price: float) -> str:
    """A price with as many decimals as its size warrants (FX: 3, an index: 2)."""
    return f"{price:,.3f}" if abs(price) < 1_000 else f"{price:,.2f}"


def format_reaction_cell(r: Reaction | None) -> str:
    """One horizon of a reaction: return in bp, z, ``*`` significant, ``^`` gap."""
    if r is None:
        return f"{'pending':>{CELL - 2}}  "
    if r.z is None:
        z = "   n/a"
    elif abs(r.z) >= 1_000:
        z = " >+999" if r.z > 0 else " <-999"
    else:
        z = f"{r.z:+6.1f}"
    marks = ("*" if r.significant else " ") + ("^" if r.gap else " ")
    return f"{r.ret * BP:+8.1f}bp z{z}{marks}"


def truncate(text: str, width: int) -> str:
    """``text`` cut to ``width`` characters, marked with ``...`` when cut."""
    if width <= 0:
        return ""
    if len(text) <= width:
        return text
    return text[: max(0, width - 3)] + "..."


@dataclass
class HeadlineRow:
    """A tariff story as the view shows it: its first headline and the reactions to it."""

    id: str
    ts: int
    title: str
    direction: str
    tags: tuple[str, ...] = ()
    source: str = ""
    #: later headlines of the same story (from other feeds), not measured again
    duplicates: int = 0
    reactions: dict[tuple[str, int], Reaction] = field(default_factory=dict)


@dataclass
class Counts:
    """How many messages of each kind the state has seen."""

    ticks: int = 0
    headlines: int = 0
    tariff_headlines: int = 0
    reactions: int = 0
    alerts: int = 0
    #: records that could not be decoded (counted by the reader, see consumer.py)
    unreadable: int = 0
    #: ticks older than the newest of their symbol (left out of the price series)
    out_of_order_ticks: int = 0


class WatchState:
    """Everything the view shows, fed one message at a time, in any order."""

    def __init__(
        self,
        symbols: Sequence[str],
        horizons_s: Sequence[int],
        windows_s: Sequence[int],
        *,
        staleness_s: Mapping[str, int] | None = None,
        max_headlines: int = 8,
        max_alerts: int = 6,
    ) -> None:
        self.symbols = list(symbols)
        self.horizons_s = sorted(set(horizons_s))
        self.windows_s = sorted(set(windows_s))
        self.max_headlines = max_headlines
        self.max_alerts = max_alerts
        self.counts = Counts()
        self._staleness_ms = {s: 1_000 * v for s, v in (staleness_s or {}).items()}
        self._keep_ms = 1_000 * max(self.windows_s, default=0)
        self._ticks: dict[str, deque[tuple[int, float]]] = {}
        self._headlines: dict[str, HeadlineRow] = {}
        self._alerts: dict[str, Alert] = {}
        #: cluster id -> duplicates seen before the story's first headline arrived
        self._early_duplicates: dict[str, int] = {}

    # ------------------------------------------------------------------ feeding

    def apply(self, msg: Message) -> None:
        """Feed any of the four message kinds the view uses; others are ignored."""
        if isinstance(msg, Tick):
            self.on_tick(msg)
        elif isinstance(msg, ClassifiedHeadline):
            self.on_headline(msg)
        elif isinstance(msg, Reaction):
            self.on_reaction(msg)
        elif isinstance(msg, Alert):
            self.on_alert(msg)

    def apply_all(self, messages: Iterable[Message]) -> None:
        """Feed several messages in order."""
        for m in messages:
            self.apply(m)

    def on_tick(self, tick: Tick) -> None:
        """A price: kept for as long as the longest rolling window needs it."""
        self.counts.ticks += 1
        series = self._ticks.setdefault(tick.symbol, deque())
        if series and tick.ts < series[-1][0]:
            self.counts.out_of_order_ticks += 1
            return
        series.append((tick.ts, tick.price))
        cutoff = tick.ts - self._keep_ms - self._staleness_ms.get(tick.symbol, 0)
        # keep the newest tick at or before the cutoff: the reference of the longest window
        while len(series) > 1 and series[1][0] <= cutoff:
            series.popleft()

    def on_headline(self, ch: ClassifiedHeadline) -> None:
        """A classified headline: tariff stories become rows, repeats count on their story."""
        self.counts.headlines += 1
        if not ch.is_tariff:
            return
        self.counts.tariff_headlines += 1
        if ch.duplicate:
            story = self._headlines.get(ch.cluster_id)
            if story is not None:
                story.duplicates += 1
            else:
                self._early_duplicates[ch.cluster_id] = (
                    self._early_duplicates.get(ch.cluster_id, 0) + 1
                )
            return
        row = self._headlines.get(ch.id)
        if row is None:
            row = self._headlines[ch.id] = HeadlineRow(id=ch.id, ts=ch.ts, title=ch.title,
                                                       direction=ch.direction)
        # the classified record is authoritative over what a reaction carried
        row.ts, row.title, row.direction = ch.ts, ch.title, ch.direction
        row.tags, row.source = tuple(ch.tags), ch.source
        row.duplicates += self._early_duplicates.pop(ch.id, 0)
        self._prune_headlines()

    def on_reaction(self, r: Reaction) -> None:
        """A reaction: attached to its headline (a row is made from it if the headline is
        not here, e.g. it was published before the ``--since`` start)."""
        self.counts.reactions += 1
        row = self._headlines.get(r.headline_id)
        if row is None:
            row = self._headlines[r.headline_id] = HeadlineRow(
                id=r.headline_id, ts=r.t0, title=r.title or f"(headline {r.headline_id})",
                direction=r.direction, tags=tuple(r.tags),
            )
        row.reactions[(r.symbol, r.horizon_s)] = r
        self._prune_headlines()

    def on_alert(self, a: Alert) -> None:
        """A sharp-move alert; a re-issued one (same key) replaces the earlier version."""
        self.counts.alerts += 1
        self._alerts[a.key] = a
        if len(self._alerts) > self.max_alerts:
            keep = sorted(self._alerts.values(), key=lambda x: (x.ts, x.key), reverse=True)
            self._alerts = {x.key: x for x in keep[: self.max_alerts]}

    def _prune_headlines(self) -> None:
        if len(self._headlines) <= self.max_headlines:
            return
        keep = sorted(self._headlines.values(), key=lambda h: (h.ts, h.id), reverse=True)
        self._headlines = {h.id: h for h in keep[: self.max_headlines]}
        if len(self._early_duplicates) > 10 * self.max_headlines:
            self._early_duplicates.clear()  # stories long gone: their counts are moot

    # ------------------------------------------------------------------ reading

    def last_tick(self, symbol: str) -> tuple[int, float] | None:
        """(event time ms, price) of the newest tick of ``symbol``."""
        series = self._ticks.get(symbol)
        return series[-1] if series else None

    def rolling_return(self, symbol: str, window_s: int) -> float | None:
        """Log return from the last price at or before ``window_s`` ago to the newest one.

        None without a reference price, or when the reference is staler than the symbol's
        staleness bound (across a market close the "return" would span the gap).
        """
        series = self._ticks.get(symbol)
        if not series:
            return None
        t, p = series[-1]
        target = t - 1_000 * window_s
        ref: tuple[int, float] | None = None
        for item in series:
            if item[0] > target:
                break
            ref = item
        if ref is None or ref[0] < target - self._staleness_ms.get(symbol, 0):
            return None
        return math.log(p / ref[1])

    def newest_event_ms(self) -> int | None:
        """The newest event time among the ticks seen (None before the first tick)."""
        times = [s[-1][0] for s in self._ticks.values() if s]
        return max(times) if times else None

    def headlines(self) -> list[HeadlineRow]:
        """The tariff stories shown, latest first."""
        return sorted(self._headlines.values(), key=lambda h: (h.ts, h.id), reverse=True)

    def alerts(self) -> list[Alert]:
        """The sharp-move alerts shown, latest first."""
        return sorted(self._alerts.values(), key=lambda a: (a.ts, a.key), reverse=True)

    def symbols_seen(self) -> list[str]:
        """The configured symbols, then any other symbol that appeared in the messages."""
        extra: set[str] = set(self._ticks)
        for h in self._headlines.values():
            extra.update(s for s, _ in h.reactions)
        return self.symbols + sorted(extra - set(self.symbols))


# --------------------------------------------------------------------------- rendering


def render(state: WatchState, *, width: int = 120, refreshed_ms: int | None = None) -> list[str]:
    """The picture as lines of text no longer than ``width`` (titles are cut to fit).

    ``refreshed_ms`` (wall-clock time of the refresh) is shown in the header when given.
    """
    width = max(width, 60)
    lines = _header(state, refreshed_ms)
    lines += ["", *_prices(state)]
    lines += ["", *_headline_block(state, width)]
    lines += ["", *_alert_block(state, width)]
    return [truncate(line, width) for line in lines]


def _header(state: WatchState, refreshed_ms: int | None) -> list[str]:
    newest = state.newest_event_ms()
    parts = ["tariffmon watch",
             f"newest tick {format_time(newest)} UTC" if newest is not None else "no ticks yet"]
    if refreshed_ms is not None:
        parts.append(f"refreshed {format_time(refreshed_ms)} UTC")
    c = state.counts
    seen = (f"seen: {c.ticks:,} ticks, {c.headlines:,} headlines ({c.tariff_headlines:,} "
            f"tariff), {c.reactions:,} reactions, {c.alerts:,} alerts")
    if c.unreadable:
        seen += f", {c.unreadable:,} unreadable records (see the log)"
    return ["   ".join(parts), seen]


def _prices(state: WatchState) -> list[str]:
    head = f"{'PRICES':<10}{'last':>14}  {'at (UTC)':<19}" + "".join(
        f"{duration_label(w):>10}" for w in state.windows_s
    )
    lines = [head]
    for symbol in state.symbols_seen():
        last = state.last_tick(symbol)
        if last is None:
            lines.append(f"{symbol:<10}{'-':>14}  {'no tick yet':<19}")
            continue
        cells = ""
        for w in state.windows_s:
            r = state.rolling_return(symbol, w)
            cells += f"{'-':>10}" if r is None else f"{r * BP:>+8.1f}bp"
        lines.append(f"{symbol:<10}{format_price(last[1]):>14}  {format_time(last[0]):<19}{cells}")
    return lines


def _headline_block(state: WatchState, width: int) -> list[str]:
    rows = state.headlines()
    lines = [f"{'TARIFF HEADLINES, latest first':<30}" + "".join(
        f"{duration_label(h):>{CELL - 2}}  " for h in state.horizons_s
    )]
    if not rows:
        return [*lines, "  (no tariff headline yet)"]
    symbols = state.symbols_seen()
    # headlines of one closed market share one gap reaction (the same confound_id): it is
    # shown once, at the earliest of them, and the others point to it (docs/ARCHITECTURE.md)
    owner: dict[str, HeadlineRow] = {}
    for row in sorted(rows, key=lambda r: (r.ts, r.id)):
        for r in row.reactions.values():
            if r.confound_id is not None:
                owner.setdefault(r.confound_id, row)
    for row in rows:
        meta = f"{format_time(row.ts)} UTC  {row.direction}"
        if row.tags:
            meta += f"  [{', '.join(row.tags)}]"
        if row.source:
            meta += f"  {row.source}"
        if row.duplicates:
            meta += f"  (+{row.duplicates} more report{'s' if row.duplicates > 1 else ''})"
        lines.append(meta)
        lines.append("  " + truncate(row.title, width - 2))
        for symbol in symbols:
            measured = any(s == symbol for s, _ in row.reactions)
            if not measured and symbol not in state.symbols:
                continue  # a symbol no longer configured shows only where it was measured
            first = _shared_gap_owner(row, symbol, owner)
            if first is not None:
                lines.append(f"  {symbol:<28}same closed-market gap as the headline of "
                             f"{format_time(first.ts)} UTC: shown there, counted once")
                continue
            cells = "".join(
                format_reaction_cell(row.reactions.get((symbol, h))) for h in state.horizons_s
            )
            lines.append(f"  {symbol:<28}{cells}")
    lines.append(LEGEND)
    return lines


def _shared_gap_owner(row: HeadlineRow, symbol: str, owner: dict[str, HeadlineRow]
                      ) -> HeadlineRow | None:
    """The earlier headline whose gap reaction ``row`` shares on ``symbol``, if any."""
    for (sym, _), r in row.reactions.items():
        if sym == symbol and r.confound_id is not None:
            first = owner.get(r.confound_id)
            if first is not None and first.id != row.id:
                return first
    return None


def _alert_block(state: WatchState, width: int) -> list[str]:
    alerts = state.alerts()
    lines = ["SHARP MOVES, latest first"]
    if not alerts:
        return [*lines, "  (no sharp move yet)"]
    for a in alerts:
        z = "n/a" if a.z is None else f"{a.z:+.1f}"
        lines.append(
            f"{format_time(a.ts)} UTC  {a.symbol:<8}{duration_label(a.window_s):>4} "
            f"{a.direction:<5}{a.ret * BP:+8.1f}bp  z {z}  "
            f"{format_price(a.p_start)} -> {format_price(a.p_end)}"
        )
        if not a.headlines:
            lines.append("    no tariff headline in the look-back window")
        for h in a.headlines:
            lead = f"    <- {format_time(h.ts)} UTC  {h.direction}  "
            lines.append(lead + truncate(h.title, width - len(lead)))
    return lines
