"""The event-time reaction engine: ticks and reaction requests in, reactions and alerts out.

One :class:`ReactionEngine` holds, per symbol, the recent ticks, the pending (headline,
horizon) pairs, the headline ids already seen, the tariff headlines of the attribution
look-back and the sharp-move cool-downs.  It is a plain object with no I/O: the Faust agent
feeds it from Kafka, the backtest from files.

Determinism: a reaction is computed only once a tick newer than its horizon's end exists, from
ticks alone, so its value and its single emission do not depend on when its headline arrived,
as long as that was within ``lateness`` (event time of the symbol's newest tick minus ``t0``);
a later headline is rejected as ``too_late``.  Ticks must not go back in time per symbol
(a tick older than the newest is rejected as ``out_of_order``).  Sharp-move alerts depend on
ticks alone; their attribution lists the tariff headlines known when the alert fires, and a
headline that arrives later within its look-back re-emits the alert under the same key with
the complete list, so the last value per key is the same for every interleaving.
"""

from __future__ import annotations

import dataclasses
import heapq
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from tariffmon.contract import Alert, AttributedHeadline, Reaction, ReactionRequest, Tick
from tariffmon.core.gaps import Gap, GapBaseline, GapHistory, gap_kind
from tariffmon.core.params import EngineParams, SymbolParams
from tariffmon.core.reaction import baseline_volatility, gap_baseline, horizon_start, measure
from tariffmon.core.series import F64, I64, TickSeries
from tariffmon.core.sharpmove import SharpMove, SharpMoveDetector
from tariffmon.core.volatility import MINUTE_MS


@dataclass(frozen=True, slots=True)
class Rejection:
    """An input the engine refused, with a bounded reason code and a readable detail."""

    kind: str  # "tick" | "request"
    symbol: str
    reason: str
    detail: str
    #: for ticks: the position of the rejected tick within the batch given to the engine
    index: int = -1
    #: for requests: the request refused (it may be measurable elsewhere, e.g. from Kafka)
    request: ReactionRequest | None = None


@dataclass(slots=True)
class EngineOutput:
    """What one call to the engine produced."""

    reactions: list[Reaction] = field(default_factory=list)
    #: new sharp moves
    alerts: list[Alert] = field(default_factory=list)
    #: alerts already emitted, again under the same key with a completed attribution (a
    #: headline that arrived later joined their look-back): a new version, not a new move
    reissued: list[Alert] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)

    def extend(self, other: EngineOutput) -> None:
        """Append another output's items."""
        self.reactions.extend(other.reactions)
        self.alerts.extend(other.alerts)
        self.reissued.extend(other.reissued)
        self.rejected.extend(other.rejected)

    def all_alerts(self) -> list[Alert]:
        """New and re-issued alerts in emission order within each kind (new first)."""
        return self.alerts + self.reissued

    def __bool__(self) -> bool:
        return bool(self.reactions or self.alerts or self.reissued or self.rejected)


