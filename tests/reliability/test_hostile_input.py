"""100,000 hostile messages among the good ones: the worker dead-letters each, keeps the rest.

Bad values are drawn from hypothesis strategies (contract messages with one thing broken:
wrong types, NaN and infinities, zero and negative prices, timestamps in 1970 and past 2100,
unknown symbols, missing and extra fields, bad versions, empty and overlong texts, invalid
UTF-8, truncated JSON, another message kind, JSON that is not an object) and raw bytes, plus
a fixed list of named cases so that every category is there whatever hypothesis draws.  A
pool of a few thousand is drawn once and cycled to 100,000 records (pre-encoded, produced in
batches), interleaved at random with a synthetic market's good ticks and headlines, into the
ticks, headlines and reaction-requests topics, and one 10 MB headline on top.

The worker must stay up, dead-letter every bad record exactly once with the reason the
contract gives for it (matched by topic, partition and offset), dead-letter no good record,
and produce exactly the reference reactions and alerts of the good input.
"""

from __future__ import annotations

import base64
import json
import random
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType
from kafka.errors import KafkaError

from tariffmon.contract import (
    MAX_TS_MS,
    MIN_TS_MS,
    DeadLetter,
    Headline,
    Message,
    ReactionRequest,
    Tick,
)
from tariffmon.errors import ContractError
from tariffmon.kafkaclient import admin_client, client_config
from tariffmon.settings import Settings
from tariffmon.streams.records import BatchLimits, InputDecoder, InRecord
from tests.conftest import MakeSettings
from tests.kafka_helpers import consume_all
from tests.reference import reference
from tests.reliability.helpers import (
    GroupProbe,
    metric_value,
    read_outputs,
    wait_for_reactions,
    wait_for_settled_worker,
)
from tests.tariffmon.streams.market import T0, pause_headline, ticks
from tests.worker_process import WorkerProcess

pytestmark = [pytest.mark.integration, pytest.mark.slow]

N_BAD = 100_000
POOL_PER_KIND = 700
SYMBOLS = ("USDJPY", "N225")
TEN_MB = 10 * 1024 * 1024
#: a worker log line: a timestamp first (Faust's spinner may leave a backspace and a cursor
#: escape before one)
LOG_LINE = re.compile(r"^(?:\x08|\x1b\[\?25[hl])*\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")
#: (share of the bad records, contract class) per input topic
KINDS: dict[str, tuple[float, type[Message]]] = {
    "ticks": (0.55, Tick),
    "headlines": (0.25, Headline),
    "requests": (0.20, ReactionRequest),
}
TS_FIELD = {"ticks": "ts", "headlines": "ts", "requests": "t0"}
REQUIRED = {
    "ticks": ("v", "symbol", "ts", "price", "source"),
    "headlines": ("v", "id", "ts", "source", "title"),
    "requests": ("v", "headline_id", "cluster_id", "symbol", "t0", "title"),
}
#: JSON tokens no JSON encoder of ours writes but a sloppy producer might
RAW_TOKENS = ("NaN", "Infinity", "-Infinity", "1e999", "-1e999")
_RAW = "\x00raw\x00"


def base(kind: str, ts: int = T0) -> dict[str, Any]:
    """A valid message of ``kind`` as a dict."""
    if kind == "ticks":
        return {"v": 1, "symbol": "USDJPY", "ts": ts, "price": 145.25, "source": "test"}
    if kind == "headlines":
        return {"v": 1, "id": "h-junk", "ts": ts, "source": "test",
                "title": "Japan and US hold tariff talks"}
    return {"v": 1, "headline_id": "h-junk", "cluster_id": "h-junk", "symbol": "USDJPY",
            "t0": ts, "title": "Japan and US hold tariff talks", "tags": ["trade"],
            "direction": "neutral", "score": 4.0}


def encode(obj: Any, token: str | None = None) -> bytes:
    """JSON bytes; ``token`` replaces the placeholder string ``_RAW`` verbatim (NaN...)."""
    data = json.dumps(obj, allow_nan=True, ensure_ascii=False).encode("utf-8", "surrogatepass")
    if token is not None:
        data = data.replace(json.dumps(_RAW).encode(), token.encode())
    return data


