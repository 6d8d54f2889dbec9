"""Benchmark: the pure core's throughput on a generated week of one-second ticks.

Three symbols (USDJPY, N225 and Nikkei futures ``NKD``, all ticking every second, all on an
"always open" calendar so that every second of the week is a tick) and 500 tariff headlines
spread over the week, each moving the prices a little so that reactions and alerts happen.

Measured:

* ``core``: the backtest's core (:class:`tariffmon.backtest.runner.BacktestCore`, the same
  calls as the live worker) over in-memory arrays, fed in event-time order with the tick
  batches cut at every headline.  ``ticks_per_s`` = ticks / wall time of the whole run
  (headline classification included).  Best of ``--repeat`` runs.
* ``classifier``: headlines classified per second by the configured rules (English and
  Japanese, direction included) on the generated titles, against a baseline in the same run:
  one case-insensitive regex search for a tariff word per headline (what a naive filter
  costs), so the ratio says what the rules cost on top of reading the text once.
* ``decode``: the live worker's bulk decode of a fetch of tick records (the three symbols
  interleaved), by columns, against the per-record loop it falls back to for a batch with
  an exception, in the same run; both must give the same runs.
* ``files`` (unless ``--no-files``): the whole ``run_backtest`` from a recorded-stream file
  written to a temporary folder (reading, contract validation, batching and the core).

Prints one JSON object and writes it to ``--out`` (default ``bench/results/core.json``).
``--profile`` also runs the core once under pyinstrument and writes the text profile next to
the JSON.  ``--smoke`` uses tiny sizes (CI).

    .venv/bin/python bench/bench_core.py [--smoke] [--repeat 3] [--profile] [--no-files]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from common import ACTORS, COUNTRIES, SECTORS

from tariffmon.backtest.runner import BacktestCore, run_backtest, sort_reactions
from tariffmon.contract import Alert, Headline, Reaction, Tick
from tariffmon.recorded import RecordedEvent, RecordedWriter
from tariffmon.settings import PROJECT_ROOT, Settings, load_settings

#: Monday 2025-04-07 00:00:00 UTC
WEEK_START_MS = 1_743_984_000_000
SYMBOLS = ("USDJPY", "N225", "NKD")
#: per-second volatility of log prices (USDJPY ~ 4 bp per minute)
SIGMA_1S = {"USDJPY": 0.5e-4, "N225": 0.8e-4, "NKD": 0.9e-4}
START_PRICE = {"USDJPY": 147.0, "N225": 33_000.0, "NKD": 33_050.0}
#: log move over the 5 minutes after an escalation headline (de-escalation: the opposite)
HEADLINE_MOVE = {"USDJPY": -0.0025, "N225": -0.006, "NKD": -0.006}
RESULTS = PROJECT_ROOT / "bench" / "results"

_ESCALATE = [
    "{actor} raises tariffs on {country} {sector} imports to {pct}%",
    "{actor} threatens {pct}% import levy on {sector} from {country}",
    "{country} retaliates with {pct}% duties on US {sector}",
    "{actor} slaps {pct}% tariff on {country} {sector} in new salvo",
    "{actor} widens Section 232 probe to {country} {sector}",
]
_DEESCALATE = [
    "{actor} pauses {sector} tariffs on {country} for {days} days",
    "{country} and US reach trade deal cutting {sector} tariffs to {pct}%",
    "{actor} grants {country} exemption from {sector} levies",
    "{actor} delays {pct}% {sector} tariff on {country} as talks progress",
    "{actor} lowers {country} {sector} tariff rate to {pct}% under truce",
]


@dataclass(frozen=True, slots=True)
class Week:
    """The generated input: tick arrays per symbol and headlines in time order."""

    ts: dict[str, np.ndarray]
    price: dict[str, np.ndarray]
    interval: dict[str, np.ndarray]
    headlines: list[Headline]

    @property
    def n_ticks(self) -> int:
        """All ticks of all symbols."""
        return sum(len(t) for t in self.ts.values())


def bench_settings() -> Settings:
    """The default settings with a third symbol; every calendar always open."""
    return load_settings(symbols=[
        {"name": "USDJPY", "yahoo": "JPY=X", "calendar": ["always"], "staleness_s": 300},
        {"name": "N225", "yahoo": "^N225", "calendar": ["always"], "staleness_s": 300},
        {"name": "NKD", "yahoo": "NKD=F", "calendar": ["always"], "staleness_s": 300},
    ])


def _title(rng: np.random.Generator, escalation: bool) -> str:
    template = str(rng.choice(_ESCALATE if escalation else _DEESCALATE))
    return template.format(
        actor=rng.choice(ACTORS), country=rng.choice(COUNTRIES),
        sector=rng.choice(SECTORS), pct=int(rng.integers(5, 60)),
        days=int(rng.choice([30, 60, 90, 120])),
    )


def generate(seconds: int, n_headlines: int, seed: int = 20250407) -> Week:
    """``seconds`` of one-second ticks for :data:`SYMBOLS` and ``n_headlines`` headlines."""
    rng = np.random.default_rng(seed)
    ts = WEEK_START_MS + np.arange(seconds, dtype=np.int64) * 1_000
    # headlines at distinct whole seconds, away from the very start (the baseline needs ticks)
    lo = min(seconds // 10, 3 * 3_600)
    at = np.sort(rng.choice(np.arange(lo, seconds), size=n_headlines, replace=False))
    escalation = rng.random(n_headlines) < 0.6
    headlines = [
        Headline(id=f"bench-{i:04d}", ts=int(ts[k]), source="bench",
                 title=_title(rng, bool(esc)))
        for i, (k, esc) in enumerate(zip(at, escalation, strict=True))
    ]
    prices: dict[str, np.ndarray] = {}
    ramp = 300
    for sym in SYMBOLS:
        steps = rng.normal(0.0, SIGMA_1S[sym], seconds)
        # each headline adds its move evenly over the next five minutes
        per_second = np.where(escalation, 1.0, -1.0) * HEADLINE_MOVE[sym] / ramp
        drift = np.zeros(seconds + ramp)
        np.add.at(drift, at, per_second)
        np.add.at(drift, at + ramp, -per_second)
        steps += np.cumsum(drift)[:seconds]
        prices[sym] = np.round(START_PRICE[sym] * np.exp(np.cumsum(steps)), 3)
    zeros = np.zeros(seconds, dtype=np.int64)
    return Week({s: ts for s in SYMBOLS}, prices, {s: zeros for s in SYMBOLS}, headlines)


def run_core(week: Week, settings: Settings) -> tuple[float, float, BacktestCore]:
    """Feed the core in event-time order; (wall seconds, seconds spent on headlines, core)."""
    core = BacktestCore(settings)  # loading the rules is set-up, not throughput
    cuts = {s: np.searchsorted(week.ts[s], [h.ts for h in week.headlines], side="left")
            for s in SYMBOLS}
    start = {s: 0 for s in SYMBOLS}
    headline_s = 0.0
    t_begin = time.perf_counter()
    for i, h in enumerate(week.headlines):
        for s in SYMBOLS:
            end = int(cuts[s][i])
            if end > start[s]:
                core.ticks(s, week.ts[s][start[s]:end], week.price[s][start[s]:end],
                           week.interval[s][start[s]:end])
                start[s] = end
        t_h = time.perf_counter()
        core.headline(h)  # at equal time the headline goes before the ticks
        headline_s += time.perf_counter() - t_h
    for s in SYMBOLS:
        if start[s] < len(week.ts[s]):
            core.ticks(s, week.ts[s][start[s]:], week.price[s][start[s]:],
                       week.interval[s][start[s]:])
    core.finish()
    return time.perf_counter() - t_begin, headline_s, core


def head_of(week: Week, seconds: int) -> Week:
    """The first ``seconds`` of ``week`` (ticks and the headlines among them)."""
    end = WEEK_START_MS + seconds * 1_000
    return Week(
        {s: t[:seconds] for s, t in week.ts.items()},
        {s: p[:seconds] for s, p in week.price.items()},
        {s: i[:seconds] for s, i in week.interval.items()},
        [h for h in week.headlines if h.ts < end],
    )


def run_one_tick_at_a_time(week: Week, settings: Settings) -> tuple[float, BacktestCore]:
    """The baseline: the same input, each tick handed to the engine on its own.

    This is how a naive live adapter would drive the core (``on_tick_list([tick])`` per
    Kafka record); the contract objects are built before the clock starts, so the ratio is
    the engine's per-call overhead against its batched array path, nothing else.
    """
    core = BacktestCore(settings)
    n = len(week.ts[SYMBOLS[0]])
    ticks = [[Tick(symbol=s, ts=int(week.ts[s][k]), price=float(week.price[s][k]),
                   source="bench") for s in SYMBOLS] for k in range(n)]
    heads = week.headlines
    h_i = 0
    engine = core.engine
    t_begin = time.perf_counter()
    for k in range(n):
        t = ticks[k][0].ts
        while h_i < len(heads) and heads[h_i].ts <= t:
            core.headline(heads[h_i])
            h_i += 1
        for tick in ticks[k]:
            out = engine.on_tick_list([tick])
            if out.reactions:
                core.reactions.extend(out.reactions)
    for h in heads[h_i:]:
        core.headline(h)
    core.finish()
    return time.perf_counter() - t_begin, core


def digest(reactions: list[Reaction], alerts: list[Alert]) -> str:
    """A fingerprint of the outputs, to check that two runs gave the same answers."""
    h = hashlib.sha256()
    for msg in [*reactions, *alerts]:
        h.update(msg.encode())
        h.update(b"\n")
    return h.hexdigest()


def write_recorded(week: Week, path: Path) -> int:
    """The week as one recorded-stream file (ticks and headlines merged by time)."""
    n = len(next(iter(week.ts.values())))
    heads = iter(week.headlines)
    nxt = next(heads, None)
    with RecordedWriter(path) as w:
        for k in range(n):
            t = int(week.ts[SYMBOLS[0]][k])
            while nxt is not None and nxt.ts <= t:
                w.write(RecordedEvent("headlines", nxt.key, nxt.ts, nxt.to_dict()))
                nxt = next(heads, None)
            for s in SYMBOLS:
                value = {"v": 1, "symbol": s, "ts": t, "price": float(week.price[s][k]),
                         "source": "bench", "kind": "quote"}
                w.write_line(RecordedEvent("ticks", s, t, value).to_line())
        while nxt is not None:
            w.write(RecordedEvent("headlines", nxt.key, nxt.ts, nxt.to_dict()))
            nxt = next(heads, None)
        return w.count


def bench_files(week: Week, settings: Settings) -> dict[str, Any]:
    """The full runner from a recorded-stream file."""
    with tempfile.TemporaryDirectory(prefix="tariffmon-bench-") as tmp:
        path = Path(tmp) / "week.jsonl"
        t = time.perf_counter()
        lines = write_recorded(week, path)
        write_s = time.perf_counter() - t
        size = path.stat().st_size
        t = time.perf_counter()
        result = run_backtest([path], settings)
        wall = time.perf_counter() - t
    return {
        "lines": lines, "file_bytes": size, "write_s": round(write_s, 3),
        "wall_s": round(wall, 3), "lines_per_s": round(lines / wall),
        "reactions": len(result.reactions), "alerts": len(result.alerts),
        "invalid": result.counts.invalid_total,
        "digest": digest(result.reactions, result.alerts),
    }


def bench_classifier(week: Week, settings: Settings, rounds: int) -> dict[str, Any]:
    """Headlines/s of the configured classifier against one regex search per headline."""
    import re

    from tariffmon.assembly import core_setup

    classifier = core_setup(settings).classifier
    titles = [h.title for h in week.headlines] + [
        "関税 日本 米国 ２４％", "日米関税交渉、合意に至らず",
        "US factory orders edge up in February",
    ]
    naive = re.compile(r"\b(tariffs?|duty|duties|levy|levies)\b|関税", re.IGNORECASE)

    def rate(fn: Any) -> float:
        best = float("inf")
        for _ in range(max(1, rounds)):
            t = time.perf_counter()
            for title in titles:
                fn(title)
            best = min(best, time.perf_counter() - t)
        return len(titles) / best

    rules = rate(classifier.classify)
    base = rate(naive.search)
    return {"headlines": len(titles), "headlines_per_s": round(rules),
            "baseline_regex_per_s": round(base), "ratio_vs_one_regex": round(base / rules, 1)}


def bench_decode(week: Week, settings: Settings, rounds: int, batch: int = 20_000
                 ) -> dict[str, Any]:
    """The live path's bulk decode of tick records (a fetch of ``batch`` records, the three
    symbols interleaved as on one partition): by columns, against the per-record loop it
    falls back to, in the same run, and the same decoded runs from both."""
    from tariffmon.contract import Tick
    from tariffmon.streams import records as rec

    merged = sorted((int(t), sym, float(p)) for sym in SYMBOLS
                    for t, p in zip(week.ts[sym][:batch], week.price[sym][:batch],
                                    strict=True))[:batch]
    records = [rec.InRecord("ticks", 0, i, t, sym.encode(), Tick(sym, t, p, "bench").encode())
               for i, (t, sym, p) in enumerate(merged)]
    limits = rec.InputDecoder(settings, clock=lambda: merged[-1][0] / 1000).limits()

    def per_tick_us(fn: Any) -> float:
        best = float("inf")
        for _ in range(max(1, rounds)):
            t = time.perf_counter()
            fn(records, limits)
            best = min(best, time.perf_counter() - t)
        return best / len(records) * 1e6

    columnar = rec._decode_ticks_columnar(records, limits)
    by_record = rec._decode_ticks_by_record(records, limits)
    assert columnar is not None and not columnar.errors
    same = [(r.symbol, r.index, r.ts.tolist(), r.price.tolist()) for r in columnar.runs] == [
        (r.symbol, r.index, r.ts.tolist(), r.price.tolist()) for r in by_record.runs]
    cols = per_tick_us(rec._decode_ticks_columnar)
    loop = per_tick_us(rec._decode_ticks_by_record)
    return {"records": len(records), "columnar_us_per_tick": round(cols, 3),
            "baseline_per_record_us_per_tick": round(loop, 3),
            "ratio_vs_per_record": round(loop / cols, 2), "same_runs": same}


def profile_core(week: Week, settings: Settings, path: Path) -> str:
    """One core run under pyinstrument; the text profile is written to ``path``."""
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.0005)
    profiler.start()
    run_core(week, settings)
    profiler.stop()
    text: str = profiler.output_text(unicode=False, color=False, show_all=False)
    path.write_text(text, encoding="utf-8")
    return text


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print and write the JSON result."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--smoke", action="store_true", help="tiny sizes, for CI")
    ap.add_argument("--days", type=float, default=None, help="length of the generated input")
    ap.add_argument("--headlines", type=int, default=None, help="tariff headlines to spread")
    ap.add_argument("--repeat", type=int, default=None, help="core runs; the best is kept")
    ap.add_argument("--no-files", action="store_true", help="skip the file-based run")
    ap.add_argument("--profile", action="store_true", help="write a pyinstrument profile")
    ap.add_argument("--baseline-hours", type=float, default=None,
                    help="length of the subset the one-tick-at-a-time baseline runs on")
    ap.add_argument("--out", type=Path, default=None, help="result JSON path")
    args = ap.parse_args(argv)
    days = args.days if args.days is not None else (0.25 if args.smoke else 7.0)
    n_head = args.headlines if args.headlines is not None else (20 if args.smoke else 500)
    repeat = args.repeat if args.repeat is not None else (1 if args.smoke else 3)
    out = args.out or RESULTS / ("core_smoke.json" if args.smoke else "core.json")

    settings = bench_settings()
    t = time.perf_counter()
    week = generate(int(days * 86_400), n_head)
    gen_s = time.perf_counter() - t
    runs = [run_core(week, settings) for _ in range(max(1, repeat))]
    wall, headline_s, core = min(runs, key=lambda r: r[0])
    c = core.counts
    result: dict[str, Any] = {
        "benchmark": "core",
        "smoke": args.smoke,
        "days": days,
        "symbols": list(SYMBOLS),
        "ticks": week.n_ticks,
        "headlines": len(week.headlines),
        "generate_s": round(gen_s, 3),
        "core": {
            "wall_s": round(wall, 4),
            "ticks_per_s": round(week.n_ticks / wall),
            "headline_s": round(headline_s, 4),
            "tick_s": round(wall - headline_s, 4),
            "runs_s": [round(r[0], 4) for r in runs],
            "tariff_headlines": c.tariff_headlines,
            "duplicate_headlines": c.duplicate_headlines,
            "requests": c.requests,
            "reactions": c.reactions,
            "significant": sum(r.significant for r in core.reactions),
            "alerts": c.alerts,
            "pending": c.pending,
            "rejected": c.rejected_total,
            "digest": digest(sort_reactions(core.reactions), core.alerts()),
        },
        "target_ticks_per_s": 1_000_000,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "machine": f"{platform.machine()} {platform.system()}",
    }
    # the baseline in the same run, on a subset (it is slow); the batched core on the same
    # subset gives the ratio
    base_h = args.baseline_hours if args.baseline_hours is not None else (
        1.0 if args.smoke else 12.0)
    sub = head_of(week, int(base_h * 3_600))
    base_wall, base_core = run_one_tick_at_a_time(sub, settings)
    sub_wall = min(run_core(sub, settings)[0] for _ in range(max(1, repeat)))
    sub_core = run_core(sub, settings)[2]
    result["baseline_one_tick_at_a_time"] = {
        "hours": base_h, "ticks": sub.n_ticks, "headlines": len(sub.headlines),
        "wall_s": round(base_wall, 4), "ticks_per_s": round(sub.n_ticks / base_wall),
        "reactions": len(base_core.reactions),
        "same_reactions_as_core": digest(sort_reactions(base_core.reactions), [])
        == digest(sort_reactions(sub_core.reactions), []),
        "core_on_subset_wall_s": round(sub_wall, 4),
        "core_on_subset_ticks_per_s": round(sub.n_ticks / sub_wall),
    }
    result["ratio_core_vs_one_tick_at_a_time"] = round(base_wall / sub_wall, 2)
    result["classifier"] = bench_classifier(week, settings, 3 if args.smoke else 10)
    result["decode"] = bench_decode(week, settings, 3 if args.smoke else 10,
                                    2_000 if args.smoke else 20_000)
    out.parent.mkdir(parents=True, exist_ok=True)
    if not args.no_files:
        result["files"] = bench_files(week, settings)
    if args.profile:
        prof = out.with_name(out.stem + "_profile.txt")
        profile_core(week, settings, prof)
        result["profile"] = (
            str(prof.relative_to(PROJECT_ROOT)) if prof.is_relative_to(PROJECT_ROOT) else str(prof)
        )
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
