"""The worker's two stages as plain objects: Kafka records in, Kafka records out.

The Faust agents in :mod:`streams.agents` only move records between Kafka and these stages,
which keeps every decision (decode or dead-letter, classify, fan out, measure) testable
without a broker and identical for every way of driving it.

* :class:`HeadlineStage`: raw headline -> classified headline (+ story cluster) and, for a new
  tariff story, one reaction request per symbol, keyed by the symbol so that it lands on the
  partition of that symbol's ticks.
* :class:`ReactionStage`: ticks and reaction requests of one symbol partition -> reactions,
  sharp-move alerts, dead letters.  One core engine per input partition, so that a partition
  moving to another worker takes exactly its own state with it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from streams.deadletter import dead_letter
from tariffmon.contract import (
    Alert,
    ClassifiedHeadline,
    Headline,
    Limits,
    Message,
    Reaction,
    ReactionRequest,
    Tick,
)
from tariffmon.core.classifier import TariffClassifier
from tariffmon.core.clustering import StoryClusterer
from tariffmon.core.engine import EngineOutput, ReactionEngine
from tariffmon.core.headlines import classify_headline, reaction_requests
from tariffmon.core.params import EngineParams, engine_params
from tariffmon.core.text import normalize
from tariffmon.errors import ContractError
from tariffmon.metrics.worker import WorkerMetrics
from tariffmon.settings import Settings

log = logging.getLogger(__name__)

#: rejections of a request the worker can still measure on ticks read back from Kafka
MEASURABLE_FROM_KAFKA = frozenset({"too_late", "no_price_before_t0"})
#: how many request origins are kept for dead letters (oldest forgotten first)
_MAX_REMEMBERED_REQUESTS = 50_000

Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class InRecord:
    """One consumed Kafka record."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None


def _partition_of(rec: InRecord) -> int:
    return rec.partition


@dataclass(frozen=True, slots=True)
class OutRecord:
    """One record to publish; its Kafka timestamp is the event time it describes."""

    topic: str
    key: str
    value: bytes
    timestamp_ms: int

    @staticmethod
    def of(topic: str, msg: Message, key: str, ts_ms: int) -> OutRecord:
        """Wrap a contract message."""
        return OutRecord(topic, key, msg.encode(), ts_ms)


@dataclass(frozen=True, slots=True)
class LateRequest:
    """A request that came after its ticks left the engine's memory: measure it from Kafka."""

    record: InRecord
    request: ReactionRequest
    #: why the engine could not measure it (the dead letter's reason if Kafka cannot either)
    reason: str = "too_late"


@dataclass(slots=True)
class StageResult:
    """What a stage produced for a batch."""

    records: list[OutRecord] = field(default_factory=list)
    reactions: list[Reaction] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    late: list[LateRequest] = field(default_factory=list)


class _DeadLettering:
    """Shared by both stages: turn a bad input into a dead letter, count it, log it."""

    def __init__(self, settings: Settings, metrics: WorkerMetrics | None, stage: str) -> None:
        self._dlq_topic = settings.topics.deadletter
        self._metrics = metrics
        self._stage = stage

    def _dead(self, rec: InRecord, reason: str, error: str) -> OutRecord:
        dl = dead_letter(
            topic=rec.topic, partition=rec.partition, offset=rec.offset,
            timestamp_ms=rec.timestamp_ms, key=rec.key, value=rec.value,
            reason=reason, error=error, stage=self._stage,
        )
        if self._metrics is not None:
            self._metrics.dead_letter(rec.topic, reason)
        return OutRecord.of(self._dlq_topic, dl, dl.key, max(0, rec.timestamp_ms))


