"""`tariffmon watch` as a subprocess reading messages from the real broker."""

from __future__ import annotations

import math
import signal
import subprocess
import sys
import time

import pytest

from tariffmon.contract import Alert, AttributedHeadline, ClassifiedHeadline, Reaction, Tick
from tariffmon.settings import Settings
from tests.conftest import MakeSettings
from tests.kafka_helpers import produce_messages, produce_raw
from tests.worker_process import settings_env

pytestmark = pytest.mark.integration

T0 = 1_743_624_600_000  # 2025-04-02 20:10:00 UTC
TITLE = "Trump announces 24% reciprocal tariff on Japan"
OLD_TITLE = "Japan weighs response to US steel levies"


def _reaction(hid: str, symbol: str, horizon_s: int, ret_bp: float, z: float, t0: int,
              title: str, *, gap: bool = False) -> Reaction:
    ret = ret_bp / 10_000
    return Reaction(
        headline_id=hid, cluster_id=hid, symbol=symbol, horizon_s=horizon_s, t0=t0,
        t_start=t0, t1=t0 + horizon_s * 1000, p0=150.0, p0_ts=t0, p1=150.0 * math.exp(ret),
        p1_ts=t0 + horizon_s * 1000, ret=ret, z=z, sigma_1m=0.0004, max_up=max(ret, 0.0),
        max_down=min(ret, 0.0), significant=abs(z) >= 3, gap=gap, n_ticks=5,
        direction="escalation", title=title,
    )


def _headline(hid: str, ts: int, title: str) -> ClassifiedHeadline:
    return ClassifiedHeadline(
        id=hid, ts=ts, source="wire", title=title, is_tariff=True, score=5.0,
        tags=("japan", "tariff"), direction="escalation", cluster_id=hid,
    )


def _publish(settings: Settings) -> None:
    t = settings.topics
    old_t0 = T0 - 10 * 3_600_000  # ten hours before: outside the default 6-hour start
    produce_messages(settings, t.classified, [_headline("h-old", old_t0, OLD_TITLE),
                                              _headline("h1", T0, TITLE)])
    produce_messages(settings, t.reactions, [
        _reaction("h-old", "USDJPY", 60, 7.5, 1.1, old_t0, OLD_TITLE),
        _reaction("h1", "USDJPY", 60, -45.24, -5.06, T0, TITLE),
        _reaction("h1", "USDJPY", 300, -80.0, -4.0, T0, TITLE),
        _reaction("h1", "N225", 60, -150.5, -9.9, T0, TITLE, gap=True),
    ])
    produce_messages(settings, t.alerts, [Alert(
        symbol="USDJPY", window_s=300, ts=T0 + 240_000, start_ts=T0 - 60_000, p_start=150.0,
        p_end=149.07, ret=math.log(149.07 / 150.0), z=-7.3, direction="down",
        threshold_bp=40.0, threshold_z=6.0,
        headlines=(AttributedHeadline(id="h1", ts=T0, title=TITLE, direction="escalation"),),
    )])
    produce_messages(settings, t.ticks, [
        Tick(symbol="USDJPY", ts=T0 + i * 60_000, price=150.0 - i * 0.1, source="test")
        for i in range(20)
    ])
    # a record that is not a reaction: counted and logged, never fatal
    produce_raw(settings, t.reactions, [(b"x", b"not json", T0 + 1)])


def _watch(settings: Settings, *args: str,
           timeout: float = 60) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "tariffmon.cli.main", "watch", "--no-clear", "--width", "200",
         *args],
        env=settings_env(settings, 0), capture_output=True, text=True, timeout=timeout,
    )
    return proc, time.monotonic() - started


def _last_picture(stdout: str) -> str:
    pictures = [p for p in stdout.split("\n\n\n") if p.strip()]
    assert pictures, stdout
    return pictures[-1]


