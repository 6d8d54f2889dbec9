"""The PromQL the Grafana dashboard and the Prometheus rules run, as tests evaluate it.

Shared by tests/config/test_dashboards.py (a Prometheus scraping metrics fed with known
contract objects) and tests/e2e/test_prometheus_e2e.py (a Prometheus scraping a real worker
fed by a replay): both evaluate exactly these expressions through the HTTP API.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
DASHBOARD = ROOT / "config" / "grafana" / "dashboards" / "tariffmon.json"
DATASOURCES = ROOT / "config" / "grafana" / "provisioning" / "datasources" / "prometheus.yml"
RULES = ROOT / "config" / "prometheus" / "rules" / "tariffmon.rules.yml"

#: What Grafana substitutes before a query reaches Prometheus.
GRAFANA_VARIABLES = {
    "$__rate_interval": "1m", "$__interval": "1m", "$__range": "1h", "${symbol}": ".*",
    "$symbol": ".*",
}
#: Queries that may rightly be empty a few seconds after start: no alert has fired yet
#: (the shortest ``for:`` is a minute).
MAY_BE_EMPTY = {"Alert state/A"}
_METRIC = re.compile(r"\b(tariffmon[_:][A-Za-z0-9_:]*|ALERTS|up)\b")


def load_dashboard() -> dict[str, Any]:
    """The provisioned dashboard's JSON."""
    data: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return data


def grafana_to_promql(expr: str, symbol: str | None = None) -> str:
    """A panel expression with Grafana's variables replaced as Grafana would; ``symbol``
    is the selector's value (a regex alternative such as ``USDJPY|N225``; default: All)."""
    for name, value in GRAFANA_VARIABLES.items():
        if symbol is not None and name in ("$symbol", "${symbol}"):
            value = f"({symbol})"
        expr = expr.replace(name, value)
    assert "$" not in expr, f"unsubstituted Grafana variable in {expr!r}"
    return expr


def metrics_in(expr: str) -> set[str]:
    """Metric names an expression reads (label values in quotes left out)."""
    return set(_METRIC.findall(re.sub(r'"[^"]*"', '""', expr)))


def panel_queries(symbol: str | None = None) -> list[tuple[str, str]]:
    """(panel title/refId, PromQL) of every panel target and annotation, with the
    ``$symbol`` selector set to ``symbol`` (default: All)."""
    board = load_dashboard()
    out = [
        (f"{panel['title']}/{t['refId']}", grafana_to_promql(t["expr"], symbol))
        for panel in board["panels"] if panel["type"] != "row"
        for t in panel["targets"]
    ]
    out += [
        (f"annotation {a['name']}", grafana_to_promql(a["expr"], symbol))
        for a in board["annotations"]["list"] if "expr" in a
    ]
    return out


def _rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [r for g in groups for r in g["rules"]]


def alert_exprs() -> list[tuple[str, str]]:
    """(alert name, expression) of every alerting rule."""
    return [(r["alert"], r["expr"]) for r in _rules() if "alert" in r]


def recording_exprs() -> list[tuple[str, str]]:
    """(record name with its fixed labels, expression) of every recording rule."""
    out = []
    for r in _rules():
        if "record" in r:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(r.get("labels", {}).items()))
            out.append((f"{r['record']}{{{labels}}}" if labels else r["record"], r["expr"]))
    return out