class SymbolState:
    """Everything the engine keeps for one symbol."""

    __slots__ = (
        "_baselines",
        "_gap_bases",
        "_pending",
        "_pending_t0",
        "_popped",
        "_remaining",
        "_seq",
        "alerts",
        "detector",
        "gaps",
        "known",
        "params",
        "seen",
        "series",
        "sym",
    )

    def __init__(self, sym: SymbolParams, params: EngineParams) -> None:
        self.sym = sym
        self.params = params
        self.series = TickSeries()
        self.detector = SharpMoveDetector(sym, params)
        #: (not-ready-before, seq, request, horizon) — a heap of pending reactions
        self._pending: list[tuple[int, int, ReactionRequest, int]] = []
        #: (t0, seq) of the pending entries, a heap whose popped seqs are skipped lazily: the
        #: oldest pending t0 is asked for at every batch of ticks, live at every tick
        self._pending_t0: list[tuple[int, int]] = []
        self._popped: set[int] = set()
        self._seq = 0
        #: volatility baseline per pending headline, shared by its horizons
        self._baselines: dict[str, tuple[float, int]] = {}
        #: past-gap baseline per pending gap headline, shared by its horizons
        self._gap_bases: dict[str, GapBaseline | None] = {}
        #: the close-to-reopen gaps seen in the ticks, and the seed from daily history
        self.gaps = GapHistory(sym.gap_seed)
        self._remaining: dict[str, int] = {}
        #: headline id -> t0 of every request accepted (dedupe), evicted by age
        self.seen: dict[str, int] = {}
        #: accepted tariff requests by t0 (attribution), evicted by age
        self.known: list[ReactionRequest] = []
        #: recently emitted alerts (re-emitted when a late headline joins their look-back)
        self.alerts: list[Alert] = []

    @property
    def pending_count(self) -> int:
        """Reactions waiting for ticks."""
        return len(self._pending)

    # ----------------------------------------------------------------- requests

    def add_request(self, req: ReactionRequest) -> EngineOutput:
        """Accept a tariff headline for this symbol; emit what is already computable."""
        out = EngineOutput()
        if req.headline_id in self.seen:
            return out  # a repeated headline id is ignored, by contract
        latest = self.series.latest_ts
        if latest is not None and latest - req.t0 > self.params.lateness_ms:
            # seen all the same: whether it is then measured elsewhere (on ticks read back
            # from Kafka) or not at all, a repeat of the id is a repeat, as on time; and it
            # joins the attribution of the alerts still held, as it would have on time
            self.seen[req.headline_id] = req.t0
            self._know(req)
            out.reissued.extend(self._reattribute(req))
            out.rejected.append(
                Rejection(
                    "request", req.symbol, "too_late",
                    f"headline {req.headline_id} at t0={req.t0} arrived when ticks were at "
                    f"{latest}, beyond the lateness bound of {self.params.lateness_ms} ms",
                    request=req,
                )
            )
            return out
        self.seen[req.headline_id] = req.t0
        self._know(req)
        self._remaining[req.headline_id] = len(self.params.horizons_ms)
        for h in self.params.horizons_ms:
            self._push(req.t0 + h, req, h)
        done, dropped = self._drain_ready()
        out.reactions.extend(done)
        out.rejected.extend(dropped)
        out.reissued.extend(self._reattribute(req))
        return out

    def _know(self, req: ReactionRequest) -> None:
        self.known.append(req)
        self.known.sort(key=lambda r: (r.t0, r.headline_id))

    def _push(self, key: int, req: ReactionRequest, horizon: int) -> None:
        self._seq += 1
        heapq.heappush(self._pending, (key, self._seq, req, horizon))
        heapq.heappush(self._pending_t0, (req.t0, self._seq))

    def _oldest_pending_t0(self) -> int | None:
        heap, popped = self._pending_t0, self._popped
        while heap and heap[0][1] in popped:
            popped.discard(heapq.heappop(heap)[1])
        return heap[0][0] if heap else None

    def _drain_ready(self) -> tuple[list[Reaction], list[Rejection]]:
        latest = self.series.latest_ts
        if latest is None:
            return [], []
        done: list[Reaction] = []
        rejected: list[Rejection] = []
        retry: list[tuple[int, ReactionRequest, int]] = []
        while self._pending and self._pending[0][0] < latest:
            _, seq, req, h = heapq.heappop(self._pending)
            self._popped.add(seq)
            start = horizon_start(self.series, req.t0, self.sym)
            if start is None and latest > req.t0:
                # ticks after t0 but none at or before it in memory: no p0 will ever come,
                # and waiting would hold back eviction for good
                rejected.append(self._drop(req, latest))
                continue
            if start is None:
                retry.append((latest, req, h))
                continue
            hid = req.headline_id
            base = self._baselines.get(hid)
            if base is None:
                # the newest tick is past t0, so the baseline is final: compute it once for
                # all horizons of this headline
                base = self._baselines[hid] = baseline_volatility(
                    self.series, req.t0, start, self.params
                )
            if hid not in self._gap_bases:
                self._gap_bases[hid] = gap_baseline(self.series, start, self.sym, self.gaps,
                                                    self.params)
            r = measure(self.series, req, h, start, self.params, base, self._gap_bases[hid])
            if r is None:
                retry.append((start.t_start + h, req, h))
            else:
                done.append(r)
                left = self._remaining.get(hid, 1) - 1
                if left <= 0:
                    self._remaining.pop(hid, None)
                    self._baselines.pop(hid, None)
                    self._gap_bases.pop(hid, None)
                else:
                    self._remaining[hid] = left
        for key, req, h in retry:
            self._push(key, req, h)
        done.sort(key=lambda r: (r.t0, r.headline_id, r.horizon_s))
        return done, rejected

    def _drop(self, req: ReactionRequest, latest: int) -> Rejection:
        hid = req.headline_id
        self._pending = [e for e in self._pending if e[2].headline_id != hid]
        heapq.heapify(self._pending)
        self._pending_t0 = [(e[2].t0, e[1]) for e in self._pending]
        heapq.heapify(self._pending_t0)
        self._popped.clear()
        self._remaining.pop(hid, None)
        self._baselines.pop(hid, None)
        self._gap_bases.pop(hid, None)
        oldest = self.series.oldest_ts
        return Rejection(
            "request", req.symbol, "no_price_before_t0",
            f"headline {hid} at t0={req.t0}: the oldest tick held is at {oldest} "
            f"(newest {latest})", request=req,
        )

    # ----------------------------------------------------------------- ticks

    def add_ticks(self, ts: I64, price: F64, interval: I64) -> EngineOutput:
        """Append a batch of ticks (sorted by time); emit reactions and alerts they complete."""
        out = EngineOutput()
        latest = self.series.latest_ts
        floor = np.maximum.accumulate(ts)
        ok = ts >= floor  # not older than any earlier tick of the batch
        if latest is not None:
            ok &= ts >= latest
        if not ok.all():
            for i in np.nonzero(~ok)[0]:
                out.rejected.append(
                    Rejection("tick", self.sym.name, "out_of_order",
                              f"tick at {int(ts[i])} is older than an earlier tick", int(i))
                )
            ts, price, interval = ts[ok], price[ok], interval[ok]
        if len(ts) == 0:
            return out
        self._record_gaps(ts, price, interval)
        first_new = len(self.series)
        self.series.append(ts, price, interval)
        moves = self.detector.detect(self.series, first_new)
        out.alerts.extend(self._alert(m) for m in moves)
        done, dropped = self._drain_ready()
        out.reactions.extend(done)
        out.rejected.extend(dropped)
        self._evict()
        return out

    def _record_gaps(self, ts: I64, price: F64, interval: I64) -> None:
        """Remember the gaps between consecutive ticks, the held newest and the batch's.

        A gap is where a headline would get a gap reaction for staleness: the next tick more
        than the staleness bound plus the bar length after the previous one (every close of
        the calendar longer than that is one too).  Consecutive pairs only, so any batching
        of the same ticks gives the same gaps.
        """
        if len(self.series):
            ts = np.concatenate((self.series.ts[-1:], ts))
            price = np.concatenate((self.series.price[-1:], price))
            interval = np.concatenate((self.series.interval[-1:], interval))
        if len(ts) < 2:
            return
        limit = self.sym.staleness_ms + interval[:-1]
        for i in np.nonzero(np.diff(ts) > limit)[0]:
            a, b = int(ts[i]), int(ts[i + 1])
            ret = float(np.log(price[i + 1] / price[i]))
            self.gaps.add(Gap(gap_kind(self.sym.calendar, a, b), a, b, ret))

    def _gap_anchor(self) -> int | None:
        """The oldest gap close a request still acceptable or pending may measure from."""
        latest = self.series.latest_ts
        if latest is None:
            return None
        i = self.series.index_at_or_before(latest - self.params.lateness_ms)
        anchor = int(self.series.ts[i]) if i >= 0 else None
        oldest_t0 = self._oldest_pending_t0()
        if oldest_t0 is not None:
            j = self.series.index_at_or_before(oldest_t0)
            if j >= 0:
                t = int(self.series.ts[j])
                anchor = t if anchor is None else min(anchor, t)
        return anchor

    def _attributed(self, ts: int) -> tuple[AttributedHeadline, ...]:
        lo = ts - self.params.lookback_ms
        picked = [r for r in self.known if lo <= r.t0 <= ts]
        picked.sort(key=lambda r: (r.t0, r.headline_id), reverse=True)
        return tuple(
            AttributedHeadline(id=r.headline_id, ts=r.t0, title=r.title, direction=r.direction)
            for r in picked[: self.params.max_attributed]
        )

    def _alert(self, m: SharpMove) -> Alert:
        alert = Alert.from_move(m, threshold_z=self.params.sharp_z,
                                headlines=self._attributed(m.ts))
        self.alerts.append(alert)
        return alert

    def _reattribute(self, req: ReactionRequest) -> list[Alert]:
        updated: list[Alert] = []
        for i, a in enumerate(self.alerts):
            if req.t0 <= a.ts <= req.t0 + self.params.lookback_ms:
                heads = self._attributed(a.ts)
                if heads != a.headlines:
                    new = dataclasses.replace(a, headlines=heads)
                    self.alerts[i] = new
                    updated.append(new)
        return updated

    def _keep_from(self) -> tuple[int, bool]:
        """The oldest tick time this state still needs, and whether that answer is complete.

        Incomplete means it needs a tick at or before some time and holds none (after a
        restart, when the ticks read back do not reach far enough).
        """
        latest = self.series.latest_ts
        assert latest is not None
        p = self.params
        step, baseline = baseline_span(p, int(self.series.interval[-1]))
        keep_from = latest - (p.retention_ms - p.baseline_ms + baseline)
        complete = True
        # a headline may still come for any t0 within the lateness bound; if the market was
        # closed then, its p0 and baseline are the trading before the close, however old
        anchor_i = self.series.index_at_or_before(latest - p.lateness_ms)
        if anchor_i >= 0:
            keep_from = min(keep_from, int(self.series.ts[anchor_i]) - baseline - step)
        else:
            complete = False
        oldest_t0 = self._oldest_pending_t0()
        if oldest_t0 is not None:
            # a pending reaction (e.g. over a weekend) keeps its p0 and baseline
            # (a gap reaction's baseline ends at its p0, the last tick before the close)
            i0 = self.series.index_at_or_before(oldest_t0)
            anchor = int(self.series.ts[i0]) if i0 >= 0 else oldest_t0
            complete &= i0 >= 0
            keep_from = min(keep_from, anchor - baseline - step)
        return keep_from, complete

    def history_needed(self) -> tuple[int, int, bool] | None:
        """``(ticks_from, requests_from, complete)``: the inputs this state depends on.

        A state rebuilt from the ticks at or after ``ticks_from`` and the requests whose t0
        is at or after ``requests_from`` equals the state that saw everything, when
        ``complete``; when not, it needs older ticks than it holds (read further back).
        None without ticks: then every request may still be pending.
        """
        latest = self.series.latest_ts
        if latest is None:
            return None
        p = self.params
        ticks_from, complete = self._keep_from()
        # the gaps remembered for later gap reactions: a rebuild sees them again from here
        oldest_gap = self.gaps.oldest_close
        if oldest_gap is not None:
            ticks_from = min(ticks_from, oldest_gap)
        # requests: dedupe and attribution memory reach back this far ...
        requests_from = latest - max(2 * p.lateness_ms + p.lookback_ms + p.max_horizon_ms,
                                     p.attribution_memory_ms)
        # ... and a request is still pending unless a tick came more than its horizon
        # after the first tick after its t0: every pending t0 lies after the last tick
        # before (latest - longest horizon)
        i = self.series.index_at_or_before(latest - p.max_horizon_ms - 1)
        if i >= 0:
            requests_from = min(requests_from, int(self.series.ts[i]))
        else:
            complete = False
            oldest = self.series.oldest_ts
            assert oldest is not None
            requests_from = min(requests_from, oldest)
        return ticks_from, requests_from, complete

    def _evict(self) -> None:
        if self.series.latest_ts is None:
            return
        p = self.params
        latest = self.series.latest_ts
        keep_from, _ = self._keep_from()
        self.series.evict_before(keep_from)
        anchor = self._gap_anchor()
        if anchor is not None:
            self.gaps.forget_before(anchor - p.gap_memory_ms)
        horizon = latest - p.lateness_ms - p.lookback_ms - p.max_horizon_ms
        remembered = min(horizon, latest - p.attribution_memory_ms)
        if self.known and self.known[0].t0 < remembered:
            self.known = [r for r in self.known if r.t0 >= remembered]
        # by age alone (never by count), so that a state rebuilt after a restart forgets
        # exactly what the original forgot
        if self.seen and min(self.seen.values()) < horizon - p.lateness_ms:
            self.seen = {k: t for k, t in self.seen.items() if t >= horizon - p.lateness_ms}
        if self.alerts and self.alerts[0].ts < horizon:
            self.alerts = [a for a in self.alerts if a.ts >= horizon]
        self.detector.forget_before(latest)


