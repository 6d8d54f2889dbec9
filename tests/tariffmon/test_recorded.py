"""The recorded-stream file format: exact lines, gzip, deterministic merge, clear errors."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from tariffmon.errors import ContractError
from tariffmon.recorded import (
    RecordedEvent,
    RecordedWriter,
    merge_events,
    parse_line,
    read_events,
    write_events,
)


def ev(stream: str, key: str | None, ts: int, **value: object) -> RecordedEvent:
    return RecordedEvent(stream, key, ts, dict(value))


def test_line_format_is_exact_and_value_keys_sorted() -> None:
    line = ev("ticks", "USDJPY", 1743552000000, symbol="USDJPY", price=149.5, v=1).to_line()
    assert line == (
        b'{"stream":"ticks","key":"USDJPY","ts":1743552000000,'
        b'"value":{"price":149.5,"symbol":"USDJPY","v":1}}'
    )
    assert parse_line(line) == ev("ticks", "USDJPY", 1743552000000,
                                  symbol="USDJPY", price=149.5, v=1)


@pytest.mark.parametrize("name", ["events.jsonl", "events.jsonl.gz"])
def test_write_read_round_trip(tmp_path: Path, name: str) -> None:
    events = [ev("ticks", "N225", 1000 + i, price=float(i), nested={"b": 1, "a": [1, 2]})
              for i in range(5)] + [ev("headlines", None, 2000, title="t")]
    path = tmp_path / name
    assert write_events(path, events) == 6
    assert list(read_events(path)) == events
    if name.endswith(".gz"):
        assert gzip.decompress(path.read_bytes()).count(b"\n") == 6


def test_gzip_output_is_byte_identical_for_identical_events(tmp_path: Path) -> None:
    events = [ev("ticks", "USDJPY", i, price=1.0 + i) for i in range(1000)]
    write_events(tmp_path / "a.jsonl.gz", events)
    write_events(tmp_path / "b.jsonl.gz", events)
    assert (tmp_path / "a.jsonl.gz").read_bytes() == (tmp_path / "b.jsonl.gz").read_bytes()


def test_writer_context_manager_counts(tmp_path: Path) -> None:
    with RecordedWriter(tmp_path / "w.jsonl") as w:
        w.write(ev("ticks", "USDJPY", 1, price=1.0))
        w.write_line(ev("ticks", "USDJPY", 2, price=2.0).to_line())
    assert w.count == 2
    assert [e.ts for e in read_events(tmp_path / "w.jsonl")] == [1, 2]


def test_merge_is_by_ts_then_file_then_line(tmp_path: Path) -> None:
    a = tmp_path / "a.jsonl"
    b = tmp_path / "b.jsonl.gz"
    write_events(a, [ev("ticks", "A", 1, n=1), ev("ticks", "A", 3, n=2),
                     ev("ticks", "A", 3, n=3)])
    write_events(b, [ev("headlines", "h", 0, n=4), ev("ticks", "B", 3, n=5),
                     ev("ticks", "B", 9, n=6)])
    merged = [e.value["n"] for e in merge_events([a, b])]
    assert merged == [4, 1, 2, 3, 5, 6]
    # file order decides ties: swapping the files swaps the tied events
    assert [e.value["n"] for e in merge_events([b, a])] == [4, 1, 5, 2, 3, 6]
    assert [e.value["n"] for e in merge_events([a, b], from_ts=1, to_ts=9)] == [1, 2, 3, 5]


@pytest.mark.parametrize(
    ("line", "field"),
    [
        (b"not json", "bad.jsonl:2"),
        (b'{"stream":"ticks","key":"A","ts":"1","value":{}}', "bad.jsonl:2: ts"),
        (b'{"stream":"ticks","key":"A","ts":1}', "bad.jsonl:2: value"),
        (b'{"stream":"ticks","key":"A","ts":1,"value":[]}', "bad.jsonl:2: value"),
        (b'{"stream":"ticks","key":5,"ts":1,"value":{}}', "bad.jsonl:2: key"),
        (b'{"stream":"ticks","key":"A","ts":1,"value":{},"x":1}', "bad.jsonl:2: x"),
        (b'{"stream":"","key":"A","ts":1,"value":{}}', "bad.jsonl:2: stream"),
    ],
)
def test_bad_line_names_file_and_line(tmp_path: Path, line: bytes, field: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_bytes(ev("ticks", "A", 0).to_line() + b"\n" + line + b"\n")
    with pytest.raises(ContractError) as info:
        list(read_events(path))
    assert info.value.field.endswith(field)
    assert str(path) in str(info.value)


def test_unsorted_file_is_refused_by_merge(tmp_path: Path) -> None:
    path = tmp_path / "unsorted.jsonl"
    write_events(path, [ev("ticks", "A", 5), ev("ticks", "A", 4)])
    with pytest.raises(ContractError, match="backwards"):
        list(merge_events([path]))


def test_missing_file_is_a_contract_error(tmp_path: Path) -> None:
    with pytest.raises(ContractError, match="cannot be opened"):
        list(read_events(tmp_path / "nope.jsonl"))
