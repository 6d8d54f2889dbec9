"""The backtest report on the bundled sample: files, table, charts and their plotted data."""

from __future__ import annotations

import base64
import csv
import io
import math
import re
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pytest

from tariffmon.backtest import BacktestResult, run_backtest
from tariffmon.backtest.charts import (
    STUDY_DIRECTIONS,
    Charts,
    build_charts,
    event_study_figure,
    price_timeline_figure,
)
from tariffmon.backtest.report import (
    REACTION_CSV_COLUMNS,
    ReportFiles,
    format_summary,
    summary_rows,
    write_report,
)
from tariffmon.cli.main import main as cli_main
from tariffmon.contract import Alert, Limits, Reaction
from tariffmon.settings import PROJECT_ROOT, load_settings

SAMPLE = PROJECT_ROOT / "data" / "sample"
SAMPLE_FILES = [SAMPLE / "ticks.jsonl.gz", SAMPLE / "headlines.jsonl"]


@pytest.fixture(scope="module")
def sample() -> BacktestResult:
    return run_backtest(SAMPLE_FILES, load_settings())


@pytest.fixture(scope="module")
def charts(sample: BacktestResult) -> Charts:
    return build_charts(sample)


@pytest.fixture(scope="module")
def report(
    sample: BacktestResult, charts: Charts, tmp_path_factory: pytest.TempPathFactory
) -> ReportFiles:
    out = tmp_path_factory.mktemp("report")
    return write_report(sample, out, html_file=True, built=charts,
                        sources=[str(p) for p in SAMPLE_FILES])


def _limits(result: BacktestResult) -> Limits:
    return Limits(frozenset(result.symbols))


def test_files_are_written(report: ReportFiles) -> None:
    names = {p.name for p in report.all()}
    assert {"reactions.jsonl", "reactions.csv", "alerts.jsonl", "summary.txt",
            "report.html"} <= names
    for sym in ("USDJPY", "N225"):
        assert {f"event_study_{sym}.png", f"timeline_{sym}.png"} <= names
    assert all(p.is_file() and p.stat().st_size > 0 for p in report.all())


def test_reactions_jsonl_is_the_encoded_contract_in_report_order(
    sample: BacktestResult, report: ReportFiles
) -> None:
    lines = report.reactions_jsonl.read_bytes().splitlines()
    assert lines == [r.encode() for r in sample.reactions]
    decoded = [Reaction.decode(line, _limits(sample)) for line in lines]
    assert decoded == sample.reactions
    order = [(r.t0, r.headline_id, r.symbol, r.horizon_s) for r in decoded]
    assert order == sorted(order)


def test_csv_has_the_same_rows(sample: BacktestResult, report: ReportFiles) -> None:
    with report.reactions_csv.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == list(REACTION_CSV_COLUMNS)
    assert len(rows) == len(sample.reactions)
    for row, r in zip(rows, sample.reactions, strict=True):
        assert (row["headline_id"], row["symbol"], int(row["horizon_s"])) == (
            r.headline_id, r.symbol, r.horizon_s)
        assert int(row["t0"]) == r.t0 and float(row["p0"]) == r.p0 and float(row["p1"]) == r.p1
        assert float(row["ret"]) == r.ret  # exact: floats are written round-trip
        assert (row["z"] == "") == (r.z is None)
        if r.z is not None:
            assert float(row["z"]) == r.z
        assert row["significant"] == ("true" if r.significant else "false")
        assert row["gap"] == ("true" if r.gap else "false")
        assert row["tags"] == ";".join(r.tags)


def test_alerts_jsonl_decodes(sample: BacktestResult, report: ReportFiles) -> None:
    lines = report.alerts_jsonl.read_bytes().splitlines()
    assert [Alert.decode(line, _limits(sample)) for line in lines] == sample.alerts
    assert len({a.key for a in sample.alerts}) == len(sample.alerts)


def test_summary_table_lists_every_measured_headline(sample: BacktestResult) -> None:
    text = format_summary(sample)
    rows = summary_rows(sample)
    assert len(rows) == len(sample.measured_headlines()) * len(sample.symbols)
    for h in sample.measured_headlines():
        assert h.title[:40] in text
    assert "ret/z 60m" in text and "gap" in text
    # the reciprocal-tariff row: USDJPY fell at 1 minute, significantly
    line = next(x for x in text.splitlines() if x.startswith("2025-04-02 20:10"))
    assert "USDJPY" in line and "escalation" in line and re.search(r"-\d+\.\dbp z=", line)
    assert "*" in line
    assert f"{sample.counts.reactions:,} reactions" in text


def test_charts_are_decodable_pngs(report: ReportFiles) -> None:
    for path in report.charts:
        img = mpimg.imread(path)
        assert img.ndim == 3 and img.shape[0] >= 300 and img.shape[1] >= 600
        assert float(np.std(img[..., :3])) > 0.01, f"{path.name} is blank"


