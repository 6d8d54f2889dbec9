"""WorkerMetrics: metric values after feeding known contract objects, a fresh registry each."""

from __future__ import annotations

import dataclasses
import math
import random
import urllib.request

import pytest
from prometheus_client import CollectorRegistry

from tariffmon.contract import Alert, AttributedHeadline, ClassifiedHeadline, Reaction, Tick
from tariffmon.metrics import WorkerMetrics, serve
from tariffmon.metrics.worker import MAX_ALERT_TITLE_CHARS, MAX_ALERT_TITLES, TITLE_SEPARATOR
from tariffmon.settings import load_settings

T0_MS = 1_743_602_400_000  # 2025-04-02T14:00:00Z


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def metrics(registry: CollectorRegistry) -> WorkerMetrics:
    return WorkerMetrics(registry, symbols=["USDJPY", "N225"], horizons_s=[60, 300],
                         windows_s=[60, 300])


def value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def tick(ts_ms: int, price: float, symbol: str = "USDJPY") -> Tick:
    return Tick(symbol=symbol, ts=ts_ms, price=price, source="test")


def headline(
    *, is_tariff: bool = True, duplicate: bool = False, ts: int = T0_MS,
    tags: tuple[str, ...] = ("japan", "autos"), direction: str = "escalation",
    source: str = "feed-a",
) -> ClassifiedHeadline:
    return ClassifiedHeadline(
        id="h1", ts=ts, source=source, title="US imposes 24% tariff on Japan",
        is_tariff=is_tariff, score=5.0, tags=tags, direction=direction,  # type: ignore[arg-type]
        cluster_id="h1", duplicate=duplicate,
    )


def reaction(
    *, t0: int = T0_MS, horizon_s: int = 300, ret: float = -0.004, z: float | None = -4.5,
    significant: bool = True, gap: bool = False, symbol: str = "USDJPY",
    direction: str = "escalation",
) -> Reaction:
    return Reaction(
        headline_id="h1", cluster_id="h1", symbol=symbol, horizon_s=horizon_s, t0=t0,
        t_start=t0, t1=t0 + horizon_s * 1000, p0=150.0, p0_ts=t0, p1=150.0 * math.exp(ret),
        p1_ts=t0 + horizon_s * 1000, ret=ret, z=z, sigma_1m=0.0004, max_up=0.0,
        max_down=min(ret, 0.0), significant=significant, gap=gap, n_ticks=5,
        direction=direction,  # type: ignore[arg-type]
    )


def alert(ts: int = T0_MS, direction: str = "down", ret: float = -0.006) -> Alert:
    return Alert(
        symbol="USDJPY", window_s=300, ts=ts, start_ts=ts - 300_000, p_start=150.0,
        p_end=150.0 * math.exp(ret), ret=ret, z=-7.0, direction=direction,  # type: ignore[arg-type]
        threshold_bp=40.0, threshold_z=6.0,
    )


def test_counters_watched_by_alerts_start_at_zero(registry: CollectorRegistry,
                                                  metrics: WorkerMetrics) -> None:
    assert value(registry, "tariffmon_ticks_total", symbol="N225") == 0.0
    assert value(registry, "tariffmon_sharp_moves_total", symbol="USDJPY", window="300",
                 direction="up") == 0.0
    assert value(registry, "tariffmon_significant_reactions_total", symbol="N225",
                 horizon="60", direction="de-escalation") == 0.0
    assert value(registry, "tariffmon_tariff_headlines_total", direction="neutral") == 0.0
    assert value(registry, "tariffmon_reaction_return_count", symbol="USDJPY",
                 horizon="300") == 0.0


