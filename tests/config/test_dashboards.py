"""The Grafana dashboard and the alert rules, evaluated by a real Prometheus.

Static checks: the JSON is what scripts/build_dashboards.py generates, every panel has
targets on the provisioned datasource, the layout fits.  Integration: a real ``prometheus``
(tests/prometheus_harness.py) scrapes a prometheus_client endpoint serving a WorkerMetrics
registry fed with known contract objects (and a ProducerMetrics one as the tick producer),
loads config/prometheus/rules/, and evaluates every panel query, every annotation query and
every alert expression through /api/v1/query: each must succeed, and return data wherever
the fed metrics say it should.
"""

from __future__ import annotations

import importlib.util
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import yaml
from prometheus_client import CollectorRegistry

from tariffmon.contract import Alert, ClassifiedHeadline, Reaction, Tick
from tariffmon.metrics import WorkerMetrics, serve
from tariffmon.producers.metrics import ProducerMetrics
from tariffmon.settings import load_settings
from tests.dashboard_queries import (
    DATASOURCES,
    MAY_BE_EMPTY,
    ROOT,
    RULES,
    alert_exprs,
    load_dashboard,
    metrics_in,
    panel_queries,
)
from tests.prometheus_harness import (
    PrometheusServer,
    free_port,
    prometheus_binary,
    running_prometheus,
)

# --------------------------------------------------------------------------- static


def test_dashboard_json_is_the_generated_one() -> None:
    spec = importlib.util.spec_from_file_location(
        "build_dashboards", ROOT / "scripts" / "build_dashboards.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--check"]) == 0, "run scripts/build_dashboards.py"


def test_every_panel_has_targets_on_the_provisioned_datasource() -> None:
    uid = yaml.safe_load(DATASOURCES.read_text())["datasources"][0]["uid"]
    board = load_dashboard()
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    for panel in board["panels"]:
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["targets"], panel["title"]
        assert panel["datasource"]["uid"] == uid
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]
        for t in panel["targets"]:
            assert t["datasource"]["uid"] == uid
            assert t["expr"].strip()


def test_dashboard_shows_what_the_desk_needs() -> None:
    board = load_dashboard()
    titles = {p["title"] for p in board["panels"]}
    assert {"Price $symbol", "Latest reactions", "Sharp moves", "Alerts", "Consumer lag",
            "Processing rate", "Commits and rebalances",
            "Event lag", "Dead letters and late inputs", "Feed staleness",
            "Ticks per second"} <= titles
    annotations = [a for a in board["annotations"]["list"] if "expr" in a]
    assert annotations and all("tariffmon_tariff_headlines_total" in a["expr"]
                               for a in annotations)
    exprs = " ".join(e for _, e in panel_queries())
    for needed in ("tariffmon_reaction_abs_z", "ALERTS", "tariffmon_ticks_total",
                   "tariffmon_dead_letters_total", "tariffmon_event_lag_seconds_bucket"):
        assert needed in exprs


# --------------------------------------------------------------------------- live


@dataclass
class Fed:
    """A Prometheus that has scraped the fed metrics, and what was fed."""

    prom: PrometheusServer
    now_s: float
    open_symbols: set[str]
    near_boundary: bool


def _tick(symbol: str, ts_ms: int, price: float) -> Tick:
    return Tick(symbol=symbol, ts=ts_ms, price=price, source="test")


def _headline(i: int, ts_ms: int, direction: str) -> ClassifiedHeadline:
    return ClassifiedHeadline(
        id=f"h{i}", ts=ts_ms, source="testfeed", title=f"tariff headline {i}", is_tariff=True,
        score=5.0, tags=("japan", "tariff"), direction=direction,  # type: ignore[arg-type]
        cluster_id=f"h{i}",
    )


def _reaction(symbol: str, horizon_s: int, t0_ms: int, ret: float, z: float) -> Reaction:
    return Reaction(
        headline_id="h1", cluster_id="h1", symbol=symbol, horizon_s=horizon_s, t0=t0_ms,
        t_start=t0_ms, t1=t0_ms + horizon_s * 1000, p0=100.0, p0_ts=t0_ms,
        p1=100.0 * math.exp(ret), p1_ts=t0_ms + horizon_s * 1000, ret=ret, z=z,
        sigma_1m=0.0005, max_up=max(ret, 0.0), max_down=min(ret, 0.0),
        significant=abs(z) >= 3, gap=False, n_ticks=10, direction="escalation",
    )


