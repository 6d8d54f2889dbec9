#!/usr/bin/env python3
"""Build the Grafana dashboard of tariffmon as JSON, from code.

    python scripts/build_dashboards.py           # (re)write config/grafana/dashboards/*.json
    python scripts/build_dashboards.py --check   # exit 1 if the committed JSON is out of date

The panels live here as plain dicts (Grafana's dashboard JSON model, schema 39) so that a
query is written once and the layout is computed; the JSON in ``config/grafana/dashboards/``
is what Grafana provisions and what tests/config/test_dashboards.py evaluates against a real
Prometheus.  Every query is PromQL on the metrics of tariffmon.metrics.worker and
tariffmon.producers.metrics, plus the recording rules of config/prometheus/rules/.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = ROOT / "config" / "grafana" / "dashboards"

#: The datasource uid fixed by config/grafana/provisioning/datasources/prometheus.yml.
DS: dict[str, str] = {"type": "prometheus", "uid": "tariffmon-prometheus"}
SYM = 'symbol=~"$symbol"'

Panel = dict[str, Any]


def target(expr: str, legend: str = "", ref: str = "A", *, instant: bool = False,
           fmt: str = "time_series") -> dict[str, Any]:
    """One Prometheus query of a panel."""
    t: dict[str, Any] = {
        "datasource": DS, "refId": ref, "expr": expr, "legendFormat": legend or "__auto",
        "range": not instant, "instant": instant, "format": fmt,
    }
    return t


def timeseries(title: str, targets: list[dict[str, Any]], *, unit: str = "short",
               description: str = "", bars: bool = False, decimals: int | None = None,
               w: int = 12, h: int = 8) -> Panel:
    """A time-series panel."""
    defaults: dict[str, Any] = {
        "unit": unit,
        "custom": {
            "drawStyle": "bars" if bars else "line",
            "lineWidth": 1, "fillOpacity": 60 if bars else 10, "showPoints": "never",
            "spanNulls": False,
        },
    }
    if decimals is not None:
        defaults["decimals"] = decimals
    return {
        "type": "timeseries", "title": title, "description": description, "datasource": DS,
        "targets": targets, "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "multi", "sort": "none"},
        },
        "_size": (w, h),
    }


def bargauge(title: str, targets: list[dict[str, Any]], *, unit: str, description: str = "",
             w: int = 8, h: int = 8, decimals: int | None = None) -> Panel:
    """A horizontal bar gauge over instant values."""
    defaults: dict[str, Any] = {"unit": unit}
    if decimals is not None:
        defaults["decimals"] = decimals
    return {
        "type": "bargauge", "title": title, "description": description, "datasource": DS,
        "targets": targets, "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {
            "orientation": "horizontal", "displayMode": "basic", "showUnfilled": True,
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
        },
        "_size": (w, h),
    }


def table(title: str, targets: list[dict[str, Any]], *, description: str = "",
          rename: dict[str, str] | None = None, units: dict[str, str] | None = None,
          w: int = 12, h: int = 8) -> Panel:
    """A table merging instant queries on their common labels."""
    overrides = [
        {"matcher": {"id": "byName", "options": name},
         "properties": [{"id": "unit", "value": unit}]}
        for name, unit in (units or {}).items()
    ]
    return {
        "type": "table", "title": title, "description": description, "datasource": DS,
        "targets": targets,
        "fieldConfig": {"defaults": {}, "overrides": overrides},
        "options": {"showHeader": True, "cellHeight": "sm"},
        "transformations": [
            {"id": "merge", "options": {}},
            {"id": "organize", "options": {
                "excludeByName": {"Time": True}, "renameByName": rename or {},
            }},
        ],
        "_size": (w, h),
    }


def stat(title: str, targets: list[dict[str, Any]], *, unit: str = "short",
         description: str = "", w: int = 6, h: int = 4,
         mappings: list[dict[str, Any]] | None = None) -> Panel:
    """A stat panel (last value)."""
    return {
        "type": "stat", "title": title, "description": description, "datasource": DS,
        "targets": targets,
        "fieldConfig": {"defaults": {"unit": unit, "mappings": mappings or []}, "overrides": []},
        "options": {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "background", "graphMode": "none", "textMode": "value_and_name",
        },
        "_size": (w, h),
    }


def row(title: str) -> Panel:
    """A row header."""
    return {"type": "row", "title": title, "collapsed": False, "panels": [], "_size": (24, 1)}


def rate(metric: str, by: str, selector: str = "") -> str:
    """Per-second rate of a counter summed by ``by`` over Grafana's rate interval."""
    sel = f"{{{selector}}}" if selector else ""
    return f"sum by ({by}) (rate({metric}{sel}[$__rate_interval]))"