def test_tick_sets_price_time_count_and_lag(registry: CollectorRegistry,
                                           metrics: WorkerMetrics) -> None:
    metrics.observe_tick(tick(T0_MS, 149.5), processed_at_s=T0_MS / 1000 + 0.25)
    metrics.observe_tick(tick(T0_MS + 1000, 149.7), processed_at_s=T0_MS / 1000 + 1.5)
    assert value(registry, "tariffmon_last_price", symbol="USDJPY") == 149.7
    assert value(registry, "tariffmon_last_tick_timestamp_seconds",
                 symbol="USDJPY") == T0_MS / 1000 + 1
    assert value(registry, "tariffmon_ticks_total", symbol="USDJPY") == 2.0
    assert value(registry, "tariffmon_event_lag_seconds_count", kind="tick") == 2.0
    assert value(registry, "tariffmon_event_lag_seconds_sum", kind="tick") == pytest.approx(0.75)
    assert value(registry, "tariffmon_event_lag_seconds_bucket", kind="tick", le="0.25") == 1.0
    assert value(registry, "tariffmon_latest_event_lag_seconds", kind="tick") == pytest.approx(0.5)


def test_a_batch_of_ticks_counts_each_and_observes_the_lag_once(
    registry: CollectorRegistry, metrics: WorkerMetrics
) -> None:
    metrics.observe_ticks("N225", 500, tick(T0_MS, 36_000.0, "N225"),
                          processed_at_s=T0_MS / 1000 + 2)
    assert value(registry, "tariffmon_ticks_total", symbol="N225") == 500.0
    assert value(registry, "tariffmon_last_price", symbol="N225") == 36_000.0
    assert value(registry, "tariffmon_event_lag_seconds_count", kind="tick") == 1.0
    assert value(registry, "tariffmon_latest_event_lag_seconds", kind="tick") == 2.0


def test_late_tick_is_counted_but_does_not_rewind_last_price(
    registry: CollectorRegistry, metrics: WorkerMetrics
) -> None:
    metrics.observe_tick(tick(T0_MS + 60_000, 150.0), processed_at_s=T0_MS / 1000 + 61)
    metrics.observe_tick(tick(T0_MS, 149.0), processed_at_s=T0_MS / 1000 + 62)
    assert value(registry, "tariffmon_last_price", symbol="USDJPY") == 150.0
    assert value(registry, "tariffmon_last_tick_timestamp_seconds",
                 symbol="USDJPY") == T0_MS / 1000 + 60
    assert value(registry, "tariffmon_ticks_total", symbol="USDJPY") == 2.0
    assert value(registry, "tariffmon_latest_event_lag_seconds", kind="tick") == 62.0


def test_rolling_return_by_window(registry: CollectorRegistry, metrics: WorkerMetrics) -> None:
    metrics.observe_rolling_return("USDJPY", 300, -0.0031)
    metrics.observe_rolling_return("USDJPY", 60, 0.0002)
    assert value(registry, "tariffmon_rolling_return", symbol="USDJPY",
                 window="300") == -0.0031
    assert value(registry, "tariffmon_rolling_return", symbol="USDJPY", window="60") == 0.0002


def test_headlines_by_source_tag_and_direction(registry: CollectorRegistry,
                                              metrics: WorkerMetrics) -> None:
    metrics.observe_headline(headline(), processed_at_s=T0_MS / 1000 + 30)
    metrics.observe_headline(headline(duplicate=True, source="feed-b", ts=T0_MS + 120_000))
    metrics.observe_headline(headline(is_tariff=False, source="feed-b", ts=T0_MS + 999_000))
    metrics.observe_headline(headline(direction="de-escalation", tags=("pause",),
                                      ts=T0_MS - 5_000))
    assert value(registry, "tariffmon_headlines_total", source="feed-a") == 2.0
    assert value(registry, "tariffmon_headlines_total", source="feed-b") == 2.0
    assert value(registry, "tariffmon_tariff_headlines_total", direction="escalation") == 1.0
    assert value(registry, "tariffmon_tariff_headlines_total", direction="de-escalation") == 1.0
    assert value(registry, "tariffmon_duplicate_tariff_headlines_total") == 1.0
    assert value(registry, "tariffmon_tariff_headline_tags_total", tag="autos",
                 direction="escalation") == 1.0
    assert value(registry, "tariffmon_tariff_headline_tags_total", tag="pause",
                 direction="de-escalation") == 1.0
    # the newest measured tariff headline's event time; the older one and the others don't move it
    assert value(registry, "tariffmon_last_tariff_headline_timestamp_seconds") == T0_MS / 1000
    assert value(registry, "tariffmon_event_lag_seconds_count", kind="headline") == 1.0
    assert value(registry, "tariffmon_latest_event_lag_seconds", kind="headline") == 30.0


