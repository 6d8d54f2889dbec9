"""Gap reactions against past gaps of the same kind; closed windows as confound groups."""

from __future__ import annotations

import dataclasses
import math
import random
import statistics

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tariffmon.contract import Reaction
from tariffmon.core.calendar import MS_PER_DAY, TradingCalendar
from tariffmon.core.engine import ReactionEngine, late_reach_back
from tariffmon.core.gaps import GapHistory, SeedGap, gap_kind, gap_kind_by_days, seed_from_daily
from tariffmon.core.params import EngineParams
from tests.tariffmon.core.engine_helpers import MIN, params, request

HOUR = 60 * MIN
#: Monday 2025-03-03 00:00 UTC
MON = 1_740_960_000_000
TOKYO = TradingCalendar.parse(["Mon-Fri 00:00-02:30", "Mon-Fri 03:30-06:30"])
FX = TradingCalendar.parse("Sun 21:00 - Fri 21:00")


def day(ts: int) -> int:
    return ts // MS_PER_DAY


def tokyo_days(gaps: list[float], step: int = MIN, seed: int = 1
               ) -> tuple[np.ndarray, np.ndarray, list[tuple[str, float]]]:
    """Weekday Tokyo sessions from MON with calm intraday ticks, one more session than
    ``gaps``: each reopen jumps by the next gap (log).  Returns the ticks and the gaps as
    the ticks show them, with their kind."""
    rng = np.random.default_rng(seed)
    ts_out: list[int] = []
    px_out: list[float] = []
    shown: list[tuple[str, float]] = []
    price, k, d = 30_000.0, 0, 0
    while k <= len(gaps):
        start = MON + d * MS_PER_DAY
        d += 1
        if not TOKYO.is_open(start):
            continue
        if ts_out:
            price *= math.exp(gaps[k - 1])
        k += 1
        first = True
        for t in range(start + step, start + int(6.5 * HOUR) + 1, step):
            if not TOKYO.is_open(t - 1):
                continue
            if not first:
                price *= math.exp(rng.normal(0, 2e-4))
            if first and px_out:
                shown.append((gap_kind(TOKYO, ts_out[-1], t), math.log(price / px_out[-1])))
            first = False
            ts_out.append(t)
            px_out.append(price)
    return np.array(ts_out, dtype=np.int64), np.array(px_out), shown


def tokyo_params(**kw: object) -> EngineParams:
    p = params(**kw)
    sym = dataclasses.replace(p.symbols["N225"], calendar=TOKYO)
    return dataclasses.replace(p, symbols={"N225": sym, "USDJPY": p.symbols["USDJPY"]})


def run(p: EngineParams, ts: np.ndarray, px: np.ndarray, reqs: list, batches: int = 1
        ) -> tuple[ReactionEngine, list[Reaction]]:
    eng = ReactionEngine(p)
    out: list[Reaction] = []
    for r in reqs:
        out += eng.on_request(r).reactions
    for chunk_ts, chunk_px in zip(np.array_split(ts, batches), np.array_split(px, batches),
                                  strict=True):
        out += eng.on_ticks("N225", chunk_ts, chunk_px).reactions
    return eng, sorted(out, key=lambda r: (r.t0, r.headline_id, r.horizon_s))


# --------------------------------------------------------------------------- kinds


@pytest.mark.parametrize(("close", "reopen", "kind"), [
    ("2025-04-07 06:30", "2025-04-08 00:01", "overnight"),
    ("2025-04-04 06:30", "2025-04-07 00:01", "weekend"),
    ("2025-04-07 02:30", "2025-04-07 03:31", "break"),
    ("2025-04-28 06:30", "2025-04-30 00:01", "holiday"),   # Showa Day, a Tuesday
    ("2025-05-02 06:30", "2025-05-07 00:01", "holiday"),   # Golden Week over a weekend
])
def test_tokyo_gap_kinds(close: str, reopen: str, kind: str) -> None:
    import datetime as dt

    def ms(s: str) -> int:
        return int(dt.datetime.fromisoformat(s + "+00:00").timestamp() * 1000)

    assert gap_kind(TOKYO, ms(close), ms(reopen)) == kind


