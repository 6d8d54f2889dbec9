"""The recorded-stream file format, shared by ``replay``, ``record``, ``history`` and ``backtest``.

A recorded-stream file holds JSON lines, optionally gzipped (a ``.gz`` suffix), one message per
line, exactly in this shape (DESIGN.md)::

    {"stream":"ticks","key":"USDJPY","ts":1743552000000,"value":{...}}

``stream`` is a logical stream name (``ticks``, ``headlines``, ... as in
:data:`tariffmon.contract.MESSAGE_TYPES`), ``key`` the Kafka key as text (or ``null``), ``ts``
the event time in integer epoch milliseconds (the Kafka timestamp) and ``value`` the decoded
JSON value.  Writers emit the value with sorted keys and gzip with a zero mtime, so the same
events always give the same bytes.

Each file is expected in non-decreasing ``ts`` order; :func:`merge_events` merges several such
files lazily (a heap), breaking ties by file order then line order, so the merged order is
deterministic and the order of one key within one file is kept.
"""

from __future__ import annotations

import gzip
import heapq
import io
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import orjson

from tariffmon.errors import ContractError

#: the top-level fields of a line, in their written order
LINE_FIELDS = ("stream", "key", "ts", "value")
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


def parse_line(line: bytes | str, *, where: str = "<line>") -> RecordedEvent:
    """Parse one line; any problem raises ContractError naming ``where`` (file:line)."""
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise ContractError(where, _head(line), f"must be a JSON object ({exc})",
                            reason="bad_json") from None
    if not isinstance(obj, dict):
        raise ContractError(where, _head(line), "must be a JSON object", reason="bad_json")
    extra = set(obj) - set(LINE_FIELDS)
    if extra:
        name = sorted(extra)[0]
        raise ContractError(f"{where}: {name}", obj[name], "is not a field of a recorded line",
                            reason="unknown_field")
    for name in LINE_FIELDS:
        if name not in obj:
            raise ContractError(f"{where}: {name}", None, "is required", reason="missing_field")
    stream, key, ts, value = obj["stream"], obj["key"], obj["ts"], obj["value"]
    if not isinstance(stream, str) or not stream:
        raise ContractError(f"{where}: stream", stream, "must be a non-empty string",
                            reason="bad_type")
    if key is not None and not isinstance(key, str):
        raise ContractError(f"{where}: key", key, "must be a string or null", reason="bad_type")
    if type(ts) is not int or ts < 0:
        raise ContractError(f"{where}: ts", ts, "must be non-negative integer epoch milliseconds",
                            reason="bad_type")
    if not isinstance(value, dict):
        raise ContractError(f"{where}: value", value, "must be a JSON object", reason="bad_type")
    return RecordedEvent(stream, key, ts, value)


def _head(line: bytes | str) -> str:
    text = line.decode("utf-8", "replace") if isinstance(line, bytes) else line
    return text[:80]


def _open_read(path: Path) -> io.BufferedIOBase:
    if is_gzip_path(path):
        return gzip.open(path, "rb")
    return path.open("rb")


def read_events(path: str | Path) -> Iterator[RecordedEvent]:
    """Stream the events of one file in file order; blank lines are skipped.

    A bad line raises ContractError naming the file and the line number.
    """
    p = Path(path)
    try:
        fh = _open_read(p)
    except OSError as exc:
        raise ContractError(str(p), None, f"cannot be opened ({exc})", reason="io") from None
    with fh:
        try:
            for lineno, raw in enumerate(fh, start=1):
                if not raw.strip():
                    continue
                yield parse_line(raw, where=f"{p}:{lineno}")
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            raise ContractError(str(p), None, f"cannot be read ({exc})", reason="io") from None


def _checked_order(path: Path, events: Iterator[RecordedEvent]) -> Iterator[RecordedEvent]:
    last = -1
    for n, ev in enumerate(events, start=1):
        if ev.ts < last:
            raise ContractError(
                f"{path}: event {n}", ev.ts,
                f"ts goes backwards (previous {last}); a recorded file must be sorted by ts",
                reason="unsorted",
            )
        last = ev.ts
        yield ev


def merge_events(
    paths: Sequence[str | Path], from_ts: int | None = None, to_ts: int | None = None
) -> Iterator[RecordedEvent]:
    """Merge sorted files lazily by ``(ts, file order, line order)``; ``[from_ts, to_ts)`` filter.

    Stable and deterministic: for equal timestamps the earlier file, then the earlier line,
    comes first.  A file whose ``ts`` goes backwards raises ContractError.
    """
    def keyed(idx: int, path: Path) -> Iterator[tuple[int, int, int, RecordedEvent]]:
        for n, ev in enumerate(_checked_order(path, read_events(path))):
            if to_ts is not None and ev.ts >= to_ts:
                return  # sorted: nothing later in this file can be in range
            if from_ts is not None and ev.ts < from_ts:
                continue
            yield ev.ts, idx, n, ev

    streams = [keyed(i, Path(p)) for i, p in enumerate(paths)]
    for _ts, _i, _n, ev in heapq.merge(*streams):
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
