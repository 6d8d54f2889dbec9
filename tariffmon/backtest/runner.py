"""The offline backtest: the pure core driven over recorded-stream files, with no Kafka.

The live worker runs headlines through ``HeadlineDesk.process`` -> ``ReactionEngine.on_request``
and ticks through ``ReactionEngine.on_tick_list`` (:mod:`tariffmon.streams.stages`), both built by
:func:`tariffmon.assembly.core_setup`.  :class:`BacktestCore` makes the same calls on the same
objects, in event-time order, so the backtest's reactions are the live pipeline's reactions
for the same input.

Ordering: the files are merged by event time (ties by file order, then line order, as
:func:`tariffmon.recorded.merge_entries` reads them).  Ticks are gathered per symbol into numpy
batches; a batch is cut at every headline so that each headline meets the engine after the
ticks older than it and before the ticks at or after its time (a headline goes first at
equal times).  Symbols are independent in the engine, so batching them separately between
two headlines does not change any answer.

Bad input lines never stop a backtest: an unreadable line, a value that fails the contract, a
line whose time goes backwards in its file, each is counted by reason and a few examples are
kept for the report; the engine's own refusals (out-of-order ticks, too-late headlines)
likewise.  A file that cannot be read to its end (truncated or corrupt gzip, I/O error) is
another matter: the run stops there and :func:`run_backtest` raises
:class:`IncompleteInputError`, which carries the result of what was read.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tariffmon.assembly import CoreSetup, core_setup, tick_limits
from tariffmon.contract import (
    Alert,
    ClassifiedHeadline,
    Headline,
    Limits,
    Reaction,
    Tick,
)
from tariffmon.core.engine import EngineOutput, Rejection
from tariffmon.core.params import EngineParams
from tariffmon.core.series import F64, I64
from tariffmon.errors import ContractError, RecordedStreamError, TariffmonError
from tariffmon.recorded import BadLine, RecordedEvent, make_readers, merge_entries
from tariffmon.settings import Settings, load_settings

#: at most this many invalid inputs / engine rejections are kept as examples for the report
MAX_EXAMPLES = 50
#: buffered ticks (all symbols) that force a flush between headlines, bounding memory
FLUSH_TICKS = 200_000
#: the progress callback is told about bytes read every this many lines
PROGRESS_EVERY = 8_192

ProgressFn = Callable[[int], None]


class BacktestError(TariffmonError):
    """The backtest cannot start (e.g. an input file is missing)."""


class IncompleteInputError(BacktestError):
    """An input file could not be read to its end: the backtest covers only what was read.

    ``error`` names the file and where reading stopped; ``result`` is the backtest of the
    events read before it (its ``read_error`` set), so a report can still be written.
    """

    def __init__(self, error: RecordedStreamError, result: BacktestResult) -> None:
        super().__init__(f"{error}; the results cover only the events read before it")
        self.error = error
        self.result = result


@dataclass(frozen=True, slots=True)
class InvalidInput:
    """One input line the backtest could not use, and why."""

    where: str  # file:line
    stream: str  # "ticks", "headlines", or "?" when the line itself is unreadable
    reason: str  # a short code, as in dead letters
    error: str


@dataclass(slots=True)
class BacktestCounts:
    """What went in and what came out."""

    lines: int = 0  # readable lines inside the time range
    ticks: int = 0  # valid ticks handed to the engine
    headlines: int = 0  # valid headlines classified
    tariff_headlines: int = 0
    duplicate_headlines: int = 0  # tariff headlines of a story already measured
    requests: int = 0  # (headline, symbol) pairs handed to the engine
    reactions: int = 0
    alerts: int = 0  # distinct alert keys
    alert_updates: int = 0  # re-issued alerts (a later headline joined their look-back)
    pending: int = 0  # reactions still waiting for ticks when the input ended
    invalid: Counter[str] = field(default_factory=Counter)  # "stream:reason" -> lines
    rejected: Counter[str] = field(default_factory=Counter)  # "kind:reason" -> inputs
    ignored: Counter[str] = field(default_factory=Counter)  # other streams -> lines

    @property
    def invalid_total(self) -> int:
        """Lines that could not be used."""
        return sum(self.invalid.values())

    @property
    def rejected_total(self) -> int:
        """Valid inputs the engine refused."""
        return sum(self.rejected.values())


@dataclass(frozen=True, slots=True)
class PriceSeries:
    """All valid ticks of one symbol in event-time order (for charts)."""

    ts: I64
    price: F64
    interval: I64  # bar length in ms, 0 for point observations

    def __len__(self) -> int:
        return len(self.ts)


@dataclass(slots=True)
class BacktestResult:
    """Everything a backtest produced; see :func:`run_backtest`."""

    #: sorted by (t0, headline_id, symbol, horizon_s)
    reactions: list[Reaction]
    #: the final value of each alert key, sorted by (ts, symbol, window_s)
    alerts: list[Alert]
    #: every valid headline with its verdict, in event-time order
    headlines: list[ClassifiedHeadline]
    counts: BacktestCounts
    prices: dict[str, PriceSeries]
    params: EngineParams
    invalid: list[InvalidInput] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    #: why the input ended early (a file not readable to its end); None when it was all read
    read_error: RecordedStreamError | None = None

    @property
    def symbols(self) -> tuple[str, ...]:
        """The configured symbols, in settings order."""
        return tuple(self.params.symbols)

    @property
    def traded_symbols(self) -> tuple[str, ...]:
        """The configured symbols that had ticks in the input, in settings order."""
        return tuple(s for s in self.params.symbols if s in self.prices)

    def measured_headlines(self) -> list[ClassifiedHeadline]:
        """The tariff headlines that started a story (those the engine measured)."""
        return [h for h in self.headlines if h.is_tariff and not h.duplicate]


def sort_reactions(reactions: Iterable[Reaction]) -> list[Reaction]:
    """The report order: (t0, headline_id, symbol, horizon_s)."""
    return sorted(reactions, key=lambda r: (r.t0, r.headline_id, r.symbol, r.horizon_s))


class BacktestCore:
    """The core as the live worker drives it, minus Kafka: headlines and tick arrays in.

    Callers feed it in event-time order.  The bench drives it directly with arrays;
    :func:`run_events` drives it from decoded recorded-stream events.
    """

    def __init__(
        self,
        settings: Settings,
        params: EngineParams | None = None,
        core: CoreSetup | None = None,
    ) -> None:
        self.settings = settings
        # the same wiring as the live worker's stages (tariffmon.assembly)
        setup = core or core_setup(settings, params=params)
        self.params = setup.params
        self.engine = setup.new_engine()
        self.desk = setup.new_desk()
        self.counts = BacktestCounts()
        self.reactions: list[Reaction] = []
        self.headlines: list[ClassifiedHeadline] = []
        self.rejections: list[Rejection] = []
        self._alerts: dict[str, Alert] = {}

    def headline(self, headline: Headline) -> ClassifiedHeadline:
        """Classify one headline and hand its reaction requests to the engine."""
        ch, requests = self.desk.process(headline)
        self.headlines.append(ch)
        c = self.counts
        c.headlines += 1
        if ch.is_tariff:
            c.tariff_headlines += 1
            c.duplicate_headlines += ch.duplicate
        for req in requests:
            c.requests += 1
            self._collect(self.engine.on_request(req))
        return ch

    def ticks(self, symbol: str, ts: I64, price: F64, interval: I64 | None = None) -> None:
        """A batch of one symbol's ticks, sorted by time."""
        self.counts.ticks += len(ts)
        self._collect(self.engine.on_ticks(symbol, ts, price, interval))

    def _collect(self, out: EngineOutput) -> None:
        if out.reactions:
            self.reactions.extend(out.reactions)
        for a in out.alerts:
            self._alerts[a.key] = a
        for a in out.reissued:
            self.counts.alert_updates += 1
            self._alerts[a.key] = a  # last value per key, as a compacted topic keeps it
        for rej in out.rejected:
            self.counts.rejected[f"{rej.kind}:{rej.reason}"] += 1
            if len(self.rejections) < MAX_EXAMPLES:
                self.rejections.append(rej)

    def alerts(self) -> list[Alert]:
        """The final value of each alert key, sorted by (ts, symbol, window_s)."""
        return sorted(self._alerts.values(), key=lambda a: (a.ts, a.symbol, a.window_s))

    def finish(self) -> None:
        """Fill in the closing counts."""
        c = self.counts
        c.reactions = len(self.reactions)
        c.alerts = len(self._alerts)
        c.pending = self.engine.pending_count()


