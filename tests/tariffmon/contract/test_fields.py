"""Field rules: every check rejects with the field, the value and the rule."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import pytest

from tariffmon.contract import (
    DEFAULT_SYMBOLS,
    FUTURE_SLACK_MS,
    MAX_TITLE_CHARS,
    MAX_TS_MS,
    MIN_TS_MS,
    Headline,
    Limits,
    PriceBands,
    Tick,
)
from tariffmon.errors import ConfigError
from tests.tariffmon.contract.strategies import (
    DROP,
    LIMITS,
    headline_obj,
    rejects,
    tick_obj,
)


@pytest.mark.parametrize(
    ("price", "rule", "reason"),
    [
        (math.nan, "finite", "not_finite"),
        (math.inf, "finite", "not_finite"),
        (-math.inf, "finite", "not_finite"),
        (10**400, "finite", "not_finite"),  # beyond a double: float() would overflow
        (0, "positive", "not_positive"),
        (0.0, "positive", "not_positive"),
        (-146.5, "positive", "not_positive"),
        ("146.5", "number", "bad_type"),
        (True, "number", "bad_type"),
        (None, "number", "bad_type"),
    ],
)
def test_price_must_be_finite_and_positive(price: Any, rule: str, reason: str) -> None:
    err = rejects(Tick, tick_obj(price=price), "price", rule)
    assert err.reason == reason
    if not isinstance(price, int) or price < 10**100:
        assert repr(price) in str(err)  # the value is named


@pytest.mark.parametrize(
    ("ts", "rule"),
    [
        (0, "before 1990"),  # 1970
        (MIN_TS_MS - 1, "before 1990"),
        (4_102_444_800_001, "must not be after"),  # just past 2100-01-01
        (1_743_624_000_000.5, "integer epoch milliseconds"),
        ("2025-04-02", "integer epoch milliseconds"),
        (None, "integer epoch milliseconds"),
        (math.nan, "integer epoch milliseconds"),
    ],
)
def test_ts_must_be_integer_ms_in_a_sane_range(ts: Any, rule: str) -> None:
    rejects(Tick, tick_obj(ts=ts), "ts", rule)


def test_ts_beyond_the_callers_ceiling_is_rejected() -> None:
    now = 1_743_624_000_000
    limits = Limits.from_now(now, LIMITS.symbols)
    Tick.from_dict(tick_obj(ts=now + 86_400_000), limits)  # a day ahead is fine
    err = rejects(Tick, tick_obj(ts=now + 86_400_001), "ts", "must not be after", limits)
    assert str(now + 86_400_000) in str(err)


def test_unknown_symbol_is_rejected_naming_the_known_ones() -> None:
    err = rejects(Tick, tick_obj(symbol="EURUSD"), "symbol", "must be one of")
    assert "'EURUSD'" in str(err) and "USDJPY" in str(err)
    assert err.reason == "unknown_symbol"
    # a configured extra symbol is known
    Tick.from_dict(tick_obj(symbol="NKD"), Limits(frozenset({"USDJPY", "NKD"})))


@pytest.mark.parametrize("title", ["", "   ", "\n\t"])
def test_required_text_must_not_be_empty(title: str) -> None:
    err = rejects(Headline, headline_obj(title=title), "title", "must not be empty")
    assert err.reason == "empty_text"


def test_text_has_a_maximum_length() -> None:
    err = rejects(Headline, headline_obj(title="x" * (MAX_TITLE_CHARS + 1)), "title",
                  f"at most {MAX_TITLE_CHARS} characters")
    assert err.reason == "too_long"
    Headline.from_dict(headline_obj(title="x" * MAX_TITLE_CHARS), LIMITS)


def test_long_values_are_shortened_in_the_message() -> None:
    err = rejects(Headline, headline_obj(title="y" * 5000), "title", "at most")
    assert len(str(err)) < 300


@pytest.mark.parametrize("version", [0, 2, "1", 1.0, None])
def test_schema_version_must_be_known(version: Any) -> None:
    err = rejects(Tick, tick_obj(v=version), "v", "schema version 1")
    assert err.reason == "bad_version"


def test_missing_version_is_rejected() -> None:
    rejects(Tick, tick_obj(v=DROP), "v", "is required")


@pytest.mark.parametrize("missing", ["symbol", "ts", "price", "source"])
def test_missing_required_field_is_named(missing: str) -> None:
    err = rejects(Tick, tick_obj(**{missing: DROP}), missing, "is required")
    assert err.reason == "missing_field"


# --------------------------------------------------------------------------- price bands

BANDS = {"USDJPY": (50.0, 400.0), "N225": (1_000.0, 200_000.0)}


@pytest.mark.parametrize(("symbol", "price"), [
    ("USDJPY", 49.99), ("USDJPY", 400.01), ("USDJPY", 14_650.0),  # a unit mix-up
    ("N225", 146.5), ("N225", 1e9),
])
def test_a_price_outside_its_symbols_band_is_rejected(symbol: str, price: float) -> None:
    limits = Limits(LIMITS.symbols, price_bands=BANDS)
    lo, hi = BANDS[symbol]
    err = rejects(Tick, tick_obj(symbol=symbol, price=price), "price",
                  f"must be within [{lo:g}, {hi:g}] for {symbol}", limits)
    assert err.reason == "price_range" and err.value == price


@pytest.mark.parametrize("price", [50.0, 146.5, 400.0, 400])
def test_a_price_within_the_band_bounds_included_is_accepted(price: float) -> None:
    limits = Limits(LIMITS.symbols, price_bands=BANDS)
    assert Tick.from_dict(tick_obj(price=price), limits).price == price


def test_without_a_band_a_price_need_only_be_finite_and_positive() -> None:
    limits = Limits(frozenset({"USDJPY", "NKD"}), price_bands={"USDJPY": (50.0, 400.0)})
    assert Tick.from_dict(tick_obj(symbol="NKD", price=1e-6), limits).price == 1e-6
    assert Tick.from_dict(tick_obj(price=1e12), LIMITS).price == 1e12  # no bands by default
    rejects(Tick, tick_obj(symbol="NKD", price=-1.0), "price", "positive", limits)


def test_a_non_finite_price_is_refused_before_the_band_is_looked_at() -> None:
    limits = Limits(LIMITS.symbols, price_bands=BANDS)
    err = rejects(Tick, tick_obj(price=math.nan), "price", "finite", limits)
    assert err.reason == "not_finite"


def test_limits_with_bands_stay_frozen_hashable_and_equal_by_value() -> None:
    given_bands = dict(BANDS)
    a = Limits(LIMITS.symbols, None, given_bands)
    b = Limits(LIMITS.symbols, None, {k: (lo, hi) for k, (lo, hi) in reversed(BANDS.items())})
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
    assert a != Limits(LIMITS.symbols)
    given_bands["USDJPY"] = (1.0, 2.0)  # the caller's dict is copied, not shared
    assert a.price_bands["USDJPY"] == (50.0, 400.0)
    assert isinstance(a.price_bands, PriceBands) and a.price_bands == BANDS
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.max_ts_ms = 1  # type: ignore[misc]
    assert hash(Limits()) == hash(Limits(DEFAULT_SYMBOLS, None, {}))


def test_with_ceiling_and_from_now_keep_the_bands() -> None:
    now = 1_743_624_000_000
    live = Limits.from_now(now, LIMITS.symbols, price_bands=BANDS)
    assert live.price_bands == BANDS and live.ceiling() == now + FUTURE_SLACK_MS
    assert Limits.from_now(now, LIMITS.symbols).price_bands == {}
    later = live.with_ceiling(now + 5 * 60_000)
    assert later.ceiling() == now + 5 * 60_000
    assert later.price_bands is live.price_bands and later.symbols == live.symbols
    assert live.with_ceiling(None).ceiling() == MAX_TS_MS
    rejects(Tick, tick_obj(price=1.0), "price", "must be within", later)


@pytest.mark.parametrize("band", [(400.0, 50.0), (0.0, 10.0), (-1.0, 10.0), (1.0, math.inf),
                                  (math.nan, 2.0), (1.0,), "ab", None])
def test_a_nonsensical_band_is_a_config_error(band: Any) -> None:
    with pytest.raises(ConfigError) as info:
        Limits(LIMITS.symbols, price_bands={"USDJPY": band})
    assert info.value.setting == "price_bands.USDJPY"
