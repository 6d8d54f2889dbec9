"""Source outages injected at the thin network boundary: the producers back off and go on.

The producers reach the network only through the functions passed in (``fetch_bars``,
``ws_factory``, ``fetch``).  Here those functions fail the way the real libraries fail:
yfinance's YFRateLimitError, curl_cffi's HTTPError (made by its own ``raise_for_status``)
and Timeout, a JSON body that is an HTML error page, websockets' rejected handshakes, and for
feeds the real ``fetch_url`` against a local HTTP server on 127.0.0.1 answering 429, 500,
too slowly, or with broken XML.  Malformed payloads (frames with wrong columns, NaN or text
prices; broken feeds) are counted as their own kinds.

Every loop is bounded: waits go through a stop flag that advances a fake clock instead of
sleeping, and stops the loop after a fixed number of waits.  The alerting side of an outage
(StaleFeed, SourceFetchFailing) is checked with promtool on
config/prometheus/tests/source_outage.test.yml.
"""

from __future__ import annotations

import asyncio
import http.server
import itertools
import json
import math
import random
import shutil
import subprocess
import threading
import time
import urllib.error
from collections.abc import Callable, Iterator
from email.message import Message
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import requests
from curl_cffi.const import CurlECode
from curl_cffi.requests.exceptions import HTTPError as CurlHTTPError
from curl_cffi.requests.exceptions import Timeout as CurlTimeout
from curl_cffi.requests.models import Response as CurlResponse
from prometheus_client import CollectorRegistry
from websockets.datastructures import Headers
from websockets.exceptions import InvalidStatus
from websockets.http11 import Response as WsResponse
from yfinance.exceptions import YFRateLimitError

from tariffmon.contract import Headline, Tick
from tariffmon.producers.backoff import Backoff
from tariffmon.producers.errors import SourceError
from tariffmon.producers.headlines.feeds import FeedSource, fetch_url, parse_feed
from tariffmon.producers.headlines.poller import HeadlinePoller, SeenIds
from tariffmon.producers.kafka_producer import StopFlag
from tariffmon.producers.metrics import ProducerMetrics
from tariffmon.producers.ticks.convert import bars_to_ticks
from tariffmon.producers.ticks.runner import BarPoller, QuoteStreamer, classify_error
from tariffmon.producers.watermarks import Watermarks
from tariffmon.settings import PROJECT_ROOT
from tests.tariffmon.producers.conftest import FEEDS, load_bars, load_messages

SOURCE_BARS = "yfinance_bars:USDJPY"


# ---------------------------------------------------------------- the real libraries' errors

def curl_http_error(status: int, reason: str = "") -> CurlHTTPError:
    """curl_cffi's HTTPError as its ``raise_for_status`` makes it (HTTP/2: no reason)."""
    response = CurlResponse()
    response.status_code, response.reason, response.ok = status, reason, False
    try:
        response.raise_for_status()  # type: ignore[no-untyped-call]
    except CurlHTTPError as exc:
        return exc
    raise AssertionError("raise_for_status did not raise")


def requests_http_error(status: int, reason: str) -> requests.HTTPError:
    """requests' HTTPError (yfinance before curl_cffi) from its ``raise_for_status``."""
    response = requests.Response()
    response.status_code, response.reason = status, reason
    try:
        response.raise_for_status()
    except requests.HTTPError as exc:
        return exc
    raise AssertionError("raise_for_status did not raise")


def urllib_http_error(status: int, reason: str) -> urllib.error.HTTPError:
    """urllib's HTTPError as ``urlopen`` raises it for a feed."""
    return urllib.error.HTTPError("https://feeds.example/rss", status, reason, Message(), None)


def ws_rejected(status: int, reason: str) -> InvalidStatus:
    """websockets' error for a refused opening handshake (yfinance's streaming client)."""
    return InvalidStatus(WsResponse(status, reason, Headers()))


