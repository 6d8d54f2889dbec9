"""The recorded-stream file format, shared by ``replay``, ``record``, ``history`` and ``backtest``.

A recorded-stream file holds JSON lines, optionally gzipped (a ``.gz`` suffix), one message per
line, exactly in this shape (README.md, docs/ARCHITECTURE.md)::

    {"stream":"ticks","key":"USDJPY","ts":1743552000000,"value":{...}}

``stream`` is a logical stream name (``ticks``, ``headlines``, ... as in
:data:`tariffmon.contract.MESSAGE_TYPES`), ``key`` the Kafka key as text (or ``null``), ``ts``
the event time in integer epoch milliseconds (the Kafka timestamp) and ``value`` the decoded
JSON value.  Writers emit the value with sorted keys and gzip with a zero mtime, so the same
events always give the same bytes.

Each file is expected in non-decreasing ``ts`` order; :func:`merge_events` merges several such
files lazily (a heap), breaking ties by file order then line order, so the merged order is
deterministic and the order of one key within one file is kept.

:class:`RecordedReader` is the one reader of the format: every reading (replay, backtest,
tests, benches) goes through it.  A bad line goes to the caller's ``on_bad_line`` policy
(raise by default, or skip and count with :class:`BadLineCounter`); a file that cannot be
read to its end raises :class:`~tariffmon.errors.RecordedStreamError`.
"""

from __future__ import annotations

import contextlib
import gzip
import heapq
import io
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, NoReturn

import orjson

from tariffmon.errors import ContractError, RecordedStreamError

#: the top-level fields of a line, in their written order
LINE_FIELDS = ("stream", "key", "ts", "value")
_FIELD_SET = frozenset(LINE_FIELDS)
_FLUSH_BYTES = 1 << 16


@dataclass(frozen=True, slots=True)
class RecordedEvent:
    """One line of a recorded-stream file."""

    stream: str
    key: str | None
    ts: int
    value: dict[str, Any] = field(default_factory=dict)

    def to_line(self) -> bytes:
        """The JSON line (without newline), fields in the fixed order, value keys sorted."""
        return b"".join((
            b'{"stream":', orjson.dumps(self.stream),
            b',"key":', orjson.dumps(self.key),
            b',"ts":', orjson.dumps(self.ts),
            b',"value":', orjson.dumps(self.value, option=orjson.OPT_SORT_KEYS),
            b"}",
        ))


def is_gzip_path(path: str | Path) -> bool:
    """Whether a path names a gzipped file (by its ``.gz`` suffix)."""
    return str(path).endswith(".gz")


@dataclass(frozen=True, slots=True)
class BadLine:
    """One line of a file that is not a usable recorded event; the file goes on after it."""

    where: str  # file:line
    stream: str  # the line's stream, or "?" when the line itself is unreadable
    error: ContractError  # names ``where`` too, so it explains itself when raised

    @property
    def reason(self) -> str:
        """The short reason code: ``bad_json``, ``missing_field``, ``unsorted``, ..."""
        return self.error.reason


#: what a reader does with a bad line: raise to stop, return to skip the line
OnBadLine = Callable[[BadLine], None]


def raise_bad_line(bad: BadLine) -> NoReturn:
    """The strict policy (the default): the first bad line stops the reading."""
    raise bad.error


class BadLineCounter:
    """A policy that skips bad lines, counting them by ``stream:reason``, keeping a few."""

    def __init__(self, max_examples: int = 5) -> None:
        self.counts: Counter[str] = Counter()
        self.examples: list[BadLine] = []
        self.max_examples = max_examples

    def __call__(self, bad: BadLine) -> None:
        """Count and skip one bad line."""
        self.counts[f"{bad.stream}:{bad.reason}"] += 1
        if len(self.examples) < self.max_examples:
            self.examples.append(bad)

    @property
    def total(self) -> int:
        """Bad lines seen."""
        return sum(self.counts.values())

    def summary(self) -> str:
        """One line for a log: how many, by reason, and the first example."""
        detail = ", ".join(f"{k}: {n}" for k, n in sorted(self.counts.items()))
        text = f"{self.total} bad lines skipped ({detail})"
        if self.examples:
            text += f"; first: {self.examples[0].error}"
        return text


def parse_line(line: bytes | str, *, where: str = "<line>") -> RecordedEvent:
    """Parse one line; any problem raises ContractError naming ``where`` (file:line)."""
    try:
        return _parse(line)
    except ContractError as exc:
        raise _located(exc, where) from None