junk_value = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=12),
    st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=4), st.integers(),
                                                         max_size=2),
)
bad_ts = st.one_of(
    st.integers(-(2**63), MIN_TS_MS - 1),  # 1970 and everything before 1990
    st.integers(MAX_TS_MS + 1, 2**63),     # 2100 and later
    st.sampled_from([0, 86_400_000, MAX_TS_MS + 1, 4_133_980_800_000]),
    st.floats(allow_nan=False, allow_infinity=False).filter(lambda f: not f.is_integer()),
)
bad_price = st.one_of(
    st.sampled_from([0, 0.0, -0.0, -1, -145.25]),
    st.floats(max_value=0.0, allow_nan=False, allow_infinity=False),
    st.sampled_from([True, False, None, "145.25", [145.25]]),
)
invalid_utf8 = st.sampled_from([b"\xff", b"\xfe\xff", b"\xc3\x28", b"\xed\xa0\x80",
                                b"\xf8\x88\x80\x80\x80", b"\x80", b"\xe2\x82"])


@st.composite
def structured_junk(draw: st.DrawFn, kind: str) -> bytes:
    """A message of ``kind`` with one thing broken, as bytes."""
    obj = base(kind)
    how = draw(st.sampled_from([
        "wrong_type", "missing", "extra", "bad_ts", "bad_price", "unknown_symbol",
        "bad_version", "bad_text", "raw_token", "invalid_utf8", "truncated", "not_object",
        "other_kind",
    ]))
    token: str | None = None
    if how == "wrong_type":
        name = draw(st.sampled_from(sorted(obj)))
        obj[name] = draw(junk_value)
    elif how == "missing":
        del obj[draw(st.sampled_from(REQUIRED[kind]))]
    elif how == "extra":
        name = draw(st.text(min_size=1, max_size=10).filter(lambda n: n not in obj))
        obj[name] = draw(junk_value)
    elif how == "bad_ts":
        obj[TS_FIELD[kind]] = draw(bad_ts)
    elif how == "bad_price":
        obj["price" if kind == "ticks" else TS_FIELD[kind]] = draw(bad_price)
    elif how == "unknown_symbol":
        sym = draw(st.one_of(st.text(max_size=10), st.sampled_from(["usdjpy", "EURUSD", "^N225",
                                                                     "JPY=X", " USDJPY"])))
        obj["symbol" if kind != "headlines" else "id"] = sym
    elif how == "bad_version":
        obj["v"] = draw(st.one_of(junk_value, st.sampled_from([0, 2, 1.5, "1", True])))
    elif how == "bad_text":
        name = "source" if kind == "ticks" else "title"
        obj[name] = draw(st.sampled_from(["", "   ", "\t\n", "x" * 1_001, "y" * 5_000]))
    elif how == "raw_token":
        obj["price" if kind == "ticks" else TS_FIELD[kind]] = _RAW
        token = draw(st.sampled_from(RAW_TOKENS))
    elif how == "invalid_utf8":
        good = encode(obj)
        cut = draw(st.integers(1, len(good) - 2))
        return good[:cut] + draw(invalid_utf8) + good[cut:]
    elif how == "truncated":
        good = encode(obj)
        return good[: draw(st.integers(0, len(good) - 1))]
    elif how == "not_object":
        return encode(draw(st.one_of(junk_value, st.lists(junk_value, max_size=3))))
    else:  # a valid message of another kind, on the wrong topic
        other = draw(st.sampled_from([k for k in KINDS if k != kind]))
        obj = base(other)
    return encode(obj, token)


def raw_junk() -> st.SearchStrategy[bytes | None]:
    """Bytes that never were JSON, and the null value (a tombstone)."""
    return st.one_of(st.binary(max_size=300), st.just(None), st.just(b""),
                     st.binary(min_size=1, max_size=40).map(lambda b: b"{" + b))


def named_cases(kind: str) -> list[bytes | None]:
    """Every category of the brief at least once, whatever hypothesis draws."""
    out: list[bytes | None] = []
    for token in RAW_TOKENS:
        out.append(encode({**base(kind), "ts" if kind != "requests" else "t0": _RAW}, token))
    ts_name = TS_FIELD[kind]
    out += [encode({**base(kind), ts_name: t}) for t in (0, 86_400_000, 4_102_444_800_001,
                                                         4_133_980_800_000, -1)]
    if kind == "ticks":
        out += [encode({**base(kind), "price": p}) for p in (0, 0.0, -0.0, -1, -145.25)]
    if kind != "headlines":
        out += [encode({**base(kind), "symbol": s}) for s in ("EURUSD", "usdjpy", "", "^N225")]
    for name in REQUIRED[kind]:
        out.append(encode({k: v for k, v in base(kind).items() if k != name}))
    if kind == "ticks":
        # valid JSON numbers far outside any real price: the band refuses them, so no
        # log return can overflow (1e308 against 1e-16 crashed the engine)
        out += [encode({**base(kind), "price": p}) for p in (1e308, 1e-16, 1e-300, 5e4)]
    # nested deeper than any repr can follow, but within orjson's depth limit, and beyond it
    out += [b'{"v":' + b"[" * 1000 + b"]" * 1000 + b"}",
            b'{"v":1,"' + TS_FIELD[kind].encode() + b'":' + b"[" * 1000 + b"]" * 1000 + b"}",
            b"[" * 2000 + b"]" * 2000]
    out += [encode({**base(kind), "unexpected": 1}), encode({**base(kind), "v": 2}),
            encode(base(kind))[:-1] + b"\xff}", b"\xff\xfe", b"not json", b"[]", b"null",
            b"", None]
    return out