def test_fx_weekend_and_a_data_hole() -> None:
    fri_close = MON + 4 * MS_PER_DAY + 21 * HOUR
    assert gap_kind(FX, fri_close, fri_close + 48 * HOUR + 15 * MIN) == "weekend"
    tue = MON + MS_PER_DAY + 10 * HOUR
    assert gap_kind(FX, tue, tue + 20 * MIN) == "stale"  # open throughout: no close


@given(st.integers(0, 40_000), st.integers(0, 12))
def test_kind_by_days_is_a_function_of_the_days_between(d0: int, span: int) -> None:
    kind = gap_kind_by_days(d0, d0 + span)
    weekdays = [(d + 3) % 7 for d in range(d0 + 1, d0 + span)]
    if span == 0:
        assert kind == "break"
    elif any(w < 5 for w in weekdays):
        assert kind == "holiday"
    elif weekdays or (d0 + 3) % 7 == 4:
        assert kind == "weekend"
    else:
        assert kind == "overnight"


# --------------------------------------------------------------------------- history


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(-0.03, 0.03, allow_nan=False), min_size=0, max_size=60),
       st.integers(2, 30), st.integers(2, 80))
def test_baseline_is_the_sample_std_of_the_most_recent_past_gaps(
    rets: list[float], min_count: int, max_count: int
) -> None:
    h = GapHistory()
    from tariffmon.core.gaps import Gap
    for i, r in enumerate(rets):
        c = MON + i * MS_PER_DAY + 6 * HOUR
        h.add(Gap("overnight", c, c + 17 * HOUR, r))
    close = MON + len(rets) * MS_PER_DAY + 6 * HOUR
    b = h.baseline("overnight", close, 10 * 365 * MS_PER_DAY, min_count, max_count)
    used = rets[-max_count:]
    assert b.n == len(used)
    if len(used) < max(min_count, 2):
        assert b.sigma is None
    else:
        want = statistics.stdev(used)
        assert (b.sigma is None and want == 0) or b.sigma == pytest.approx(want, rel=1e-9)
    assert h.baseline("weekend", close, 10 * 365 * MS_PER_DAY, 2, 80).n == 0


def test_seed_counts_until_a_seen_gap_stands_for_it_and_never_ahead_of_the_close() -> None:
    from tariffmon.core.gaps import Gap
    d0 = day(MON)
    bars = [(d0 + i, 100.0 * (1 + 0.01 * i), 100.0) for i in range(5)]  # Mon..Fri
    seed = seed_from_daily(TOKYO, bars)
    assert [s.kind for s in seed] == ["overnight"] * 4
    assert [round(s.ret, 6) for s in seed] == [round(math.log(1 + 0.01 * i), 6)
                                              for i in range(1, 5)]
    h = GapHistory(seed)
    wed_close = MON + 2 * MS_PER_DAY + int(6.5 * HOUR)
    # Tue's and Wed's opens are known at Wednesday's close, Thursday's is not
    assert h.baseline("overnight", wed_close, MS_PER_DAY * 30, 2, 10).n == 2
    # a gap seen in the ticks at Tuesday's reopen replaces the seed's Tuesday
    tue_open = MON + MS_PER_DAY + MIN
    h.add(Gap("overnight", MON + int(6.5 * HOUR), tue_open, 0.5))
    b = h.baseline("overnight", wed_close, MS_PER_DAY * 30, 2, 10)
    assert b.n == 2 and b.sigma == pytest.approx(statistics.stdev([0.5, math.log(1.02)]))


def test_fx_seed_has_only_weekend_gaps() -> None:
    d0 = day(MON)
    bars = [(d0 + i, 150.0, 150.0 + i) for i in range(14) if (i % 7) < 5]
    assert {s.kind for s in seed_from_daily(FX, bars)} == {"weekend"}


# --------------------------------------------------------------------------- engine