def _parse(line: bytes | str) -> RecordedEvent:
    """Parse one line; errors name the field only, so no location is built for good lines."""
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise ContractError("$", _head(line), f"must be a JSON object ({exc})",
                            reason="bad_json") from None
    if type(obj) is dict and obj.keys() == _FIELD_SET:
        stream, key, ts, value = obj["stream"], obj["key"], obj["ts"], obj["value"]
        # the usual line, in one test (orjson builds exact dicts and strs, no subclasses)
        if (type(stream) is str and stream and (key is None or type(key) is str)
                and type(ts) is int and ts >= 0 and type(value) is dict):
            return RecordedEvent(stream, key, ts, value)
    if not isinstance(obj, dict):
        raise ContractError("$", _head(line), "must be a JSON object", reason="bad_json")
    if obj.keys() != _FIELD_SET:
        extra = set(obj) - _FIELD_SET
        if extra:
            name = sorted(extra)[0]
            raise ContractError(name, obj[name], "is not a field of a recorded line",
                                reason="unknown_field")
        missing = [name for name in LINE_FIELDS if name not in obj]
        raise ContractError(missing[0], None, "is required", reason="missing_field")
    stream, key, ts, value = obj["stream"], obj["key"], obj["ts"], obj["value"]
    if not isinstance(stream, str) or not stream:
        raise ContractError("stream", stream, "must be a non-empty string", reason="bad_type")
    if key is not None and not isinstance(key, str):
        raise ContractError("key", key, "must be a string or null", reason="bad_type")
    if type(ts) is not int or ts < 0:
        raise ContractError("ts", ts, "must be non-negative integer epoch milliseconds",
                            reason="bad_type")
    if not isinstance(value, dict):
        raise ContractError("value", value, "must be a JSON object", reason="bad_type")
    return RecordedEvent(stream, key, ts, value)


def _located(exc: ContractError, where: str) -> ContractError:
    field_name = where if exc.field == "$" else f"{where}: {exc.field}"
    return ContractError(field_name, exc.value, exc.rule, reason=exc.reason)


def _head(line: bytes | str) -> str:
    text = line.decode("utf-8", "replace") if isinstance(line, bytes) else line
    return text[:80]


def _read_failure(exc: BaseException) -> str:
    if isinstance(exc, gzip.BadGzipFile):
        return f"not a gzip file ({exc})"
    if isinstance(exc, EOFError):
        return f"the file ends early, truncated ({exc})"
    if isinstance(exc, zlib.error):
        return f"corrupt compressed data ({exc})"
    return f"I/O error ({exc})"


#: one entry of a reader: (ts, file index, line number, event); the first three are unique
#: across the readers of one merge, so a heap never compares two events
Entry = tuple[int, int, int, RecordedEvent]


class RecordedReader:
    """One recorded-stream file, read in file order: the one reader of the format.

    Two kinds of problem, kept apart:

    * a bad line -- not JSON, not an object, a missing or invalid field, a ``ts`` earlier
      than the line before -- is handed to ``on_bad_line`` as a :class:`BadLine`; the
      default, :func:`raise_bad_line`, raises its ContractError, a policy that returns
      skips the line and the reading goes on;
    * a file that cannot be read to its end -- it cannot be opened, an I/O error, a
      truncated or corrupt gzip, a ``.gz`` that is not gzip, bytes that are not UTF-8 --
      raises :class:`~tariffmon.errors.RecordedStreamError` naming the file, the line and
      the byte where reading stopped; the events before it have been yielded.

    Blank lines are skipped.  ``index`` is the file's position among the files of a merge.
    """

    def __init__(
        self, path: str | Path, index: int = 0, *, on_bad_line: OnBadLine | None = None
    ) -> None:
        self.path = Path(path)
        self.index = index
        self.on_bad_line: OnBadLine = on_bad_line or raise_bad_line
        self._raw: io.BufferedReader | None = None
        self._done = 0

    def bytes_read(self) -> int:
        """Bytes of the file, as stored (compressed, if gzipped), consumed so far."""
        raw = self._raw
        if raw is None or raw.closed:
            return self._done
        return raw.tell()

    def entries(self, from_ts: int | None = None, to_ts: int | None = None) -> Iterator[Entry]:
        """The file's events in ``[from_ts, to_ts)`` as :data:`Entry` tuples, in file order.

        The file must be sorted by ``ts`` (a line going backwards is a bad line), so the
        reading stops at the first event at or after ``to_ts``.
        """
        name = str(self.path)
        try:
            raw = self._raw = self.path.open("rb")
        except OSError as exc:
            raise RecordedStreamError(name, 1, 0, f"cannot be opened ({exc})") from None
        gz = is_gzip_path(self.path)
        fh: io.BufferedIOBase = gzip.GzipFile(fileobj=raw, mode="rb") if gz else raw
        index, on_bad_line = self.index, self.on_bad_line
        last = -1
        lineno = 0
        try:
            with raw, fh:
                try:
                    for lineno, line in enumerate(fh, start=1):
                        try:
                            ev = _parse(line)
                        except ContractError as exc:
                            # the checks live here, off the path every good line takes
                            if not line.strip():
                                continue
                            self._check_text(line, lineno, raw)
                            where = f"{name}:{lineno}"
                            on_bad_line(BadLine(where, "?", _located(exc, where)))
                            continue
                        ts = ev.ts
                        if ts < last:
                            where = f"{name}:{lineno}"
                            on_bad_line(BadLine(where, ev.stream, ContractError(
                                f"{where}: ts", ts, f"goes backwards (previous {last}); a "
                                "recorded file must be sorted by ts", reason="unsorted")))
                            continue
                        last = ts
                        if to_ts is not None and ts >= to_ts:
                            return  # sorted: nothing later in this file can be in range
                        if from_ts is not None and ts < from_ts:
                            continue
                        yield ts, index, lineno, ev
                    if gz and raw.tell() == 0:
                        # gzip reads an empty file as no data; but even a gzip of nothing
                        # has a header, so this is a file cut before its first byte
                        raise EOFError("the file is empty; a gzip file has a header")
                except (OSError, EOFError, zlib.error) as exc:
                    raise RecordedStreamError(
                        name, lineno + 1, raw.tell(), _read_failure(exc)) from None
        finally:
            # a finished file counts whole: what a to_ts stop skipped is done with too
            with contextlib.suppress(OSError):
                self._done = self.path.stat().st_size

    def _check_text(self, line: bytes, lineno: int, raw: io.BufferedReader) -> None:
        # orjson refuses bytes that are not UTF-8 like any other bad JSON; but the writers
        # only write UTF-8, so such bytes mean a binary or corrupt file, not one bad line
        try:
            line.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise RecordedStreamError(
                str(self.path), lineno, raw.tell(),
                f"not UTF-8 text ({exc.reason} at byte {exc.start} of the line): "
                "not a recorded-stream file, or a corrupt one",
            ) from None