def html_instead_of_json() -> json.JSONDecodeError:
    """What ``response.json()`` raises when Yahoo answers with an HTML error page."""
    try:
        json.loads("<html><body>Will be right back...</body></html>")
    except json.JSONDecodeError as exc:
        return exc
    raise AssertionError("unreachable")


CURL_TIMEOUT = CurlTimeout(
    "Failed to perform, curl: (28) Operation timed out after 30001 milliseconds with 0 bytes "
    "received.", CurlECode.OPERATION_TIMEDOUT)


@pytest.mark.parametrize(("exc", "kind"), [
    (YFRateLimitError(), "rate_limit"),
    (curl_http_error(429), "rate_limit"),
    (requests_http_error(429, "Too Many Requests"), "rate_limit"),
    (urllib_http_error(429, "Too Many Requests"), "rate_limit"),
    (urllib_http_error(429, ""), "rate_limit"),
    (ws_rejected(429, "Too Many Requests"), "rate_limit"),
    (curl_http_error(500), "http_5xx"),
    (curl_http_error(503, "Service Unavailable"), "http_5xx"),
    (requests_http_error(500, "Internal Server Error"), "http_5xx"),
    (urllib_http_error(500, "Internal Server Error"), "http_5xx"),
    (urllib_http_error(502, "Bad Gateway"), "http_5xx"),
    (ws_rejected(500, "Internal Server Error"), "http_5xx"),
    (urllib_http_error(404, "Not Found"), "http_4xx"),
    (curl_http_error(403), "http_4xx"),
    (CURL_TIMEOUT, "timeout"),
    (requests.exceptions.ReadTimeout("read timed out"), "timeout"),
    (TimeoutError("timed out"), "timeout"),  # socket.timeout, urlopen's read timeout
    (urllib.error.URLError(TimeoutError("timed out")), "timeout"),  # urlopen's connect
    (html_instead_of_json(), "bad_payload"),
    (SourceError("yfinance", "bad_frame", "no Close column"), "bad_frame"),
    (ConnectionRefusedError(111, "Connection refused"), "fetch"),
    (urllib.error.URLError(OSError(-2, "Name or service not known")), "fetch"),
    (FileNotFoundError(2, "No such file"), "fetch"),
], ids=lambda v: v if isinstance(v, str) else type(v).__name__)
def test_error_kinds_of_the_real_libraries(exc: BaseException, kind: str) -> None:
    assert classify_error(exc) == kind


# ---------------------------------------------------------------- bounded loops, fake time

class FakeClock:
    """Seconds and epoch milliseconds that move only when a wait says so."""

    def __init__(self, start_ms: int) -> None:
        self.start_ms = start_ms
        self.t = 0.0

    def monotonic(self) -> float:
        return self.t

    def now_ms(self) -> int:
        return self.start_ms + int(self.t * 1000)


class ScriptedStop(StopFlag):
    """A stop flag whose waits take no time: each one advances the clock and is recorded;
    the loop is stopped after ``max_waits`` (so every loop here ends)."""

    def __init__(self, clock: FakeClock, max_waits: int) -> None:
        super().__init__()
        self.clock = clock
        self.max_waits = max_waits
        self.waits: list[float] = []

    def wait(self, seconds: float) -> bool:
        self.waits.append(seconds)
        self.clock.t += seconds
        if len(self.waits) >= self.max_waits:
            self.set()
        return self.is_set()


def metric(registry: CollectorRegistry, name: str, **labels: str) -> float:
    value = registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def errors_by_kind(registry: CollectorRegistry, source: str) -> dict[str, float]:
    """tariffmon_source_errors_total of one source, by kind (zeros left out)."""
    out: dict[str, float] = {}
    for fam in registry.collect():
        for s in fam.samples:
            if (s.name == "tariffmon_source_errors_total" and s.labels["source"] == source
                    and s.value):
                out[s.labels["kind"]] = s.value
    return out


# ---------------------------------------------------------------- yfinance bars

