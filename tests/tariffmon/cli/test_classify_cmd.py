"""`tariffmon classify`: arguments or stdin in, one JSON object per line out."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tariffmon.cli.main import main


def _run(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> tuple[int, list[dict[str, Any]], str]:
    code = main(["classify", *argv])
    captured = capsys.readouterr()
    lines = [json.loads(line) for line in captured.out.splitlines()]
    return code, lines, captured.err


def test_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(
        ["Trump imposes 24% reciprocal tariffs on Japan", "Yen weakens after BOJ holds rates"],
        capsys,
    )
    assert code == 0
    assert out == [
        {
            "text": "Trump imposes 24% reciprocal tariffs on Japan",
            "is_tariff": True,
            "score": 5.0,
            "tags": ["japan", "reciprocal", "tariff", "trump"],
            "direction": "escalation",
            "matched": ["trump", "reciprocal", "tariffs", "japan"],
        },
        {
            "text": "Yen weakens after BOJ holds rates",
            "is_tariff": False,
            "score": 0.0,
            "tags": [],
            "direction": "neutral",
            "matched": [],
        },
    ]


def test_stdin_one_per_line_skipping_blank_lines(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        sys, "stdin",
        io.StringIO("Trump pauses tariffs for 90 days\n\n  Police officer on duty  \n"),
    )
    code, out, _ = _run(["--explain"], capsys)
    assert code == 0
    assert [(o["text"], o["is_tariff"], o["direction"]) for o in out] == [
        ("Trump pauses tariffs for 90 days", True, "de-escalation"),
        ("Police officer on duty", False, "neutral"),
    ]
    assert out[1]["masked"] == ["on duty"]
    assert out[0]["cues"] == ["de-escalation:pause"]


def test_threshold_override(capsys: pytest.CaptureFixture[str]) -> None:
    text = "Trump pauses tariffs for 90 days"
    _, default, _ = _run([text], capsys)
    _, strict, _ = _run(["--threshold", "10", text], capsys)
    assert default[0]["is_tariff"] is True
    assert strict[0]["is_tariff"] is False
    assert strict[0]["score"] == default[0]["score"]


def test_rules_override(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "terms:\n  - tag: widget\n    weight: 5\n    patterns: ['widgets?']\n", encoding="utf-8"
    )
    code, out, _ = _run(["--rules", str(rules), "Widget tariffs", "Trump tariffs"], capsys)
    assert code == 0
    assert [(o["is_tariff"], o["tags"]) for o in out] == [(True, ["widget"]), (False, [])]


def test_bad_rules_file_is_a_config_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code = main(["classify", "--rules", str(tmp_path / "missing.yaml"), "x"])
    err = capsys.readouterr().err
    assert code == 2
    assert "classifier.rules_file" in err


@pytest.mark.parametrize("value", ["0", "-1", "abc", "nan"])
def test_bad_threshold_is_a_usage_error(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["classify", "--threshold", value, "x"])
    assert exc.value.code == 2
    assert "--threshold" in capsys.readouterr().err


def test_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["classify", "--help"])
    assert exc.value.code == 0
    assert "stdin" in capsys.readouterr().out


def test_console_script_reads_a_pipe() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "tariffmon.cli.main", "classify"],
        input="Japan\u2019s envoy Akazawa in trade talks\nNikkei rises on tech earnings\n",
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    out = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [o["is_tariff"] for o in out] == [True, False]
    assert out[0]["text"] == "Japan\u2019s envoy Akazawa in trade talks"
