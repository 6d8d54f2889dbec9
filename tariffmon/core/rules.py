"""The tariff classifier's rules file: loading, validation and the typed rule objects.

The file (``tariffmon/defaults/classifier.yaml`` by default) has five parts:

``terms``
    trade-policy vocabulary; each group has a ``tag``, a ``weight`` and regex ``patterns``.
    A group counts once, however often it matches.
``entities``
    named groups (countries, officials, markets, sectors) of tagged members; their weight is
    added only when at least one term matched, capped at ``entity_cap``.
``negatives``
    near misses ("police officer on duty", "duty-free", "trade fair"): their matches are
    blanked out of the text before anything else is matched.
``cues``
    direction cues, each ``escalation``, ``de-escalation`` or ``neutral`` (a headline that
    states no change: "unchanged", "stays at", "据え置き") with a weight.
``negations``
    words that turn a cue into its opposite: ``before`` a cue ("rules out", "refuses to",
    "no"), ``after`` it ("... pause lapses", "... not be extended"), each with at most
    ``max_words`` words between, and ``ja_after`` for Japanese, whose negation follows the
    verb ("合意に至らず", "延長せず"), with at most ``max_chars`` characters between.
    A rules file without ``negations`` negates nothing.

Three kinds of pattern, all Python regexes matched against the normalised text:

``patterns``
    matched against the case-folded text (so written in lower case), as whole words: word
    boundaries are added on both sides.  A boundary is any character that is not a letter or
    digit of a spaced script, so Japanese next to English does not glue words together
    ("Trump氏" holds the word ``trump``).
``cased_patterns``
    the same, before case folding (``US`` the country, not ``us``).
``ja_patterns``
    for Japanese (no spaces between words): matched against the folded text anywhere, without
    boundaries, so ``関税`` is found in ``相互関税を発動``.  The text is NFKC-normalised first,
    so full-width digits and signs are plain ASCII (``２４％`` is ``24%``): write ``24%``.

Tags become Prometheus label values, so they are short identifiers from this file only.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from tariffmon.errors import ConfigError

#: The setting named in errors about the rules file.
RULES_SETTING = "classifier.rules_file"
#: A tag is a short identifier: safe as a Prometheus label value and in JSON.
TAG_PATTERN = r"^[a-z][a-z0-9_]{0,31}$"
_ESCAPE = re.compile(r"\\.")


#: A character of a script that does not separate words by spaces (CJK ideographs, kana,
#: full-width forms, Hangul): next to one an English word still ends ("Trump氏", "US関税").
_UNSPACED = (
    r"[\u3000-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef"
    r"\uac00-\ud7af]"
)


def bounded(pattern: str) -> str:
    """Wrap a rule pattern so it matches whole words only (``tariff`` not in ``tariffmon``).

    Lookarounds rather than ``\\b`` so that patterns may start or end with punctuation
    (``u\\.s\\.``, ``25%``).  A neighbour continues the word when it is a word character
    of a spaced script: ``\\w`` and not :data:`_UNSPACED`.  Written as "not ``\\w``, or
    unspaced" rather than one negated class (``[^\\W...]``), which the ``re`` compiler turns
    into a bitmap over all of Unicode at about 2 ms a pattern: 3 s for the rules file.
    """
    return (rf"(?:(?<!\w)|(?<={_UNSPACED}))(?:{pattern})(?:(?!\w)|(?={_UNSPACED}))")


def ascii_bounded(pattern: str) -> str:
    """:func:`bounded` for ASCII-only text, where the two agree: ``\\w`` is cheaper to test."""
    return rf"(?<!\w)(?:{pattern})(?!\w)"


def _check_patterns(patterns: list[str], *, folded: bool) -> list[str]:
    for i, pattern in enumerate(patterns):
        try:
            # Alone first: "a)|(b" only compiles once wrapped, and would change meaning.  The
            # ASCII wrapper checks the wrapping as well as the full one at a fraction of the
            # cost (bounded()'s CJK classes take the compiler milliseconds per pattern).
            alone = re.compile(pattern)
            re.compile(ascii_bounded(pattern))
        except re.error as exc:
            raise ValueError(f"pattern {i} {pattern!r} is not a valid regex: {exc}") from None
        if alone.fullmatch("") is not None:
            raise ValueError(f"pattern {i} {pattern!r} matches the empty string")
        # Escapes such as \W or \S are upper case by design; only literal letters matter.
        if folded and _ESCAPE.sub("", pattern) != _ESCAPE.sub("", pattern).casefold():
            raise ValueError(
                f"pattern {i} {pattern!r} has upper-case letters but is matched against "
                "case-folded text; write it in lower case or move it to cased_patterns"
            )
        # The text is NFKC-normalised before matching: "２４％" in a rule would never match.
        if unicodedata.normalize("NFKC", pattern) != pattern:
            raise ValueError(
                f"pattern {i} {pattern!r} is not in NFKC form (full-width or compatibility "
                f"characters) and could never match normalised text; write "
                f"{unicodedata.normalize('NFKC', pattern)!r}"
            )
    return patterns


def _check_ja(patterns: list[str]) -> list[str]:
    # Japanese patterns are tried only on text with a non-ASCII character (English headlines
    # skip them); one written in ASCII alone would silently never see an English headline.
    for i, pattern in enumerate(patterns):
        if pattern.isascii():
            raise ValueError(
                f"pattern {i} {pattern!r} is all ASCII: Japanese patterns must hold a "
                "Japanese (non-ASCII) character; put it in patterns instead"
            )
    return patterns


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _FoldedPatterns(_Rule):
    """Whole-word patterns on folded text and Japanese patterns matched anywhere."""

    patterns: list[str] = []
    ja_patterns: list[str] = []

    @field_validator("patterns")
    @classmethod
    def _folded_ok(cls, value: list[str]) -> list[str]:
        return _check_patterns(value, folded=True)

    @field_validator("ja_patterns")
    @classmethod
    def _ja_ok(cls, value: list[str]) -> list[str]:
        return _check_ja(_check_patterns(value, folded=True))

    @model_validator(mode="after")
    def _not_empty(self) -> _FoldedPatterns:
        if not any(getattr(self, f) for f in self._pattern_fields()):
            raise ValueError(
                "needs at least one entry in " + " or ".join(self._pattern_fields())
            )
        return self

    @classmethod
    def _pattern_fields(cls) -> tuple[str, ...]:
        return ("patterns", "ja_patterns")


class _Patterns(_FoldedPatterns):
    cased_patterns: list[str] = []

    @field_validator("cased_patterns")
    @classmethod
    def _cased_ok(cls, value: list[str]) -> list[str]:
        return _check_patterns(value, folded=False)

    @classmethod
    def _pattern_fields(cls) -> tuple[str, ...]:
        return ("patterns", "cased_patterns", "ja_patterns")


class TermRule(_Patterns):
    """A group of trade-policy terms: matching any of them adds ``weight`` and ``tag``."""

    tag: str = Field(pattern=TAG_PATTERN)
    weight: float = Field(gt=0, le=100)


class EntityRule(_Patterns):
    """One entity (a country, an official, a market, a sector) and how it is written."""

    tag: str = Field(pattern=TAG_PATTERN)
    #: overrides the group's weight
    weight: float | None = Field(None, gt=0, le=100)


class EntityGroup(_Rule):
    """A kind of entity with its default weight."""

    weight: float = Field(gt=0, le=100)
    members: list[EntityRule] = Field(min_length=1)


class NegativeRule(_FoldedPatterns):
    """Near misses whose text is blanked before matching (``on duty``, ``trade fair``)."""

    name: str = Field(pattern=TAG_PATTERN)


class CueRule(_FoldedPatterns):
    """Words that say which way a trade-policy story moves (or that it does not move)."""

    name: str = Field(pattern=TAG_PATTERN)
    direction: Literal["escalation", "de-escalation", "neutral"]
    weight: float = Field(gt=0, le=100)


class Negations(_Rule):
    """Words that turn a direction cue into its opposite (a neutral cue stays neutral).

    ``before`` and ``after`` are whole-word patterns with at most ``max_words`` words between
    them and the cue; ``ja_after`` are Japanese patterns right after the cue, with at most
    ``max_chars`` characters (no spaces or punctuation) between.
    """

    before: list[str] = []
    after: list[str] = []
    ja_after: list[str] = []
    max_words: int = Field(3, ge=0, le=10)
    max_chars: int = Field(4, ge=0, le=20)

    @field_validator("before", "after")
    @classmethod
    def _folded_ok(cls, value: list[str]) -> list[str]:
        return _check_patterns(value, folded=True)

    @field_validator("ja_after")
    @classmethod
    def _ja_ok(cls, value: list[str]) -> list[str]:
        return _check_ja(_check_patterns(value, folded=True))


class Rules(_Rule):
    """A whole, validated rules file."""

    version: Literal[1] = 1
    #: the most the entities may add to a score
    entity_cap: float = Field(1.5, ge=0, le=100)
    terms: list[TermRule] = Field(min_length=1)
    entities: dict[str, EntityGroup] = {}
    negatives: list[NegativeRule] = []
    cues: list[CueRule] = []
    negations: Negations = Negations()

    @model_validator(mode="after")
    def _unique_names(self) -> Rules:
        seen: dict[str, str] = {}
        owners = [(t.tag, "terms") for t in self.terms] + [
            (m.tag, f"entities.{group}") for group, g in self.entities.items() for m in g.members
        ]
        for tag, where in owners:
            if tag in seen:
                raise ValueError(f"tag {tag!r} is defined twice ({seen[tag]} and {where})")
            seen[tag] = where
        for group in self.entities:
            if re.fullmatch(TAG_PATTERN, group) is None:
                raise ValueError(f"entity group name {group!r} must match {TAG_PATTERN}")
        for kind, names in (
            ("negatives", [n.name for n in self.negatives]),
            ("cues", [c.name for c in self.cues]),
        ):
            dupes = sorted({n for n in names if names.count(n) > 1})
            if dupes:
                raise ValueError(f"{kind}: names {dupes} are used more than once")
        return self

    def tag_vocabulary(self) -> frozenset[str]:
        """Every tag a classification can carry."""
        return frozenset(t.tag for t in self.terms) | frozenset(
            m.tag for g in self.entities.values() for m in g.members
        )


def parse_rules(data: Mapping[str, Any], source: str = "rules") -> Rules:
    """Validate a decoded rules document; errors name the file, the entry and the reason."""
    try:
        return Rules.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = err["msg"].removeprefix("Value error, ")
        raise ConfigError(RULES_SETTING, f"{source}: {loc}: {msg}") from None


def load_rules(path: str | Path) -> Rules:
    """Read and validate a YAML rules file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(RULES_SETTING, f"cannot read {str(path)!r}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(RULES_SETTING, f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(RULES_SETTING, f"{path}: must hold a mapping with at least 'terms'")
    return parse_rules(data, str(path))