def panels() -> list[Panel]:
    """Every panel, in reading order; positions are computed by :func:`layout`."""
    open_closed = [
        {"type": "value", "options": {
            "0": {"text": "closed", "color": "grey"}, "1": {"text": "open", "color": "green"},
        }},
    ]
    up_down = [
        {"type": "value", "options": {
            "0": {"text": "down", "color": "red"}, "1": {"text": "up", "color": "green"},
        }},
    ]
    return [
        row("Markets"),
        # one price panel per selected symbol (Grafana repeats it over $symbol): a symbol
        # left out of the selector leaves the dashboard, prices included
        {**timeseries("Price $symbol", [
            target(f"max by (symbol) (tariffmon_last_price{{{SYM}}})", "{{symbol}}"),
        ], unit="none", w=12,
            description="Last price of the selected symbol (JPY per USD for USDJPY, index "
                        "points for N225); markers are tariff headlines."),
            "repeat": "symbol", "repeatDirection": "h", "maxPerRow": 2},
        timeseries("Rolling returns", [
            target(f"max by (symbol, window) (tariffmon_rolling_return{{{SYM}}})",
                   "{{symbol}} {{window}}s"),
        ], unit="percentunit", w=16,
            description="Log return over each trailing window that the sharp-move detector "
                        "watches."),
        stat("Market open", [
            target(f"max by (symbol) (tariffmon_market_open{{{SYM}}})", "{{symbol}}",
                   instant=True),
        ], w=8, h=8, mappings=open_closed,
            description="Market open per the worker's trading calendars (holidays included)."),
        row("Tariff headlines and reactions"),
        table("Latest reactions", [
            target(f"max by (symbol, horizon) "
                   f"(tariffmon_latest_reaction_headline_timestamp_seconds{{{SYM}}}) * 1000",
                   ref="A", instant=True, fmt="table"),
            target(f"max by (symbol, horizon) (tariffmon_latest_reaction_return{{{SYM}}})",
                   ref="B", instant=True, fmt="table"),
            target(f"max by (symbol, horizon) (tariffmon_latest_reaction_z{{{SYM}}})",
                   ref="C", instant=True, fmt="table"),
            target(f"max by (symbol, horizon) (tariffmon_latest_reaction_significant{{{SYM}}})",
                   ref="D", instant=True, fmt="table"),
        ], rename={"Value #A": "Headline time", "Value #B": "Return", "Value #C": "z",
                   "Value #D": "Significant", "horizon": "Horizon (s)", "symbol": "Symbol"},
            units={"Headline time": "dateTimeAsIso", "Return": "percentunit"}, w=12,
            description="Reaction to the most recent tariff headline, per symbol and horizon "
                        "(the headlines themselves are on the reactions topic and in "
                        "`tariffmon watch`)."),
        bargauge("Latest reaction by horizon", [
            target(f"max by (symbol, horizon) (tariffmon_latest_reaction_return{{{SYM}}})",
                   "{{symbol}} {{horizon}}s", instant=True),
        ], unit="percentunit", w=12,
            description="Log return after the most recent tariff headline at each horizon."),
        bargauge("Mean |return| by horizon", [
            target(f"sum by (symbol, horizon) "
                   f"(increase(tariffmon_reaction_abs_return_sum{{{SYM}}}[$__range]))"
                   f" / sum by (symbol, horizon) "
                   f"(increase(tariffmon_reaction_abs_return_count{{{SYM}}}[$__range]))",
                   "{{symbol}} {{horizon}}s", instant=True),
        ], unit="percentunit",
            description="Average size of the move after tariff headlines over the dashboard's "
                        "time range."),
        bargauge("Mean |z| by horizon", [
            target(f"sum by (symbol, horizon) "
                   f"(increase(tariffmon_reaction_abs_z_sum{{{SYM}}}[$__range]))"
                   f" / sum by (symbol, horizon) "
                   f"(increase(tariffmon_reaction_abs_z_count{{{SYM}}}[$__range]))",
                   "{{symbol}} {{horizon}}s", instant=True),
        ], unit="none", decimals=1,
            description="How unusual the moves were: |return| in units of the baseline "
                        "volatility scaled to the horizon."),
        bargauge("Significant reactions", [
            target(f"sum by (symbol, horizon, direction) "
                   f"(increase(tariffmon_significant_reactions_total{{{SYM}}}[$__range]))",
                   "{{symbol}} {{horizon}}s {{direction}}", instant=True),
        ], unit="none", decimals=0,
            description="Significant reactions over the time range, by the headline's "
                        "direction."),
        timeseries("Tariff headlines", [
            target("sum by (direction) (increase(tariffmon_tariff_headlines_total"
                   "[$__rate_interval]))", "tariff: {{direction}}", "A"),
            target("sum by (source) (increase(tariffmon_headlines_total[$__rate_interval]))",
                   "all: {{source}}", "B"),
        ], bars=True, w=12,
            description="Headlines classified per source, and tariff headlines (first of "
                        "their story) by direction."),
        timeseries("Reactions measured", [
            target(f"sum by (symbol, horizon) "
                   f"(increase(tariffmon_reactions_total{{{SYM}}}[$__rate_interval]))",
                   "{{symbol}} {{horizon}}s", "A"),
            target(f"sum by (symbol) "
                   f"(increase(tariffmon_gap_reactions_total{{{SYM}}}[$__rate_interval]))",
                   "{{symbol}} gap (market closed)", "B"),
        ], bars=True, w=12,
            description="Reactions completed per horizon; gap reactions were measured from "
                        "the reopen."),
        row("Sharp moves and alerts"),
        timeseries("Sharp moves", [
            target(f"sum by (symbol, window, direction) "
                   f"(increase(tariffmon_sharp_moves_total{{{SYM}}}[$__rate_interval]))",
                   "{{symbol}} {{window}}s {{direction}}"),
        ], bars=True, w=12,
            description="Sharp-move alerts raised by the worker (one per symbol and window "
                        "per cool-down)."),
        table("Last sharp move", [
            target(f"max by (symbol, window) "
                   f"(tariffmon_last_sharp_move_timestamp_seconds{{{SYM}}}) * 1000",
                   ref="A", instant=True, fmt="table"),
            target(f"max by (symbol, window) (tariffmon_last_sharp_move_return{{{SYM}}})",
                   ref="B", instant=True, fmt="table"),
        ], rename={"Value #A": "Time", "Value #B": "Return", "window": "Window (s)",
                   "symbol": "Symbol"},
            units={"Time": "dateTimeAsIso", "Return": "percentunit"}, w=12,
            description="The latest sharp move per symbol and window."),
        table("Alerts", [
            # the selected symbols' alerts, and those of no symbol (a target down, lag):
            # the empty alternative matches alerts without a symbol label
            target("sum by (alertname, alertstate, severity, symbol) "
                   '(ALERTS{alertstate=~"pending|firing",symbol=~"$symbol|"})',
                   ref="A", instant=True, fmt="table"),
        ], rename={"alertname": "Alert", "alertstate": "State", "severity": "Severity",
                   "symbol": "Symbol", "Value": "Series"}, w=12,
            description="Alerts pending or firing in Prometheus now, for the selected "
                        "symbols and those of no symbol."),
        timeseries("Alert state", [
            target('count by (alertname) (ALERTS{alertstate="firing"})', "{{alertname}}"),
        ], w=12, bars=True, description="Firing alerts over time."),
        row("Pipeline health"),
        timeseries("Ticks per second", [
            target(rate("tariffmon_ticks_total", "symbol", SYM), "{{symbol}}"),
        ], unit="reqps", w=8, description="Ticks processed by the workers."),
        timeseries("Event lag", [
            target("histogram_quantile(0.99, sum by (kind, le) "
                   "(rate(tariffmon_event_lag_seconds_bucket[$__rate_interval])))",
                   "p99 {{kind}}", "A"),
            target("histogram_quantile(0.5, sum by (kind, le) "
                   "(rate(tariffmon_event_lag_seconds_bucket[$__rate_interval])))",
                   "p50 {{kind}}", "B"),
            target("max by (kind) (tariffmon_latest_event_lag_seconds)", "last {{kind}}", "C"),
        ], unit="s", w=8,
            description="Processing time minus event time. Hours during a replay of history "
                        "are expected."),
        timeseries("Feed staleness", [
            target(f"tariffmon:feed_staleness_seconds{{{SYM}}}", "{{symbol}} last tick", "A"),
            target("time() - max by (source) (tariffmon_source_last_success_timestamp_seconds)",
                   "{{source}} last fetch", "B"),
        ], unit="s", w=8,
            description="Age of the newest tick per symbol (event time) and of the last "
                        "successful fetch per source."),
        timeseries("Consumer lag", [
            target("sum by (topic) (max by (topic, partition) "
                   "(tariffmon_consumer_lag_messages))", "{{topic}}", "A"),
            target("max by (topic, partition) (tariffmon_consumer_lag_messages)",
                   "{{topic}}[{{partition}}]", "B"),
        ], unit="short", w=8,
            description="Messages written but not committed by the worker group, per topic "
                        "and per partition (ConsumerLagHigh fires when it stays high)."),
        timeseries("Processing rate", [
            target(rate("tariffmon_consumer_messages_processed_total", "topic"), "{{topic}}"),
        ], unit="reqps", w=8, description="Input messages the workers finished processing."),
        timeseries("Commits and rebalances", [
            target("histogram_quantile(0.99, sum by (le) "
                   "(rate(tariffmon_consumer_commit_latency_seconds_bucket[$__rate_interval])))",
                   "commit p99", "A"),
            target("sum(increase(tariffmon_consumer_rebalances_total[$__rate_interval]))",
                   "rebalances", "B"),
        ], unit="s", w=8,
            description="Offset commit latency (p99) and consumer group rebalances."),
        timeseries("Dead letters and late inputs", [
            target(rate("tariffmon_dead_letters_total", "topic, reason"),
                   "{{topic}} {{reason}}", "A"),
            target(rate("tariffmon_late_inputs_total", "kind"), "late {{kind}}", "B"),
        ], unit="reqps", w=8,
            description="Inputs sent to the dead-letter topic, and inputs beyond the "
                        "lateness bound."),
        timeseries("Producers", [
            target(rate("tariffmon_producer_messages_sent_total", "topic"), "sent {{topic}}",
                   "A"),
            target(rate("tariffmon_producer_send_errors_total", "topic, kind"),
                   "error {{topic}} {{kind}}", "B"),
        ], unit="reqps", w=8, description="Messages acknowledged by Kafka and send errors."),
        timeseries("Sources", [
            target(rate("tariffmon_source_fetches_total", "source"), "fetch {{source}}", "A"),
            target(rate("tariffmon_source_errors_total", "source, kind"),
                   "error {{source}} {{kind}}", "B"),
        ], unit="reqps", w=8, description="Fetch attempts and errors per source."),
        stat("Targets", [
            target('up{job=~"tariffmon-.+"}', "{{job}} {{instance}}", instant=True),
        ], w=24, h=4, mappings=up_down, description="Prometheus's scrape of each process."),
    ]


