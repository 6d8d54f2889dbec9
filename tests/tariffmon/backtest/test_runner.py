"""The backtest runner on the bundled sample and on small hand-made inputs."""

from __future__ import annotations

import gzip
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from tariffmon.backtest import (
    BacktestError,
    BacktestResult,
    IncompleteInputError,
    run_backtest,
    run_events,
    runner,
)
from tariffmon.backtest.runner import total_bytes
from tariffmon.recorded import (
    BadLineCounter,
    RecordedEvent,
    merge_events,
    read_events,
    write_events,
)
from tariffmon.settings import PROJECT_ROOT, load_settings

SAMPLE = PROJECT_ROOT / "data" / "sample"
SAMPLE_FILES = [SAMPLE / "ticks.jsonl.gz", SAMPLE / "headlines.jsonl"]
#: 2025-04-02 20:10 UTC: "US president announces sweeping reciprocal tariffs, ..."
RECIPROCAL_T0 = 1_743_624_600_000
SEC = 1_000


@pytest.fixture(scope="module")
def sample() -> BacktestResult:
    return run_backtest(SAMPLE_FILES, load_settings())


def _encoded(result: BacktestResult) -> tuple[list[bytes], list[bytes]]:
    return [r.encode() for r in result.reactions], [a.encode() for a in result.alerts]


def test_sample_gives_reactions_for_every_measured_headline(sample: BacktestResult) -> None:
    c = sample.counts
    assert c.ticks == 156_078 and c.headlines == 30 and c.invalid_total == 0
    assert c.rejected_total == 0 and c.reactions == len(sample.reactions) > 100
    measured = sample.measured_headlines()
    assert c.requests == len(measured) * len(sample.symbols)
    horizons = len(sample.params.horizons_ms)
    keys = [r.key for r in sample.reactions]
    assert len(keys) == len(set(keys)), "one answer per headline, symbol and horizon"
    # every request is either answered or still waiting when the input ends
    assert len(keys) + c.pending == c.requests * horizons
    order = [(r.t0, r.headline_id, r.symbol, r.horizon_s) for r in sample.reactions]
    assert order == sorted(order)
    assert set(sample.prices) == {"USDJPY", "N225", "NIY"}
    assert sum(len(p) for p in sample.prices.values()) == c.ticks


def test_sample_story_told_twice_is_measured_once(sample: BacktestResult) -> None:
    # the 2 April announcement comes from two outlets 2.5 minutes apart (data/sample/README.md)
    by_title = {h.title: h for h in sample.headlines}
    first = by_title[
        "US president announces sweeping reciprocal tariffs, 24% on imports from Japan"
    ]
    repeat = by_title["Japan faces 24% 'reciprocal' duty as Washington unveils new tariff regime"]
    assert repeat.duplicate and repeat.cluster_id == first.id and not first.duplicate
    assert sample.counts.duplicate_headlines == 1
    measured = {r.headline_id for r in sample.reactions}
    assert first.id in measured and repeat.id not in measured


def test_sample_classification_is_sane(sample: BacktestResult) -> None:
    by_title = {h.title: h for h in sample.headlines}
    reciprocal = by_title[
        "US president announces sweeping reciprocal tariffs, 24% on imports from Japan"
    ]
    assert reciprocal.is_tariff and reciprocal.direction == "escalation"
    assert "tariff" in reciprocal.tags and "japan" in reciprocal.tags
    talks = by_title["Japan and US agree to start tariff talks, Japanese premier says after call"]
    assert talks.is_tariff and talks.direction == "de-escalation"
    china = by_title["China announces 34% retaliatory tariff on all US goods"]
    assert china.is_tariff and china.direction == "escalation"
    for title in (
        "Japan's household spending falls more than forecast in February",
        "US weekly jobless claims fall to 219,000",
        "Game maker shares rise ahead of console launch showcase",
        "Bank of Japan governor says watching markets closely, declines to comment on "
        "currency levels",
    ):
        assert not by_title[title].is_tariff, title
    assert 10 <= sample.counts.tariff_headlines <= 25