def test_gap_z_divides_the_gap_by_the_std_of_past_gaps_of_its_kind() -> None:
    rng = random.Random(5)
    gaps = [rng.gauss(0, 0.006) for _ in range(61)]
    gaps[-1] = 0.03
    ts, px, shown = tokyo_days(gaps)
    assert shown[-1] == ("overnight", pytest.approx(0.03))
    p = tokyo_params(gap_min_count=20, gap_memory_ms=365 * MS_PER_DAY)
    # a headline during the last overnight close
    last_open = int(ts[-1]) - int(ts[-1]) % MS_PER_DAY
    t0 = last_open - 8 * HOUR
    _, out = run(p, ts, px, [request("h", t0, "N225")])
    (r,) = [r for r in out if r.horizon_s == 60]
    assert r.gap and r.gap_kind == "overnight" and r.confound_id
    past = [g for kind, g in shown[:-1] if kind == "overnight"]
    assert r.gap_count == len(past) >= 20
    assert r.gap_sigma == pytest.approx(statistics.stdev(past))
    assert r.gap_ret == pytest.approx(math.log(r.p1 / r.p0)) or r.n_ticks > 1
    assert r.gap_z == pytest.approx(r.gap_ret / r.gap_sigma)
    assert abs(r.gap_z) > p.gap_significance_z and r.significant
    # z of the whole horizon: gap and intraday variances add
    assert r.z is not None and abs(r.z) <= abs(r.ret) / r.gap_sigma + 1e-12


def test_an_ordinary_gap_is_not_significant_while_its_intraday_z_would_be_huge() -> None:
    rng = random.Random(9)
    gaps = [rng.gauss(0, 0.008) for _ in range(41)]
    gaps[-1] = 0.004  # half a sigma: ordinary for a Nikkei night
    ts, px, _ = tokyo_days(gaps)
    p = tokyo_params(gap_min_count=20, gap_memory_ms=365 * MS_PER_DAY)
    last_open = int(ts[-1]) - int(ts[-1]) % MS_PER_DAY
    _, out = run(p, ts, px, [request("h", last_open - 2 * HOUR, "N225")])
    r = next(r for r in out if r.horizon_s == 60)
    assert r.sigma_1m is not None and abs(r.gap_ret or 0) / r.sigma_1m > 10
    assert r.gap_z is not None and abs(r.gap_z) < 1.5 and not r.significant


@pytest.mark.parametrize("bp", [5.0, 40.0])
def test_too_few_past_gaps_flag_it_and_the_bp_threshold_decides(bp: float) -> None:
    gaps = [bp / 10_000] * 5
    ts, px, _ = tokyo_days(gaps)
    p = tokyo_params(gap_min_count=20)
    last_open = int(ts[-1]) - int(ts[-1]) % MS_PER_DAY
    _, out = run(p, ts, px, [request("h", last_open - HOUR, "N225")])
    r = next(r for r in out if r.horizon_s == 60)
    assert r.gap and r.z is None and r.gap_z is None and r.gap_sigma is None
    assert "few_past_gaps" in r.flags and r.gap_count is not None and r.gap_count < 20
    assert r.significant is (abs(r.ret) >= p.significance_ret)


@settings(max_examples=15, deadline=None)
@given(st.integers(1, 9), st.integers(0, 2**31))
def test_gaps_seen_do_not_depend_on_batching(batches: int, seed: int) -> None:
    rng = random.Random(seed)
    gaps = [rng.gauss(0, 0.006) for _ in range(20)]
    ts, px, _ = tokyo_days(gaps, step=5 * MIN, seed=seed % 1000)
    p = tokyo_params(gap_min_count=5, gap_memory_ms=365 * MS_PER_DAY)
    e1, out1 = run(p, ts, px, [request("h", int(ts[-1]) - 20 * HOUR, "N225")], 1)
    e2, out2 = run(p, ts, px, [request("h", int(ts[-1]) - 20 * HOUR, "N225")], batches)
    assert e1.state("N225").gaps.seen == e2.state("N225").gaps.seen
    assert out1 == out2


