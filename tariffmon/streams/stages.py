"""The worker's two stages as plain objects: Kafka records in, Kafka records out.

The Faust agents in :mod:`tariffmon.streams.agents` only move records between Kafka and these
stages,
which keeps every decision (decode or dead-letter, classify, fan out, measure) testable
without a broker and identical for every way of driving it.

* :class:`HeadlineStage`: raw headline -> classified headline (+ story cluster) and, for a new
  tariff story, one reaction request per symbol, keyed by the symbol so that it lands on the
  partition of that symbol's ticks.
* :class:`ReactionStage`: ticks and reaction requests of one symbol partition -> reactions,
  sharp-move alerts, dead letters.  One core engine per input partition, so that a partition
  moving to another worker takes exactly its own state with it.

Bad input never stops a stage: a record that fails the contract is dead-lettered with the
contract's reason; one whose processing raises anything else is dead-lettered as
``internal_error`` with the exception, and the partition it hit is marked for a rebuild from
Kafka (its engine may hold half an update).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import groupby
from operator import itemgetter

from tariffmon.assembly import CoreSetup, core_setup
from tariffmon.contract import ClassifiedHeadline, ReactionRequest, Tick
from tariffmon.core.engine import EngineOutput, LateMeasurement, ReactionEngine
from tariffmon.errors import ContractError
from tariffmon.metrics.worker import WorkerMetrics
from tariffmon.settings import Settings
from tariffmon.streams.deadletter import DeadLetterLog, dead_letter
from tariffmon.streams.records import (
    BatchLimits,
    Clock,
    InputDecoder,
    InRecord,
    OutRecord,
    TickRun,
)

log = logging.getLogger(__name__)

# fields of an InRecord (a named tuple), read in C by groupby, map and max
_PARTITION = itemgetter(1)
_TOPIC_PARTITION = itemgetter(0, 1)
_OFFSET = itemgetter(2)

#: rejections of a request the worker can still measure on ticks read back from Kafka
MEASURABLE_FROM_KAFKA = frozenset({"too_late", "no_price_before_t0"})
#: how many request origins are kept for dead letters (oldest forgotten first)
_MAX_REMEMBERED_REQUESTS = 50_000


def _partition_of(rec: InRecord) -> int:
    return rec.partition


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
    late: list[LateRequest] = field(default_factory=list)
    #: partitions whose engine failed on this batch: rebuild them before going on
    failed: set[int] = field(default_factory=set)
    #: the records of failed partitions not yet processed: hand them back after the rebuild
    deferred: list[InRecord] = field(default_factory=list)


class DeadLetters:
    """Turn a bad input into a dead-letter record (counted when it is sent, logged here)."""

    def __init__(self, topic: str, stage: str, log_interval_s: float = 60.0) -> None:
        self._topic = topic
        self._stage = stage
        self.log = DeadLetterLog(stage, log_interval_s)
        #: (input topic, exception type) whose first internal error was logged in full
        self._traced: set[tuple[str, str]] = set()

    def of(self, rec: InRecord, reason: str, error: str) -> OutRecord:
        """The dead letter of ``rec``."""
        dl = dead_letter(
            topic=rec.topic, partition=rec.partition, offset=rec.offset,
            timestamp_ms=rec.timestamp_ms, key=rec.key, value=rec.value,
            reason=reason, error=error, stage=self._stage,
        )
        self.log.note(rec.topic, rec.partition, rec.offset, reason, error)
        out = OutRecord.of(self._topic, dl, dl.key, rec.timestamp_ms)
        return OutRecord(out.topic, out.key, out.value, out.timestamp_ms, (rec.topic, reason))

    def internal(self, rec: InRecord, exc: BaseException) -> OutRecord:
        """The dead letter of a record whose processing raised ``exc``.

        The traceback is logged for the first such error of each kind and input topic only:
        an input that trips a bug once usually trips it thousands of times.
        """
        kind = (rec.topic, type(exc).__name__)
        if kind not in self._traced:
            self._traced.add(kind)
            log.error("processing %s[%d]@%d failed", rec.topic, rec.partition, rec.offset,
                      exc_info=exc)
        return self.of(rec, "internal_error", f"{exc!r:.2000}")


class HeadlineStage:
    """Classify raw headlines, cluster stories, fan tariff stories out to the symbols."""

    def __init__(
        self,
        settings: Settings,
        metrics: WorkerMetrics | None = None,
        clock: Clock = time.time,
        core: CoreSetup | None = None,
    ) -> None:
        self.settings = settings
        self.desk = (core or core_setup(settings)).new_desk()
        self._decoder = InputDecoder(settings, clock)
        self._dead = DeadLetters(
            settings.topics.deadletter, "classify", settings.worker.dead_letter_log_interval_s
        )
        self._clock = clock
        self._metrics = metrics

    def process(self, rec: InRecord) -> StageResult:
        """One raw headline record; never raises for anything the record holds."""
        try:
            return self._process(rec)
        except Exception as exc:  # noqa: BLE001 - a bug must not lose the input: dead-letter it
            return StageResult(records=[self._dead.internal(rec, exc)])

    def flush_logs(self) -> None:
        """Write the dead-letter summary not yet written (at shutdown)."""
        self._dead.log.flush()

    def _process(self, rec: InRecord) -> StageResult:
        self._dead.log.tick()
        out = StageResult()
        now_s = self._clock()
        try:
            headline = self._decoder.headline(rec, self._decoder.limits())
        except ContractError as exc:
            out.records.append(self._dead.of(rec, exc.reason, str(exc)))
            return out
        ch, requests = self.desk.process(headline)
        t = self.settings.topics
        out.records.append(OutRecord.of(t.classified, ch, ch.key, ch.ts))
        for req in requests:
            out.records.append(OutRecord.of(t.requests, req, req.key, req.t0))
        if self._metrics is not None:
            self._metrics.observe_headline(ch, now_s)
        return out

    def restore(self, classified: Iterable[ClassifiedHeadline]) -> int:
        """Re-learn recent story clusters from the classified topic after a restart."""
        return self.desk.restore(classified)


class ReactionStage:
    """Run the core over one worker's symbol partitions."""

    def __init__(
        self,
        settings: Settings,
        metrics: WorkerMetrics | None = None,
        clock: Clock = time.time,
        core: CoreSetup | None = None,
    ) -> None:
        self.settings = settings
        self.core = core or core_setup(settings)
        self.params = self.core.params
        self.decoder = InputDecoder(settings, clock)
        self._dead = DeadLetters(
            settings.topics.deadletter, "react", settings.worker.dead_letter_log_interval_s
        )
        self._engines: dict[int, ReactionEngine] = {}
        self._clock = clock
        self._metrics = metrics
        self._request_records: dict[tuple[str, str], InRecord] = {}
        #: per partition: late requests measured on ticks read back, horizons still pending
        self._late_pending: dict[int, list[tuple[InRecord, LateMeasurement]]] = {}
        #: per (topic, partition): the offset after the last record processed
        self.processed: dict[tuple[str, int], int] = {}

    # ------------------------------------------------------------------ partitions

    def has_partition(self, partition: int) -> bool:
        """Whether this worker holds state for ``partition``."""
        return partition in self._engines

    def drop_partition(self, partition: int) -> None:
        """Forget a partition (revoked, or failed: its state is rebuilt from Kafka)."""
        self._engines.pop(partition, None)
        # a rebuild replays those requests in event-time order: they are pending there
        self._late_pending.pop(partition, None)

    def engine(self, partition: int) -> ReactionEngine:
        """The engine of one partition (created empty on first use)."""
        eng = self._engines.get(partition)
        if eng is None:
            eng = self._engines[partition] = self.core.new_engine()
        return eng

    def recover(self, partition: int, records: Sequence[InRecord]) -> ReactionEngine:
        """Replay already-processed records (in event-time order) with outputs suppressed.

        Their outputs were published before their offsets were committed; recomputing them
        rebuilds pending reactions, tick history, dedupe and cool-down state exactly.
        """
        self.drop_partition(partition)
        self.process_batch(records, publish=False)
        return self.engine(partition)

    # ------------------------------------------------------------------ records

    def flush_logs(self) -> None:
        """Write the dead-letter summary not yet written (at shutdown)."""
        self._dead.log.flush()

    def process_batch(self, records: Sequence[InRecord], *, publish: bool = True) -> StageResult:
        """Ticks and requests as they arrived; consecutive ticks are fed as one batch.

        Each partition's records keep their order, but the partitions are taken one after
        the other: Faust hands records over round-robin across partitions, one at a time,
        and cutting a run at every partition change fed the engine one tick per call
        (~25x slower, see BENCHMARKS.md).  Partitions have separate engines, so their
        relative order cannot change an answer.
        """
        self._dead.log.tick()
        records = sorted(records, key=_partition_of)  # stable: per-partition order kept
        out = StageResult()
        now_s = self._clock()
        limits = self.decoder.limits()
        requests_topic = self.settings.topics.requests
        run: list[Tick] = []
        run_recs: list[InRecord] = []
        last_tick: dict[str, Tick] = {}
        counts: dict[str, int] = {}
        for rec in records:
            if rec.partition in out.failed:
                out.deferred.append(rec)
                continue
            key = (rec.topic, rec.partition)
            self.processed[key] = max(self.processed.get(key, 0), rec.offset + 1)
            if run and rec.partition != run_recs[0].partition:
                self._feed_ticks(out, run, run_recs, publish)
                run, run_recs = [], []
            if rec.topic == requests_topic:
                if run:
                    self._feed_ticks(out, run, run_recs, publish)
                    run, run_recs = [], []
                self._feed_request(out, rec, limits, publish)
                continue
            tick = self._decode_tick(out, rec, limits, publish)
            if tick is None:
                continue
            run.append(tick)
            run_recs.append(rec)
            last_tick[tick.symbol] = tick
            counts[tick.symbol] = counts.get(tick.symbol, 0) + 1
        if run:
            self._feed_ticks(out, run, run_recs, publish)
        if publish and self._metrics is not None:
            self._observe_ticks(last_tick, counts, now_s)
            self._metrics.reactions_pending.set(self.pending_reactions())
        return out

    def pending_reactions(self) -> int:
        """Reactions (one per headline, symbol and horizon) waiting for newer ticks: in the
        partitions' engines and in requests measured on ticks read back from Kafka."""
        held = sum(eng.pending_count() for eng in self._engines.values())
        return held + sum(m.pending_count for waiting in self._late_pending.values()
                          for _, m in waiting)

    def process_bulk(self, requests: Sequence[InRecord], ticks: Sequence[InRecord]
                     ) -> StageResult:
        """One fetch of the live path: its requests first, then its ticks in bulk.

        Per partition, the requests are applied in their order, then the ticks are decoded
        at once (:meth:`InputDecoder.ticks`) and each symbol's run goes to the core in one
        call as arrays.  Applying a fetch's requests before its ticks only makes them
        earlier in event time, which the engine's answers do not depend on within the
        lateness bound (:mod:`tariffmon.core.engine`); symbols have separate states, so
        grouping by symbol changes no answer either.

        A partition whose engine fails is marked failed; the records that made it fail are
        dead-lettered and every other record of that partition in this fetch is deferred:
        its processed offsets are not advanced, so after the rebuild up to them the whole
        rest of the fetch is processed again, giving the same outputs again (stable keys).
        """
        self._dead.log.tick()
        out = StageResult()
        now_s = self._clock()
        limits = self.decoder.limits()
        by_partition: dict[int, tuple[list[InRecord], list[InRecord]]] = {}
        # a fetch lists each partition's records together: grouped a run at a time, in C
        for side, recs in ((0, requests), (1, ticks)):
            for p, run in groupby(recs, key=_PARTITION):
                by_partition.setdefault(p, ([], []))[side].extend(run)
        last_tick: dict[str, Tick] = {}
        first_tick: dict[str, Tick] = {}
        counts: dict[str, int] = {}
        for partition in sorted(by_partition):
            reqs, tick_recs = by_partition[partition]
            self._bulk_partition(out, partition, reqs, tick_recs, limits, last_tick, counts,
                                 first_tick)
        if self._metrics is not None:
            self._observe_ticks(last_tick, counts, now_s, first_tick)
            self._metrics.reactions_pending.set(self.pending_reactions())
        return out

    def _bulk_partition(
        self, out: StageResult, partition: int, reqs: list[InRecord],
        tick_recs: list[InRecord], limits: BatchLimits, last_tick: dict[str, Tick],
        counts: dict[str, int], first_tick: dict[str, Tick],
    ) -> None:
        # on a failure, what this partition produced so far in the fetch is taken back: it
        # is produced again, once, when the deferred records are processed after the rebuild
        mark, mark_late = len(out.records), len(out.late)
        for k, rec in enumerate(reqs):
            self._feed_request(out, rec, limits, True)
            if partition in out.failed:
                del out.records[mark:-1]  # keeps the failed request's dead letter
                del out.late[mark_late:]
                out.deferred.extend(reqs[:k] + reqs[k + 1:] + tick_recs)
                return
        requests_end = len(out.records)
        decoded = self.decoder.ticks(tick_recs, limits)
        for i, exc in decoded.errors:
            out.records.append(self._dead.of(tick_recs[i], exc.reason, str(exc)))
        errors_end = len(out.records)
        for run in decoded.runs:
            recs = (tick_recs if len(run) == len(tick_recs)
                    else list(map(tick_recs.__getitem__, run.index)))
            self._feed_run(out, partition, run, recs)
            if partition in out.failed:
                # kept: the decode errors' and the failed run's dead letters (its last ones)
                out.records[mark:] = (out.records[requests_end:errors_end]
                                      + out.records[len(out.records) - len(recs):])
                del out.late[mark_late:]
                done = {i for i, _ in decoded.errors}.union(run.index)
                out.deferred.extend(reqs)
                out.deferred.extend(r for i, r in enumerate(tick_recs) if i not in done)
                return
            first_tick.setdefault(run.symbol, run.tick(0))
            last_tick[run.symbol] = run.tick(len(run) - 1)
            counts[run.symbol] = counts.get(run.symbol, 0) + len(run)
        self._advance(reqs)
        self._advance(tick_recs)

    def _advance(self, recs: Sequence[InRecord]) -> None:
        processed = self.processed
        for key, run in groupby(recs, key=_TOPIC_PARTITION):
            end = max(map(_OFFSET, run)) + 1
            if end > processed.get(key, 0):
                processed[key] = end

    def _feed_run(self, out: StageResult, partition: int, run: TickRun,
                  recs: list[InRecord]) -> None:
        try:
            res = self.engine(partition).on_ticks(run.symbol, run.ts, run.price,
                                                  run.interval_ms)
            waiting = self._late_pending.get(partition)
            if waiting and any(r.request.symbol == run.symbol for _, r in waiting):
                self._feed_late_pending(out, partition, run.ticks(), recs)
        except Exception as exc:  # noqa: BLE001 - the engine may hold half an update
            self._engine_failed(out, partition, recs, exc, True)
            return
        self._emit(out, res, True, recs)

    def _decode_tick(
        self, out: StageResult, rec: InRecord, limits: BatchLimits, publish: bool
    ) -> Tick | None:
        try:
            return self.decoder.tick(rec, limits)
        except ContractError as exc:
            if publish:
                out.records.append(self._dead.of(rec, exc.reason, str(exc)))
            return None

    def _feed_request(
        self, out: StageResult, rec: InRecord, limits: BatchLimits, publish: bool
    ) -> None:
        try:
            req = self.decoder.request(rec, limits)
        except ContractError as exc:
            if publish:
                out.records.append(self._dead.of(rec, exc.reason, str(exc)))
            return
        try:
            self._remember_request(rec, req)
            res = self.engine(rec.partition).on_request(req)
        except Exception as exc:  # noqa: BLE001 - the engine may hold half an update
            self._engine_failed(out, rec.partition, [rec], exc, publish)
            return
        self._emit(out, res, publish, [rec])

    def _feed_ticks(
        self, out: StageResult, run: list[Tick], recs: list[InRecord], publish: bool
    ) -> None:
        partition = recs[0].partition
        try:
            res = self.engine(partition).on_tick_list(run)
            if publish:
                self._feed_late_pending(out, partition, run, recs)
        except Exception as exc:  # noqa: BLE001 - the engine may hold half an update
            self._engine_failed(out, partition, recs, exc, publish)
            return
        self._emit(out, res, publish, recs)

    def _engine_failed(
        self, out: StageResult, partition: int, recs: Sequence[InRecord], exc: Exception,
        publish: bool,
    ) -> None:
        if not publish:
            # rebuilding: these records failed the first time too and were dead-lettered
            log.warning("partition %d: skipping %d records that fail again while rebuilding",
                        partition, len(recs))
            return
        # the records that made the engine fail are kept as dead letters (retrying them
        # would fail again for ever) and the partition's state is rebuilt from Kafka
        out.failed.add(partition)
        self._engines.pop(partition, None)
        out.records.append(self._dead.internal(recs[0], exc))
        out.records.extend(self._dead.of(rec, "internal_error", f"{exc!r:.2000}")
                           for rec in recs[1:])

    def _observe_ticks(self, last_tick: dict[str, Tick], counts: dict[str, int],
                       now_s: float, first_tick: dict[str, Tick] | None = None) -> None:
        assert self._metrics is not None
        for sym, tick in last_tick.items():
            oldest = None if first_tick is None else first_tick.get(sym)
            self._metrics.observe_ticks(sym, counts[sym], tick, now_s, oldest)
            eng = self.engine_for_symbol(sym)
            if eng is not None:
                for w, r in eng.rolling_returns(sym).items():
                    self._metrics.observe_rolling_return(sym, w // 1000, r)

    def _remember_request(self, rec: InRecord, req: ReactionRequest) -> None:
        """Keep where a request came from, for its dead letter if it ends up unmeasurable."""
        if len(self._request_records) >= _MAX_REMEMBERED_REQUESTS:
            del self._request_records[next(iter(self._request_records))]
        self._request_records[(req.headline_id, req.symbol)] = rec

    def engine_for_symbol(self, symbol: str) -> ReactionEngine | None:
        """The engine currently holding ``symbol``'s ticks, if any."""
        for eng in self._engines.values():
            if eng.latest_ts(symbol) is not None:
                return eng
        return None

    def late_result(self, late: LateRequest, measured: LateMeasurement) -> list[OutRecord]:
        """The records for what the late path measured: its reactions, or a dead letter when
        the ticks on Kafka hold no price before its t0.  Horizons the ticks do not reach yet
        stay pending: newer ticks of the symbol complete them (:meth:`process_batch`)."""
        out = StageResult()
        self._emit_late(out, late.record, measured.first)
        req = late.request
        if measured.first.rejected:
            rej = measured.first.rejected[0]
            out.records.append(self._dead.of(
                late.record, late.reason,
                f"request: headline {req.headline_id} at t0={req.t0}: the ticks on Kafka do "
                f"not measure it ({rej.reason}: {rej.detail})"))
        elif measured.pending:
            self._late_pending.setdefault(late.record.partition, []).append(
                (late.record, measured))
        if self._metrics is not None:
            self._metrics.late_input("request")
            self._metrics.reactions_pending.set(self.pending_reactions())
        return out.records

    def _emit_late(self, out: StageResult, rec: InRecord, res: EngineOutput) -> None:
        # the sharp moves the late headline may explain go out again under their keys,
        # attributed with every headline the partition's engine knows for their look-back
        engine = self.engine(rec.partition)
        reissued = [engine.attributed(a) for a in res.alerts]
        self._emit(out, EngineOutput(reactions=res.reactions, reissued=reissued), True, [rec])

    def _feed_late_pending(self, out: StageResult, partition: int, run: list[Tick],
                           recs: list[InRecord]) -> None:
        waiting = self._late_pending.get(partition)
        if not waiting:
            return
        still = []
        for rec, measured in waiting:
            self._emit_late(out, rec, measured.on_ticks(run))
            if measured.pending:
                still.append((rec, measured))
        self._late_pending[partition] = still

    def _emit(
        self, out: StageResult, res: EngineOutput, publish: bool, inputs: Sequence[InRecord]
    ) -> None:
        if not publish:
            return
        t = self.settings.topics
        for r in res.reactions:
            out.records.append(OutRecord.of(t.reactions, r, r.key, r.t1))
            if self._metrics is not None:
                self._metrics.observe_reaction(r)
        for a in res.alerts:
            out.records.append(OutRecord.of(t.alerts, a, a.key, a.ts))
            if self._metrics is not None:
                self._metrics.observe_alert(a)
        for a in res.reissued:
            # the same alert with a completed attribution: a new version, not a new move
            out.records.append(OutRecord.of(t.alerts, a, a.key, a.ts))
            if self._metrics is not None:
                self._metrics.observe_alert_attribution(a)
        for rej in res.rejected:
            if rej.request is not None and rej.reason in MEASURABLE_FROM_KAFKA:
                # the engine no longer holds this headline's ticks, but Kafka does
                rec = self._request_records.pop(
                    (rej.request.headline_id, rej.request.symbol), inputs[0])
                out.late.append(LateRequest(rec, rej.request, rej.reason))
                continue
            # valid input the engine cannot use (out of order): kept, not lost
            rec = inputs[rej.index] if 0 <= rej.index < len(inputs) else inputs[0]
            out.records.append(self._dead.of(rec, rej.reason, f"{rej.kind}: {rej.detail}"))