def test_reciprocal_tariff_announcement_moves_usdjpy_down(sample: BacktestResult) -> None:
    r = {(x.symbol, x.horizon_s): x for x in sample.reactions if x.t0 == RECIPROCAL_T0}
    one_min = r[("USDJPY", 60)]
    assert one_min.direction == "escalation" and not one_min.gap
    assert one_min.ret < -0.001 and one_min.significant
    # Tokyo is closed at 20:10 UTC: the Nikkei's answer waits for the reopen
    assert r[("N225", 60)].gap and r[("N225", 60)].t_start > RECIPROCAL_T0
    # while its futures trade on CME and take the news at once
    futures = r[("NIY", 60)]
    assert not futures.gap and futures.t_start == RECIPROCAL_T0
    assert futures.ret < -0.01 and futures.significant


def test_backtest_is_deterministic_and_ignores_file_order(sample: BacktestResult) -> None:
    again = run_backtest(SAMPLE_FILES, load_settings())
    assert _encoded(again) == _encoded(sample)
    swapped = run_backtest(list(reversed(SAMPLE_FILES)), load_settings())
    assert [r.encode() for r in swapped.reactions] == [r.encode() for r in sample.reactions]


def _first_hours(hours: float) -> list[RecordedEvent]:
    start = next(read_events(SAMPLE_FILES[0])).ts
    end = start + int(hours * 3_600 * SEC)
    ticks = [e for e in read_events(SAMPLE_FILES[0]) if e.ts < end]
    heads = [e for e in read_events(SAMPLE_FILES[1]) if e.ts < end]
    return sorted(ticks + heads, key=lambda e: e.ts)


