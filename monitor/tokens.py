"""Tokenisation for near-duplicate detection, in any script.

Words are runs of letters and digits. Scripts written without spaces between
words (Khmer, Thai, Lao, Myanmar, Chinese, Japanese) are cut into grapheme
clusters instead, so that shingles over them are character n-grams: no
dictionary is needed, and a copy shares them as a copy shares word shingles.

Each token also says what a synonym spinner does to it: it leaves function
words, numbers and (mostly) names alone, and replaces content words. See
`Token.role`.
"""

from __future__ import annotations

import re
import unicodedata
from enum import Enum
from functools import lru_cache
from typing import NamedTuple

import regex

# Scripts written without spaces between words: Khmer, Thai, Lao, Myanmar, Tibetan,
# kana and CJK ideographs (their blocks include their combining marks).
_UNSPACED_RANGES = (
    "\u0e00-\u0eff\u0f00-\u0fff\u1000-\u109f\u1780-\u17ff\u19e0-\u19ff"
    "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
)
# One pass (the standard library's re: several times faster than `regex` here) cuts
# the text into runs of an unspaced script, words (with inner apostrophes, and the
# dots and commas of "U.S." and "100,000"), and sentence breaks.
_PIECE = re.compile(
    rf"[{_UNSPACED_RANGES}]+"
    rf"|[^\W_{_UNSPACED_RANGES}]+(?:['’.,][^\W_{_UNSPACED_RANGES}]+)*"
    r"|[.!?:\n]"
)
_UNSPACED = re.compile(rf"[{_UNSPACED_RANGES}]")
_BREAKS = frozenset(".!?:\n")
_DIGIT = re.compile(r"\d")
_GRAPHEME = regex.compile(r"\X")
_NUMBER = regex.compile(r"\p{Nd}+")
# A Khmer wire copy may cite ៦៤ as 64: numbers are compared in ASCII digits. (NFKC
# already turns full-width digits into ASCII ones, but leaves a script's own digits.)
_ASCII_DIGITS = {
    code: str(unicodedata.digit(chr(code)))
    for start in (0x0660, 0x06F0, 0x0966, 0x09E6, 0x0E50, 0x0ED0, 0x1040, 0x17E0)
    for code in range(start, start + 10)
}

# English function words: the part of a sentence a spinner has no synonyms for.
FUNCTION_WORDS = frozenset(
    """
    a about above across after against all along also although am among an and another any
    are around as at be because been before being below between both but by can could did do
    does doing down during each either else ever every few for from further had has have
    having he her here hers herself him himself his how however i if in into is it its
    itself just least less may me might more most much must my myself neither no nor not of
    off on once one only onto or other others our ours ourselves out over own per rather
    same shall she should since so some such than that the their theirs them themselves then
    there these they this those though through throughout thus to too toward towards under
    unless until up upon us very via was we were what whatever when whenever where whereas
    whether which while who whom whose why will with within without would yet you your yours
    yourself yourselves said says say told according
    """.split()  # noqa: SIM905 - a word list reads better as text
)


class Role(Enum):
    """What a spinner does to a token."""

    FUNCTION = "function"  # left alone: a function word
    NUMBER = "number"  # left alone: contains a digit
    NAME = "name"  # mostly left alone: capitalised inside a sentence
    CONTENT = "content"  # replaced by a synonym at the spinner's rate
    UNSPACED = "unspaced"  # a grapheme of an unspaced script: no spinner touches it


class Token(NamedTuple):
    text: str  # normalised: NFKC, case-folded
    role: Role


def tokenize(text: str) -> list[Token]:
    """The tokens of `text`, in order, with their roles."""
    tokens: list[Token] = []
    append = tokens.append
    sentence_start = True
    for piece in _PIECE.findall(unicodedata.normalize("NFKC", text)):
        if piece in _BREAKS:
            sentence_start = True
            continue
        if not piece.isascii() and _UNSPACED.match(piece):
            tokens.extend(
                Token(grapheme.casefold(), Role.UNSPACED) for grapheme in _GRAPHEME.findall(piece)
            )
            # Numbers inside unspaced text are facts too (Khmer and Chinese cite them).
            tokens.extend(
                Token(number.translate(_ASCII_DIGITS), Role.NUMBER)
                for number in _NUMBER.findall(piece)
            )
        else:
            at_start, inside = _word_tokens(piece)
            append(at_start if sentence_start else inside)
        sentence_start = False
    return tokens


@lru_cache(maxsize=1 << 13)
def _word_tokens(piece: str) -> tuple[Token, Token]:
    """The token a word of a spaced script makes at a sentence's start, and inside one.

    Cached: news text repeats its words, and working a word out costs more than
    looking it up (a few thousand words cover most of a day's articles)."""
    folded = piece.casefold()
    if "’" in folded:
        folded = folded.replace("’", "'")
    if folded in FUNCTION_WORDS:
        function = Token(folded, Role.FUNCTION)
        return function, function
    if not piece.isalpha() and _DIGIT.search(piece):
        number = Token(folded.replace(",", "").translate(_ASCII_DIGITS), Role.NUMBER)
        return number, number
    content = Token(folded, Role.CONTENT)
    # Capitalised inside a sentence: a name; at its start, any word is capitalised.
    return content, Token(folded, Role.NAME) if piece[0].isupper() else content
