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
    direction cues, each ``escalation`` or ``de-escalation`` with a weight.

Patterns are Python regexes matched against the normalised, case-folded text (so they are
written in lower case) with word boundaries added on both sides; ``cased_patterns`` are
matched against the normalised text before case folding (``US`` the country, not ``us``).
Tags become Prometheus label values, so they are short identifiers from this file only.
"""

from __future__ import annotations

import re
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


def bounded(pattern: str) -> str:
    """Wrap a rule pattern so it matches whole words only (``tariff`` not in ``tariffmon``).

    Lookarounds rather than ``\\b`` so that patterns may start or end with punctuation
    (``u\\.s\\.``, ``25%``).
    """
    return rf"(?<!\w)(?:{pattern})(?!\w)"


def _check_patterns(patterns: list[str], *, folded: bool) -> list[str]:
    for i, pattern in enumerate(patterns):
        try:
            # Alone first: "a)|(b" only compiles once wrapped, and would change meaning.
            alone = re.compile(pattern)
            re.compile(bounded(pattern))
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
    return patterns


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Patterns(_Rule):
    patterns: list[str] = []
    cased_patterns: list[str] = []

    @field_validator("patterns")
    @classmethod
    def _folded_ok(cls, value: list[str]) -> list[str]:
        return _check_patterns(value, folded=True)

    @field_validator("cased_patterns")
    @classmethod
    def _cased_ok(cls, value: list[str]) -> list[str]:
        return _check_patterns(value, folded=False)

    @model_validator(mode="after")
    def _not_empty(self) -> _Patterns:
        if not self.patterns and not self.cased_patterns:
            raise ValueError("needs at least one entry in patterns or cased_patterns")
        return self


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


class NegativeRule(_Rule):
    """Near misses whose text is blanked before matching (``on duty``, ``trade fair``)."""

    name: str = Field(pattern=TAG_PATTERN)
    patterns: list[str] = Field(min_length=1)

    @field_validator("patterns")
    @classmethod
    def _folded_ok(cls, value: list[str]) -> list[str]:
        return _check_patterns(value, folded=True)


class CueRule(_Rule):
    """Words that say which way a trade-policy story moves."""

    name: str = Field(pattern=TAG_PATTERN)
    direction: Literal["escalation", "de-escalation"]
    weight: float = Field(gt=0, le=100)
    patterns: list[str] = Field(min_length=1)

    @field_validator("patterns")
    @classmethod
    def _folded_ok(cls, value: list[str]) -> list[str]:
        return _check_patterns(value, folded=True)


class Rules(_Rule):
    """A whole, validated rules file."""

    version: Literal[1] = 1
    #: the most the entities may add to a score
    entity_cap: float = Field(1.5, ge=0, le=100)
    terms: list[TermRule] = Field(min_length=1)
    entities: dict[str, EntityGroup] = {}
    negatives: list[NegativeRule] = []
    cues: list[CueRule] = []

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