@pytest.fixture
def jpy_bars() -> pd.DataFrame:
    """15 recorded one-minute USD/JPY bars (one without a close) in yfinance's shape."""
    return load_bars("jpy_x_1m.csv")


def bar_end_ms(frame: pd.DataFrame, i: int) -> int:
    return int(frame.index[i].timestamp() * 1000) + 60_000


def test_bar_poller_backs_off_through_an_outage_and_recovers(jpy_bars: pd.DataFrame) -> None:
    wrong_columns = jpy_bars.rename(columns={"Close": "close"})
    script: list[BaseException | pd.DataFrame] = [
        jpy_bars,                      # 0 healthy
        CURL_TIMEOUT,                  # 1 the outage starts
        YFRateLimitError(),            # 2
        curl_http_error(500),          # 3
        wrong_columns,                 # 4 malformed payloads
        html_instead_of_json(),        # 5
        jpy_bars,                      # 6 the source is back
        jpy_bars,                      # 7
        curl_http_error(429),          # 8 a blip: the backoff starts from scratch
        jpy_bars,                      # 9
    ]
    clock = FakeClock(bar_end_ms(jpy_bars, 2))
    fetched_at: list[int] = []

    def fetch_bars(ticker: str, period: str, interval: str) -> pd.DataFrame:
        assert (ticker, interval) == ("JPY=X", "1m")
        fetched_at.append(clock.now_ms())
        step = script[len(fetched_at) - 1]
        if isinstance(step, BaseException):
            raise step
        return step

    registry = CollectorRegistry()
    out: list[Tick] = []
    poller = BarPoller({"USDJPY": "JPY=X"}, fetch_bars, out.append, Watermarks(),
                       ProducerMetrics(registry), now_ms=clock.now_ms)
    stop = ScriptedStop(clock, max_waits=len(script))
    backoff = Backoff(2.0, 16.0, rng=random.Random(3))

    poller.run(stop, poll_interval_s=60.0, backoff=backoff)

    assert len(fetched_at) == len(script)  # it kept running through every failure
    waits = stop.waits
    # after a success: the poll interval; after a failure: a jittered, doubling, capped delay
    assert waits[0] == waits[6] == waits[7] == waits[9] == 60.0
    for i, cap in zip((1, 2, 3, 4, 5, 8), (2, 4, 8, 16, 16, 2), strict=True):
        assert cap / 2 <= waits[i] <= cap, (i, waits)
    assert len({waits[i] for i in (1, 2, 3, 4, 5, 8)}) == 6  # jitter: no two alike
    assert errors_by_kind(registry, SOURCE_BARS) == {
        "timeout": 1, "rate_limit": 2, "http_5xx": 1, "bad_frame": 1, "bad_payload": 1}
    assert metric(registry, "tariffmon_source_fetches_total", source=SOURCE_BARS) == 10
    assert metric(registry, "tariffmon_source_last_success_timestamp_seconds",
                  source=SOURCE_BARS) == fetched_at[-1] / 1000
    # after the outage, the bars completed meanwhile are published, each exactly once
    want = bars_to_ticks(jpy_bars, "USDJPY", 60, now_ms=fetched_at[-1])
    assert out == want and len(want) > 3
    assert [t.ts for t in out] == sorted({t.ts for t in out})