def draw_pool(strategy: st.SearchStrategy[Any], n: int) -> list[Any]:
    """``n`` examples of ``strategy``, reproducibly (hypothesis' generation phase only)."""
    pool: list[Any] = []

    @hsettings(max_examples=n, database=None, derandomize=True, phases=[Phase.generate],
               deadline=None, suppress_health_check=list(HealthCheck))
    @given(strategy)
    def collect(value: Any) -> None:
        pool.append(value)

    collect()
    return pool


_OWN_KEY = b"\x00own key\x00"


def rejection(kind: str, value: bytes | None, limits: BatchLimits,
              key: bytes | None = _OWN_KEY) -> str | None:
    """The reason the worker's decoder rejects ``value`` on ``kind``'s topic (None: valid).

    Only ContractError means "rejected": anything else escapes, because the worker would
    not be able to dead-letter it either.  Without ``key`` the value is taken as keyed
    right (its own symbol).
    """
    decode = {"ticks": InputDecoder.tick, "headlines": InputDecoder.headline,
              "requests": InputDecoder.request}[kind]
    if key == _OWN_KEY:
        try:
            key = str(orjson.loads(value or b"").get("symbol", "")).encode()
        except (orjson.JSONDecodeError, AttributeError):
            key = b""
    try:
        decode(InRecord("t", 0, 0, 0, key, value), limits)
    except ContractError as exc:
        return exc.reason
    return None


#: Kafka timestamps a hostile producer may set (the broker takes any 64-bit value)
HOSTILE_TIMESTAMPS = (0, 1, MIN_TS_MS - 1, MAX_TS_MS + 1, 2**53 + 1, 2**62, 2**63 - 1)
#: keys a valid tick must not carry when they are not its symbol: another symbol, none,
#: not UTF-8, almost the symbol
WRONG_KEYS = (b"USDJPY", b"N225", b"EURUSD", b"", b"\xff\xfe\x00", None, b"usdjpy", b"USDJPY ")


@dataclass(frozen=True, slots=True)
class Out:
    """One record to produce and what the worker must make of it."""

    topic: str
    key: bytes | None
    value: bytes | None
    ts: int
    reason: str | None  # None: a good record
    headers: list[tuple[str, bytes]] = field(default_factory=list)


