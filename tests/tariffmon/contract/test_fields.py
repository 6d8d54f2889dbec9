"""Field rules: every check rejects with the field, the value and the rule."""

from __future__ import annotations

import math
from typing import Any

import pytest

from tariffmon.contract import MAX_TITLE_CHARS, MIN_TS_MS, Headline, Limits, Tick
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
