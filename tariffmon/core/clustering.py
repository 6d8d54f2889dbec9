"""Story clustering: the same story from several feeds counts once.

Reuters, Nikkei Asia and Kyodo word the same news differently ("Trump pauses reciprocal
tariffs for 90 days - Reuters" against "Trump announces 90-day pause on reciprocal tariffs").
Each title is reduced to a set of content words (outlet suffix, stopwords and possessives
dropped, light stemming, number words as digits).  Words every tariff story shares (tariff,
trump, japan, ...) weigh :data:`COMMON_WORD_WEIGHT`; others weigh 1.  Two titles are the same
story when their weighted overlap, relative to the smaller title, reaches the similarity
threshold (containment), or relative to both (Jaccard) when the smaller title is too thin
to judge on its own.

A headline joins the best-matching earlier cluster whose first member lies within the window
(event time, either side) and takes that member's id as its cluster id, ``duplicate=True``.
State is evicted by event time (members older than the newest event time minus the window),
never by the wall clock, so assignments are a pure function of the input sequence.
"""

from __future__ import annotations

import heapq
import math
import re
from dataclasses import dataclass, field

#: The weight of words common to all tariff stories: they say what the topic is, not which
#: story within it.
COMMON_WORD_WEIGHT = 0.3
#: Below this total weight a title is too thin for containment (one rare word plus "trump
#: tariffs" would otherwise be contained in every story of the day).
MIN_CONTAINMENT_WEIGHT = 2.0

STOPWORDS: frozenset[str] = frozenset(
    {
        "a", "an", "the", "and", "or", "but", "nor", "of", "to", "in", "on", "at", "by", "for",
        "from", "with", "without", "into", "onto", "over", "under", "as", "than", "then", "that",
        "this", "these", "those", "it", "its", "it's", "is", "are", "was", "were", "be", "been",
        "being", "am", "do", "does", "did", "has", "have", "had", "having", "will", "would",
        "shall", "should", "can", "could", "may", "might", "must", "not", "no", "yes", "so", "up",
        "down", "out", "off", "about", "after", "before", "amid", "amidst", "among", "against",
        "between", "during", "while", "until", "since", "via", "per", "vs", "versus", "says",
        "say", "said", "tells", "told", "report", "reports", "reported", "reportedly", "sources",
        "source", "according", "new", "news", "update", "updated", "live", "breaking",
        "exclusive", "analysis", "opinion", "explainer", "video", "watch", "here", "what", "why",
        "how", "who", "when", "where", "which", "he", "she", "they", "we", "you", "i", "his",
        "her", "their", "our", "your", "my", "them", "us", "more", "most", "some", "any", "all",
        "just", "also", "still", "now", "today", "yesterday", "tomorrow", "week", "month", "year",
        "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday",
    }
)

_COMMON_RAW = """tariff tariffs trade trump japan japanese u.s america american washington tokyo
    reciprocal nikkei yen dollar market markets stock stocks share shares import imports export
    exports duty duties talk talks deal"""

_NUMBER_WORDS = {
    "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6", "seven": "7",
    "eight": "8", "nine": "9", "ten": "10", "eleven": "11", "twelve": "12", "ninety": "90",
    "first": "1st", "second": "2nd", "third": "3rd", "half": "0.5",
}
_OUTLET_SUFFIX = re.compile(r"\s+[-|]\s+([^-|]+)$")
_MAX_OUTLET_WORDS = 5
_TOKEN = re.compile(r"[^\W_]+(?:[.%][^\W_]+)*%?")
_SUFFIXES = ("ing", "ed", "es", "s", "e")


def _stem(word: str) -> str:
    """A deliberately crude stemmer: enough for "pauses"/"paused"/"pause" to agree."""
    if len(word) <= 3 or word[-1].isdigit():
        return word
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            if suffix == "s" and word.endswith("ss"):
                return word
            return word[: -len(suffix)]
    return word