def test_reaction_histograms_counters_and_latest(registry: CollectorRegistry,
                                                metrics: WorkerMetrics) -> None:
    metrics.observe_reaction(reaction())
    labels = {"symbol": "USDJPY", "horizon": "300"}
    assert value(registry, "tariffmon_reactions_total", **labels) == 1.0
    assert value(registry, "tariffmon_reaction_return_count", **labels) == 1.0
    assert value(registry, "tariffmon_reaction_abs_return_sum", **labels) == 0.004
    assert value(registry, "tariffmon_reaction_abs_return_bucket", **labels, le="0.003") == 0.0
    assert value(registry, "tariffmon_reaction_abs_return_bucket", **labels, le="0.005") == 1.0
    assert value(registry, "tariffmon_reaction_return_bucket", **labels, le="-0.005") == 0.0
    assert value(registry, "tariffmon_reaction_return_bucket", **labels, le="-0.002") == 1.0
    assert value(registry, "tariffmon_reaction_abs_z_sum", **labels) == 4.5
    assert value(registry, "tariffmon_reaction_abs_z_bucket", **labels, le="4.0") == 0.0
    assert value(registry, "tariffmon_reaction_abs_z_bucket", **labels, le="6.0") == 1.0
    assert value(registry, "tariffmon_significant_reactions_total", **labels,
                 direction="escalation") == 1.0
    assert value(registry, "tariffmon_gap_reactions_total", **labels) == 0.0
    assert value(registry, "tariffmon_latest_reaction_return", **labels) == -0.004
    assert value(registry, "tariffmon_latest_reaction_z", **labels) == -4.5
    assert value(registry, "tariffmon_latest_reaction_significant", **labels) == 1.0
    assert value(registry, "tariffmon_latest_reaction_headline_timestamp_seconds",
                 **labels) == T0_MS / 1000


def test_latest_reaction_follows_the_newest_headline_not_arrival_order(
    registry: CollectorRegistry, metrics: WorkerMetrics
) -> None:
    newer = T0_MS + 3_600_000
    metrics.observe_reaction(reaction(t0=newer, ret=0.001, z=None, significant=False, gap=True))
    metrics.observe_reaction(reaction(t0=T0_MS, ret=-0.004))  # older headline, arrives later
    labels = {"symbol": "USDJPY", "horizon": "300"}
    assert value(registry, "tariffmon_latest_reaction_return", **labels) == 0.001
    z = value(registry, "tariffmon_latest_reaction_z", **labels)
    assert z is not None and math.isnan(z)
    assert value(registry, "tariffmon_latest_reaction_significant", **labels) == 0.0
    assert value(registry, "tariffmon_latest_reaction_headline_timestamp_seconds",
                 **labels) == newer / 1000
    # both are still counted; the one without z stays out of the |z| histogram
    assert value(registry, "tariffmon_reactions_total", **labels) == 2.0
    assert value(registry, "tariffmon_reaction_abs_z_count", **labels) == 1.0
    assert value(registry, "tariffmon_gap_reactions_total", **labels) == 1.0


def test_sharp_moves_by_symbol_window_direction(registry: CollectorRegistry,
                                                metrics: WorkerMetrics) -> None:
    metrics.observe_alert(alert(ts=T0_MS + 600_000))
    metrics.observe_alert(alert(ts=T0_MS, direction="up", ret=0.005))  # older, arrives later
    base = {"symbol": "USDJPY", "window": "300"}
    assert value(registry, "tariffmon_sharp_moves_total", **base, direction="down") == 1.0
    assert value(registry, "tariffmon_sharp_moves_total", **base, direction="up") == 1.0
    assert value(registry, "tariffmon_last_sharp_move_timestamp_seconds",
                 **base) == (T0_MS + 600_000) / 1000
    assert value(registry, "tariffmon_last_sharp_move_return", **base) == -0.006