def test_watch_shows_headlines_reactions_prices_and_alerts(make_settings: MakeSettings) -> None:
    settings = make_settings()
    _publish(settings)
    proc, took = _watch(settings, "--duration", "5", "--interval", "1")
    assert proc.returncode == 0, proc.stderr
    assert took < 30
    out = proc.stdout
    assert "\x1b[" not in out  # --no-clear: plain text, pictures appended
    picture = _last_picture(out)
    assert TITLE in picture
    # the reactions: return in bp, z, * significant, ^ gap; the 15m and 60m ones pending
    usd = next(line for line in picture.splitlines() if line.startswith("  USDJPY"))
    assert "-45.2bp z  -5.1*" in usd and "-80.0bp z  -4.0*" in usd
    assert usd.count("pending") == 2
    nik = next(line for line in picture.splitlines() if line.startswith("  N225"))
    assert "-150.5bp z  -9.9*^" in nik
    # the price and rolling returns of the ticks (ln(148.1/148.2), ln(148.1/148.6) ...)
    price = next(line for line in picture.splitlines() if line.startswith("USDJPY"))
    assert price.split()[1:4] == ["148.100", "2025-04-02", "20:29:00"]
    assert price.split()[4] == f"{math.log(148.1 / 148.2) * 1e4:+.1f}bp"
    # the alert with its attributed headline
    assert "USDJPY    5m down" in picture and f"<- 2025-04-02 20:10:00 UTC  escalation  {TITLE}" \
        in picture
    # the headline ten hours older than the newest event is before the default start (6h)
    assert OLD_TITLE not in picture
    assert "1 unreadable records" in picture
    assert "unreadable record" in proc.stderr and settings.topics.reactions in proc.stderr


def test_from_beginning_and_max_refreshes(make_settings: MakeSettings) -> None:
    settings = make_settings()
    _publish(settings)
    proc, took = _watch(settings, "--from-beginning", "--max-refreshes", "1",
                        "--interval", "30")
    assert proc.returncode == 0, proc.stderr
    assert took < 25  # the first picture comes once the backlog is read, not after 30 s
    picture = _last_picture(proc.stdout)
    assert OLD_TITLE in picture and TITLE in picture
    assert "+7.5bp z  +1.1" in picture


def test_since_an_event_time(make_settings: MakeSettings) -> None:
    settings = make_settings()
    _publish(settings)
    proc, _ = _watch(settings, "--since", "2025-04-02T10:00:00Z", "--max-refreshes", "1")
    assert proc.returncode == 0, proc.stderr
    picture = _last_picture(proc.stdout)
    assert OLD_TITLE in picture  # 10:10 UTC: after the given start


def test_missing_topics_are_named(make_settings: MakeSettings) -> None:
    settings = make_settings(create_topics=False)
    proc, _ = _watch(settings, "--max-refreshes", "1")
    assert proc.returncode == 2
    assert "do not exist" in proc.stderr and settings.topics.reactions in proc.stderr


def test_ctrl_c_ends_the_watch_cleanly(make_settings: MakeSettings) -> None:
    settings = make_settings()
    _publish(settings)
    proc = subprocess.Popen(
        [sys.executable, "-m", "tariffmon.cli.main", "watch", "--no-clear", "--interval", "0.5"],
        env=settings_env(settings, 0), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 30
        while "SHARP MOVES" not in proc.stdout.readline():  # a whole picture is out
            assert time.monotonic() < deadline and proc.poll() is None
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "Traceback" not in err


def test_a_headline_typed_now_after_a_replay_keeps_the_replayed_picture(
    make_settings: MakeSettings,
) -> None:
    """A replayed day, then one headline with today's time (``publish-headline``'s
    default): the picture still shows the day's prices and the reactions on the topic,
    and the new headline too."""
    settings = make_settings()
    _publish(settings)
    now_ms = int(time.time() * 1000)
    typed = "Hand-typed: Japan and US reach tariff deal"
    produce_messages(settings, settings.topics.classified, [_headline("h-now", now_ms, typed)])
    proc, _ = _watch(settings, "--max-refreshes", "1")
    assert proc.returncode == 0, proc.stderr
    picture = _last_picture(proc.stdout)
    assert typed in picture and TITLE in picture
    assert "no tick yet" not in next(line for line in picture.splitlines()
                                     if line.startswith("USDJPY"))
    usd = next(line for line in picture.splitlines() if line.startswith("  USDJPY")
               and "-45.2bp" in line)
    assert "-80.0bp z  -4.0*" in usd  # the reactions on the topic, not "pending"