def build_records(settings: Settings, good_ticks: list[Tick], good_heads: list[Headline]
                  ) -> tuple[list[Out], Counter[str]]:
    """The good records in event-time order with N_BAD bad ones spread among them."""
    limits = InputDecoder(settings).limits()
    topics = {"ticks": settings.topics.ticks, "headlines": settings.topics.headlines,
              "requests": settings.topics.requests}
    pools: dict[str, list[tuple[bytes | None, str]]] = {}
    for kind in KINDS:
        values = named_cases(kind)
        values += draw_pool(structured_junk(kind), POOL_PER_KIND)
        values += draw_pool(raw_junk(), POOL_PER_KIND // 4)
        pools[kind] = [(v, r) for v in values if (r := rejection(kind, v, limits)) is not None]
    rnd = random.Random(20250409)
    good: list[tuple[int, Out]] = [
        (t.ts, Out(topics["ticks"], t.symbol.encode(), t.encode(), t.ts, None))
        for t in good_ticks
    ]
    good += [(h.ts, Out(topics["headlines"], h.id.encode(), h.encode(), h.ts, None))
             for h in good_heads]
    good.sort(key=lambda p: p[0])
    # bad record i goes before good record slots[i]; the named cases come first, so all are in
    slots = sorted(rnd.randrange(len(good)) for _ in range(N_BAD))
    kinds = rnd.choices(list(KINDS), weights=[w for w, _ in KINDS.values()], k=N_BAD)
    cursor = dict.fromkeys(KINDS, 0)
    reasons: Counter[str] = Counter()
    records: list[Out] = []
    g = 0
    for slot, kind in zip(slots, kinds, strict=True):
        while g < slot:
            records.append(good[g][1])
            g += 1
        pool = pools[kind]
        i = cursor[kind]
        cursor[kind] += 1
        value, reason = pool[i] if i < len(pool) else pool[rnd.randrange(len(pool))]
        key = rnd.choice([b"USDJPY", b"N225", None, rnd.randbytes(rnd.randrange(1, 30))])
        ts = good[g][0] if g < len(good) else T0
        if (kind == "ticks" and g < len(good) and rnd.random() < 0.05
                and good[g][1].topic == topics["ticks"]):
            # a valid tick under a key that is not its symbol: it would land on another
            # partition than its symbol's requests, so it is refused everywhere
            value = good[g][1].value
            key = rnd.choice([k for k in WRONG_KEYS if k != good[g][1].key])
            reason = rejection(kind, value, limits, key)
            assert reason == "bad_key", reason
        if value is None and key is None:  # Kafka takes a null value only with a key
            key = b"USDJPY"
        if rnd.random() < 0.05:
            ts = rnd.choice(HOSTILE_TIMESTAMPS)
        headers = [(rnd.choice(["", "x", "\u00e9t\u00e9"]), rnd.randbytes(rnd.randrange(0, 20)))
                   for _ in range(rnd.randrange(3))] if rnd.random() < 0.1 else []
        records.append(Out(topics[kind], key, value, ts, reason, headers))
        reasons[reason] += 1
    records += [p[1] for p in good[g:]]
    return records, reasons


Coords = tuple[str, int, int]


def produce(settings: Settings, records: list[Out]) -> dict[Coords, str | None]:
    """Publish in order (batched, acks=all); (topic, partition, offset) -> expected reason."""
    producer = KafkaProducer(**client_config(settings.kafka), acks="all", linger_ms=20,
                             batch_size=512 * 1024,
                             max_in_flight_requests_per_connection=1)
    try:
        futures = [(producer.send(r.topic, key=r.key, value=r.value, timestamp_ms=r.ts,
                                   headers=r.headers or None), r)
                   for r in records]
        producer.flush(timeout=120)
        out: dict[Coords, str | None] = {}
        for fut, r in futures:
            md = fut.get(timeout=60)
            out[(md.topic, md.partition, md.offset)] = r.reason
    finally:
        producer.close(timeout=10)
    return out


def produce_ten_mb_headline(settings: Settings) -> tuple[Coords, bytes]:
    """The 10 MB title: rejected by the broker's default limit, then let through."""
    topic = settings.topics.headlines
    value = orjson.dumps({**base("headlines"), "id": "h-10mb", "title": "T" * TEN_MB})

    def send() -> Any:
        producer = KafkaProducer(**client_config(settings.kafka), acks="all",
                                 max_request_size=16 * 1024 * 1024)
        try:
            return producer.send(topic, key=b"h-10mb", value=value, timestamp_ms=T0).get(60)
        finally:
            producer.close(timeout=10)

    with pytest.raises(KafkaError) as refused:
        send()
    assert "MessageSizeTooLarge" in type(refused.value).__name__, refused.value
    admin = admin_client(settings.kafka)
    try:
        admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic,
                                            configs={"max.message.bytes": str(16 * 1024**2)})])
    finally:
        admin.close()
    md = send()
    return (md.topic, md.partition, md.offset), value


def end_total(consumer: KafkaConsumer, settings: Settings, topic: str) -> int:
    """Records on ``topic`` (sum of the end offsets of its partitions)."""
    n = settings.topics.partitions_of(next(s for s, t in settings.topics.all_topics().items()
                                           if t == topic))
    return int(sum(consumer.end_offsets([TopicPartition(topic, p) for p in range(n)]).values()))


def wait_until(what: str, condition: Callable[[], bool], alive: Callable[[], None],
               timeout: float) -> None:
    """Poll until ``condition`` holds; fail naming ``what`` when time runs out."""
    deadline = time.monotonic() + timeout
    while not condition():
        alive()
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