@pytest.fixture(scope="module")
def fed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fed]:
    if prometheus_binary() is None:
        pytest.skip("prometheus is not installed (apt-get install prometheus); CI installs it")
    settings = load_settings()
    worker_registry, producer_registry = CollectorRegistry(), CollectorRegistry()
    wm = WorkerMetrics.from_settings(worker_registry, settings)
    pm = ProducerMetrics(producer_registry)
    # counters the alerts watch with increase(): present at zero before the first scrape
    pm.send_errors.labels(topic=settings.topics.ticks, kind="KafkaTimeoutError")
    pm.source_errors.labels(source="yfinance", kind="timeout")
    pm.messages_sent.labels(topic=settings.topics.ticks)

    now = time.time()
    now_ms = int(now * 1000)
    old_ms = now_ms - 900_000  # ticks 15 minutes behind: stale, and a high event lag
    for i in range(5):
        wm.observe_tick(_tick("USDJPY", old_ms + i * 1000, 149.0 + i / 100), processed_at_s=now)
        wm.observe_tick(_tick("N225", old_ms + i * 1000, 36000.0 + i), processed_at_s=now)
    wm.dead_letter(settings.topics.ticks, "bad_json")
    pm.fetch_ok("yfinance", now - 3_600)  # the last success an hour ago

    worker_srv = serve(worker_registry, "127.0.0.1", 0)
    producer_srv = serve(producer_registry, "127.0.0.1", 0)
    jobs = {
        "tariffmon-worker": [f"127.0.0.1:{worker_srv.port}"],
        "tariffmon-tick-producer": [f"127.0.0.1:{producer_srv.port}"],
        "tariffmon-headline-producer": [f"127.0.0.1:{free_port()}"],  # nobody: TargetDown
    }
    try:
        with running_prometheus(jobs, rule_files=[RULES],
                                workdir=tmp_path_factory.mktemp("prometheus")) as prom:
            prom.wait_for_scrape("tariffmon-worker")
            prom.wait_for_scrape("tariffmon-tick-producer")
            # second phase: what counters and histograms must show as an increase
            t2 = time.time()
            for i in range(5, 10):
                wm.observe_tick(_tick("USDJPY", old_ms + i * 1000, 149.0 + i / 100),
                                processed_at_s=t2)
                wm.observe_tick(_tick("N225", old_ms + i * 1000, 36000.0 + i),
                                processed_at_s=t2)
            for symbol in ("USDJPY", "N225"):
                for w in settings.engine.sharp_windows_s:
                    wm.observe_rolling_return(symbol, w, -0.001 * w / 60)
            for i, direction in enumerate(("escalation", "de-escalation", "neutral"), 1):
                wm.observe_headline(_headline(i, old_ms + i, direction), processed_at_s=t2)
            for h in settings.engine.horizons_s:
                wm.observe_reaction(_reaction("USDJPY", h, old_ms, -0.004, -4.5))
                wm.observe_reaction(_reaction("N225", h, old_ms, 0.002, 1.2))
            wm.observe_alert(Alert(
                symbol="USDJPY", window_s=300, ts=old_ms, start_ts=old_ms - 300_000,
                p_start=150.0, p_end=149.1, ret=math.log(149.1 / 150.0), z=-7.0,
                direction="down", threshold_bp=40.0, threshold_z=6.0,
            ))
            wm.dead_letter(settings.topics.ticks, "bad_json")
            wm.late_input("tick")
            pm.send_errors.labels(topic=settings.topics.ticks, kind="KafkaTimeoutError").inc()
            pm.messages_sent.labels(topic=settings.topics.ticks).inc(10)
            pm.fetch_failed("yfinance", "timeout")
            # two whole scrapes after the feed, so series born in it have two samples to rate
            for _ in range(2):
                since = time.time()
                prom.wait_for_scrape("tariffmon-worker", after=since)
                prom.wait_for_scrape("tariffmon-tick-producer", after=since)
            # the recording rules have run on the second scrape
            prom.wait_for('tariffmon:event_lag_seconds:p99_5m{kind="tick"} > 0')
            prom.wait_for(f"timestamp(tariffmon:feed_staleness_seconds) > {since + 0.5}")
            check_ms = int(time.time() * 1000)
            open_symbols = {
                s.name for s in settings.symbols if s.trading_calendar().is_open(check_ms)
            }
            # within two minutes of an open or close, either answer is right
            near = any(
                s.trading_calendar().is_open(check_ms + d) != s.trading_calendar().is_open(
                    check_ms)
                for s in settings.symbols for d in (-120_000, 120_000)
            )
            yield Fed(prom, now, open_symbols, near)
    finally:
        worker_srv.close()
        producer_srv.close()