def strip_outlet(normalized_title: str) -> str:
    """Drop a trailing " - Outlet" or " | Outlet" (news aggregators append the source)."""
    m = _OUTLET_SUFFIX.search(normalized_title)
    if m is None:
        return normalized_title
    head = normalized_title[: m.start()]
    if len(m.group(1).split()) <= _MAX_OUTLET_WORDS and len(head.split()) >= 3:
        return head
    return normalized_title


def content_words(normalized_title: str) -> frozenset[str]:
    """The set of stemmed content words of a normalised (case-folded) title."""
    words: set[str] = set()
    # Apostrophes split tokens, so "trump's" gives "trump" and a one-letter "s", dropped.
    for token in _TOKEN.findall(strip_outlet(normalized_title)):
        if token in STOPWORDS or (len(token) == 1 and not token.isdigit()):
            continue
        stem = _stem(_NUMBER_WORDS.get(token, token))
        words.add(_SYNONYMS.get(stem, stem))
    return frozenset(words)


#: Words that wire services use interchangeably for the same event; the first of each group
#: stands for all of them.
_SYNONYMS_RAW = (
    "pause reprieve freeze suspension suspend halt delay postpone",
    "fall falls sink sinks sank slump slumps plunge plunges drop drops tumble tumbles dive dives"
    " slide slides slid lose loses lost tank tanks",
    "rise rises rose jump jumps surge surges soar soars rally rallies climb climbs spike spikes"
    " gain gains",
    "auto autos automaker automakers car cars vehicle vehicles automobile automobiles",
    "chip chips semiconductor semiconductors chipmaker chipmakers",
    "talk talks negotiation negotiations meeting meetings",
    "impose imposes imposed slap slaps slapped",
    "japan japanese",
    # the verbs of a policy announcement: "announces tariffs" / "unveils new tariff regime"
    "announce announces announced unveil unveils unveiled declare declares declared",
    # the levy itself: "24% tariff" / "24% duty" / "24% levy" is one measure
    "tariff tariffs duty duties levy levies",
    # the US side as headlines name it: "Trump", "US president", "Washington"
    "trump president washington",
)


#: Topic words of this monitor, stemmed: present in most tariff stories.
COMMON_WORDS: frozenset[str] = frozenset(_stem(w) for w in _COMMON_RAW.split())


def _synonym_table() -> dict[str, str]:
    table: dict[str, str] = {}
    for group in _SYNONYMS_RAW:
        words = group.split()
        for w in words:
            table[_stem(w)] = _stem(words[0])
    return table


_SYNONYMS: dict[str, str] = _synonym_table()


def _weight(word: str) -> float:
    return COMMON_WORD_WEIGHT if word in COMMON_WORDS else 1.0


def _words_weight(words: frozenset[str]) -> float:
    return sum(_weight(w) for w in words)


def title_similarity(a: frozenset[str], b: frozenset[str]) -> float:
    """How alike two content-word sets are, in [0, 1] (see the module docstring)."""
    return _similarity(a, _words_weight(a), b, _words_weight(b))


def _similarity(a: frozenset[str], wa: float, b: frozenset[str], wb: float) -> float:
    # the sets' own weights are given: a clusterer weighs each remembered title once, not
    # at every comparison (two thirds of a headline's classify time with a few hundred)
    if not a or not b:
        return 0.0
    common = sum(_weight(w) for w in a & b)
    smaller = min(wa, wb)
    if smaller >= MIN_CONTAINMENT_WEIGHT:
        return common / smaller
    return common / (wa + wb - common)


@dataclass(slots=True)
class _Member:
    seq: int
    headline_id: str
    ts: int
    cluster_id: str
    cluster_ts: int
    words: frozenset[str]
    #: the words' total weight (:func:`_words_weight`)
    weight: float


