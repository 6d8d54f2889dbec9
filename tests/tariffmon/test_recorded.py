"""The recorded-stream file format: exact lines, gzip, deterministic merge, clear errors."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from tariffmon.errors import ContractError, RecordedStreamError
from tariffmon.recorded import (
    BadLine,
    BadLineCounter,
    RecordedEvent,
    RecordedReader,
    RecordedWriter,
    make_readers,
    merge_entries,
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


def test_missing_file_is_a_read_error(tmp_path: Path) -> None:
    with pytest.raises(RecordedStreamError, match="cannot be opened") as info:
        list(read_events(tmp_path / "nope.jsonl"))
    assert info.value.path == str(tmp_path / "nope.jsonl")


GOOD = [ev("ticks", "A", 10 * i, n=i) for i in range(6)]
#: one line of each kind a reader hands to the bad-line policy, and its "stream:reason"
BAD_LINES = [
    (b"not json", "?:bad_json"),
    (b'["an", "array"]', "?:bad_json"),
    (b'{"stream":"ticks","key":"A","value":{}}', "?:missing_field"),
    (b'{"stream":"ticks","key":"A","ts":"20","value":{}}', "?:bad_type"),
    (b'{"stream":"ticks","key":"A","ts":-1,"value":{}}', "?:bad_type"),
    (b'{"stream":"","key":"A","ts":20,"value":{}}', "?:bad_type"),
    (b'{"stream":"ticks","key":"A","ts":20,"value":"x"}', "?:bad_type"),
    (b'{"stream":"ticks","key":"A","ts":20,"value":{},"extra":1}', "?:unknown_field"),
    (GOOD[0].to_line(), "ticks:unsorted"),  # ts 0 after ts 20: goes backwards
]


def _mixed(path: Path) -> list[bytes]:
    """Good lines with every kind of bad line (and a blank one) after the third."""
    lines = [e.to_line() for e in GOOD]
    lines[3:3] = [b for b, _ in BAD_LINES] + [b"   "]
    data = b"\n".join(lines) + b"\n"
    path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)
    return lines


@pytest.mark.parametrize("name", ["mixed.jsonl", "mixed.jsonl.gz"])
def test_bad_lines_go_to_the_policy_and_reading_goes_on(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    _mixed(path)
    seen: list[BadLine] = []
    assert list(read_events(path, on_bad_line=seen.append)) == GOOD
    assert [f"{b.stream}:{b.reason}" for b in seen] == [r for _, r in BAD_LINES]
    # lines 4.. hold the bad ones, in order; each error names its file and line
    assert [b.where for b in seen] == [f"{path}:{4 + i}" for i in range(len(BAD_LINES))]
    assert all(str(b.error).startswith(b.where) for b in seen)
    counter = BadLineCounter(max_examples=2)
    assert list(merge_events([path], on_bad_line=counter)) == GOOD
    assert counter.total == len(BAD_LINES) and len(counter.examples) == 2
    assert counter.counts["?:bad_type"] == 4 and counter.counts["ticks:unsorted"] == 1
    assert counter.summary().startswith(f"{len(BAD_LINES)} bad lines skipped (?:bad_json: 2,")


def test_the_default_policy_raises_at_the_first_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "mixed.jsonl"
    _mixed(path)
    got: list[RecordedEvent] = []
    with pytest.raises(ContractError) as info:
        got.extend(merge_events([path]))
    assert info.value.reason == "bad_json" and info.value.field == f"{path}:4"
    assert got == GOOD[:3]


def _sample_gzip(tmp_path: Path) -> tuple[Path, bytes]:
    events = [ev("ticks", "USDJPY", 1000 + i, price=100.0 + i % 7, pad="x" * (i % 13))
              for i in range(300)]
    path = tmp_path / "whole.jsonl.gz"
    write_events(path, events)
    return path, path.read_bytes()


def test_truncated_gzip_raises_naming_file_and_position_at_every_cut(tmp_path: Path) -> None:
    whole, data = _sample_gzip(tmp_path)
    full = list(read_events(whole))
    cut_file = tmp_path / "cut.jsonl.gz"
    # every cut in the header and the trailer, and a spread through the deflate stream
    cuts = sorted({*range(0, 24), *range(24, len(data), 37), *range(len(data) - 12, len(data))})
    for cut in cuts:
        cut_file.write_bytes(data[:cut])
        got: list[RecordedEvent] = []
        with pytest.raises(RecordedStreamError) as info:
            got.extend(read_events(cut_file))
        err = info.value
        assert err.path == str(cut_file) and str(cut_file) in str(err), cut
        assert got == full[: len(got)], cut  # what came out is a prefix, no garbage
        assert err.line == len(got) + 1, cut
        assert 0 <= err.byte <= cut, cut
        assert "truncated" in err.cause or "not a gzip" in err.cause, (cut, err.cause)


def test_truncated_gzip_stops_a_merge_with_the_other_files(tmp_path: Path) -> None:
    _whole, data = _sample_gzip(tmp_path)
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(data[: len(data) // 2])
    other = tmp_path / "other.jsonl"
    write_events(other, [ev("headlines", "h", 5000, title="t")])
    with pytest.raises(RecordedStreamError, match=r"cut\.jsonl\.gz: reading stopped at line"):
        list(merge_events([other, cut]))


def test_a_dot_gz_that_is_not_gzip_is_a_read_error(tmp_path: Path) -> None:
    path = tmp_path / "plain.jsonl.gz"
    write_events(tmp_path / "plain.jsonl", GOOD)
    path.write_bytes((tmp_path / "plain.jsonl").read_bytes())
    with pytest.raises(RecordedStreamError, match="not a gzip file") as info:
        list(read_events(path, on_bad_line=BadLineCounter()))
    assert info.value.line == 1


def test_bytes_that_are_not_utf8_are_a_read_error(tmp_path: Path) -> None:
    path = tmp_path / "binary.jsonl.gz"
    path.write_bytes(gzip.compress(GOOD[0].to_line() + b"\n\xff\xfe\x00garbage\n"))
    got: list[RecordedEvent] = []
    with pytest.raises(RecordedStreamError, match="not UTF-8") as info:
        got.extend(read_events(path, on_bad_line=BadLineCounter()))
    assert got == GOOD[:1] and info.value.line == 2


def test_merge_entries_ties_by_file_then_line(tmp_path: Path) -> None:
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl.gz"
    write_events(a, [ev("ticks", "A", 5, n=1), ev("ticks", "A", 5, n=2)])
    write_events(b, [ev("ticks", "B", 5, n=3), ev("ticks", "B", 5, n=4),
                     ev("ticks", "B", 6, n=5)])
    entries = list(merge_entries(make_readers([b, a])))
    assert [(ts, i, n) for ts, i, n, _ in entries] == [
        (5, 0, 1), (5, 0, 2), (5, 1, 1), (5, 1, 2), (6, 0, 3)]
    assert [e.value["n"] for *_, e in entries] == [3, 4, 1, 2, 5]


def test_reader_counts_bytes_as_stored(tmp_path: Path) -> None:
    path, data = _sample_gzip(tmp_path)
    reader = RecordedReader(path)
    it = reader.entries()
    assert reader.bytes_read() == 0
    next(it)
    assert 0 < reader.bytes_read() <= len(data)
    for _ in it:
        pass
    assert reader.bytes_read() == len(data)
    # a to_ts stop also counts the file whole
    stopped = RecordedReader(path)
    assert [e[0] for e in stopped.entries(to_ts=1002)] == [1000, 1001]
    assert stopped.bytes_read() == len(data)