@pytest.mark.integration
@pytest.mark.parametrize(("name", "expr"), panel_queries(), ids=[n for n, _ in panel_queries()])
def test_panel_query_evaluates(fed: Fed, name: str, expr: str) -> None:
    result = fed.prom.query(expr)  # raises unless Prometheus answers "success"
    present = {s["metric"]["__name__"] for s in fed.prom.query(
        'count by (__name__) ({__name__=~"tariffmon_.+|tariffmon:.+|up|ALERTS"})'
    )}
    if name not in MAY_BE_EMPTY and metrics_in(expr) <= present:
        assert result, f"{name}: no data for {expr}"


@pytest.mark.integration
@pytest.mark.parametrize(("alert", "expr"), alert_exprs(), ids=[a for a, _ in alert_exprs()])
def test_alert_expression_evaluates(fed: Fed, alert: str, expr: str) -> None:
    result = fed.prom.query(expr)
    present = {s["metric"]["__name__"] for s in fed.prom.query(
        'count by (__name__) ({__name__=~"tariffmon_.+|tariffmon:.+|up|ALERTS"})'
    )}
    if not metrics_in(expr) <= present:
        # a metric this fixture does not feed (the worker's market-open gauge, the consumer
        # metrics): the expression must still evaluate; promtool covers its firing side
        return
    if alert == "StaleFeed":
        if fed.near_boundary:
            return
        assert {s["metric"]["symbol"] for s in result} == fed.open_symbols, (
            "PromQL market hours disagree with the settings' trading calendars"
        )
        return
    assert result, f"{alert}: the fed metrics should make {expr} return data"


@pytest.mark.integration
def test_rules_evaluate_without_errors(fed: Fed) -> None:
    for group in fed.prom.rules():
        for rule in group["rules"]:
            assert rule["health"] == "ok", (rule["name"], rule.get("lastError"))


@pytest.mark.integration
def test_symbol_variable_lists_the_symbols(fed: Fed) -> None:
    body = fed.prom.api("label/symbol/values", {"match[]": "tariffmon_last_price"})
    assert body["status"] == "success"
    assert set(body["data"]) == {"USDJPY", "N225"}


@pytest.mark.integration
def test_fed_values_arrive_unchanged(fed: Fed) -> None:
    assert fed.prom.value('tariffmon_last_price{symbol="USDJPY"}') == pytest.approx(149.09)
    assert fed.prom.value(
        'tariffmon_latest_reaction_return{symbol="USDJPY",horizon="300"}'
    ) == pytest.approx(-0.004)
    assert fed.prom.value(
        'sum(tariffmon_sharp_moves_total{symbol="USDJPY",direction="down"})'
    ) == 1.0


@pytest.mark.integration
@pytest.mark.parametrize("selected", ["USDJPY", "N225", "USDJPY|N225"])
def test_every_symbol_panel_follows_the_symbol_selector(fed: Fed, selected: str) -> None:
    """Whatever $symbol selects, no panel shows another symbol, and the price panel shows
    exactly the selected ones (evaluated by the real Prometheus, as Grafana would ask)."""
    wanted = set(selected.split("|"))
    for name, expr in panel_queries(symbol=selected):
        shown = {s["metric"]["symbol"] for s in fed.prom.query(expr)
                 if "symbol" in s["metric"]}
        assert shown <= wanted, f"{name} shows {sorted(shown - wanted)} for $symbol={selected}"
        if name.startswith("Price $symbol/"):
            assert shown == wanted, f"{name}: {sorted(shown)} for $symbol={selected}"