def layout(items: list[Panel]) -> list[Panel]:
    """Give each panel an id and a gridPos, flowing left to right in rows of 24 columns."""
    x = y = 0
    line_height = 0
    out: list[Panel] = []
    for pid, panel in enumerate(items, start=1):
        w, h = panel.pop("_size")
        if panel["type"] == "row" or x + w > 24:
            x, y = 0, y + line_height
            line_height = 0
        panel = {"id": pid, "gridPos": {"x": x, "y": y, "w": w, "h": h}, **panel}
        out.append(panel)
        x += w
        line_height = max(line_height, h)
        if panel["type"] == "row":
            x, y, line_height = 0, y + h, 0
    return out


def headline_annotations() -> list[dict[str, Any]]:
    """Tariff headlines on every time series: a marker where their counter increased."""
    builtin = {
        "builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"},
        "enable": True, "hide": True, "iconColor": "rgba(0, 211, 255, 1)",
        "name": "Annotations & Alerts", "type": "dashboard",
    }
    colours = {"escalation": "red", "de-escalation": "green", "neutral": "yellow"}
    out = [builtin]
    for direction, colour in colours.items():
        out.append({
            "name": f"Tariff headlines ({direction})",
            "datasource": DS, "enable": True, "hide": False, "iconColor": colour,
            "expr": "sum by (direction) (increase(tariffmon_tariff_headlines_total"
                    f'{{direction="{direction}"}}[2m])) > 0',
            "step": "60s", "titleFormat": "Tariff headline: {{direction}}",
            "textFormat": "{{direction}} tariff headline(s)", "tagKeys": "direction",
            "useValueForTime": False,
        })
    return out