def test_invalid_lines_are_counted_and_skipped(tmp_path: Path) -> None:
    events = _first_hours(6)
    clean = tmp_path / "clean.jsonl"
    write_events(clean, events)
    mid = events[len(events) // 2]
    bad_tick = dict(mid.value, symbol="USDJPY", price=-1.0) if mid.stream == "ticks" else None
    assert bad_tick is not None
    dirty = tmp_path / "dirty.jsonl.gz"
    lines = [e.to_line() for e in events]
    extra = [
        b"this is not json",
        RecordedEvent("ticks", "USDJPY", mid.ts, bad_tick).to_line(),
        RecordedEvent("ticks", "EURUSD", mid.ts, dict(bad_tick, symbol="EURUSD",
                                                      price=1.1)).to_line(),
        RecordedEvent("headlines", "x", mid.ts, {"v": 1, "id": "x", "ts": mid.ts,
                                                 "source": "s"}).to_line(),
        RecordedEvent("classified", "y", mid.ts, {"anything": 1}).to_line(),
        RecordedEvent("ticks", "USDJPY", mid.ts - 3_600_000, dict(bad_tick, price=150.0,
                                                                  ts=mid.ts - 3_600_000)
                      ).to_line(),  # goes back in time within the file
        b"",
    ]
    k = len(lines) // 2 + 1
    with gzip.open(dirty, "wb") as fh:
        fh.write(b"\n".join(lines[:k] + extra + lines[k:]) + b"\n")

    good = run_backtest([clean], load_settings())
    bad = run_backtest([dirty], load_settings())
    assert dict(bad.counts.invalid) == {
        "?:bad_json": 1, "ticks:not_positive": 1, "ticks:unknown_symbol": 1,
        "headlines:missing_field": 1, "ticks:unsorted": 1,
    }
    assert dict(bad.counts.ignored) == {"classified": 1}
    assert len(bad.invalid) == 5
    assert all(x.where.startswith(str(dirty)) for x in bad.invalid)
    assert any("title" in x.error for x in bad.invalid)
    assert _encoded(bad) == _encoded(good)
    assert good.reactions, "the first hours of the sample hold a tariff headline"


def test_truncated_gzip_stops_the_run_and_keeps_what_was_read(tmp_path: Path) -> None:
    data = SAMPLE_FILES[0].read_bytes()
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(data[: len(data) // 3])
    seen: list[int] = []
    with pytest.raises(IncompleteInputError) as info:
        run_backtest([cut, SAMPLE_FILES[1]], load_settings(), progress=seen.append)
    err = info.value
    assert err.error.path == str(cut) and err.error.line > 1
    assert f"{cut}: reading stopped at line {err.error.line}" in str(err)
    partial = err.result
    assert partial.read_error is err.error
    assert 0 < partial.counts.ticks < 156_078 and partial.counts.invalid_total == 0
    assert sum(seen) == total_bytes([cut, SAMPLE_FILES[1]])


@pytest.mark.parametrize("junk", [b"", b"plain text, not gzip\n"])
def test_unreadable_gzip_is_an_incomplete_input(tmp_path: Path, junk: bytes) -> None:
    path = tmp_path / "ticks.jsonl.gz"
    path.write_bytes(junk)
    with pytest.raises(IncompleteInputError, match=re.escape(f"{path}: reading stopped at line 1")):
        run_backtest([path], load_settings())


def test_reader_bad_lines_are_counted_and_the_rest_is_used(tmp_path: Path) -> None:
    events = _first_hours(3)
    clean = tmp_path / "clean.jsonl"
    write_events(clean, events)
    t = events[len(events) // 2].ts
    bad = [
        b"{not json",
        b"42",
        b'{"stream":"ticks","key":"USDJPY","value":{}}',
        b'{"stream":"ticks","key":"USDJPY","ts":"%d","value":{}}' % t,
        b'{"stream":"","key":"USDJPY","ts":%d,"value":{}}' % t,
        b'{"stream":"ticks","key":"USDJPY","ts":%d,"value":[1]}' % t,
    ]
    lines = [e.to_line() for e in events]
    k = len(lines) // 2
    dirty = tmp_path / "dirty.jsonl"
    dirty.write_bytes(b"\n".join(lines[:k] + bad + lines[k:]) + b"\n")
    good = run_backtest([clean], load_settings())
    result = run_backtest([dirty], load_settings())
    assert dict(result.counts.invalid) == {"?:bad_json": 2, "?:missing_field": 1,
                                          "?:bad_type": 3}
    assert [x.where for x in result.invalid] == [f"{dirty}:{k + 1 + i}" for i in range(6)]
    assert _encoded(result) == _encoded(good)


def test_backtest_reads_the_events_replay_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same files, bad lines and all, give the backtest the events a replay publishes."""
    events = _first_hours(2)
    a, b = tmp_path / "a.jsonl.gz", tmp_path / "b.jsonl"
    lines = [e.to_line() for e in events]
    with gzip.open(a, "wb") as fh:
        fh.write(b"\n".join([*lines[::2], b"oops", *lines[1::2][:5]]) + b"\n")
    b.write_bytes(b"\n".join([b"[]", *lines[1::2]]) + b"\n")
    seen: list[RecordedEvent] = []
    original = runner._Driver.event

    def spy(self: runner._Driver, ev: RecordedEvent, source: int, lineno: int) -> None:
        seen.append(ev)
        original(self, ev, source, lineno)

    monkeypatch.setattr(runner._Driver, "event", spy)
    result = run_backtest([a, b], load_settings())
    assert seen == list(merge_events([a, b], on_bad_line=BadLineCounter()))
    assert result.counts.invalid == {"?:bad_json": 2, "ticks:unsorted": 5}


def test_time_range_filters_events() -> None:
    start = 1_743_552_000_000  # first tick of the sample, 2025-04-02 00:00 UTC
    result = run_backtest(SAMPLE_FILES, load_settings(), from_ts=start + 3_600 * SEC,
                          to_ts=start + 2 * 3_600 * SEC)
    ts = np.concatenate([p.ts for p in result.prices.values()])
    assert ts.min() >= start + 3_600 * SEC and ts.max() < start + 2 * 3_600 * SEC
    # only the 01:30 household-spending headline lies inside [01:00, 02:00)
    assert [h.ts for h in result.headlines] == [start + 5_400 * SEC]


def test_missing_input_fails_fast(tmp_path: Path) -> None:
    with pytest.raises(BacktestError, match="does not exist"):
        run_backtest([tmp_path / "nope.jsonl"], load_settings())


def test_headline_goes_before_ticks_of_the_same_instant() -> None:
    """A sharp move at the headline's own second: attributed at once, never re-issued."""
    t0 = 1_744_218_000_000  # Wed 2025-04-09 17:00 UTC, FX open
    events: list[RecordedEvent] = []
    price = 147.0
    for k in range(-3_600, 600):
        t = t0 + k * SEC
        if k == 0:
            price *= 1.01  # a 100 bp jump exactly at the headline
        value = {"v": 1, "symbol": "USDJPY", "ts": t, "price": round(price, 3),
                 "source": "test", "kind": "quote"}
        events.append(RecordedEvent("ticks", "USDJPY", t, value))
        if k == 0:  # listed after the tick of the same time
            events.append(RecordedEvent("headlines", "h1", t, {
                "v": 1, "id": "h1", "ts": t, "source": "test",
                "title": "Trump announces 90-day pause on reciprocal tariffs",
            }))
    result = run_events(events, load_settings())
    assert result.counts.alert_updates == 0
    first = [a for a in result.alerts if a.ts == t0]
    assert first and all(a.headlines and a.headlines[0].id == "h1" for a in first)
    sixty = {r.horizon_s: r for r in result.reactions if r.symbol == "USDJPY"}[60]
    assert sixty.p0_ts == t0 and sixty.ret == 0.0  # p0 is the price at or before t0


def test_progress_reports_every_byte_once() -> None:
    seen: list[int] = []
    run_backtest(SAMPLE_FILES, load_settings(), progress=seen.append,
                 to_ts=1_743_552_000_000 + 12 * 3_600 * SEC)
    assert len(seen) >= 2 and all(n >= 0 for n in seen)
    assert sum(seen) == total_bytes(SAMPLE_FILES)


@pytest.mark.parametrize("prices", [(1e308, 1e-16, 1e-16), (1e-300, 1e308, 1e308),
                                    (145.0, 1e-16, 1e308)])
def test_extreme_prices_are_invalid_input_not_a_crash(tmp_path: Path, prices: tuple[float, ...]
                                                      ) -> None:
    t = 1_743_681_600_000  # 2025-04-03 12:00 UTC, USD/JPY open
    lines = [
        {"stream": "ticks", "key": "USDJPY", "ts": t,
         "value": {"v": 1, "symbol": "USDJPY", "ts": t, "price": prices[0], "source": "x"}},
        {"stream": "headlines", "key": "h", "ts": t + 1_000,
         "value": {"v": 1, "id": "h", "ts": t + 1_000, "source": "x",
                   "title": "US imposes 24% reciprocal tariffs on Japan"}},
    ]
    for dt, p in ((2_000, prices[1]), (70 * 60_000, prices[2])):
        lines.append({"stream": "ticks", "key": "USDJPY", "ts": t + dt,
                      "value": {"v": 1, "symbol": "USDJPY", "ts": t + dt, "price": p,
                                "source": "x"}})
    path = tmp_path / "extreme.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    result = run_backtest([path], load_settings())
    out_of_band = sum(1 for p in prices if not 50.0 <= p <= 500.0)
    assert result.counts.invalid["ticks:price_range"] == out_of_band
    for r in result.reactions:  # whatever is measured is finite, and encodes
        assert all(math.isfinite(x) for x in (r.ret, r.max_up, r.max_down))
        r.encode()
