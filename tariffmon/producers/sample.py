"""The bundled sample: a synthetic but realistic tariff episode, generated with a fixed seed.

Window: Wednesday 2 April 2025 00:00 UTC to Monday 7 April 2025 01:00 UTC - three full
trading days, the FX weekend close (Friday 21:00 to Sunday 21:00 UTC) and Monday's reopen.

Prices follow a latent log-price path on a one-second grid, sampled as ``quote`` ticks only
while the market is open (the calendars of the default settings), at most one per second:

* USD/JPY starts at 149.50 with a volatility of about 1 basis point per square-root minute,
  higher in the London and New York sessions, lower late in the US afternoon and at the Sunday
  reopen, with fat-tailed (Student-t) increments.  The latent path keeps moving, slowly, over
  the weekend, and headlines then move it, so Sunday's reopen shows a gap.
* The Nikkei 225 starts at 35,700, trades only in Tokyo's sessions (00:00-02:30 and
  03:30-06:30 UTC, weekdays); its latent path is the yen move times a beta plus its own
  noise, so the overnight and lunch-break news arrives as an opening gap.
* The Nikkei futures (``NIY``, CME's yen contract) follow the same latent path at a small
  discount, in 5-point steps, on CME's nearly 24-hour calendar: they take the US-evening
  news at once, hours before Tokyo's reopen.

30 headlines, written for this sample (fictional wording, dates echoing the April 2025
episode): tariff escalations (announcements, retaliation) and de-escalations (envoys, calls,
talks) each followed by an injected reaction (a jump, then a drift, with higher volatility
and tick activity), and non-tariff headlines (central banks, data releases, earnings) as
negatives, some with their own modest moves.  The same story appears from two sources once
(``repeats``), and one headline has no publication time (``ts_estimated``).  Which headlines
are about tariffs, and which way, is what the classifier says: :func:`label_headlines` runs
the pipeline's own headline desk over them and :func:`write_sample` writes its verdicts to
``labels.csv``, so the sample's labels agree with the rules by construction.

Everything derives from one ``numpy`` PCG64 generator seeded with :data:`DEFAULT_SEED`, so the
same seed (and numpy version) gives byte-identical files.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from tariffmon.assembly import CoreSetup, core_setup
from tariffmon.contract import SCHEMA_VERSION, ClassifiedHeadline, Headline
from tariffmon.core.calendar import TradingCalendar
from tariffmon.producers.headlines.build import headline_id
from tariffmon.recorded import RecordedEvent, write_events
from tariffmon.settings import CME_GLOBEX_CALENDAR, load_settings

DEFAULT_SEED = 20250402
START = datetime(2025, 4, 2, 0, 0, tzinfo=UTC)
END = datetime(2025, 4, 7, 1, 0, tzinfo=UTC)
SOURCE = "sample"
TICKS_FILE = "ticks.jsonl.gz"
HEADLINES_FILE = "headlines.jsonl"

LABELS_FILE = "labels.csv"
LABEL_COLUMNS = ("utc", "id", "source", "is_tariff", "direction", "score", "tags", "story",
                 "duplicate", "title")

FX_CALENDAR = ["Sun 21:00 - Fri 21:00"]
TOKYO_CALENDAR = ["Mon-Fri 00:00-02:30", "Mon-Fri 03:30-06:30"]
FUTURES_CALENDAR = list(CME_GLOBEX_CALENDAR)
#: log discount of the futures to the index (dividends until expiry), and CME's price step
FUTURES_BASIS = -0.0025
FUTURES_TICK = 5.0


@dataclass(frozen=True, slots=True)
class Effect:
    """A reaction injected into one symbol's latent path after a headline.

    ``jump_bp`` at once (after ``lag_s``), then ``drift_bp`` spread over ``drift_min``
    minutes, with volatility times ``vol_mult`` for ``vol_min`` minutes.
    """

    jump_bp: float = 0.0
    drift_bp: float = 0.0
    drift_min: int = 15
    vol_mult: float = 1.0
    vol_min: int = 30
    lag_s: int = 8


@dataclass(frozen=True, slots=True)
class SampleHeadline:
    """One headline of the script and the reactions it sets off."""

    when: str  # "YYYY-MM-DD HH:MM:SS" UTC
    source: str
    title: str
    #: the injected moves per symbol; the Nikkei's also move the Nikkei futures (same latent
    #: path).  Whether a headline is about tariffs, and which way, is not written here: the
    #: labels file says what the classifier makes of it (:func:`label_headlines`).
    effects: dict[str, Effect] = field(default_factory=dict)
    ts_estimated: bool = False
    #: ``when`` of the headline whose story this one repeats (another outlet's wording):
    #: the story clustering must count the two once
    repeats: str | None = None


def _fx(jump: float, drift: float = 0.0, mins: int = 15, vol: float = 1.0) -> Effect:
    return Effect(jump, drift, mins, vol, 45)


SCRIPT: tuple[SampleHeadline, ...] = (
    # --- Wednesday 2 April
    SampleHeadline("2025-04-02 01:30:00", "sample-wire",
                   "Japan's household spending falls more than forecast in February",
                   {"USDJPY": _fx(-2), "N225": _fx(-6)}),
    SampleHeadline("2025-04-02 04:10:00", "sample-news",
                   "Carmakers slip in Tokyo as investors brace for details of US auto tariffs",
                   {"USDJPY": _fx(-3, -4), "N225": _fx(-12, -20, 30, 1.5)}),
    SampleHeadline("2025-04-02 06:00:00", "sample-rss",
                   "Game maker shares rise ahead of console launch showcase",
                   {"N225": _fx(3)}),
    SampleHeadline("2025-04-02 12:15:00", "sample-wire",
                   "US private employers add more jobs than expected in March, payroll "
                   "processor says", {"USDJPY": _fx(8, 4, 10, 1.5)}),
    SampleHeadline("2025-04-02 14:00:00", "sample-news",
                   "US factory orders edge up in February", {}),
    SampleHeadline("2025-04-02 20:10:00", "sample-wire",
                   "US president announces sweeping reciprocal tariffs, 24% on imports from "
                   "Japan",
                   {"USDJPY": Effect(-45, -65, 40, 3.0, 90, 6),
                    "N225": Effect(-180, -140, 90, 2.0, 120, 6)}),
    SampleHeadline("2025-04-02 20:12:30", "sample-news",
                   "Japan faces 24% 'reciprocal' duty as Washington unveils new tariff regime",
                   {}, repeats="2025-04-02 20:10:00"),
    SampleHeadline("2025-04-02 22:30:00", "sample-rss",
                   "Tokyo's trade minister calls US tariffs deeply regrettable, will seek "
                   "exemption", {"USDJPY": _fx(-5, -5)}),
    # --- Thursday 3 April
    SampleHeadline("2025-04-03 00:05:00", "sample-wire",
                   "Nikkei opens sharply lower as tariff shock hits exporters",
                   {"N225": Effect(0, -40, 30, 2.0, 60, 5)}),
    SampleHeadline("2025-04-03 01:20:00", "sample-news",
                   "Japan's prime minister says all options on the table in response to US "
                   "levies",
                   {"USDJPY": _fx(-10, -8, 20, 2.0), "N225": _fx(-35, -30, 20, 2.0)}),
    SampleHeadline("2025-04-03 02:45:00", "sample-rss",
                   "Automaker shares tumble as 25% US levy on imported cars takes effect",
                   {"USDJPY": _fx(-12, -6), "N225": _fx(-60, -20, 30, 1.5)}),
    SampleHeadline("2025-04-03 05:40:00", "sample-wire",
                   "Bank of Japan governor says watching markets closely, declines to comment "
                   "on currency levels", {"USDJPY": _fx(6, 3)}),
    SampleHeadline("2025-04-03 08:30:00", "sample-news",
                   "Euro zone services activity revised higher in March survey", {}),
    SampleHeadline("2025-04-03 09:10:00", "sample-rss",
                   "European central bank policymakers see case for April rate cut", {}),
    SampleHeadline("2025-04-03 10:00:00", "sample-rss",
                   "Japanese exporters weigh shifting production to US amid tariff threat",
                   {}, ts_estimated=True),
    SampleHeadline("2025-04-03 12:30:00", "sample-wire",
                   "US weekly jobless claims fall to 219,000", {"USDJPY": _fx(5)}),
    SampleHeadline("2025-04-03 14:00:00", "sample-news",
                   "US services index slows to lowest since last summer",
                   {"USDJPY": _fx(-6, -12, 20, 1.5)}),
    SampleHeadline("2025-04-03 18:30:00", "sample-rss",
                   "Fed vice chair says import duties may lift inflation and slow growth",
                   {"USDJPY": _fx(-6, -4)}),
    # --- Friday 4 April
    SampleHeadline("2025-04-04 00:30:00", "sample-wire",
                   "Japan's top government spokesman says will respond appropriately to "
                   "currency moves", {"USDJPY": _fx(8, 4)}),
    SampleHeadline("2025-04-04 02:00:00", "sample-news",
                   "China announces 34% retaliatory tariff on all US goods",
                   {"USDJPY": Effect(-35, -40, 25, 2.5, 60, 10),
                    "N225": Effect(-110, -90, 25, 2.0, 60, 10)}),
    SampleHeadline("2025-04-04 05:15:00", "sample-rss",
                   "Electronics group raises full-year profit outlook on strong games sales",
                   {"N225": _fx(10)}),
    SampleHeadline("2025-04-04 12:30:00", "sample-wire",
                   "US economy adds 228,000 jobs in March; unemployment rate 4.2%",
                   {"USDJPY": Effect(18, -10, 30, 2.0, 45, 3)}),
    SampleHeadline("2025-04-04 15:25:00", "sample-news",
                   "Fed chair warns tariff increases larger than expected, so may be the "
                   "economic effects", {"USDJPY": _fx(-14, -10, 20, 1.5)}),
    SampleHeadline("2025-04-04 16:40:00", "sample-rss",
                   "Japan's prime minister to speak with US president by phone on tariffs",
                   {"USDJPY": _fx(15, 10, 20, 1.5)}),
    # --- weekend: FX and Tokyo closed, the reaction shows as a gap at the reopen
    SampleHeadline("2025-04-05 09:00:00", "sample-wire",
                   "Japan to send economy minister to Washington as tariff negotiator",
                   {"USDJPY": _fx(25), "N225": _fx(60)}),
    SampleHeadline("2025-04-05 14:30:00", "sample-news",
                   "US 10% baseline tariff takes effect at ports of entry",
                   {"USDJPY": _fx(-10), "N225": _fx(-40)}),
    # --- Sunday reopen and Monday
    SampleHeadline("2025-04-06 22:10:00", "sample-rss",
                   "US commerce secretary says tariffs will not be postponed",
                   {"USDJPY": _fx(-25, -20, 20, 2.0), "N225": _fx(-90, -60)}),
    SampleHeadline("2025-04-06 23:50:00", "sample-news",
                   "Stock index futures slump in early Asian trade on recession fears",
                   {"USDJPY": _fx(-15, -10), "N225": _fx(-80, -40)}),
    SampleHeadline("2025-04-07 00:10:00", "sample-wire",
                   "Tokyo stocks extend slide at the open as tariff rout deepens", {}),
    SampleHeadline("2025-04-07 00:40:00", "sample-news",
                   "Japan and US agree to start tariff talks, Japanese premier says after call",
                   {"USDJPY": Effect(22, 25, 15, 2.0, 40, 5),
                    "N225": Effect(90, 110, 15, 2.0, 40, 5)}),
)


@dataclass(frozen=True, slots=True)
class SymbolModel:
    """How one symbol's latent path is simulated."""

    name: str
    start_price: float
    decimals: int
    calendar: list[str]