def test_nan_and_text_prices_are_skipped_or_counted(jpy_bars: pd.DataFrame) -> None:
    holes = jpy_bars.copy()
    holes.iloc[3:6, holes.columns.get_loc("Close")] = math.nan
    all_nan = jpy_bars.assign(Close=math.nan)
    text = jpy_bars.astype({"Close": object})
    text.iloc[4, text.columns.get_loc("Close")] = "N/A"
    naive = jpy_bars.tz_localize(None)
    frames = {"JPY=X": holes, "A": all_nan, "B": text, "C": naive}
    registry = CollectorRegistry()
    out: list[Tick] = []
    poller = BarPoller({"USDJPY": "JPY=X", "ALLNAN": "A", "TEXT": "B", "NAIVE": "C"},
                       lambda ticker, period, interval: frames[ticker], out.append,
                       Watermarks(), ProducerMetrics(registry),
                       now_ms=lambda: bar_end_ms(jpy_bars, 14))
    n, failed = poller.poll_once()
    # NaN closes are no price: those rows are left out, the others published
    finite = int(jpy_bars["Close"].notna().sum()) - 3
    assert n == len(out) == finite and {t.symbol for t in out} == {"USDJPY"}
    assert all(math.isfinite(t.price) and t.price > 0 for t in out)
    # a frame of NaN only is a fetch that worked and had nothing: no tick, no error (the
    # worker's StaleFeed alert is what notices such a source during market hours)
    assert "ALLNAN" not in failed
    # text prices and a zone-less index are unusable payloads, counted as such
    assert failed == ["TEXT", "NAIVE"]
    assert errors_by_kind(registry, "yfinance_bars:TEXT") == {"bad_frame": 1}
    assert errors_by_kind(registry, "yfinance_bars:NAIVE") == {"bad_frame": 1}


# ---------------------------------------------------------------- yfinance streaming

class Socket:
    """Stands in for yf.AsyncWebSocket: its connection fails with ``error``, or it replays
    ``messages`` and then drops."""

    def __init__(self, error: BaseException | None = None,
                 messages: list[dict[str, Any]] | None = None) -> None:
        self.error = error
        self.messages = messages or []
        self.closed = False

    async def subscribe(self, symbols: list[str]) -> None:
        if self.error is not None:  # yfinance connects inside subscribe()
            raise self.error

    async def listen(self, handler: Callable[[dict[str, Any]], Any]) -> None:
        for m in self.messages:
            handler(m)
            await asyncio.sleep(0)
        raise ConnectionResetError(104, "Connection reset by peer")

    async def close(self) -> None:
        self.closed = True


class RecordingBackoff(Backoff):
    """A backoff that notes each delay it hands out (tiny delays: real asyncio timers)."""

    def __init__(self) -> None:
        super().__init__(0.002, 0.016, rng=random.Random(9))
        self.delays: list[float] = []

    def next_delay(self) -> float:
        d = super().next_delay()
        self.delays.append(d)
        return d


def test_quote_streamer_survives_rejected_and_timed_out_connections(
    jpy_bars: pd.DataFrame,
) -> None:
    messages = load_messages()
    sockets = [Socket(ws_rejected(429, "Too Many Requests")),
               Socket(ws_rejected(500, "Internal Server Error")),
               Socket(TimeoutError("timed out during opening handshake")),
               Socket(messages=messages)]
    made: list[Socket] = []

    def factory() -> Socket:
        made.append(sockets[min(len(made), len(sockets) - 1)])
        return made[-1]

    registry = CollectorRegistry()
    metrics = ProducerMetrics(registry)
    out: list[Tick] = []
    marks = Watermarks()
    polls: list[int] = []

    def fetch_bars(ticker: str, period: str, interval: str) -> pd.DataFrame:
        polls.append(1)
        return jpy_bars

    now = bar_end_ms(jpy_bars, 5)
    poller = BarPoller({"USDJPY": "JPY=X"}, fetch_bars, out.append, marks, metrics,
                       now_ms=lambda: now)
    streamer = QuoteStreamer({"USDJPY": "JPY=X", "N225": "^N225"}, factory, out.append, marks,
                             metrics, poller=poller, now_ms=lambda: now)
    backoff = RecordingBackoff()

    async def main() -> None:
        stop = asyncio.Event()

        async def stop_after_recovery() -> None:
            while streamer.published == 0 or not made[-1].closed:
                await asyncio.sleep(0.005)
            stop.set()

        watcher = asyncio.ensure_future(stop_after_recovery())
        await asyncio.wait_for(streamer.run(stop, backoff), timeout=10)
        await watcher

    asyncio.run(main())
    assert len(made) >= 4 and all(s.closed for s in made)
    assert streamer.published > 0
    kinds = errors_by_kind(registry, "yfinance_stream")
    assert kinds["rate_limit"] == 1 and kinds["http_5xx"] == 1 and kinds["timeout"] == 1
    assert kinds.get("bad_message", 0) >= 1  # the recorded stream holds malformed messages
    # bars were polled while the stream was down; nothing was published twice
    assert len(polls) >= 3
    keys = [(t.symbol, t.ts) for t in out]
    assert len(keys) == len(set(keys))
    # three failed connections in a row: growing delays; the working session reset them
    first = backoff.delays[:3]
    for d, cap in zip(first, (0.002, 0.004, 0.008), strict=True):
        assert cap / 2 <= d <= cap
    assert all(d <= 0.016 for d in backoff.delays)