def test_a_rebuild_from_history_needed_remembers_the_same_gaps() -> None:
    rng = random.Random(3)
    gaps = [rng.gauss(0, 0.006) for _ in range(40)]
    ts, px, _ = tokyo_days(gaps, step=5 * MIN)
    p = tokyo_params(gap_min_count=5, gap_memory_ms=10 * MS_PER_DAY)
    full, _ = run(p, ts, px, [])
    ticks_from, _, complete = full.history_needed()
    assert complete and ticks_from is not None
    keep = ts >= ticks_from
    rebuilt, _ = run(p, ts[keep], px[keep], [])
    seen = full.state("N225").gaps.seen
    assert seen and rebuilt.state("N225").gaps.seen == seen
    # forgotten by the same clock: only the memory before the oldest acceptable p0
    assert seen[0].close_ts >= int(ts[-1]) - p.lateness_ms - p.gap_memory_ms - MS_PER_DAY
    # and a headline of the next close gets the same answer from both
    nxt_ts = np.array([int(ts[-1]) + 18 * HOUR, int(ts[-1]) + 18 * HOUR + 10 * MIN])
    nxt_px = px[-1] * np.array([1.01, 1.011])
    req = request("n", int(ts[-1]) + HOUR, "N225")
    a = full.on_request(req).reactions + full.on_ticks("N225", nxt_ts, nxt_px).reactions
    b = rebuilt.on_request(req).reactions + rebuilt.on_ticks("N225", nxt_ts, nxt_px).reactions
    assert a == b and a and a[0].gap_count is not None


def test_a_late_gap_headline_reads_back_the_gap_memory() -> None:
    from tariffmon.contract import Tick
    p = tokyo_params(gap_memory_ms=10 * MS_PER_DAY)
    close = MON + 4 * MS_PER_DAY + int(6.5 * HOUR)
    ticks = [Tick("N225", close - MIN, 30_000.0, "t"), Tick("N225", close, 30_010.0, "t")]
    t0 = close + 30 * HOUR  # Saturday: closed
    need = late_reach_back(p, ticks, t0, read_from=close - 2 * MIN)
    assert need is not None and need <= close - p.gap_memory_ms


# --------------------------------------------------------------------------- confounding


@settings(max_examples=20, deadline=None)
@given(st.permutations(range(5)), st.integers(1, 4))
def test_headlines_of_one_closed_window_share_one_confound_id(order: list[int], batches: int
                                                              ) -> None:
    rng = random.Random(11)
    gaps = [rng.gauss(0, 0.006) for _ in range(11)]
    ts, px, _ = tokyo_days(gaps, step=5 * MIN)
    last_open = int(ts[-1]) - int(ts[-1]) % MS_PER_DAY
    prev_open = last_open - MS_PER_DAY
    # three headlines during the last night, one in the night before, one intraday
    t0s = [last_open - 9 * HOUR, last_open - 5 * HOUR, last_open - 1 * HOUR,
           prev_open - 3 * HOUR, last_open + HOUR]
    reqs = [request(f"h{i}", t, "N225") for i, t in enumerate(t0s)]
    p = tokyo_params(gap_min_count=5, lateness_ms=30 * HOUR)
    _, out = run(p, ts, px, [reqs[i] for i in order], batches)
    by = {r.headline_id: r.confound_id for r in out if r.horizon_s == 60}
    assert by["h0"] == by["h1"] == by["h2"] is not None
    assert by["h3"] is not None and by["h3"] != by["h0"]
    assert by["h4"] is None  # open market: no closed window
    night = [r for r in out if r.confound_id == by["h0"] and r.horizon_s == 60]
    assert len({(r.p0, r.p1, r.ret) for r in night}) == 1  # one move, credited three times


def test_seed_gap_dataclass_covers_its_reopen_days() -> None:
    s = SeedGap("weekend", 10, 13, 0.01)
    assert s.covers(11 * MS_PER_DAY) and s.covers(14 * MS_PER_DAY - 1)
    assert not s.covers(14 * MS_PER_DAY) and not s.covers(11 * MS_PER_DAY - 1)