class HeadlineStage(_DeadLettering):
    """Classify raw headlines, cluster stories, fan tariff stories out to the symbols."""

    def __init__(
        self, settings: Settings, metrics: WorkerMetrics | None = None, clock: Clock = time.time
    ) -> None:
        super().__init__(settings, metrics, "classify")
        self.settings = settings
        self.classifier = TariffClassifier.from_file(
            settings.classifier.rules_file, settings.classifier.threshold
        )
        eng = settings.engine
        self.clusterer = StoryClusterer(
            window_ms=eng.cluster_window_s * 1_000, similarity=eng.cluster_similarity
        )
        self._symbols = [s.name for s in settings.symbols]
        self._symbol_set = settings.symbol_names()
        self._clock = clock
        self._metrics = metrics

    def process(self, rec: InRecord) -> StageResult:
        """One raw headline record."""
        out = StageResult()
        now_s = self._clock()
        limits = Limits.from_now(int(now_s * 1000), self._symbol_set)
        try:
            headline = Headline.decode(rec.value or b"", limits)
        except ContractError as exc:
            out.records.append(self._dead(rec, exc.reason, str(exc)))
            return out
        ch = classify_headline(headline, self.classifier, self.clusterer)
        t = self.settings.topics
        out.records.append(OutRecord.of(t.classified, ch, ch.key, ch.ts))
        for req in reaction_requests(ch, self._symbols):
            out.records.append(OutRecord.of(t.requests, req, req.key, req.t0))
        if self._metrics is not None:
            self._metrics.observe_headline(ch, now_s)
        return out

    def internal_error(self, rec: InRecord, exc: Exception) -> StageResult:
        """Dead-letter a headline whose processing hit a bug, so that it is not lost."""
        return StageResult(records=[self._dead(rec, "internal_error", repr(exc))])

    def restore(self, classified: Iterable[ClassifiedHeadline]) -> int:
        """Re-learn recent story clusters from the classified topic after a restart."""
        # the decisions already published are restored as they were, not decided again: the
        # rules may have changed since, or the tail read back may miss a story's first member
        n = 0
        for ch in classified:
            if ch.is_tariff:
                self.clusterer.restore(ch.id, ch.ts, normalize(ch.title), ch.cluster_id)
                n += 1
        return n