# ---------------------------------------------------------------- feeds over local HTTP

class FeedServer:
    """A local HTTP server: ``/steady.xml`` always answers with an RSS document, while
    ``/flaky.xml`` works through a script of answers, then answers like steady."""

    def __init__(self, good: bytes, flaky_script: list[tuple[str, Any]]) -> None:
        self.good = good
        self.script = list(flaky_script)
        self.requests: dict[str, int] = {}
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests[self.path] = server.requests.get(self.path, 0) + 1
                step = ("body", server.good)
                if self.path == "/flaky.xml" and server.script:
                    step = server.script.pop(0)
                what, arg = step
                try:
                    if what == "status":
                        self.send_error(int(arg))
                        return
                    body = server.good
                    if what == "sleep":  # longer than the client's timeout
                        time.sleep(float(arg))
                    else:
                        body = bytes(arg)
                    self.send_response(200)
                    self.send_header("Content-Type", "application/rss+xml")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client timed out and hung up: that was the point

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}{path}"

    def __enter__(self) -> FeedServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    good = (FEEDS / "rss2.xml").read_bytes()
    script = [("status", 429), ("status", 500), ("sleep", 1.0),
              ("body", (FEEDS / "broken.xml").read_bytes()), ("body", b"")]
    with FeedServer(good, script) as server:
        yield server


def test_feed_poller_backs_off_per_source_and_recovers(feed_server: FeedServer) -> None:
    clock = FakeClock(1_743_660_000_000)
    attempts: dict[str, list[float]] = {}

    def fetch(url: str) -> bytes:
        attempts.setdefault(url.rsplit("/", 1)[-1], []).append(clock.t)
        return fetch_url(url, timeout_s=0.3)  # the real network call, on loopback

    registry = CollectorRegistry()
    out: list[Headline] = []
    feeds = [FeedSource("steady", feed_server.url("/steady.xml")),
             FeedSource("flaky", feed_server.url("/flaky.xml"))]
    poller = HeadlinePoller(feeds, [], out.append, SeenIds(), ProducerMetrics(registry),
                            fetch=fetch, now_ms=clock.now_ms,
                            backoff=lambda: Backoff(60.0, 240.0, rng=random.Random(4)),
                            clock=clock.monotonic)
    interval = 60.0
    stop = ScriptedStop(clock, max_waits=25)

    poller.run(stop, interval)

    polls = len(stop.waits)
    assert stop.waits == [interval] * polls
    # the healthy feed is fetched at every poll, whatever the other one does
    assert len(attempts["steady.xml"]) == feed_server.requests["/steady.xml"] == polls
    # the failing one is left alone while its backoff runs: fewer fetches than polls ...
    flaky = attempts["flaky.xml"]
    assert feed_server.requests["/flaky.xml"] == len(flaky) < polls
    # ... the gaps between failed attempts follow the jittered, capped backoff
    failures = 5
    gaps = [b - a for a, b in itertools.pairwise(flaky[:failures + 1])]
    for gap, cap in zip(gaps, (60, 120, 240, 240, 240), strict=True):
        assert cap / 2 <= gap <= cap + interval, gaps
    # ... and once it answers again it is fetched at every poll
    assert all(b - a == interval for a, b in itertools.pairwise(flaky[failures:]))
    assert len(flaky) > failures + 2
    # by kind; the feed document holds one title-less item, skipped at each good fetch
    assert errors_by_kind(registry, "flaky") == {
        "rate_limit": 1, "http_5xx": 1, "timeout": 1, "parse": 2,
        "bad_entry": len(flaky) - failures}
    assert errors_by_kind(registry, "steady") == {"bad_entry": polls}
    assert metric(registry, "tariffmon_source_last_success_timestamp_seconds",
                  source="flaky") == clock.start_ms / 1000 + flaky[-1]
    # each feed's headlines were published once, the flaky one's after its recovery
    by_source: dict[str, list[str]] = {}
    for h in out:
        by_source.setdefault(h.source, []).append(h.id)
    assert set(by_source) == {"steady", "flaky"}
    assert len(by_source["flaky"]) == len(set(by_source["flaky"])) == len(by_source["steady"])
    assert poller.backing_off() == {}