def _utc_ms(text: str) -> int:
    dt = datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    return int(dt.timestamp()) * 1000


def _hour_profile(seconds: np.ndarray, table: dict[int, float]) -> np.ndarray:
    hours = (seconds // 3600) % 24
    lut = np.array([table[h] for h in range(24)])
    out: np.ndarray = lut[hours]
    return out


def _by_hour(steps: list[tuple[int, float]]) -> dict[int, float]:
    """A value per UTC hour from ``(first hour, value)`` steps (the first step at hour 0)."""
    table = {}
    for h in range(24):
        table[h] = next(v for start, v in reversed(steps) if h >= start)
    return table


def _fx_vol_bp_per_min() -> dict[int, float]:
    # Tokyo 0-6, London 7-12, New York 12-17, late US 17-21, Sydney/Wellington 21-24
    return _by_hour([(0, 0.85), (7, 1.05), (12, 1.3), (17, 0.8), (21, 0.6)])


def _fx_activity() -> dict[int, float]:
    return _by_hour([(0, 0.30), (7, 0.45), (17, 0.22), (21, 0.12)])


def _effect_arrays(n: int, t0_ms: int, symbol: str,
                   script: tuple[SampleHeadline, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(added log-return per second, volatility multiplier, activity boost) for a symbol."""
    add = np.zeros(n)
    vol = np.ones(n)
    boost = np.zeros(n)
    for h in script:
        eff = h.effects.get(symbol)
        if eff is None:
            continue
        i = (_utc_ms(h.when) - t0_ms) // 1000 + eff.lag_s
        if not 0 <= i < n:
            continue
        add[i] += eff.jump_bp * 1e-4
        d = max(1, eff.drift_min * 60)
        add[i + 1: i + 1 + d] += eff.drift_bp * 1e-4 / d
        v = eff.vol_min * 60
        vol[i: i + v] = np.maximum(vol[i: i + v], eff.vol_mult)
        boost[i: i + 20 * 60] = 0.5
    return add, vol, boost


def _futures_activity() -> dict[int, float]:
    # busiest while Tokyo trades, then in US cash hours; thin in between and late in the US day
    table = {}
    for h in range(24):
        if h < 7:
            table[h] = 0.20
        elif h < 13:
            table[h] = 0.06
        elif h < 20:
            table[h] = 0.10
        else:
            table[h] = 0.04
    return table


def _round_to(prices: np.ndarray, step: float) -> np.ndarray:
    out: np.ndarray = np.round(prices / step) * step
    return out


def generate(seed: int = DEFAULT_SEED) -> tuple[list[RecordedEvent], list[RecordedEvent]]:
    """The sample's (tick events, headline events), each sorted by event time.

    Neither depends on the classifier or the settings: the labels are made separately
    (:func:`label_headlines`).
    """
    rng = np.random.Generator(np.random.PCG64(seed))
    t0_ms = int(START.timestamp()) * 1000
    n = int((END - START).total_seconds())
    secs = np.arange(n, dtype=np.int64) + t0_ms // 1000
    ts_ms = secs * 1000

    fx_cal = TradingCalendar.parse(FX_CALENDAR)
    tk_cal = TradingCalendar.parse(TOKYO_CALENDAR)
    fut_cal = TradingCalendar.parse(FUTURES_CALENDAR)
    # the calendars are defined per minute: evaluate once a minute and spread
    minutes = ts_ms[::60]
    fx_open = np.repeat([fx_cal.is_open(int(t)) for t in minutes], 60)[:n]
    tk_open = np.repeat([tk_cal.is_open(int(t)) for t in minutes], 60)[:n]
    fut_open = np.repeat([fut_cal.is_open(int(t)) for t in minutes], 60)[:n]

    # USD/JPY latent path: session volatility, Student-t increments (unit variance)
    t_df = 5.0
    z_fx = rng.standard_t(t_df, n) / np.sqrt(t_df / (t_df - 2))
    sigma_fx = _hour_profile(secs, _fx_vol_bp_per_min()) * 1e-4 / np.sqrt(60)
    sigma_fx = np.where(fx_open, sigma_fx, 0.25e-4 / np.sqrt(60))  # quiet weekend drift
    add_fx, vol_fx, boost_fx = _effect_arrays(n, t0_ms, "USDJPY", SCRIPT)
    r_fx = z_fx * sigma_fx * vol_fx + add_fx
    log_fx = np.log(149.50) + np.cumsum(r_fx)

    # Nikkei: beta to the yen move plus its own noise, livelier in session
    z_nk = rng.standard_t(t_df, n) / np.sqrt(t_df / (t_df - 2))
    sigma_nk = np.where(tk_open, 1.4e-4, 0.7e-4) / np.sqrt(60)
    add_nk, vol_nk, boost_nk = _effect_arrays(n, t0_ms, "N225", SCRIPT)
    r_nk = 1.1 * (z_fx * sigma_fx * vol_fx) + z_nk * sigma_nk * vol_nk + add_nk
    log_nk = np.log(35_700.0) + np.cumsum(r_nk)

    u_fx = rng.random(n)
    u_nk = rng.random(n)
    act_fx = np.minimum(0.95, _hour_profile(secs, _fx_activity()) + boost_fx)
    act_nk = np.minimum(0.95, 0.35 + boost_nk)
    take_fx = fx_open & (u_fx < act_fx)
    take_nk = tk_open & (u_nk < act_nk)

    # Nikkei futures: the index's latent path (so news moves them at once, while the index
    # waits for Tokyo's open) at a small discount, quoted in CME's 5-point ticks.  Drawn after
    # the other symbols' numbers, so their ticks do not depend on the futures.
    u_fut = rng.random(n)
    act_fut = np.minimum(0.95, _hour_profile(secs, _futures_activity()) + 0.6 * boost_nk)
    take_fut = fut_open & (u_fut < act_fut)
    fut_prices = _round_to(np.exp(log_nk + FUTURES_BASIS), FUTURES_TICK)

    ticks: list[RecordedEvent] = []
    models = (("USDJPY", np.exp(log_fx), take_fx, 3), ("N225", np.exp(log_nk), take_nk, 2),
              ("NIY", fut_prices, take_fut, 0))
    # within a second: USD/JPY, then the Nikkei, then its futures
    rows = sorted((int(i), k) for k, (_, _, take, _) in enumerate(models)
                  for i in np.flatnonzero(take))
    for i, k in rows:
        name, prices, _, decimals = models[k]
        ts = int(ts_ms[i])
        price = round(float(prices[i]), decimals)
        # Tick(...).to_dict() spelled out: dataclasses.asdict is too slow for 10^5 ticks
        value = {"v": SCHEMA_VERSION, "symbol": name, "ts": ts,
                 "price": float(price) if decimals else int(price),
                 "source": SOURCE, "kind": "quote"}
        ticks.append(RecordedEvent("ticks", name, ts, value))

    return ticks, headline_events()


def headline_events() -> list[RecordedEvent]:
    """The script's headlines as recorded events, sorted by event time (no randomness)."""
    heads: list[RecordedEvent] = []
    for h in SCRIPT:
        ts = _utc_ms(h.when)
        if h.ts_estimated:
            ts += 7 * 60_000 + 13_000  # the fetch that found it, a few minutes later
        head = Headline(id=headline_id(h.title, h.source), ts=ts, source=h.source,
                        title=h.title, ts_estimated=True if h.ts_estimated else None)
        heads.append(RecordedEvent("headlines", head.key, ts, head.to_dict()))
    heads.sort(key=lambda e: e.ts)
    return heads


def label_headlines(heads: list[RecordedEvent], setup: CoreSetup) -> list[ClassifiedHeadline]:
    """What the pipeline makes of each headline: the classifier's verdict and story cluster.

    The same :class:`~tariffmon.core.headlines.HeadlineDesk` as the worker and the backtest,
    over the headlines in time order, so the labels agree with them by construction, whatever
    the rules in force.
    """
    desk = setup.new_desk()
    return [desk.process(Headline.from_dict(e.value))[0] for e in heads]


def write_labels(path: Path, labels: list[ClassifiedHeadline]) -> int:
    """The labels as CSV (one row per headline, in time order); returns rows written."""
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(LABEL_COLUMNS)
        for ch in labels:
            utc = datetime.fromtimestamp(ch.ts / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            w.writerow([
                utc, ch.id, ch.source, str(ch.is_tariff).lower(), ch.direction,
                f"{ch.score:g}", " ".join(ch.tags), ch.cluster_id, str(ch.duplicate).lower(),
                ch.title,
            ])
    return len(labels)


def write_sample(
    out_dir: str | Path, seed: int = DEFAULT_SEED, setup: CoreSetup | None = None
) -> dict[str, int]:
    """Generate the sample into ``out_dir``; returns file name -> events (or rows) written.

    ``setup`` is the core whose classifier and story clustering label the headlines; by
    default the one of :func:`~tariffmon.settings.load_settings`.
    """
    out = Path(out_dir)
    ticks, heads = generate(seed)
    setup = setup if setup is not None else core_setup(load_settings())
    return {
        TICKS_FILE: write_events(out / TICKS_FILE, ticks),
        HEADLINES_FILE: write_events(out / HEADLINES_FILE, heads),
        LABELS_FILE: write_labels(out / LABELS_FILE, label_headlines(heads, setup)),
    }
