"""What a backtest writes: reactions (JSON lines and CSV), alerts, a summary table, charts, HTML.

``reactions.jsonl`` holds exactly ``Reaction.encode()`` per line, sorted by
``(t0, headline_id, symbol, horizon_s)``, so it can be compared byte for byte with what the
live pipeline publishes.  ``reactions.csv`` has the same rows, one column per contract field
(plus a readable ``t0_utc``).  ``alerts.jsonl`` holds the final value of each alert key.
The summary table has one row per (tariff headline, symbol): return in basis points and z per
horizon, ``*`` where significant, and the gap flag; ``report.html`` bundles it with the
charts (embedded PNG), so the one file can be mailed or archived.
"""

from __future__ import annotations

import base64
import csv
import dataclasses
import datetime as dt
import html
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tariffmon.backtest.charts import DIRECTION_COLORS, Chart, Charts, build_charts
from tariffmon.backtest.runner import BacktestResult, sort_reactions
from tariffmon.contract import Alert, ClassifiedHeadline, Reaction

#: the CSV's columns: a readable time, then every field of the contract's Reaction
REACTION_CSV_COLUMNS: tuple[str, ...] = ("t0_utc", *(f.name for f in dataclasses.fields(Reaction)))
#: terminal width given to the headline text (the table's last column)
TITLE_CHARS = 70