def baseline_span(params: EngineParams, interval_ms: int) -> tuple[int, int]:
    """``(step, span)``: the volatility grid step and how far back a baseline reads.

    Coarse bars stretch the baseline to at least ``min_baseline_steps`` (+2) steps of the bar
    length (see :mod:`tariffmon.core.volatility`).
    """
    step = max(MINUTE_MS, interval_ms)
    return step, max(params.baseline_ms, (params.min_baseline_steps + 2) * step)


class ReactionEngine:
    """The whole core for all configured symbols."""

    def __init__(self, params: EngineParams) -> None:
        self.params = params
        self._states: dict[str, SymbolState] = {}

    def state(self, symbol: str) -> SymbolState:
        """The (lazily created) state of one configured symbol."""
        st = self._states.get(symbol)
        if st is None:
            sym = self.params.symbols.get(symbol)
            if sym is None:
                raise KeyError(symbol)
            st = self._states[symbol] = SymbolState(sym, self.params)
        return st

    def on_request(self, req: ReactionRequest) -> EngineOutput:
        """A tariff headline for one symbol."""
        if req.symbol not in self.params.symbols:
            out = EngineOutput()
            out.rejected.append(Rejection("request", req.symbol, "unknown_symbol", req.symbol))
            return out
        return self.state(req.symbol).add_request(req)

    def on_ticks(
        self, symbol: str, ts: I64, price: F64, interval: I64 | None = None
    ) -> EngineOutput:
        """A batch of one symbol's ticks, as arrays (the fast path)."""
        if symbol not in self.params.symbols:
            out = EngineOutput()
            out.rejected.append(Rejection("tick", symbol, "unknown_symbol", symbol))
            return out
        if interval is None:
            interval = np.zeros(len(ts), dtype=np.int64)
        return self.state(symbol).add_ticks(ts, price, interval)

    def on_tick_list(self, ticks: Sequence[Tick]) -> EngineOutput:
        """Ticks as contract objects, any symbols, in arrival order (the live path).

        Rejections carry the index of the tick within ``ticks``.
        """
        out = EngineOutput()
        begin = 0
        for end in range(1, len(ticks) + 1):
            if end == len(ticks) or ticks[end].symbol != ticks[begin].symbol:
                res = self._run(ticks[begin:end])
                res.rejected = [
                    dataclasses.replace(r, index=r.index + begin) if r.index >= 0 else r
                    for r in res.rejected
                ]
                out.extend(res)
                begin = end
        return out

    def _run(self, run: Sequence[Tick]) -> EngineOutput:
        ts = np.fromiter((t.ts for t in run), dtype=np.int64, count=len(run))
        price = np.fromiter((t.price for t in run), dtype=np.float64, count=len(run))
        interval = np.fromiter(
            ((t.interval_s or 0) * 1_000 for t in run), dtype=np.int64, count=len(run)
        )
        return self.on_ticks(run[0].symbol, ts, price, interval)

    def rolling_returns(self, symbol: str) -> dict[int, float]:
        """The newest rolling return per window (ms) for one symbol."""
        st = self._states.get(symbol)
        return {} if st is None else st.detector.last_rolling(st.series)

    def latest_ts(self, symbol: str) -> int | None:
        """The newest tick time of a symbol."""
        st = self._states.get(symbol)
        return None if st is None else st.series.latest_ts

    def pending_count(self) -> int:
        """Reactions waiting for ticks, over all symbols."""
        return sum(s.pending_count for s in self._states.values())

    def history_needed(self) -> tuple[int | None, int | None, bool]:
        """``(ticks_from, requests_from, complete)`` over all symbols (see SymbolState).

        ``None`` for a bound means "from the beginning": a symbol holds requests but no
        ticks, so every one of them may still be pending.
        """
        ticks_from: int | None = None
        requests_from: int | None = None
        complete = True
        no_ticks = False
        for st in self._states.values():
            need = st.history_needed()
            if need is None:
                no_ticks |= bool(st.known) or st.pending_count > 0
                continue
            t, r, c = need
            ticks_from = t if ticks_from is None else min(ticks_from, t)
            requests_from = r if requests_from is None else min(requests_from, r)
            complete &= c
        if no_ticks:
            requests_from = None
        return ticks_from, requests_from, complete

    def attributed(self, alert: Alert) -> Alert:
        """``alert`` with the tariff headlines this engine knows for its look-back."""
        if alert.symbol not in self.params.symbols:
            return alert
        heads = self.state(alert.symbol)._attributed(alert.ts)
        return alert if heads == alert.headlines else dataclasses.replace(alert, headlines=heads)


