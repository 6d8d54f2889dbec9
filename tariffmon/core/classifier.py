"""The tariff-headline classifier: weighted rules giving a score, tags and a direction.

How a headline is scored (the rules themselves live in
``tariffmon/defaults/classifier.yaml``, see :mod:`tariffmon.core.rules`):

1. the text is normalised (:func:`tariffmon.core.text.normalize`: NFKC, so full-width
   ``２４％`` is ``24%``) and every near-miss pattern ("on duty", "duty-free", "関税局") is
   blanked out;
2. each term group that matches adds its weight and its tag, once; English patterns match
   whole words, Japanese ones (``ja_patterns``) anywhere, so one headline may mix both;
3. only if a term matched, each matching entity adds its tag and weight, the entities
   together adding at most ``entity_cap`` ("Yen weakens after BOJ holds rates" names a
   market but no trade policy, and scores 0);
4. ``is_tariff`` is ``score >= threshold``;
5. the direction, only when a term matched: every cue match is found; a match lying inside a
   longer match of another cue gives way to it ("pause lapses" is an ending, not a pause;
   "drops threat of extra duties" is a relief, not a threat); a match with a negation just
   before it ("rules out", "refuses to", "no") or just after it ("... lapses", "至らず",
   "せず") counts for the opposite side; each cue then counts once with its weight for its
   side, escalation, de-escalation or neutral (a stated absence of change: "unchanged",
   "stays at", "据え置き").  The side with the largest total wins; neutral when no cue
   matched or the top two totals are equal.

Regexes are compiled once per classifier; a headline costs a few dozen regex scans.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tariffmon.contract import Direction
from tariffmon.core.rules import (
    Negations,
    Rules,
    ascii_bounded,
    bounded,
    load_rules,
    parse_rules,
)
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
    direction cues that counted as ``side:name`` (``side`` escalation, de-escalation or
    neutral), with ``:negated`` when a negation turned the cue to the other side;
    ``masked`` the near-miss texts blanked.
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
    """One tag's patterns compiled into at most three alternations.

    Whole words on the folded text, whole words on the cased text, Japanese anywhere in the
    folded text.
    """

    name: str
    weight: float
    folded: _Words | None
    cased: _Words | None
    ja: re.Pattern[str] | None = None

    def find(self, folded: str, cased: str) -> list[tuple[int, str]]:
        found: list[tuple[int, str]] = []
        if self.folded is not None:
            found.extend((m.start(), m.group()) for m in self.folded.of(folded).finditer(folded))
        if self.cased is not None:
            found.extend(
                (m.start(), fold(m.group())) for m in self.cased.of(cased).finditer(cased)
            )
        # Japanese patterns need non-ASCII text (the rules check that each has a non-ASCII
        # character): skipping them on English headlines keeps those as fast as before.
        if self.ja is not None and not folded.isascii():
            found.extend((m.start(), m.group()) for m in self.ja.finditer(folded))
        return found


class _Words:
    """A whole-word regex compiled twice, picked by the text it runs on.

    On ASCII-only text the spaced-script boundary of :func:`bounded` is plain ``\\w``,
    which the regex engine tests about three times faster; other text gets the full one.
    The full one is compiled on first use: its CJK character classes cost the ``re``
    compiler milliseconds per pattern (a second for the rules file), which every process
    that only ever sees English headlines would pay at start-up for nothing.
    """

    __slots__ = ("_source", "_unicode", "ascii")

    def __init__(self, ascii_regex: str, unicode_regex: str) -> None:
        self.ascii = re.compile(ascii_regex)
        self._source = unicode_regex
        self._unicode: re.Pattern[str] | None = None

    @classmethod
    def build(cls, make: Callable[[Callable[[str], str]], str]) -> _Words:
        """``make`` writes the regex given the boundary wrapper to use."""
        return cls(make(ascii_bounded), make(bounded))

    @property
    def unicode(self) -> re.Pattern[str]:
        """The regex for text with non-ASCII characters."""
        if self._unicode is None:
            self._unicode = re.compile(self._source)
        return self._unicode

    def of(self, text: str) -> re.Pattern[str]:
        return self.ascii if text.isascii() else self.unicode


def _alternation(patterns: list[str]) -> _Words | None:
    if not patterns:
        return None
    # One boundary pair around the whole alternation: ten times faster than one per
    # alternative, because the regex engine can then skip ahead by first character.
    body = _joined(patterns)
    return _Words.build(lambda bound: bound(body))


def _unbounded(patterns: list[str]) -> re.Pattern[str] | None:
    # Japanese has no spaces between words: no boundaries at all.
    return re.compile(_joined(patterns)) if patterns else None


def _joined(patterns: list[str]) -> str:
    return "|".join(f"(?:{p})" for p in patterns)


@dataclass(frozen=True, slots=True)
class _Cue:
    side: Direction
    name: str
    weight: float
    words: _Words | None
    ja: re.Pattern[str] | None

    def spans(self, folded: str, ascii_only: bool) -> list[tuple[int, int]]:
        found: list[tuple[int, int]] = []
        if self.words is not None:
            pattern = self.words.ascii if ascii_only else self.words.unicode
            found.extend(m.span() for m in pattern.finditer(folded))
        if self.ja is not None and not ascii_only:
            found.extend(m.span() for m in self.ja.finditer(folded))
        return found


#: What may sit between a cue and its negation: words of the same clause.  Neither
#: punctuation nor a word that starts another clause: in "Nikkei drops as Trump imposes
#: tariffs" or "shares end lower after the tariff threat" the market verb does not negate.
_CLAUSE = r"as|after|amid|while|when|because|since|despite|following|before|but|and|or|says?|said"
_GAP_AFTER = rf"(?!(?:{_CLAUSE})(?![^\W\d_]))[^\s,;:]+"
#: Before a cue, not a preposition either: "drops on tariff fears" is a market move, while
#: after one it is the cue's object ("the pause on reciprocal tariffs expires").
_GAP_BEFORE = rf"(?!(?:{_CLAUSE}|on|over)(?![^\W\d_]))[^\s,;:]+"
#: Between a cue and a Japanese negation: characters of the same phrase.
_GAP_JA = r"[^\s、。,.!?「」『』()・]"
#: How far back and ahead a negation is looked for, in characters (a few words).
_REACH = 80


class _Negator:
    """Finds a negation just before or just after a cue match (see :class:`Negations`)."""

    def __init__(self, negations: Negations) -> None:
        n = negations.max_words
        before, after = _joined(negations.before), _joined(negations.after)
        self._before = (
            _Words.build(lambda bound: bound(before) + rf"(?:\s+{_GAP_BEFORE}){{0,{n}}}\s*$")
            if negations.before
            else None
        )
        self._after = (
            _Words.build(lambda bound: rf"\s*(?:{_GAP_AFTER}\s+){{0,{n}}}?" + bound(after))
            if negations.after
            else None
        )
        self._ja_after = (
            re.compile(rf"{_GAP_JA}{{0,{negations.max_chars}}}?(?:{_joined(negations.ja_after)})")
            if negations.ja_after
            else None
        )
        # One scan for any negation word at all: most headlines have none, and then no cue
        # needs its own look around.
        words = negations.before + negations.after
        self._any_words = _alternation(words)
        self._any_ja = _unbounded(negations.ja_after)

    def present(self, folded: str) -> bool:
        """Whether the text holds any negation word (else no cue can be negated)."""
        if self._any_words is not None and self._any_words.of(folded).search(folded):
            return True
        return (
            self._any_ja is not None
            and not folded.isascii()
            and self._any_ja.search(folded) is not None
        )

    def negated(self, folded: str, start: int, end: int) -> bool:
        if self._before is not None and self._before.of(folded).search(
            folded, max(0, start - _REACH), start
        ):
            return True
        if self._after is not None and self._after.of(folded).match(folded, end, end + _REACH):
            return True
        return self._ja_after is not None and (
            not folded.isascii() and self._ja_after.match(folded, end, end + _REACH) is not None
        )


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
            _Matcher(
                t.tag,
                t.weight,
                _alternation(t.patterns),
                _alternation(t.cased_patterns),
                _unbounded(t.ja_patterns),
            )
            for t in rules.terms
        ]
        self._entities = [
            _Matcher(
                m.tag,
                m.weight if m.weight is not None else group.weight,
                _alternation(m.patterns),
                _alternation(m.cased_patterns),
                _unbounded(m.ja_patterns),
            )
            for group in rules.entities.values()
            for m in group.members
        ]
        self._negative = _alternation([p for n in rules.negatives for p in n.patterns])
        self._negative_ja = _unbounded([p for n in rules.negatives for p in n.ja_patterns])
        self._cues = [
            _Cue(c.direction, c.name, c.weight, _alternation(c.patterns), _unbounded(c.ja_patterns))
            for c in rules.cues
        ]
        self._negator = _Negator(rules.negations)
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
            folded = self._negative.of(folded).sub(lambda m: _blank(m, masked), folded)
        if self._negative_ja is not None and not folded.isascii():
            folded = self._negative_ja.sub(lambda m: _blank(m, masked), folded)

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
        ascii_only = folded.isascii()
        found = [
            (start, end, index)
            for index, cue in enumerate(self._cues)
            for start, end in cue.spans(folded, ascii_only)
        ]
        # A match inside a longer match of another cue is part of that phrase, not a cue of
        # its own: "tariff pause lapses" is not a pause, "drops threat of duties" no threat.
        kept = [
            (start, end, index)
            for start, end, index in found
            if not any(
                other != index and s <= start and end <= e and e - s > end - start
                for s, e, other in found
            )
        ]
        totals: dict[Direction, float] = {"escalation": 0.0, "de-escalation": 0.0, "neutral": 0.0}
        fired: list[str] = []
        counted: set[int] = set()
        may_negate = bool(kept) and self._negator.present(folded)
        for start, end, index in sorted(kept):
            if index in counted:
                continue  # each cue counts once, by its first match
            counted.add(index)
            cue = self._cues[index]
            # "rules out a pause", "the pause lapses", "合意に至らず": the other side
            negated = may_negate and self._negator.negated(folded, start, end)
            effective = _OPPOSITE.get(cue.side, cue.side) if negated else cue.side
            fired.append(f"{effective}:{cue.name}" + (":negated" if negated else ""))
            totals[effective] += cue.weight
        ranked = sorted(totals.items(), key=lambda kv: kv[1], reverse=True)
        (best, top), (_, second) = ranked[0], ranked[1]
        if top <= second + _TIE:
            return "neutral", fired
        return best, fired


_OPPOSITE: dict[Direction, Direction] = {
    "escalation": "de-escalation",
    "de-escalation": "escalation",
}


def _blank(match: re.Match[str], masked: list[str]) -> str:
    # Same length, so positions reported in ``matched`` stay comparable.
    masked.append(match.group())
    return " " * len(match.group())


def _in_order(hits: list[tuple[int, str]]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for _, word in sorted(hits):
        seen.setdefault(word, None)
    return tuple(seen)