def utc_text(ts_ms: int) -> str:
    """Epoch milliseconds as ``YYYY-MM-DD HH:MM:SS`` UTC."""
    return dt.datetime.fromtimestamp(ts_ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def horizon_label(horizon_s: int) -> str:
    """``60`` -> ``1m``, ``3600`` -> ``60m``, ``30`` -> ``30s``."""
    return f"{horizon_s // 60}m" if horizon_s % 60 == 0 else f"{horizon_s}s"


# --------------------------------------------------------------------------- files


def write_reactions_jsonl(path: Path, reactions: Sequence[Reaction]) -> int:
    """``Reaction.encode()`` per line, in report order; returns the number of lines."""
    rows = sort_reactions(reactions)
    with path.open("wb") as fh:
        for r in rows:
            fh.write(r.encode())
            fh.write(b"\n")
    return len(rows)


def _csv_value(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return ";".join(str(v) for v in value)
    # repr of a float is the shortest text that reads back to the same float
    return repr(value) if isinstance(value, float) else str(value)


def reaction_csv_row(r: Reaction) -> list[str]:
    """One CSV row, in :data:`REACTION_CSV_COLUMNS` order."""
    values = [utc_text(r.t0)] + [getattr(r, name) for name in REACTION_CSV_COLUMNS[1:]]
    return [_csv_value(v) for v in values]


def write_reactions_csv(path: Path, reactions: Sequence[Reaction]) -> int:
    """The reactions as CSV (same rows and order as the JSON lines); returns the row count."""
    rows = sort_reactions(reactions)
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(REACTION_CSV_COLUMNS)
        for r in rows:
            w.writerow(reaction_csv_row(r))
    return len(rows)


def write_alerts_jsonl(path: Path, alerts: Sequence[Alert]) -> int:
    """``Alert.encode()`` per line, sorted by (ts, symbol, window_s)."""
    rows = sorted(alerts, key=lambda a: (a.ts, a.symbol, a.window_s))
    with path.open("wb") as fh:
        for a in rows:
            fh.write(a.encode())
            fh.write(b"\n")
    return len(rows)


# --------------------------------------------------------------------------- summary table


@dataclass(frozen=True, slots=True)
class SummaryRow:
    """One (tariff headline, symbol) of the summary table."""

    headline: ClassifiedHeadline
    symbol: str
    #: horizon (s) -> reaction, or None when the input ended before the horizon was covered
    cells: dict[int, Reaction | None]

    @property
    def gap(self) -> bool:
        """Measured from the reopen (the market was closed at the headline)."""
        return any(r is not None and r.gap for r in self.cells.values())

    @property
    def significant_horizons(self) -> list[int]:
        """The horizons (s) whose reaction is significant."""
        return [h for h, r in self.cells.items() if r is not None and r.significant]


def summary_rows(result: BacktestResult) -> list[SummaryRow]:
    """One row per measured tariff headline and symbol with ticks, in time order."""
    horizons = [h // 1_000 for h in result.params.horizons_ms]
    by_key = {(r.headline_id, r.symbol, r.horizon_s): r for r in result.reactions}
    rows = []
    for h in result.measured_headlines():
        for symbol in result.traded_symbols:
            cells = {hz: by_key.get((h.id, symbol, hz)) for hz in horizons}
            rows.append(SummaryRow(h, symbol, cells))
    return rows


def closed_window_sizes(reactions: Sequence[Reaction]) -> dict[tuple[str, str], int]:
    """Headlines per (symbol, closed window): the confound groups of gap reactions."""
    heads: dict[tuple[str, str], set[str]] = {}
    for r in reactions:
        if r.gap and r.confound_id is not None:
            heads.setdefault((r.symbol, r.confound_id), set()).add(r.headline_id)
    return {k: len(v) for k, v in heads.items()}


def gap_text(row: SummaryRow, shared: dict[tuple[str, str], int]) -> str:
    """``gap``, or ``gap 1/3`` when three headlines share its closed window (one move)."""
    if not row.gap:
        return ""
    cid = next((r.confound_id for r in row.cells.values() if r is not None and r.gap), None)
    n = shared.get((row.symbol, cid or ""), 1)
    return "gap" if n <= 1 else f"gap, {n} share it"


def cell_text(r: Reaction | None) -> str:
    """``-12.3bp z=  -3.4*``: return in basis points, z, ``*`` when significant."""
    if r is None:
        return "pending"
    z = "   n/a" if r.z is None else f"{r.z:+6.1f}"
    return f"{r.ret * 10_000:+7.1f}bp z={z}{'*' if r.significant else ' '}"


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def format_summary(result: BacktestResult, title_chars: int = TITLE_CHARS) -> str:
    """The terminal table plus a footer of counts."""
    horizons = [h // 1_000 for h in result.params.horizons_ms]
    rows = summary_rows(result)
    shared = closed_window_sizes(result.reactions)
    head = ["time (UTC)", "symbol", "direction"] + [
        f"ret/z {horizon_label(h)}" for h in horizons
    ] + ["significant", "gap", "headline [tags]"]
    table: list[list[str]] = [head]
    last_id = None
    for row in rows:
        first = row.headline.id != last_id
        last_id = row.headline.id
        sig = ",".join(horizon_label(h) for h in row.significant_horizons) or "-"
        title = f"{_clip(row.headline.title, title_chars)} [{', '.join(row.headline.tags)}]"
        table.append(
            [utc_text(row.headline.ts)[:16] if first else "", row.symbol,
             row.headline.direction if first else ""]
            + [cell_text(row.cells[h]) for h in horizons]
            + [sig, gap_text(row, shared), title if first else ""]
        )
    widths = [max(len(r[i]) for r in table) for i in range(len(head) - 1)]
    lines = []
    for i, r in enumerate(table):
        cols = [c.ljust(w) for c, w in zip(r[:-1], widths, strict=True)] + [r[-1]]
        lines.append("  ".join(cols).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths) + "  " + "-" * len(head[-1]))
    if not rows:
        lines.append("(no tariff headlines in the input)")
    lines.append("")
    lines.append(footer_text(result))
    return "\n".join(lines)


def footer_text(result: BacktestResult) -> str:
    """Counts: inputs, verdicts, outputs, and what could not be used."""
    c = result.counts
    parts = [
        f"{c.ticks:,} ticks, {c.headlines:,} headlines ({c.tariff_headlines} tariff, "
        f"{c.duplicate_headlines} repeats of a story) -> {c.reactions:,} reactions "
        f"({sum(r.significant for r in result.reactions)} significant, "
        f"{sum(r.gap for r in result.reactions)} gap in "
        f"{len({(r.symbol, r.confound_id) for r in result.reactions if r.gap})} closed "
        f"windows), {c.alerts} sharp-move alerts",
    ]
    if result.read_error is not None:
        parts.append(f"INCOMPLETE INPUT: {result.read_error}; these results cover only the "
                     "events read before it")
    silent = [s for s in result.symbols if s not in result.prices]
    if silent:
        parts.append(f"no ticks in the input for {', '.join(silent)} (left out of the table)")
    if c.pending:
        parts.append(f"{c.pending} reactions pending (the input ends before their horizon)")
    if c.invalid_total:
        detail = ", ".join(f"{k}: {n}" for k, n in sorted(c.invalid.items()))
        parts.append(f"{c.invalid_total} invalid input lines skipped ({detail})")
    if c.rejected_total:
        detail = ", ".join(f"{k}: {n}" for k, n in sorted(c.rejected.items()))
        parts.append(f"{c.rejected_total} inputs refused by the engine ({detail})")
    if c.ignored:
        detail = ", ".join(f"{k}: {n}" for k, n in sorted(c.ignored.items()))
        parts.append(f"other streams ignored ({detail})")
    parts.append("* = significant (|z| and |return| above the thresholds); "
                 "gap = measured from the reopen")
    return "\n".join(parts)


# --------------------------------------------------------------------------- HTML

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em;
color:#222;max-width:1400px}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em}
table{border-collapse:collapse;font-size:.85em}
th,td{border-bottom:1px solid #ddd;padding:.25em .6em;text-align:left;vertical-align:top}
th{background:#f4f4f4;position:sticky;top:0}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.sig{font-weight:bold;background:#fdf2e9}
.dir{font-weight:bold}.tags{color:#666;font-size:.9em}
figure{margin:1.5em 0}figcaption{color:#555;font-size:.9em}
img{max-width:100%;border:1px solid #eee}
pre{background:#f8f8f8;padding:.6em;overflow-x:auto}
"""


def _cell_html(r: Reaction | None) -> str:
    if r is None:
        return '<td class="num">pending</td>'
    z = "n/a" if r.z is None else f"{r.z:+.2f}"
    cls = "num sig" if r.significant else "num"
    tip = html.escape(f"p0 {r.p0} at {utc_text(r.p0_ts)}, p1 {r.p1} at {utc_text(r.p1_ts)}",
                      quote=True)
    return (f'<td class="{cls}" title="{tip}">{r.ret * 10_000:+.1f} bp<br>'
            f"z {z}{' *' if r.significant else ''}</td>")


def html_report(result: BacktestResult, charts: Charts | None, sources: Sequence[str] = ()) -> str:
    """The single-file HTML report: table, counts and the charts as embedded PNG."""
    horizons = [h // 1_000 for h in result.params.horizons_ms]
    esc = html.escape
    out = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        "<title>tariffmon backtest report</title>", f"<style>{_CSS}</style></head><body>",
        "<h1>Tariff headlines and the market moves that followed (backtest)</h1>",
    ]
    if sources:
        out.append("<p>Input: " + ", ".join(f"<code>{esc(s)}</code>" for s in sources) + "</p>")
    out.append(f"<pre>{esc(footer_text(result))}</pre>")
    out.append(
        "<p>Return = ln(p1/p0) in basis points, p0 the last price at or before the headline, "
        "p1 the last price at or before the end of the horizon; z = return / (one-minute "
        "realised volatility over the baseline before the headline &times; &radic;(horizon in "
        "minutes)). Highlighted cells are significant. Hover a cell for p0 and p1.</p>"
    )
    out.append("<h2>Reactions</h2><table><thead><tr><th>time (UTC)</th><th>headline</th>"
               "<th>direction</th><th>symbol</th>"
               + "".join(f"<th>{horizon_label(h)}</th>" for h in horizons)
               + "<th>gap</th></tr></thead><tbody>")
    for row in summary_rows(result):
        h = row.headline
        color = DIRECTION_COLORS.get(h.direction, "#333")
        out.append(
            f"<tr><td>{esc(utc_text(h.ts))}</td><td>{esc(h.title)}<br>"
            f'<span class="tags">{esc(", ".join(h.tags))} &middot; {esc(h.source)}</span></td>'
            f'<td class="dir" style="color:{color}">{esc(h.direction)}</td>'
            f"<td>{esc(row.symbol)}</td>"
            + "".join(_cell_html(row.cells[hz]) for hz in horizons)
            + f"<td>{'gap' if row.gap else ''}</td></tr>"
        )
    out.append("</tbody></table>")
    if charts is not None:
        out.append("<h2>Charts</h2>")
        for chart in charts.charts:
            data = base64.b64encode(chart.png).decode("ascii")
            out.append(
                f'<figure id="{esc(chart.name)}"><img alt="{esc(chart.caption, quote=True)}" '
                f'src="data:image/png;base64,{data}"><figcaption>{esc(chart.caption)}'
                "</figcaption></figure>"
            )
    if result.alerts:
        out.append("<h2>Sharp-move alerts</h2><table><thead><tr><th>time (UTC)</th>"
                   "<th>symbol</th><th>window</th><th>move</th><th>z</th>"
                   "<th>attributed headlines (most recent first)</th></tr></thead><tbody>")
        for a in result.alerts:
            z = "n/a" if a.z is None else f"{a.z:+.1f}"
            heads = "<br>".join(esc(f"{utc_text(x.ts)[11:16]} {x.title}") for x in a.headlines)
            out.append(
                f"<tr><td>{esc(utc_text(a.ts))}</td><td>{esc(a.symbol)}</td>"
                f"<td>{horizon_label(a.window_s)}</td>"
                f'<td class="num">{a.ret * 10_000:+.1f} bp</td><td class="num">{z}</td>'
                f"<td>{heads or '-'}</td></tr>"
            )
        out.append("</tbody></table>")
    if result.invalid:
        out.append("<h2>Input that could not be used (first examples)</h2><pre>")
        out.extend(esc(f"{x.where}: {x.stream}: {x.reason}: {x.error}") for x in result.invalid)
        out.append("</pre>")
    out.append("</body></html>")
    return "\n".join(out)


# --------------------------------------------------------------------------- all of it


@dataclass(frozen=True, slots=True)
class ReportFiles:
    """Where a report went."""

    out_dir: Path
    reactions_jsonl: Path
    reactions_csv: Path
    alerts_jsonl: Path
    summary_txt: Path
    charts: tuple[Path, ...] = ()
    html: Path | None = None

    def all(self) -> list[Path]:
        """Every file written."""
        files = [self.reactions_jsonl, self.reactions_csv, self.alerts_jsonl, self.summary_txt]
        files += list(self.charts)
        if self.html is not None:
            files.append(self.html)
        return files


def write_report(
    result: BacktestResult,
    out_dir: Path,
    *,
    charts: bool = True,
    html_file: bool = False,
    sources: Sequence[str] = (),
    built: Charts | None = None,
) -> ReportFiles:
    """Write every output of a backtest into ``out_dir`` (created if needed).

    ``charts=False`` renders no chart (the HTML then has the tables only); ``built`` reuses
    charts already rendered.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    files = ReportFiles(
        out_dir=out_dir,
        reactions_jsonl=out_dir / "reactions.jsonl",
        reactions_csv=out_dir / "reactions.csv",
        alerts_jsonl=out_dir / "alerts.jsonl",
        summary_txt=out_dir / "summary.txt",
    )
    write_reactions_jsonl(files.reactions_jsonl, result.reactions)
    write_reactions_csv(files.reactions_csv, result.reactions)
    write_alerts_jsonl(files.alerts_jsonl, result.alerts)
    files.summary_txt.write_text(format_summary(result, title_chars=200) + "\n",
                                 encoding="utf-8")
    rendered = None
    if charts:
        rendered = built if built is not None else build_charts(result)
    chart_paths = [] if rendered is None else [_write_chart(out_dir, c) for c in rendered.charts]
    html_path = None
    if html_file:
        html_path = out_dir / "report.html"
        html_path.write_text(html_report(result, rendered, sources), encoding="utf-8")
    return dataclasses.replace(files, charts=tuple(chart_paths), html=html_path)


def _write_chart(out_dir: Path, chart: Chart) -> Path:
    path = out_dir / f"{chart.name}.png"
    path.write_bytes(chart.png)
    return path
