"""The late path on its own: how far back it reads, and what it measures (no Kafka)."""

from __future__ import annotations

from tariffmon.assembly import engine_params
from tariffmon.contract import ReactionRequest, Tick
from tariffmon.core.engine import measure_on_ticks
from tariffmon.settings import load_settings
from tariffmon.streams.late import LatePath
from tariffmon.streams.records import InRecord
from tariffmon.streams.stages import LateRequest
from tests.tariffmon.streams.market import ticks

SETTINGS = load_settings()
PARAMS = engine_params(SETTINGS)
#: Friday 2025-04-04 06:00 UTC: Tokyo trades until 06:30, then not until Monday 00:00
FRI = 1_743_746_400_000
MON = FRI + 66 * 3_600_000


def _n225() -> list[Tick]:
    friday = ticks("N225", FRI - 5 * 3_600_000, 5 * 3_600 + 1_800, seed=31)
    monday = ticks("N225", MON, 2 * 3_600, seed=32, jump_at=MON + 60_000)
    return [t for t in friday + monday if PARAMS.symbols["N225"].calendar.is_open(t.ts)]


def test_a_headline_after_the_close_reads_back_to_the_trading_before_it() -> None:
    tape = _n225()
    reads: list[int] = []

    def source(partition: int, symbol: str, from_ts: int, t0: int) -> list[Tick]:
        # what the Kafka reader returns: the symbol's ticks from ``from_ts`` on
        reads.append(from_ts)
        return [t for t in tape if t.ts >= from_ts]

    t0 = FRI + 9 * 3_600_000  # Friday 15:00 UTC, Tokyo long closed
    req = ReactionRequest("late", "late", "N225", t0, "tariffs", (), "escalation", 5.0)
    late = LateRequest(InRecord("requests", 0, 0, t0, b"N225", req.encode()), req)
    [(_, measured)] = LatePath(PARAMS, source).measure([late])
    res = measured.first
    # the first read (a few hours before t0) holds no N225 tick at all: it reached further
    assert len(reads) >= 2 and reads[-1] < reads[0]
    assert sorted(r.horizon_s for r in res.reactions) == [60, 300, 900, 3600]
    assert all(r.gap and r.p0_ts < FRI + 1_800_000 + 1 for r in res.reactions)
    # the same answer as measuring on the whole tape
    assert res.reactions == measure_on_ticks(PARAMS, req, tape).reactions