def dashboard() -> dict[str, Any]:
    """The whole dashboard model."""
    return {
        "uid": "tariffmon",
        "title": "Tariff reaction monitor",
        "description": "US-Japan tariff headlines and the USD/JPY and Nikkei 225 moves that "
                       "followed them; sharp moves; pipeline health.",
        "tags": ["tariffmon"],
        "timezone": "utc",
        "editable": True,
        "graphTooltip": 1,
        "schemaVersion": 39,
        "version": 1,
        "refresh": "10s",
        "time": {"from": "now-6h", "to": "now"},
        "timepicker": {},
        "annotations": {"list": headline_annotations()},
        "templating": {"list": [{
            "name": "symbol", "label": "Symbol", "type": "query", "datasource": DS,
            "query": {"query": "label_values(tariffmon_last_price, symbol)",
                      "refId": "symbols"},
            "definition": "label_values(tariffmon_last_price, symbol)",
            "refresh": 2, "multi": True, "includeAll": True, "allValue": ".*",
            "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
            "sort": 1, "options": [],
        }]},
        "panels": layout(panels()),
        "links": [],
    }


def render() -> dict[str, str]:
    """File name -> JSON text of every dashboard."""
    return {"tariffmon.json": json.dumps(dashboard(), indent=2) + "\n"}


def main(argv: list[str] | None = None) -> int:
    """Write the dashboards, or with --check report whether the files are up to date."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="do not write; exit 1 if a file differs from the generated JSON")
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="output folder")
    args = parser.parse_args(argv)
    stale = []
    for name, text in render().items():
        path = args.out / name
        if args.check:
            if not path.is_file() or path.read_text() != text:
                stale.append(str(path))
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            print(f"wrote {path}")
    if stale:
        print("out of date (run scripts/build_dashboards.py): " + ", ".join(stale),
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
