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

import unicodedata
from dataclasses import dataclass
from enum import Enum

import regex

# Runs of word characters; a run is later cut into graphemes if it is in an unspaced script.
_WORD = regex.compile(r"[\p{L}\p{M}\p{N}]+(?:['’.,][\p{L}\p{N}]+)*")
_UNSPACED = regex.compile(
    r"[\p{Han}\p{Hiragana}\p{Katakana}\p{Khmer}\p{Thai}\p{Lao}\p{Myanmar}\p{Tibetan}]"
)
_GRAPHEME = regex.compile(r"\X")
_DIGIT = regex.compile(r"\p{N}")
_NUMBER = regex.compile(r"\p{Nd}+")

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


@dataclass(frozen=True, slots=True)
class Token:
    text: str  # normalised: NFKC, case-folded
    role: Role


def tokenize(text: str) -> list[Token]:
    """The tokens of `text`, in order, with their roles."""
    normalized = unicodedata.normalize("NFKC", text)
    tokens: list[Token] = []
    previous_end = 0
    for match in _WORD.finditer(normalized):
        word = match.group()
        gap = normalized[previous_end : match.start()]
        sentence_start = previous_end == 0 or any(mark in gap for mark in ".!?\n:")
        previous_end = match.end()
        if _UNSPACED.search(word):
            tokens.extend(
                Token(grapheme.casefold(), Role.UNSPACED)
                for grapheme in _GRAPHEME.findall(word)
                if not grapheme.isspace()
            )
            # Numbers inside unspaced text are facts too (Khmer and Chinese cite them).
            tokens.extend(Token(number, Role.NUMBER) for number in _NUMBER.findall(word))
            continue
        folded = word.casefold().replace("’", "'")
        if _DIGIT.search(word):
            role = Role.NUMBER
            folded = folded.replace(",", "")
        elif folded in FUNCTION_WORDS:
            role = Role.FUNCTION
        elif word[0].isupper() and not sentence_start:
            role = Role.NAME
        else:
            role = Role.CONTENT
        tokens.append(Token(folded, role))
    return tokens