class _TickBuffer:
    """One symbol's ticks waiting for the next cut, plus everything seen (for charts)."""

    __slots__ = ("interval", "line_ts", "price", "ts")

    def __init__(self) -> None:
        self.line_ts: list[int] = []  # the recorded line's ts: what the merge order follows
        self.ts: list[int] = []
        self.price: list[float] = []
        self.interval: list[int] = []

    def __len__(self) -> int:
        return len(self.ts)

    def take_before(self, t: int | None) -> tuple[I64, F64, I64]:
        """Remove and return the ticks whose line time is before ``t`` (all if None)."""
        k = len(self.ts) if t is None else bisect.bisect_left(self.line_ts, t)
        out = (
            np.array(self.ts[:k], dtype=np.int64),
            np.array(self.price[:k], dtype=np.float64),
            np.array(self.interval[:k], dtype=np.int64),
        )
        del self.line_ts[:k], self.ts[:k], self.price[:k], self.interval[:k]
        return out


class _Driver:
    """Decodes events, batches ticks, cuts at headlines, keeps the price history."""

    def __init__(self, core: BacktestCore, limits: Limits, sources: Sequence[str]) -> None:
        self.core = core
        self.limits = limits
        #: what a line number refers to, per input index (file names)
        self.sources = list(sources)
        self.invalid: list[InvalidInput] = []
        self._buffers: dict[str, _TickBuffer] = {}
        self._buffered = 0
        self._history: dict[str, list[tuple[I64, F64, I64]]] = {}

    def invalid_line(self, where: str, stream: str, exc: ContractError) -> None:
        self.core.counts.invalid[f"{stream}:{exc.reason}"] += 1
        if len(self.invalid) < MAX_EXAMPLES:
            self.invalid.append(InvalidInput(where, stream, exc.reason, str(exc)))

    def bad_line(self, bad: BadLine) -> None:
        """The reader's bad-line policy: count the line, keep it as an example, go on."""
        self.invalid_line(bad.where, bad.stream, bad.error)

    def where(self, source: int, lineno: int) -> str:
        """``file:line`` of an input line (built only when a line is reported)."""
        return f"{self.sources[source]}:{lineno}"

    def event(self, ev: RecordedEvent, source: int, lineno: int) -> None:
        counts = self.core.counts
        counts.lines += 1
        if ev.stream == "ticks":
            try:
                tick = Tick.from_dict(ev.value, self.limits)
            except ContractError as exc:
                self.invalid_line(self.where(source, lineno), "ticks", exc)
                return
            buf = self._buffers.get(tick.symbol)
            if buf is None:
                buf = self._buffers[tick.symbol] = _TickBuffer()
            buf.line_ts.append(ev.ts)
            buf.ts.append(tick.ts)
            buf.price.append(tick.price)
            buf.interval.append((tick.interval_s or 0) * 1_000)
            self._buffered += 1
            if self._buffered >= FLUSH_TICKS:
                # keep the ticks of the newest instant: a headline at that time goes first
                self.flush(before=ev.ts)
        elif ev.stream == "headlines":
            try:
                headline = Headline.from_dict(ev.value, self.limits)
            except ContractError as exc:
                self.invalid_line(self.where(source, lineno), "headlines", exc)
                return
            self.flush(before=ev.ts)
            self.core.headline(headline)
        else:
            counts.ignored[ev.stream] += 1

    def flush(self, before: int | None = None) -> None:
        """Hand the engine every buffered tick older than ``before`` (all when None)."""
        for symbol, buf in self._buffers.items():
            if not buf:
                continue
            ts, price, interval = buf.take_before(before)
            if len(ts) == 0:
                continue
            self._buffered -= len(ts)
            self._history.setdefault(symbol, []).append((ts, price, interval))
            self.core.ticks(symbol, ts, price, interval)

    def prices(self) -> dict[str, PriceSeries]:
        """Each symbol's valid ticks, in input order, with out-of-order ones dropped."""
        out: dict[str, PriceSeries] = {}
        for symbol in self.core.desk.symbols:
            chunks = self._history.get(symbol)
            if not chunks:
                continue
            ts = np.concatenate([c[0] for c in chunks])
            price = np.concatenate([c[1] for c in chunks])
            interval = np.concatenate([c[2] for c in chunks])
            # the engine refused ticks older than an earlier one; the chart does the same
            keep = ts >= np.maximum.accumulate(ts)
            out[symbol] = PriceSeries(ts[keep], price[keep], interval[keep])
        return out