def test_dead_letters_and_late_inputs(registry: CollectorRegistry,
                                      metrics: WorkerMetrics) -> None:
    metrics.dead_letter("tariffmon.ticks", "bad_json")
    metrics.dead_letter("tariffmon.ticks", "bad_json")
    metrics.dead_letter("tariffmon.headlines", "missing_field")
    metrics.late_input("tick")
    assert value(registry, "tariffmon_dead_letters_total", topic="tariffmon.ticks",
                 reason="bad_json") == 2.0
    assert value(registry, "tariffmon_dead_letters_total", topic="tariffmon.headlines",
                 reason="missing_field") == 1.0
    assert value(registry, "tariffmon_late_inputs_total", kind="tick") == 1.0


def test_no_label_carries_headline_text_or_id(registry: CollectorRegistry,
                                              metrics: WorkerMetrics) -> None:
    metrics.observe_headline(headline())
    metrics.observe_reaction(reaction())
    allowed = {"symbol", "horizon", "window", "tag", "direction", "source", "topic", "reason",
               "kind", "le"}
    for family in registry.collect():
        assert family.name.startswith("tariffmon_")
        for sample in family.samples:
            assert set(sample.labels) <= allowed, sample
            assert "h1" not in sample.labels.values()
            assert not any("tariff on Japan" in v for v in sample.labels.values())


def test_registries_are_independent() -> None:
    a, b = CollectorRegistry(), CollectorRegistry()
    WorkerMetrics(a).late_input("tick")
    WorkerMetrics(b)
    assert a.get_sample_value("tariffmon_late_inputs_total", {"kind": "tick"}) == 1.0
    assert b.get_sample_value("tariffmon_late_inputs_total", {"kind": "tick"}) is None


def test_from_settings_preinitialises_configured_values(registry: CollectorRegistry) -> None:
    settings = load_settings()
    WorkerMetrics.from_settings(registry, settings)
    for symbol in settings.symbol_names():
        for w in settings.engine.sharp_windows_s:
            assert value(registry, "tariffmon_sharp_moves_total", symbol=symbol,
                         window=str(w), direction="down") == 0.0
        for h in settings.engine.horizons_s:
            assert value(registry, "tariffmon_reactions_total", symbol=symbol,
                         horizon=str(h)) == 0.0


def test_serve_exposes_the_registry_on_the_given_address(registry: CollectorRegistry,
                                                         metrics: WorkerMetrics) -> None:
    metrics.observe_tick(tick(T0_MS, 149.5), processed_at_s=T0_MS / 1000)
    server = serve(registry, "127.0.0.1", 0)
    try:
        assert server.host == "127.0.0.1"
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=5) as resp:
            body = resp.read().decode()
    finally:
        server.close()
    assert 'tariffmon_last_price{symbol="USDJPY"} 149.5' in body


def test_headline_sources_are_a_bounded_label() -> None:
    from prometheus_client import CollectorRegistry

    from tariffmon.contract import ClassifiedHeadline
    from tariffmon.metrics.worker import MAX_SOURCE_LABELS, WorkerMetrics

    reg = CollectorRegistry()
    m = WorkerMetrics(reg)
    for i in range(MAX_SOURCE_LABELS + 30):
        m.observe_headline(ClassifiedHeadline(
            id=f"h{i}", ts=1_744_219_080_000, source=f"typed by hand {i}", title="x",
            is_tariff=False, score=0.0, tags=(), direction="neutral", cluster_id=f"h{i}"))
    sources = {s.labels["source"] for metric in reg.collect() for s in metric.samples
               if s.name == "tariffmon_headlines_total"}
    assert len(sources) == MAX_SOURCE_LABELS + 1 and "other" in sources
    assert reg.get_sample_value("tariffmon_headlines_total", {"source": "other"}) == 30