def make_readers(
    paths: Sequence[str | Path], *, on_bad_line: OnBadLine | None = None
) -> list[RecordedReader]:
    """One reader per file, indexed by its position (what breaks ties in a merge)."""
    return [RecordedReader(p, i, on_bad_line=on_bad_line) for i, p in enumerate(paths)]


def merge_entries(
    readers: Sequence[RecordedReader], from_ts: int | None = None, to_ts: int | None = None
) -> Iterator[Entry]:
    """Merge the readers' entries lazily by ``(ts, file index, line number)``.

    The readers' indexes must differ (as :func:`make_readers` gives them).
    """
    if len(readers) == 1:
        return readers[0].entries(from_ts, to_ts)  # nothing to merge: no heap per line
    return heapq.merge(*(r.entries(from_ts, to_ts) for r in readers))


def read_events(
    path: str | Path, *, on_bad_line: OnBadLine | None = None
) -> Iterator[RecordedEvent]:
    """Stream the events of one file in file order (see :class:`RecordedReader`).

    By default a bad line raises ContractError naming the file and the line number.
    """
    for _ts, _i, _n, ev in RecordedReader(path, on_bad_line=on_bad_line).entries():
        yield ev


def merge_events(
    paths: Sequence[str | Path],
    from_ts: int | None = None,
    to_ts: int | None = None,
    *,
    on_bad_line: OnBadLine | None = None,
) -> Iterator[RecordedEvent]:
    """Merge sorted files lazily by ``(ts, file order, line order)``; ``[from_ts, to_ts)`` filter.

    Stable and deterministic: for equal timestamps the earlier file, then the earlier line,
    comes first.  Bad lines (including a ``ts`` going backwards) go to ``on_bad_line``, by
    default raising ContractError; a file that cannot be read to its end raises
    :class:`~tariffmon.errors.RecordedStreamError`.
    """
    for _ts, _i, _n, ev in merge_entries(make_readers(paths, on_bad_line=on_bad_line),
                                         from_ts, to_ts):
        yield ev


def _open_write(path: Path) -> io.BufferedIOBase:
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = path.open("wb")
    if not is_gzip_path(path):
        return raw
    # mtime=0 and no file name in the header: identical events give identical bytes
    return _GzipOwningRaw(raw)


class _GzipOwningRaw(gzip.GzipFile):
    """A GzipFile that also closes the raw file it writes into."""

    def __init__(self, raw: io.BufferedIOBase) -> None:
        super().__init__(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6)
        self._raw = raw

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._raw.close()


class RecordedWriter:
    """Write events to a recorded-stream file (gzipped when the path ends in ``.gz``).

    Use as a context manager; the file is complete only after ``close``.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._fh: io.BufferedIOBase = _open_write(self.path)
        # gzip compresses per write call: batching lines keeps big files fast
        self._buf = bytearray()
        self.count = 0

    def write(self, event: RecordedEvent) -> None:
        """Append one event."""
        self.write_line(event.to_line())

    def write_line(self, line: bytes) -> None:
        """Append one formatted line (no newline), as made by :meth:`RecordedEvent.to_line`."""
        self._buf += line
        self._buf += b"\n"
        self.count += 1
        if len(self._buf) >= _FLUSH_BYTES:
            self._fh.write(self._buf)
            self._buf.clear()

    def close(self) -> None:
        """Flush and close the file."""
        if self._fh.closed:
            return
        try:
            if self._buf:
                self._fh.write(self._buf)
                self._buf.clear()
        finally:
            self._fh.close()

    def __enter__(self) -> RecordedWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def write_events(path: str | Path, events: Iterable[RecordedEvent]) -> int:
    """Write events to ``path`` (gzip by a ``.gz`` suffix); returns how many were written."""
    with RecordedWriter(path) as w:
        for ev in events:
            w.write(ev)
        return w.count