def test_worker_dead_letters_100k_hostile_messages_and_processes_the_good_ones(
    make_settings: MakeSettings, tmp_path: Path
) -> None:
    settings = make_settings(topics={"symbol_partitions": 2})
    start = T0 - 2 * 3_600_000 - 600_000
    seconds = 3 * 3_600 + 900
    good_ticks = (ticks("USDJPY", start, seconds, seed=11, jump_at=T0)
                  + ticks("N225", start, seconds, seed=12))
    good_heads = [
        pause_headline(),
        Headline(id="h-boj", ts=T0 + 600_000, source="test",
                 title="Bank of Japan keeps rates unchanged, watches markets"),
        Headline(id="h-autos", ts=T0 + 1_800_000, source="test",
                 title="US raises tariffs on Japanese autos to 25% as trade talks stall"),
    ]
    ref = reference(settings, good_ticks, good_heads)
    assert len(ref.reactions) >= 12

    t = time.monotonic()
    records, reasons = build_records(settings, good_ticks, good_heads)
    built_s = time.monotonic() - t
    n_bad = sum(1 for r in records if r.reason is not None)
    assert n_bad == N_BAD
    ten_mb, ten_mb_value = produce_ten_mb_headline(settings)

    worker = WorkerProcess(settings, tmp_path / "worker.log").start()
    consumer = KafkaConsumer(**client_config(settings.kafka), group_id=None)

    def alive() -> None:
        proc = worker.proc
        assert proc is not None and proc.poll() is None, (
            f"the worker stopped ({proc and proc.returncode}): {worker.log_tail()}")

    try:
        # The worker's two consumers (Faust's for headlines, the react service's) join its
        # group one after the other, and Faust's per-event commits are at-least-once across
        # that rebalance: headlines it handled just before may be handled again, giving
        # identical dead letters twice.  This test counts dead letters exactly, so the
        # records go out once the group has both members and is stable.
        wait_for_settled_worker(settings, alive)
        t = time.monotonic()
        expected = produce(settings, records)
        produced_s = time.monotonic() - t
        expected[ten_mb] = "too_large"
        bad = {c: r for c, r in expected.items() if r is not None}
        wait_until(f"{len(bad)} dead letters",
                   lambda: end_total(consumer, settings, settings.topics.deadletter) >= len(bad),
                   alive, timeout=240)
        wait_for_reactions(settings, ref.reactions, timeout=60, alive=alive)
        # every poison record's offset is committed: a restart would not meet it again
        group = GroupProbe(settings)
        try:
            inputs = (settings.topics.ticks, settings.topics.requests, settings.topics.headlines)
            wait_until("every input offset committed", lambda: all(
                sum(group.committed(tp).values()) >= end_total(consumer, settings, tp)
                for tp in inputs), alive, timeout=60)
        finally:
            group.close()
        alive()
        metrics = worker.metrics_text()
        worker.stop()
        processed_s = time.monotonic() - t
        dead = consume_all(settings, settings.topics.deadletter, timeout=120)
        out = read_outputs(settings)
    finally:
        worker.kill()
        consumer.close()

    letters = [DeadLetter.decode(d.value) for d in dead]
    seen = Counter((d.topic, d.partition, d.offset) for d in letters)
    got_reason = {(d.topic, d.partition, d.offset): d.reason for d in letters}
    print(f"\n{len(records)} records ({n_bad} bad + the 10 MB one) built in {built_s:.1f} s, "
          f"produced in {produced_s:.1f} s, worker done {processed_s:.1f} s after the first; "
          f"bad reasons: {dict(reasons.most_common())}")
    good_dead = {c: got_reason[c] for c in seen if expected.get(c, "?") is None}
    assert not good_dead, f"good records dead-lettered: {list(good_dead.items())[:5]}"
    missing = [c for c in bad if c not in seen]
    assert not missing, f"{len(missing)} bad records not dead-lettered, e.g. {missing[:5]}"
    assert not [c for c in seen if c not in expected], "dead letters for records never sent"
    assert max(seen.values()) == 1, [c for c, n in seen.items() if n > 1][:5]
    wrong = {c: (got_reason[c], r) for c, r in bad.items() if got_reason[c] != r}
    assert not wrong, f"{len(wrong)} dead letters with another reason (got, want): " \
                      f"{list(wrong.items())[:5]}"
    assert all(d.error for d in letters)
    big = next(d for d in letters if (d.topic, d.partition, d.offset) == ten_mb)
    assert big.value_size == len(ten_mb_value) and big.reason == "too_large"
    head = base64.b64decode(big.value_b64)
    assert head and ten_mb_value.startswith(head)  # the head is kept, and readable back
    # hostile text is quoted in the log, never able to break a line or forge one
    lines = (tmp_path / "worker.log").read_bytes().decode("utf-8", "replace").splitlines()
    odd = [line for line in lines if line and not LOG_LINE.match(line)]
    assert not odd, odd[:5]
    assert metric_value(metrics, "tariffmon_dead_letters_total") == len(bad)

    assert not out.conflicting_reactions()
    assert {k: v[0] for k, v in out.reactions.items()} == ref.reactions
    assert out.reaction_duplicates() == 0
    assert {k: v[-1] for k, v in out.alerts.items()} == ref.alerts