@pytest.mark.parametrize("payload", [
    pytest.param((FEEDS / "broken.xml").read_bytes(), id="html-error-page"),
    pytest.param(b"", id="empty"),
    pytest.param(bytes(range(256)) * 4, id="binary"),
    pytest.param(b'{"items": []}', id="json"),
])
def test_unreadable_feeds_raise_a_parse_error(payload: bytes) -> None:
    with pytest.raises(SourceError) as err:
        parse_feed(payload, "wire", 1_743_660_000_000)
    assert err.value.kind == "parse"


def test_a_truncated_feed_keeps_the_entries_it_has() -> None:
    rss = (FEEDS / "rss2.xml").read_bytes()
    whole, _ = parse_feed(rss, "wire", 1_743_660_000_000)
    cut, _ = parse_feed(rss[: len(rss) * 2 // 3], "wire", 1_743_660_000_000)
    assert 0 < len(cut) < len(whole)
    assert {h.id for h in cut} <= {h.id for h in whole}


def test_a_failing_file_source_is_retried_after_its_backoff(tmp_path: Path) -> None:
    clock = FakeClock(1_743_660_000_000)
    heads = tmp_path / "desk.jsonl"
    out: list[Headline] = []
    poller = HeadlinePoller([], [heads], out.append, SeenIds(), fetch=fetch_url,
                            now_ms=clock.now_ms, clock=clock.monotonic,
                            backoff=lambda: Backoff(10.0, 10.0, rng=random.Random(1)))
    assert poller.poll_once() == (0, ["desk"])  # not there yet
    assert 5.0 <= poller.backing_off()["desk"] <= 10.0
    heads.write_text('{"title": "Japan and US agree on tariff deal", '
                     '"ts": "2025-07-22T23:00:00Z"}\n')
    assert poller.poll_once() == (0, [])  # still backing off: not even looked at
    clock.t += 10.0
    assert poller.poll_once() == (1, [])
    assert poller.backing_off() == {}


# ---------------------------------------------------------------- the alerting side

RULE_TEST = PROJECT_ROOT / "config" / "prometheus" / "tests" / "source_outage.test.yml"


def test_promtool_stale_feed_fires_for_a_dead_source_in_market_hours() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (Debian: apt-get install prometheus)")
    done = subprocess.run([promtool, "test", "rules", str(RULE_TEST)], capture_output=True,
                          text=True, timeout=120, check=False, cwd=RULE_TEST.parent)
    assert done.returncode == 0, done.stdout + done.stderr
    text = RULE_TEST.read_text()
    assert "alertname: StaleFeed" in text and "alertname: SourceFetchFailing" in text
    # (StaleFeed's threshold and market-hours gate themselves are in stale_feed.test.yml)
    hours = (RULE_TEST.parent / "stale_feed.test.yml").read_text()
    assert "alertname: StaleFeed" in hours