def initial_history_from(params: EngineParams, latest: int) -> tuple[int, int]:
    """``(ticks_from, requests_from)``: a first read for a rebuild around a newest tick.

    :meth:`ReactionEngine.history_needed` on the rebuilt state then tells whether it was
    enough (a closed market or a pending request may need more).
    """
    _, span = baseline_span(params, 900_000)
    ticks_from = latest - (params.retention_ms - params.baseline_ms + span) - MINUTE_MS
    requests_from = latest - max(2 * params.lateness_ms + params.lookback_ms
                                 + params.max_horizon_ms, params.attribution_memory_ms)
    return ticks_from, min(requests_from, ticks_from)


def late_read_from(params: EngineParams, t0: int) -> int:
    """Where reading a symbol's ticks back for a late request at ``t0`` starts (first try).

    Enough for the baseline of an open market at 1-minute sampling or 15-minute bars, and
    for the past gaps of a market that closed shortly before t0 (``gap_memory_ms``: read at
    once, so that the requests read back together need no second read each); a market
    closed long before t0 needs the trading before its close: :func:`late_reach_back` tells.
    """
    _, span = baseline_span(params, 900_000)
    return t0 - span - MINUTE_MS - params.gap_memory_ms


def late_reach_back(params: EngineParams, ticks: Sequence[Tick], t0: int, read_from: int
                    ) -> int | None:
    """None when ``ticks`` (one symbol's, read back from ``read_from`` on, in order) hold what
    a request at ``t0`` needs before it; otherwise the earlier time to read from.

    Needed: the p0 tick (the last at or before t0) and its whole volatility baseline before
    it (for a gap reaction the baseline ends at p0, the last trading before the close, and
    the past gaps it is measured against are those seen over ``gap_memory_ms`` before p0).
    Without any tick at or before t0 in what was read (a market closed since before
    ``read_from``), the read reaches at least twice as far back, a day at the least.
    """
    before = [t for t in ticks if t.ts <= t0]
    if not before:
        return read_from - max(86_400_000, t0 - read_from)
    p0 = before[-1]
    _, span = baseline_span(params, (p0.interval_s or 0) * 1_000)
    need = min(p0.ts, t0) - span - MINUTE_MS
    sym = params.symbols.get(p0.symbol)
    if sym is not None and (not sym.calendar.is_open(t0)
                            or t0 - p0.ts > sym.staleness_ms + (p0.interval_s or 0) * 1_000):
        # a gap reaction: the gaps seen over the memory before its close are its baseline
        need = min(need, p0.ts - params.gap_memory_ms)
    return None if ticks[0].ts <= need or read_from <= need else need