def test_html_bundles_table_and_charts(sample: BacktestResult, report: ReportFiles) -> None:
    assert report.html is not None
    text = report.html.read_text(encoding="utf-8")
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)
    assert len(images) == len(report.charts) == 2 * len(sample.symbols)
    for data in images:
        img = mpimg.imread(io.BytesIO(base64.b64decode(data)), format="png")
        assert img.shape[0] >= 300
    assert text.count("<tr>") >= len(summary_rows(sample))
    assert "US president announces sweeping reciprocal tariffs" in text
    assert "<img" in text and 'src="http' not in text  # self-contained


def _line(fig: object, gid: str) -> tuple[np.ndarray, np.ndarray]:
    for ax in fig.axes:  # type: ignore[attr-defined]
        for line in ax.get_lines():
            if line.get_gid() == gid:
                return np.asarray(line.get_xdata(), float), np.asarray(line.get_ydata(), float)
    raise AssertionError(f"no line {gid}")


def test_plotted_means_equal_the_computed_event_study(
    sample: BacktestResult, charts: Charts
) -> None:
    for symbol in sample.symbols:
        studies = charts.studies[symbol]
        assert [s.direction for s in studies] == list(STUDY_DIRECTIONS)
        fig = event_study_figure(symbol, studies)
        box = fig.axes[0].get_legend()
        assert box is not None
        legend = [t.get_text() for t in box.get_texts()]
        for st in studies:
            if st.n_events == 0:
                continue
            x, y = _line(fig, f"mean:{st.direction}")
            np.testing.assert_array_equal(x, st.offsets_s / 60.0)
            np.testing.assert_array_equal(y, st.mean_bp)  # NaN where no event has a price
            assert any(f"n={st.n_events} events" in t and st.direction in t for t in legend)
            assert np.all(st.lower_bp[~np.isnan(st.mean_bp)] <= st.upper_bp[~np.isnan(
                st.mean_bp)])
            band = next(c for c in fig.axes[0].collections if c.get_gid() == f"band:"
                        f"{st.direction}")
            ys = np.concatenate([np.asarray(p.vertices)[:, 1] for p in band.get_paths()])
            assert math.isclose(ys.max(), np.nanmax(st.upper_bp), abs_tol=1e-9)
            assert math.isclose(ys.min(), np.nanmin(st.lower_bp), abs_tol=1e-9)


def test_event_study_averages_match_a_hand_computation(
    sample: BacktestResult, charts: Charts
) -> None:
    """The mean at +5 and -10 minutes, recomputed from the raw ticks."""
    st = next(s for s in charts.studies["USDJPY"] if s.direction == "escalation")
    assert st.n_events >= 3
    ts, px = sample.prices["USDJPY"].ts, sample.prices["USDJPY"].price
    t0s = {h.id: h.ts for h in sample.measured_headlines()}

    def price_at(t: int) -> float:
        return float(px[np.searchsorted(ts, t, side="right") - 1])

    for offset_s in (300, -600):
        col = int(np.nonzero(st.offsets_s == offset_s)[0][0])
        values = [
            math.log(price_at(t0s[i] + offset_s * 1_000) / price_at(t0s[i])) * 1e4
            for i in st.event_ids
            # the study leaves out points with a stale price (market closed)
            if t0s[i] + offset_s * 1_000 - ts[np.searchsorted(ts, t0s[i] + offset_s * 1_000,
                                                               side="right") - 1] <= 300_000
        ]
        assert st.n_at[col] == len(values)
        assert math.isclose(st.mean_bp[col], float(np.mean(values)), rel_tol=1e-12)
    assert st.mean_bp[np.nonzero(st.offsets_s == 0)[0][0]] == 0.0


def test_timeline_marks_each_tariff_headline(sample: BacktestResult) -> None:
    heads = sample.measured_headlines()
    prices = sample.prices["USDJPY"]
    fig = price_timeline_figure("USDJPY", prices, heads, 300_000)
    gids = {ln.get_gid() for ln in fig.axes[0].get_lines()}
    inside = [h for h in heads if prices.ts[0] <= h.ts <= prices.ts[-1]]
    assert {f"headline:{h.id}" for h in inside} <= gids and "price" in gids
    _x, y = _line(fig, "price")
    assert np.nanmin(y) == prices.price.min() and np.nanmax(y) == prices.price.max()
    assert "JPY per USD" in fig.axes[0].get_ylabel()


def test_cli_writes_the_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    code = cli_main(["backtest", *map(str, SAMPLE_FILES), "--out", str(out), "--html",
                     "--from", "2025-04-02T18:00Z", "--to", "2025-04-03T12:00Z"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "US president announces sweeping reciprocal tariffs" in printed
    assert f"to {out}" in printed
    assert (out / "reactions.jsonl").is_file() and (out / "report.html").is_file()
    assert (out / "event_study_USDJPY.png").is_file()
    lines = (out / "reactions.jsonl").read_bytes().splitlines()
    assert lines and all(Reaction.decode(x).t0 >= 1_743_616_800_000 for x in lines)


def test_cli_rejects_a_bad_time(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = cli_main(["backtest", str(SAMPLE_FILES[1]), "--out", str(tmp_path),
                     "--from", "yesterday"])
    assert code == 2
    assert "--from" in capsys.readouterr().err