@dataclass(slots=True)
class StoryClusterer:
    """Assigns headlines to story clusters; see the module docstring.

    ``window_ms`` is how far apart in event time the first member of a story and a later one
    may be; ``similarity`` (in (0, 1]) how alike their titles must be.
    """

    window_ms: int
    similarity: float
    _members: dict[str, _Member] = field(default_factory=dict, init=False)
    _by_word: dict[str, set[str]] = field(default_factory=dict, init=False)
    _expiry: list[tuple[int, int, str]] = field(default_factory=list, init=False)
    _seq: int = field(default=0, init=False)
    _watermark: int | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        if self.window_ms < 0:
            raise ValueError(f"window_ms must not be negative (got {self.window_ms})")
        if not (0.0 < self.similarity <= 1.0) or math.isnan(self.similarity):
            raise ValueError(f"similarity must be in (0, 1] (got {self.similarity})")

    def __len__(self) -> int:
        """How many headlines the clusterer currently remembers."""
        return len(self._members)

    def assign(self, headline_id: str, ts: int, normalized_title: str) -> tuple[str, bool]:
        """The cluster id of a headline and whether it duplicates an earlier member.

        A headline id seen before (and not yet evicted) gets its original answer again.
        """
        known = self._members.get(headline_id)
        if known is not None:
            return known.cluster_id, known.cluster_id != headline_id
        self._evict(ts)
        words = content_words(normalized_title)
        best = self._best_match(ts, words)
        if best is None:
            cluster_id, cluster_ts = headline_id, ts
        else:
            cluster_id, cluster_ts = best.cluster_id, best.cluster_ts
        self._remember(_Member(self._seq, headline_id, ts, cluster_id, cluster_ts, words,
                               _words_weight(words)))
        return cluster_id, cluster_id != headline_id

    def restore(self, headline_id: str, ts: int, normalized_title: str, cluster_id: str) -> None:
        """Re-insert an assignment decided earlier, without deciding it again.

        For a worker that restarts: feed it the classified headlines of the last window (in
        their original order) so that later copies of those stories still find them, even if
        the rules or the threshold changed meanwhile.  Known ids are left alone.
        """
        if headline_id in self._members:
            return
        self._evict(ts)
        first = self._members.get(cluster_id)
        cluster_ts = first.cluster_ts if first is not None else ts
        words = content_words(normalized_title)
        self._remember(_Member(self._seq, headline_id, ts, cluster_id, cluster_ts, words,
                               _words_weight(words)))

    def _best_match(self, ts: int, words: frozenset[str]) -> _Member | None:
        # Candidates share at least one word; a common-words-only overlap can still qualify
        # for short titles, so common words are indexed too.
        candidates: set[str] = set()
        for w in words:
            candidates |= self._by_word.get(w, set())
        best: _Member | None = None
        best_score = 0.0
        weight = _words_weight(words)
        for member in sorted((self._members[c] for c in candidates), key=lambda m: m.seq):
            if abs(ts - member.cluster_ts) > self.window_ms:
                continue
            score = _similarity(words, weight, member.words, member.weight)
            # Strictly greater: on a tie the earliest-remembered member wins.
            if score >= self.similarity and score > best_score:
                best, best_score = member, score
        return best

    def _remember(self, member: _Member) -> None:
        self._seq += 1
        self._members[member.headline_id] = member
        for w in member.words:
            self._by_word.setdefault(w, set()).add(member.headline_id)
        heapq.heappush(self._expiry, (member.ts, member.seq, member.headline_id))

    def _evict(self, ts: int) -> None:
        self._watermark = ts if self._watermark is None else max(self._watermark, ts)
        horizon = self._watermark - self.window_ms
        while self._expiry and self._expiry[0][0] < horizon:
            _, _, headline_id = heapq.heappop(self._expiry)
            member = self._members.pop(headline_id)
            for w in member.words:
                ids = self._by_word[w]
                ids.discard(headline_id)
                if not ids:
                    del self._by_word[w]