def attributed(n: int, seed: int) -> tuple[AttributedHeadline, ...]:
    rnd = random.Random(seed)
    return tuple(
        AttributedHeadline(id=f"h{seed}-{i}", ts=T0_MS - i * 60_000,
                           title=f"Tariff story {seed}-{i} " + "x" * rnd.randint(0, 300)
                           + (" | piped" if i % 2 else ""),
                           direction="escalation")
        for i in range(n)
    )


def info_series(registry: CollectorRegistry) -> list[dict[str, str]]:
    return [dict(s.labels) for f in registry.collect() for s in f.samples
            if s.name == "tariffmon_last_sharp_move_headlines_info"]


@pytest.mark.parametrize("seed", range(5))
def test_headline_titles_ride_on_one_info_series_per_symbol_and_window(seed: int) -> None:
    """The one label with headline text: bounded titles, one series per symbol and window
    however many alerts, showing the newest move's attribution whatever the arrival order."""
    rnd = random.Random(seed)
    registry = CollectorRegistry()
    metrics = WorkerMetrics(registry, symbols=["USDJPY"], windows_s=[60, 300])
    alerts = []
    for k in range(rnd.randint(1, 30)):
        window = rnd.choice([60, 300])
        a = dataclasses.replace(alert(ts=T0_MS + rnd.randint(0, 10**7)), window_s=window,
                                headlines=attributed(rnd.randint(0, 8), seed * 100 + k))
        alerts.append(a)
        metrics.observe_alert(a)
    series = info_series(registry)
    windows = {str(a.window_s) for a in alerts}
    assert sorted(s["window"] for s in series) == sorted(windows)
    for s in series:
        newest = max((a for a in alerts if str(a.window_s) == s["window"]), key=lambda a: a.ts)
        assert s["headline_count"] == str(len(newest.headlines))
        titles = s.get("headlines", "")
        parts = titles.split(TITLE_SEPARATOR) if titles else []
        assert len(parts) == min(len(newest.headlines), MAX_ALERT_TITLES)
        for part, h in zip(parts, newest.headlines, strict=False):
            assert len(part) <= MAX_ALERT_TITLE_CHARS
            assert part.startswith(h.title[:20])
        assert not any(h.id in titles for a in alerts for h in a.headlines)


def test_a_reissued_alert_updates_the_titles_only_when_it_is_the_latest_move() -> None:
    registry = CollectorRegistry()
    metrics = WorkerMetrics(registry, symbols=["USDJPY"], windows_s=[300])
    old, new = alert(ts=T0_MS), alert(ts=T0_MS + 3_600_000)
    metrics.observe_alert(old)
    metrics.observe_alert(new)
    assert info_series(registry)[0]["headline_count"] == "0"
    metrics.observe_alert_attribution(dataclasses.replace(old, headlines=attributed(2, 1)))
    assert info_series(registry)[0]["headline_count"] == "0"
    metrics.observe_alert_attribution(dataclasses.replace(new, headlines=attributed(3, 2)))
    (s,) = info_series(registry)
    assert s["headline_count"] == "3"
    assert s["headlines"].startswith("Tariff story 2-0")


def test_stale_feed_threshold_gauge_is_each_symbols_staleness_setting() -> None:
    """The rules read StaleFeed's threshold from this gauge: it must be the settings' value."""
    base = load_settings()
    for seconds in (1, 300, 86_400):
        symbols = [base.symbols[0].model_copy(update={"staleness_s": seconds}),
                   *base.symbols[1:]]
        settings = base.model_copy(update={"symbols": symbols})
        registry = CollectorRegistry()
        WorkerMetrics.from_settings(registry, settings)
        for s in settings.symbols:
            assert registry.get_sample_value(
                "tariffmon_feed_stale_after_seconds", {"symbol": s.name}) == s.staleness_s
