"""`tariffmon backtest`: a file that cannot be read to its end fails the command."""

from __future__ import annotations

from pathlib import Path

import pytest

from tariffmon.cli.main import main
from tariffmon.recorded import RecordedEvent, write_events
from tariffmon.settings import PROJECT_ROOT

HEADLINES = PROJECT_ROOT / "data" / "sample" / "headlines.jsonl"


def _ticks(n: int) -> list[RecordedEvent]:
    t0 = 1_743_552_000_000
    return [RecordedEvent("ticks", "USDJPY", t0 + i * 1_000, {
        "v": 1, "symbol": "USDJPY", "ts": t0 + i * 1_000, "price": 149.0 + (i % 50) / 100,
        "source": "test", "kind": "quote"}) for i in range(n)]


def _backtest(files: list[Path], out: Path) -> int:
    return main(["backtest", *map(str, files), "--out", str(out), "--no-charts", "--quiet",
                 "--no-progress"])


def test_truncated_input_writes_the_report_and_exits_non_zero(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    whole = tmp_path / "ticks.jsonl.gz"
    write_events(whole, _ticks(20_000))
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(whole.read_bytes()[:-100])
    out = tmp_path / "out"
    assert _backtest([cut, HEADLINES], out) == 2
    captured = capsys.readouterr()
    assert f"tariffmon backtest: error: {cut}: reading stopped at line " in captured.err
    assert "truncated" in captured.err
    summary = (out / "summary.txt").read_text()
    assert "INCOMPLETE INPUT" in summary and str(cut) in summary
    assert (out / "reactions.jsonl").exists()


def test_bad_lines_alone_do_not_fail_the_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ticks = tmp_path / "ticks.jsonl"
    write_events(ticks, _ticks(100))
    ticks.write_bytes(ticks.read_bytes() + b"not json\n")
    assert _backtest([ticks, HEADLINES], tmp_path / "out") == 0
    assert "error" not in capsys.readouterr().err
    assert "1 invalid input lines skipped (?:bad_json: 1)" in (
        tmp_path / "out" / "summary.txt").read_text()