class LateMeasurement:
    """One request measured on its symbol's ticks given as a list, then kept up to date.

    The same engine entry points as the live path, in the order the request would have met
    them on time: the ticks up to t0, the request, the ticks after.  Horizons those ticks do
    not reach yet stay pending: :meth:`on_ticks` takes the symbol's newer ticks as they come
    and returns the reactions they complete.  Only reactions and request rejections are
    given out; alerts belong to the live engine that saw those ticks.
    """

    def __init__(self, params: EngineParams, req: ReactionRequest, ticks: Sequence[Tick]
                 ) -> None:
        self.request = req
        self._engine = ReactionEngine(params)
        before = [t for t in ticks if t.ts <= req.t0]
        after = [t for t in ticks if t.ts > req.t0]
        self._lookback_ms = params.lookback_ms
        self._engine.on_tick_list(before)
        res = self._engine.on_request(req)
        res.extend(self._engine.on_tick_list(after))
        self.first = EngineOutput(
            reactions=res.reactions,
            alerts=self._in_lookback(res.alerts),
            rejected=[r for r in res.rejected if r.kind == "request"],
        )

    def _in_lookback(self, alerts: Sequence[Alert]) -> list[Alert]:
        # the sharp moves this headline may explain: the live engine may have let them go
        # before the headline came, so they are re-issued with the complete attribution
        t0 = self.request.t0
        return [a for a in alerts if t0 <= a.ts <= t0 + self._lookback_ms]

    @property
    def pending(self) -> bool:
        """Whether horizons still wait for newer ticks."""
        return self._engine.pending_count() > 0

    @property
    def pending_count(self) -> int:
        """How many horizons still wait for newer ticks."""
        return self._engine.pending_count()

    def on_ticks(self, ticks: Sequence[Tick]) -> EngineOutput:
        """Feed the symbol's ticks newer than those held: the reactions they complete and
        the sharp moves within the headline's look-back they show."""
        latest = self._engine.latest_ts(self.request.symbol)
        newer = [t for t in ticks if t.symbol == self.request.symbol
                 and (latest is None or t.ts > latest)]
        if not newer:
            return EngineOutput()
        res = self._engine.on_tick_list(newer)
        return EngineOutput(reactions=res.reactions, alerts=self._in_lookback(res.alerts))


def measure_on_ticks(
    params: EngineParams, req: ReactionRequest, ticks: Sequence[Tick]
) -> EngineOutput:
    """The reactions of one request measured on a symbol's ticks given as a list (what
    :class:`LateMeasurement` gives at once)."""
    return LateMeasurement(params, req, ticks).first
