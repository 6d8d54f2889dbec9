"""Headline text normalisation, shared by the classifier and the story clusterer.

Feeds deliver the same words in many spellings: HTML entities (``&amp;``, ``&#8217;``),
full-width or ligature characters, typographic quotes and dashes, non-breaking spaces.  The
rules are written against one canonical form, produced here: entities decoded, stray markup
tags dropped, Unicode NFKC, every quote straight, every dash ``-``, whitespace collapsed to
single spaces and, last, case folded.
"""

from __future__ import annotations

import html
import re
import unicodedata

#: Typographic single quotes, primes and accents used as apostrophes.
_SINGLE_QUOTES = "\u2018\u2019\u201a\u201b\u2032\u2035\u0060\u00b4\u02bc\u02bb\u2039\u203a"
#: Typographic double quotes and guillemets.
_DOUBLE_QUOTES = "\u201c\u201d\u201e\u201f\u2033\u2036\u00ab\u00bb\u301d\u301e\u301f"
#: Hyphens, dashes and minus signs (NFKC leaves most of them alone).
_DASHES = (
    "\u2010\u2011\u2012\u2013\u2014\u2015\u2043\u2212\u2e3a\u2e3b\u2e17\u301c\u30a0"
    "\ufe58\ufe63\uff0d\u058a\u05be\u1806"
)
#: Invisible characters that split words for the regexes but not for a reader.
_INVISIBLE = "\u200b\u200c\u200d\u2060\ufeff\u00ad"

_TRANSLATE = str.maketrans(
    {
        **{c: "'" for c in _SINGLE_QUOTES},
        **{c: '"' for c in _DOUBLE_QUOTES},
        **{c: "-" for c in _DASHES},
        **{c: None for c in _INVISIBLE},
    }
)
_TAG = re.compile(r"</?[a-zA-Z][a-zA-Z0-9]*(?:\s[^<>]*)?/?>")
_SPACE = re.compile(r"\s+")


def normalize_cased(text: str) -> str:
    """Normalise ``text`` like :func:`normalize` but keep its case.

    Used where case carries meaning (``US`` the country against ``us`` the pronoun).
    """
    # Feeds sometimes escape twice (``&amp;#39;``); two rounds settle every case seen.
    for _ in range(2):
        if "&" not in text:
            break
        text = html.unescape(text)
    if "<" in text:
        text = _TAG.sub(" ", text)
    # Before NFKC too: NFKC expands some of these (a double prime becomes two primes).
    text = unicodedata.normalize("NFKC", text.translate(_TRANSLATE)).translate(_TRANSLATE)
    return _SPACE.sub(" ", text).strip()


def fold(cased: str) -> str:
    """Case-fold text that :func:`normalize_cased` produced (the last step of :func:`normalize`)."""
    if cased.isascii():
        return cased.lower()
    # Case folding can leave uncomposed sequences ("\u00df\u0301" folds to "ss\u0301", Greek
    # with diacritics); NFKC(casefold(NFKD(x))) is Unicode's NFKC_Casefold recipe, stable under
    # a second pass, so a normalised text normalises to itself.
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKD", cased).casefold())


def normalize(text: str) -> str:
    """The canonical form every rule and similarity measure is written against.

    HTML entities decoded and tags removed, Unicode NFKC, curly quotes straight, all dashes
    ``-``, whitespace collapsed and trimmed, case folded.
    """
    return fold(normalize_cased(text))
