"""The tariff-headline classifier: weighted rules giving a score, tags and a direction.

How a headline is scored (the rules themselves live in
``tariffmon/defaults/classifier.yaml``, see :mod:`tariffmon.core.rules`):

1. the text is normalised (:func:`tariffmon.core.text.normalize`) and every near-miss
   pattern ("on duty", "duty-free", "trade fair") is blanked out;
2. each term group that matches adds its weight and its tag, once;
3. only if a term matched, each matching entity adds its tag and weight, the entities
   together adding at most ``entity_cap`` ("Yen weakens after BOJ holds rates" names a
   market but no trade policy, and scores 0);
4. ``is_tariff`` is ``score >= threshold``;
5. the direction is the side (escalation or de-escalation) whose matching cues weigh more;
   neutral when neither matched, when they weigh the same, or when no term matched.

Regexes are compiled once per classifier; a headline costs a few dozen regex scans.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tariffmon.contract import Direction
from tariffmon.core.rules import Rules, bounded, load_rules, parse_rules
from tariffmon.core.text import fold, normalize_cased
from tariffmon.errors import ConfigError

#: Weights are summed in floating point; round so equal rule sets give equal JSON.
_SCORE_DIGITS = 6
_TIE = 1e-9


@dataclass(frozen=True, slots=True)
class Classification:
    """The verdict on one headline.

    ``tags`` is sorted and comes only from the rules file; ``matched`` holds the matched
    words in order of appearance (for explanation, never for labels); ``cues`` names the
    direction cues that fired as ``direction:name``; ``masked`` the near-miss texts blanked.
    """

    is_tariff: bool
    score: float
    tags: tuple[str, ...]
    direction: Direction
    matched: tuple[str, ...] = ()
    cues: tuple[str, ...] = ()
    masked: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (lists instead of tuples)."""
        return {
            "is_tariff": self.is_tariff,
            "score": self.score,
            "tags": list(self.tags),
            "direction": self.direction,
            "matched": list(self.matched),
            "cues": list(self.cues),
            "masked": list(self.masked),
        }


@dataclass(frozen=True, slots=True)
class _Matcher:
    """One tag's patterns compiled into at most two alternations (folded and cased text)."""

    name: str
    weight: float
    folded: re.Pattern[str] | None
    cased: re.Pattern[str] | None

    def find(self, folded: str, cased: str) -> list[tuple[int, str]]:
        found: list[tuple[int, str]] = []
        if self.folded is not None:
            found.extend((m.start(), m.group()) for m in self.folded.finditer(folded))
        if self.cased is not None:
            found.extend((m.start(), fold(m.group())) for m in self.cased.finditer(cased))
        return found


def _alternation(patterns: list[str]) -> re.Pattern[str] | None:
    if not patterns:
        return None
    # One boundary pair around the whole alternation: ten times faster than one per
    # alternative, because the regex engine can then skip ahead by first character.
    return re.compile(bounded("|".join(f"(?:{p})" for p in patterns)))


class TariffClassifier:
    """Classifies headlines with a validated rule set and a decision threshold."""

    def __init__(self, rules: Rules, threshold: float) -> None:
        if not (isinstance(threshold, int | float) and math.isfinite(threshold) and threshold > 0):
            raise ConfigError(
                "classifier.threshold", f"must be a positive number (got {threshold!r})"
            )
        self.rules = rules
        self.threshold = float(threshold)
        self._terms = [
            _Matcher(t.tag, t.weight, _alternation(t.patterns), _alternation(t.cased_patterns))
            for t in rules.terms
        ]
        self._entities = [
            _Matcher(
                m.tag,
                m.weight if m.weight is not None else group.weight,
                _alternation(m.patterns),
                _alternation(m.cased_patterns),
            )
            for group in rules.entities.values()
            for m in group.members
        ]
        self._negative = _alternation([p for n in rules.negatives for p in n.patterns])
        self._cues = [
            (c.direction, c.name, c.weight, _alternation(c.patterns)) for c in rules.cues
        ]
        self.tag_vocabulary: frozenset[str] = rules.tag_vocabulary()

    @classmethod
    def from_rules(cls, rules: Rules | Mapping[str, Any], threshold: float) -> TariffClassifier:
        """Build from a :class:`Rules` object or a decoded rules document."""
        if not isinstance(rules, Rules):
            rules = parse_rules(rules)
        return cls(rules, threshold)

    @classmethod
    def from_file(cls, path: str | Path, threshold: float) -> TariffClassifier:
        """Build from a YAML rules file (``settings.classifier.rules_file``)."""
        return cls(load_rules(path), threshold)

    def classify(self, text: str) -> Classification:
        """Classify one headline (raw text; it is normalised here)."""
        cased = normalize_cased(text)
        folded = fold(cased)
        masked: list[str] = []
        if self._negative is not None:
            folded = self._negative.sub(lambda m: _blank(m, masked), folded)

        tags: set[str] = set()
        hits: list[tuple[int, str]] = []
        score = 0.0
        for matcher in self._terms:
            found = matcher.find(folded, cased)
            if found:
                score += matcher.weight
                tags.add(matcher.name)
                hits.extend(found)
        has_term = bool(tags)

        direction: Direction = "neutral"
        cues: list[str] = []
        if has_term:
            entity_score = 0.0
            for matcher in self._entities:
                found = matcher.find(folded, cased)
                if found:
                    entity_score += matcher.weight
                    tags.add(matcher.name)
                    hits.extend(found)
            score += min(entity_score, self.rules.entity_cap)
            direction, cues = self._direction(folded)

        score = round(score, _SCORE_DIGITS)
        return Classification(
            is_tariff=has_term and score >= self.threshold - _TIE,
            score=score,
            tags=tuple(sorted(tags)),
            direction=direction,
            matched=_in_order(hits),
            cues=tuple(cues),
            masked=tuple(masked),
        )

    def _direction(self, folded: str) -> tuple[Direction, list[str]]:
        escalation = de_escalation = 0.0
        fired: list[str] = []
        for side, name, weight, pattern in self._cues:
            if pattern is None:
                continue
            for match in pattern.finditer(folded):
                # "tariffs will not be postponed", "rules out a pause": a negated cue
                # speaks for the other side
                negated = _NEGATION.search(folded, max(0, match.start() - 30), match.start())
                effective = side if negated is None else _OPPOSITE[side]
                fired.append(f"{effective}:{name}" + (":negated" if negated else ""))
                if effective == "escalation":
                    escalation += weight
                else:
                    de_escalation += weight
                break
        if escalation > de_escalation + _TIE:
            return "escalation", fired
        if de_escalation > escalation + _TIE:
            return "de-escalation", fired
        return "neutral", fired


#: a negation in the few words before a direction cue
_NEGATION = re.compile(
    r"\b(?:not|no|never|won't|wont|cannot|can't|without|rules? out|ruled out|ruling out|"
    r"refus(?:e|es|ed|ing) to|den(?:y|ies|ied)|reject(?:s|ed)?)\b(?:\s+\S+){0,3}\s*$"
)
_OPPOSITE = {"escalation": "de-escalation", "de-escalation": "escalation"}


def _blank(match: re.Match[str], masked: list[str]) -> str:
    # Same length, so positions reported in ``matched`` stay comparable.
    masked.append(match.group())
    return " " * len(match.group())


def _in_order(hits: list[tuple[int, str]]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for _, word in sorted(hits):
        seen.setdefault(word, None)
    return tuple(seen)