class ReactionStage(_DeadLettering):
    """Run the core over one worker's symbol partitions."""

    def __init__(
        self,
        settings: Settings,
        metrics: WorkerMetrics | None = None,
        clock: Clock = time.time,
        params: EngineParams | None = None,
    ) -> None:
        super().__init__(settings, metrics, "react")
        self.settings = settings
        self.params = params or engine_params(settings)
        self._engines: dict[int, ReactionEngine] = {}
        self._clock = clock
        self._metrics = metrics
        self._symbols = settings.symbol_names()
        self._alert_keys: set[str] = set()
        self._request_records: dict[tuple[str, str], InRecord] = {}

    # ------------------------------------------------------------------ partitions

    def has_partition(self, partition: int) -> bool:
        """Whether this worker holds state for ``partition``."""
        return partition in self._engines

    def drop_partition(self, partition: int) -> None:
        """Forget a revoked partition (its next owner rebuilds it from Kafka)."""
        self._engines.pop(partition, None)

    def engine(self, partition: int) -> ReactionEngine:
        """The engine of one partition (created empty on first use)."""
        eng = self._engines.get(partition)
        if eng is None:
            eng = self._engines[partition] = ReactionEngine(self.params)
        return eng

    def recover(self, partition: int, records: Sequence[InRecord]) -> int:
        """Replay already-processed records (in event-time order) with outputs suppressed.

        Their outputs were published before their offsets were committed; recomputing them
        rebuilds pending reactions, tick history, dedupe and cool-down state exactly.
        """
        self._engines.pop(partition, None)
        self.process_batch(records, publish=False)
        return len(records)

    # ------------------------------------------------------------------ records

    def process_batch(self, records: Sequence[InRecord], *, publish: bool = True) -> StageResult:
        """Ticks and requests as they arrived; consecutive ticks are fed as one batch.

        Each partition's records keep their order, but the partitions are taken one after
        the other: Faust hands records over round-robin across partitions, one at a time,
        and cutting a run at every partition change fed the engine one tick per call
        (~25x slower, see BENCHMARKS.md).  Partitions have separate engines, so their
        relative order cannot change an answer.
        """
        records = sorted(records, key=_partition_of)  # stable: per-partition order kept
        out = StageResult()
        now_s = self._clock()
        limits = Limits.from_now(int(now_s * 1000), self._symbols)
        tick_limits = Limits(
            self._symbols, int(now_s * 1000) + self.settings.worker.max_tick_ahead_s * 1000
        )
        requests_topic = self.settings.topics.requests
        run: list[Tick] = []
        run_recs: list[InRecord] = []
        run_partition = -1
        last_tick: dict[str, Tick] = {}
        counts: dict[str, int] = {}
        for rec in records:
            try:
                if rec.topic == requests_topic:
                    req = ReactionRequest.decode(rec.value or b"", limits)
                    if run:
                        self._emit(out, self.engine(run_partition).on_tick_list(run), publish,
                                   run_recs)
                        run, run_recs = [], []
                    self._remember_request(rec, req)
                    self._emit(out, self.engine(rec.partition).on_request(req), publish, [rec])
                    continue
                tick = Tick.decode(rec.value or b"", tick_limits)
            except ContractError as exc:
                if publish:
                    out.records.append(self._dead(rec, exc.reason, str(exc)))
                continue
            if run and rec.partition != run_partition:
                self._emit(out, self.engine(run_partition).on_tick_list(run), publish, run_recs)
                run, run_recs = [], []
            run.append(tick)
            run_recs.append(rec)
            run_partition = rec.partition
            last_tick[tick.symbol] = tick
            counts[tick.symbol] = counts.get(tick.symbol, 0) + 1
        if run:
            self._emit(out, self.engine(run_partition).on_tick_list(run), publish, run_recs)
        if publish and self._metrics is not None:
            for sym, tick in last_tick.items():
                self._metrics.observe_ticks(sym, counts[sym], tick, now_s)
                st = self.engine_for_symbol(sym)
                if st is not None:
                    for w, r in st.rolling_returns(sym).items():
                        self._metrics.observe_rolling_return(sym, w // 1000, r)
        return out

    def _remember_request(self, rec: InRecord, req: ReactionRequest) -> None:
        """Keep where a request came from, for its dead letter if it ends up unmeasurable."""
        if len(self._request_records) >= _MAX_REMEMBERED_REQUESTS:
            del self._request_records[next(iter(self._request_records))]
        self._request_records[(req.headline_id, req.symbol)] = rec

    def late_window(self, req: ReactionRequest) -> tuple[int, int]:
        """``(from_ts, horizon_ms)``: the ticks :meth:`measure_late` needs, for the reader."""
        p = self.params
        # the baseline stretches to 22 steps of coarse bars (see volatility.py): enough for
        # 15-minute bars; coarser history is backtested, not streamed late
        return req.t0 - max(2 * p.baseline_ms, 22 * 900_000), p.max_horizon_ms

    def measure_late(self, late: LateRequest, ticks: Sequence[Tick]) -> StageResult:
        """Measure a late request on its symbol's ticks read back from Kafka.

        The same core on the same ticks gives the same reactions the request would have had
        on time; only the memory it is measured in differs.  Horizons the ticks do not cover
        yet are dead-lettered as too late.
        """
        out = StageResult()
        req = late.request
        temp = ReactionEngine(self.params)
        before = [t for t in ticks if t.ts <= req.t0]
        after = [t for t in ticks if t.ts > req.t0]
        res = temp.on_tick_list(before)
        res = temp.on_request(req)
        res.extend(temp.on_tick_list(after))
        res.alerts, res.rejected = [], []
        self._emit(out, res, True, [late.record])
        # a repeat of this headline id is now a repeat, not a new late request
        self.engine(late.record.partition).state(req.symbol).seen[req.headline_id] = req.t0
        done = {r.horizon_s * 1_000 for r in res.reactions}
        missing = [h // 1_000 for h in self.params.horizons_ms if h not in done]
        if missing:
            out.records.append(self._dead(
                late.record, late.reason,
                f"request: headline {req.headline_id} at t0={req.t0}: the ticks on Kafka do "
                f"not cover horizons {missing} s"))
        if self._metrics is not None:
            self._metrics.late_input("request")
        return out

    def engine_for_symbol(self, symbol: str) -> ReactionEngine | None:
        """The engine currently holding ``symbol``'s ticks, if any."""
        for eng in self._engines.values():
            if eng.latest_ts(symbol) is not None:
                return eng
        return None

    def _emit(
        self, out: StageResult, res: EngineOutput, publish: bool, inputs: Sequence[InRecord]
    ) -> None:
        if not publish:
            return
        t = self.settings.topics
        for r in res.reactions:
            out.records.append(OutRecord.of(t.reactions, r, r.key, r.t1))
            out.reactions.append(r)
            if self._metrics is not None:
                self._metrics.observe_reaction(r)
        for a in res.alerts:
            out.records.append(OutRecord.of(t.alerts, a, a.key, a.ts))
            out.alerts.append(a)
            # a re-issued alert (late headline joined its look-back) is not a new sharp move
            if self._metrics is not None and a.key not in self._alert_keys:
                if len(self._alert_keys) > 100_000:
                    self._alert_keys.clear()
                self._alert_keys.add(a.key)
                self._metrics.observe_alert(a)
        for rej in res.rejected:
            if rej.request is not None and rej.reason in MEASURABLE_FROM_KAFKA:
                # the engine no longer holds this headline's ticks, but Kafka does
                rec = self._request_records.pop(
                    (rej.request.headline_id, rej.request.symbol), inputs[0])
                out.late.append(LateRequest(rec, rej.request, rej.reason))
                continue
            # valid input the engine cannot use (out of order): kept, not lost
            rec = inputs[rej.index] if 0 <= rej.index < len(inputs) else inputs[0]
            out.records.append(self._dead(rec, rej.reason, f"{rej.kind}: {rej.detail}"))