def total_bytes(paths: Sequence[str | Path]) -> int:
    """The combined size of the input files (what the progress callback counts towards)."""
    return sum(Path(p).stat().st_size for p in paths)


def _check_paths(paths: Sequence[str | Path]) -> list[Path]:
    if not paths:
        raise BacktestError("no input files given")
    out = []
    for p in paths:
        path = Path(p)
        if not path.is_file():
            raise BacktestError(f"input file {str(path)!r} does not exist or is not a file")
        out.append(path)
    return out


def backtest_limits(settings: Settings) -> Limits:
    """Contract limits for recorded input: the live worker's, with the fixed time ceiling."""
    return tick_limits(settings, None)


def run_backtest(
    paths: Sequence[str | Path],
    settings: Settings | None = None,
    *,
    from_ts: int | None = None,
    to_ts: int | None = None,
    params: EngineParams | None = None,
    progress: ProgressFn | None = None,
) -> BacktestResult:
    """Run the pure core over recorded-stream files merged by event time.

    ``from_ts`` / ``to_ts`` keep events in ``[from_ts, to_ts)``.  ``progress`` is called now
    and then with the number of file bytes consumed since its last call (the total is
    :func:`total_bytes`).  Bad lines are counted and skipped.  Raises :class:`BacktestError`
    when an input is missing, and :class:`IncompleteInputError` (holding the result of what
    was read) when a file cannot be read to its end.
    """
    files = _check_paths(paths)
    settings = settings or load_settings()
    core = BacktestCore(settings, params)
    driver = _Driver(core, backtest_limits(settings), [str(p) for p in files])
    readers = make_readers(files, on_bad_line=driver.bad_line)
    reported = 0
    read_error: RecordedStreamError | None = None
    try:
        merged = merge_entries(readers, from_ts, to_ts)
        for n, (_ts, source, lineno, ev) in enumerate(merged, start=1):
            driver.event(ev, source, lineno)
            if progress is not None and n % PROGRESS_EVERY == 0:
                done = sum(r.bytes_read() for r in readers)
                progress(done - reported)
                reported = done
    except RecordedStreamError as exc:
        # the merge cannot go on in event-time order without this file's later events
        read_error = exc
    if progress is not None:
        progress(total_bytes(files) - reported)
    result = _finish(core, driver)
    if read_error is not None:
        result.read_error = read_error
        raise IncompleteInputError(read_error, result)
    return result


def run_events(
    events: Iterable[RecordedEvent],
    settings: Settings | None = None,
    *,
    params: EngineParams | None = None,
) -> BacktestResult:
    """Run the core over events already in event-time order (e.g. built in a test)."""
    settings = settings or load_settings()
    core = BacktestCore(settings, params)
    driver = _Driver(core, backtest_limits(settings), ["<event>"])
    for n, ev in enumerate(events, start=1):
        driver.event(ev, 0, n)
    return _finish(core, driver)


def _finish(core: BacktestCore, driver: _Driver) -> BacktestResult:
    driver.flush()
    core.finish()
    return BacktestResult(
        reactions=sort_reactions(core.reactions),
        alerts=core.alerts(),
        headlines=core.headlines,
        counts=core.counts,
        prices=driver.prices(),
        params=core.params,
        invalid=driver.invalid,
        rejections=core.rejections,
    )


def backtest_reactions(
    paths: Sequence[str | Path], settings: Settings | None = None
) -> list[Reaction]:
    """The reactions a backtest of ``paths`` gives, in report order (for comparisons)."""
    return run_backtest(paths, settings).reactions
