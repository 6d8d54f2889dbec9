"""Headline normalisation: entities, Unicode, quotes, dashes, whitespace, case."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tariffmon.core.text import normalize, normalize_cased


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Japan&#8217;s tariff envoy", "japan's tariff envoy"),
        ("US &amp; Japan", "us & japan"),
        ("Japan&amp;#39;s envoy", "japan's envoy"),  # escaped twice by a feed
        ("&quot;Liberation Day&quot;", '"liberation day"'),
        ("Trump\u2019s \u201creciprocal\u201d tariffs", "trump's \"reciprocal\" tariffs"),
        ("\u2018positive development\u2019", "'positive development'"),
        ("US\u2013Japan talks \u2014 live", "us-japan talks - live"),
        ("yen rises 1\u22122%", "yen rises 1-2%"),
        ("\uff34\uff21\uff32\uff29\uff26\uff26\uff33 \uff0d \uff12\uff15\uff05", "tariffs - 25%"),
        ("  Trump\u00a0\u00a0pauses\ttariffs\n for 90 days  ", "trump pauses tariffs for 90 days"),
        ("tar\u00adiff zero\u200bwidth", "tariff zerowidth"),
        ("<b>Tariffs</b> hit <a href='x'>Toyota</a>", "tariffs hit toyota"),
        ("STRASSE Stra\u00dfe", "strasse strasse"),
        ("", ""),
    ],
)
def test_normalize(raw: str, expected: str) -> None:
    assert normalize(raw) == expected


def test_normalize_cased_keeps_case_but_does_the_rest() -> None:
    assert normalize_cased("US\u2013Japan &amp; \u201cTariffs\u201d ") == 'US-Japan & "Tariffs"'


def test_normalize_leaves_a_lone_less_than_sign() -> None:
    assert normalize("yen < 140 per dollar") == "yen < 140 per dollar"


# '&' and '<' are excluded: a triple-escaped entity legitimately unwraps one more level on a
# second pass, and that is not what this property is about.
_TEXT = st.text(
    alphabet=st.characters(blacklist_characters="&<", blacklist_categories=["Cs"]), max_size=60
)


@given(_TEXT)
def test_normalize_is_idempotent_and_single_spaced(text: str) -> None:
    once = normalize(text)
    assert normalize(once) == once
    assert "  " not in once
    assert once == once.strip()
