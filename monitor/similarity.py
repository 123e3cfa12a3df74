"""Text features for near-duplicate detection, and how alike two texts are.

Three views of a text:

- `words`: shingles of consecutive tokens (word 4-grams; grapheme 5-grams in
  unspaced scripts). A syndicated or ad-wrapped copy shares nearly all of them.
- `skeleton`: shingles over what a synonym spinner leaves alone: function words,
  numbers and names in their order, every run of content words collapsed into
  one placeholder. A spun copy keeps most of its skeleton while its word
  shingles fall apart (the "immutables" of DSpin, Zhang et al., NDSS 2014).
  A verbatim or truncated copy shares it as it shares its words.
- `entities`: the set of names and numbers. A journalist's rewrite of a story
  keeps them while changing nearly every sentence.

MinHash signatures (datasketch) of the skeleton and of the entities find
candidates; `compare` then measures the exact overlaps.
"""

from __future__ import annotations

import importlib.util
import math
import re
import sys
import threading
import unicodedata
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import cache, cached_property, lru_cache
from typing import TYPE_CHECKING

import numpy as np

from monitor.chinese import simplified
from monitor.tokens import Role, Token, tokenize

if TYPE_CHECKING:
    from datasketch import MinHash

# Changes whenever the features change, so stored signatures can be told apart.
FEATURES_VERSION = 1
WORD_SHINGLE = 4
UNSPACED_SHINGLE = 5
SKELETON_SHINGLE = 6
NUM_PERM = 128
MINHASH_SEED = 20240117
MINHASH_SCHEME = "affine32"
_PLACEHOLDER = "\x00"
_MIX = np.uint64(0x9E3779B97F4A7C15)
_EMPTY = np.empty(0, dtype=np.uint32)
PARAGRAPH_MATCH = 0.25
LEAD_MIN_TOKENS = 12
# Two leads sharing this much of the smaller one's skeleton shingles tell one event alike.
LEADS_ALIKE = 0.5
# Two texts sharing this much of their words after their leads come from one template.
TEMPLATE_AFTER_LEAD = 0.9
# A paragraph of this many word shingles or more, this much of them in the other text,
# is in it word for word: an outlet's background paragraph, or a copy's.
VERBATIM_PARAGRAPH = 0.9
VERBATIM_MIN_SHINGLES = 8
# A paragraph of the shorter text with at most this much of its skeleton in the other
# says something the other never does; a spinner changes words and writes no paragraph.
NEW_PARAGRAPH = 0.1
NEW_PARAGRAPHS = 2
# A follow-up by the story's own outlet reuses its background paragraphs, a good part of
# its own text; another outlet's rewrite keeps a quote or two as they stand.
REUSED_PARAGRAPHS = 2
REUSED_SHARE = 1 / 3  # of the shorter text's paragraphs


Shingles = np.ndarray  # sorted, unique uint32 hashes


@dataclass(frozen=True, slots=True, eq=False)
class TextFeatures:
    """A text's shingle sets, as sorted uint32 arrays (about 6 KB for a 500-word article)."""

    words: Shingles
    skeleton: Shingles
    entities: Shingles
    numbers: frozenset[str]
    # The numbers of the lead, the first paragraph of LEAD_MIN_TOKENS or more (a headline
    # or a dateline is shorter): what the story is about ("29 more Thais handed over").
    lead_numbers: frozenset[str]
    # Numbers written in English words ("Twenty-one fishermen": style guides spell out a
    # number that opens a sentence), as digits: what a rewrite's "21" is checked against.
    spelled_numbers: frozenset[str]
    # Every number the text cites, in digits or in English words, in one form whatever
    # the house style: "twelve" and 12, "$2.5 million", "$2.5m" and "$2,500,000".
    cited_numbers: frozenset[str]
    # The lead's word shingles (grapheme shingles in unspaced scripts): where a story
    # says whose and where it is, which a copy keeps as it stands.
    lead_words: np.ndarray
    # The names and numbers of the lead (casefolded; numbers as `cited_numbers` gives
    # them), and every name and number of the text: one story told twice from one
    # template differs in them, "Police in Svay Rieng…" for "Police in Preah Sihanouk…".
    lead_entities: frozenset[str]
    entity_words: frozenset[str]
    # The lead's counts: `lead_numbers` and the numbers it spells out ("four people").
    lead_counts: frozenset[str]
    # Whether the lead is in a script without capitals (Khmer, Chinese…): no names.
    lead_unspaced: bool
    # The lead's skeleton shingles: what a spinner leaves of it, to tell whether two
    # leads tell one event alike.
    lead_skeleton: np.ndarray
    # The word shingles of the paragraphs after the lead: the same, word for word, in
    # two stories told from one template; a spinner's copy changes words everywhere.
    after_lead_words: np.ndarray
    token_count: int
    # The skeleton shingles of each paragraph, one after the other, and where each
    # paragraph's run ends: to see how much of a text another one covers.
    paragraph_shingles: np.ndarray
    paragraph_ends: np.ndarray
    # The text itself, to find the paragraphs two texts share word for word when a rule
    # asks (rarely: not worth a shingling of each paragraph of every text). Empty in the
    # daemon's cache of kept texts: a paragraph two texts share is word for word in both,
    # so the newcomer's text is enough.
    text: str


def text_features(text: str) -> TextFeatures:
    original = text
    paragraphs = _paragraphs(text)
    paragraph_tokens = [tokenize(paragraph) for paragraph in paragraphs]
    tokens = [token for paragraph in paragraph_tokens for token in paragraph]
    numbers = frozenset(token.text for token in tokens if token.role is Role.NUMBER)
    # For the word shingles: each number once, in ASCII digits.
    wording = [_with_ascii_digits(paragraph) for paragraph in paragraph_tokens]
    lead_at = _lead(paragraphs, paragraph_tokens)
    lead = wording[lead_at] if lead_at is not None else ()
    after = lead_at + 1 if lead_at is not None else 0
    after_lead = [token for paragraph in wording[after:] for token in paragraph]
    names = {token.text for token in tokens if token.role is Role.NAME}
    spelled = spelled_numbers(tokens)
    cited = cited_numbers(tokens, spelled)
    lead_numbers = _lead_numbers(lead)
    lead_spelled = spelled_numbers(lead)
    paragraph_shingles, paragraph_ends = _paragraph_skeletons(paragraph_tokens)
    return TextFeatures(
        words=_word_shingles([token for paragraph in wording for token in paragraph]),
        skeleton=np.unique(paragraph_shingles),
        entities=_hashes(names | numbers),
        numbers=numbers,
        lead_numbers=lead_numbers,
        spelled_numbers=spelled,
        cited_numbers=cited,
        lead_words=_word_shingles(lead),
        lead_entities=frozenset(token.text for token in lead if token.role is Role.NAME)
        | cited_numbers(lead, lead_spelled),
        entity_words=frozenset(names) | numbers | cited,
        lead_counts=lead_numbers | (lead_spelled - _NOT_A_COUNT),
        lead_unspaced=any(token.role is Role.UNSPACED for token in lead),
        after_lead_words=_word_shingles(after_lead),
        lead_skeleton=np.unique(
            np.concatenate([_EMPTY, _shingles_array(_skeleton(lead), SKELETON_SHINGLE)])
        ),
        token_count=len(tokens),
        paragraph_shingles=paragraph_shingles,
        paragraph_ends=paragraph_ends,
        text=original,
    )


_UNITS = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
_TEENS = [
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
_TENS = ["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_NUMBER_WORDS = {
    **{word: value for value, word in enumerate(_UNITS, start=1)},
    **{word: value for value, word in enumerate(_TEENS, start=10)},
    **{word: value * 10 for value, word in enumerate(_TENS, start=2)},
}
_MONTHS = frozenset(
    [
        "january",
        "february",
        "march",
        "april",
        "may",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
        "jan",
        "feb",
        "mar",
        "apr",
        "jun",
        "jul",
        "aug",
        "sep",
        "sept",
        "oct",
        "nov",
        "dec",
    ]
)


# How a sentence ends, in the scripts of the news monitored: a headline does not.
_SENTENCE_END = (
    ".",
    "!",
    "?",
    '"',
    "'",
    "\u201d",
    "\u2019",
    ")",
    "\u3002",
    "\uff01",
    "\uff1f",
    "\u17d4",
    "\u17d5",
)
_LEAD_SEARCH = 3


def _lead(paragraphs: Sequence[str], paragraph_tokens: Sequence[Sequence[Token]]) -> int | None:
    """Which paragraph is the story's first: of the first few of LEAD_MIN_TOKENS tokens
    or more, the first that ends as a sentence does. A headline kept in the text is
    long enough in a script without spaces (each character a token) but ends without a
    full stop; a copy's new headline would otherwise be its lead."""
    long_enough = [
        number for number, tokens in enumerate(paragraph_tokens) if len(tokens) >= LEAD_MIN_TOKENS
    ][:_LEAD_SEARCH]
    for number in long_enough:
        if paragraphs[number].rstrip().endswith(_SENTENCE_END):
            return number
    return long_enough[0] if long_enough else None


def _with_ascii_digits(tokens: Sequence[Token]) -> Sequence[Token]:
    """The tokens with each number once, in ASCII digits, where it is written: a Khmer
    copy that writes "12" for "១២" keeps its source's wording. (The tokenizer gives a
    number in Khmer or Thai digits as its digits, graphemes, and after the run the
    number itself, in ASCII digits.)"""
    if not any(
        token.role is Role.UNSPACED or (token.role is Role.NUMBER and not token.text.isascii())
        for token in tokens
    ):
        return tokens
    result: list[Token] = []
    digits, at = "", 0
    for token in tokens:
        if token.role is Role.UNSPACED and token.text.isdecimal():
            if not digits:
                at = len(result)
            digits += str(unicodedata.decimal(token.text[0], 0))
            continue
        if token.role is Role.NUMBER:
            number = Token("".join(str(unicodedata.decimal(c, c)) for c in token.text), token.role)
            if digits and number.text.startswith(digits):
                result.insert(at, number)
                digits = ""
                continue
            result.append(number)
            continue
        if digits and token.role is not Role.UNSPACED:
            digits = ""
        result.append(token)
    return result


def _lead_numbers(lead: Sequence[Token]) -> frozenset[str]:
    """The lead's numbers, less a day of the month ("on August 20"): a rewriter turns the
    story's "on Saturday" into a date, a follow-up leads with a count of its own."""
    numbers = set()
    for index, token in enumerate(lead):
        if token.role is not Role.NUMBER:
            continue
        neighbours = lead[max(index - 1, 0) : index + 2]
        if any(other.text.casefold() in _MONTHS for other in neighbours if other is not token):
            continue
        numbers.add(token.text)
    return frozenset(numbers)


def spelled_numbers(tokens: Sequence[Token]) -> frozenset[str]:
    """The numbers from one to ninety-nine written in English words, as digits (from the
    tokens: "twenty-one" is two of them)."""
    found = set()
    index = 0
    while index < len(tokens):
        value = _NUMBER_WORDS.get(tokens[index].text)
        index += 1
        if value is None:
            continue
        if value >= 20 and index < len(tokens):
            unit = _NUMBER_WORDS.get(tokens[index].text, 0)
            if unit < 10:
                value += unit
                index += 1 if unit else 0
        found.add(str(value))
    return frozenset(found)


_SCALES = {
    "k": 10**3,
    "thousand": 10**3,
    "m": 10**6,
    "mn": 10**6,
    "million": 10**6,
    "b": 10**9,
    "bn": 10**9,
    "billion": 10**9,
    "tn": 10**12,
    "trillion": 10**12,
}
_SCALE_WORDS = frozenset(["thousand", "million", "billion", "trillion", "mn", "bn", "tn"])
_NUMERIC = re.compile(r"(\d+(?:\.\d+)?)([a-z]*)")
_LONGEST_NUMBER = 15
# "One" is as often a pronoun ("one of the victims", "no one") as a count.
_NOT_A_COUNT = frozenset({"1"})


def cited_numbers(tokens: Sequence[Token], spelled: frozenset[str]) -> frozenset[str]:
    """The numbers the text cites, each in one form: a scale word or suffix multiplied
    in ("2.5 million", "2.5m", "2,500,000": 2500000), a suffix dropped ("15th", "10am"),
    leading zeros dropped, and the numbers written in words from two to ninety-nine."""
    cited = set(spelled - _NOT_A_COUNT)
    for index, token in enumerate(tokens):
        if token.role is not Role.NUMBER:
            continue
        found = _NUMERIC.fullmatch(token.text)
        if found is None or len(token.text) > _LONGEST_NUMBER:
            cited.add(token.text)  # "covid19", a phone number: compared as written
            continue
        digits, suffix = found.groups()
        scale = _SCALES.get(suffix)
        if not suffix and index + 1 < len(tokens) and tokens[index + 1].text in _SCALE_WORDS:
            scale = _SCALES[tokens[index + 1].text]
        value = Decimal(digits) * (scale or 1)
        integral = value == value.to_integral_value()
        cited.add(str(value.quantize(1)) if integral else str(value.normalize()))
    return frozenset(cited)


def _paragraph_skeletons(paragraphs: Sequence[Sequence[Token]]) -> tuple[np.ndarray, np.ndarray]:
    """Skeleton shingles of every paragraph (windows never cross a paragraph break), in
    order, and the end offset of each paragraph's run."""
    sequence: list[str] = []
    owner: list[int] = []
    for number, paragraph in enumerate(paragraphs):
        skeleton = _skeleton(paragraph)
        if len(skeleton) < SKELETON_SHINGLE:
            # Too short for a window: one shingle of the whole, padded to a window.
            skeleton += [_PLACEHOLDER] * (SKELETON_SHINGLE - len(skeleton))
        sequence += skeleton
        owner += [number] * len(skeleton)
    if not sequence:
        return _EMPTY, np.zeros(len(paragraphs), dtype=np.int64)
    hashes = _shingles_array(sequence, SKELETON_SHINGLE)
    owners = np.asarray(owner, dtype=np.int64)
    windows = len(hashes)
    inside = owners[:windows] == owners[SKELETON_SHINGLE - 1 : SKELETON_SHINGLE - 1 + windows]
    counts = np.bincount(owners[:windows][inside], minlength=len(paragraphs))
    return hashes[inside], np.cumsum(counts)


# Each process keeps its own cache, and it fills with every name and number it meets:
# 65,536 entries held 14 MiB, in the daemon and in each worker, reached only after
# days of news. The most frequent words are most of the lookups.
@lru_cache(maxsize=1 << 13)
def _token_hash(token: str) -> int:
    return zlib.crc32(token.encode("utf-8"))


def _hashes(tokens: Iterable[str]) -> np.ndarray:
    """The distinct tokens' hashes, as a sorted array."""
    return np.unique(np.fromiter(map(_token_hash, tokens), dtype=np.uint32))


def _shingles_array(sequence: Sequence[str], size: int) -> np.ndarray:
    """32-bit hashes of every run of `size` consecutive tokens (one for a shorter sequence)."""
    if not sequence:
        return _EMPTY
    hashes = np.fromiter(map(_token_hash, sequence), dtype=np.uint64, count=len(sequence))
    size = min(size, len(hashes))
    windows = len(hashes) - size + 1
    combined = hashes[:windows].copy()
    for offset in range(1, size):
        # A polynomial hash of the window, wrapping modulo 2**64.
        combined = combined * _MIX + hashes[offset : offset + windows]
    combined ^= combined >> np.uint64(32)
    folded: np.ndarray = (combined & np.uint64(0xFFFFFFFF)).astype(np.uint32)
    return folded


def _runs(tokens: Sequence[Token]) -> Iterable[tuple[bool, list[str]]]:
    """Consecutive tokens of spaced and of unspaced scripts, separately."""
    run: list[str] = []
    unspaced = False
    for token in tokens:
        is_unspaced = token.role is Role.UNSPACED
        if run and is_unspaced != unspaced:
            yield unspaced, run
            run = []
        unspaced = is_unspaced
        run.append(token.text)
    if run:
        yield unspaced, run


def _word_shingles(tokens: Sequence[Token]) -> np.ndarray:
    """Word shingles of each run of a spaced script, grapheme shingles of each run of
    an unspaced one."""
    runs = (
        _shingles_array(run, UNSPACED_SHINGLE if unspaced else WORD_SHINGLE)
        for unspaced, run in _runs(tokens)
    )
    return np.unique(np.concatenate([_EMPTY, *runs]))


def _skeleton(tokens: Sequence[Token]) -> list[str]:
    skeleton: list[str] = []
    for token in tokens:
        if token.role is Role.CONTENT:
            if not skeleton or skeleton[-1] != _PLACEHOLDER:
                skeleton.append(_PLACEHOLDER)
        else:
            skeleton.append(token.text)
    return skeleton


@dataclass(frozen=True, slots=True)
class Overlap:
    """How much of the smaller and of the larger of two shingle sets the other holds."""

    of_smaller: float
    of_larger: float

    @staticmethod
    def between(first: Shingles, second: Shingles) -> Overlap:
        if not first.size or not second.size:
            return Overlap(0.0, 0.0)
        shared = _shared(first, second)
        small, large = sorted((first.size, second.size))
        return Overlap(shared / small, shared / large)


def _shared(first: Shingles, second: Shingles) -> int:
    return int(np.intersect1d(first, second, assume_unique=True).size)


class Comparison:
    """How alike two texts are. Each measure is computed when first asked for, so that
    a rule that fails on a cheap measure never pays for the costly ones."""

    def __init__(self, first: TextFeatures, second: TextFeatures) -> None:
        self._first, self._second = first, second
        self._shorter, self._longer = sorted((first, second), key=lambda f: f.token_count)

    @cached_property
    def words(self) -> Overlap:
        return Overlap.between(self._first.words, self._second.words)

    @cached_property
    def skeleton(self) -> Overlap:
        return Overlap.between(self._first.skeleton, self._second.skeleton)

    @cached_property
    def entities(self) -> float:
        """Jaccard similarity of the sets of names and numbers."""
        shared = _shared(self._first.entities, self._second.entities)
        union = self._first.entities.size + self._second.entities.size - shared
        return shared / union if union else 0.0

    @cached_property
    def numbers_shared(self) -> float:
        """Share of the numbers cited by the shorter text that the other cites too, in
        digits or in words: "twelve citizens" and "nineteen citizens" are two stories
        told in one template, "twelve" and "12" one story in two house styles."""
        numbers = self._shorter.cited_numbers
        return len(numbers & self._longer.cited_numbers) / len(numbers) if numbers else 1.0

    @cached_property
    def lead_brings_new_numbers(self) -> bool:
        """Whether either text's lead cites a number the other text never does: a
        follow-up leads with its own event ("29 more"), even when it recaps the story's
        numbers and reuses its background paragraphs word for word."""
        first, second = self._first, self._second
        return bool(
            first.lead_numbers - second.numbers - second.spelled_numbers
            or second.lead_numbers - first.numbers - first.spelled_numbers
        )

    @cached_property
    def numbers_cited(self) -> int:
        """How many numbers the shorter text cites: with none, every text shares them all."""
        return len(self._shorter.cited_numbers)

    @cached_property
    def leads_differ(self) -> bool:
        """Whether each text's lead says something the other text never does (a word
        4-gram of its own): two police statements from one template, "Kampot provincial
        police rescued… in Kampot town" and "…in Kampong Trach town", share their words
        and no number, and only their leads tell the two rescues apart. A copy keeps its
        source's lead as it stands: at most one side adds to it (a dateline, its
        outlet, an opening sentence)."""
        first, second = self._first, self._second
        return _says_more(first, second) and _says_more(second, first)

    @cached_property
    def leads_name_apart(self) -> bool:
        """Whether each text's lead names someone or something, or cites a number, that
        the other text never does: two stories told from one template ("Police in Svay
        Rieng arrested…", "Police in Preah Sihanouk arrested…"), which share nearly all
        their words. A copy keeps its source's lead; at most one side adds to it (a
        dateline, its outlet). In scripts without capitals, any word of the lead."""
        first, second = self._first, self._second
        if first.lead_unspaced or second.lead_unspaced:
            return self.leads_differ
        return bool(
            first.lead_entities - second.entity_words and second.lead_entities - first.entity_words
        )

    @cached_property
    def same_after_leads(self) -> bool:
        """Whether the texts are word for word the same after their leads (or neither
        has more than a lead): what a template keeps, where a spinner changes words in
        every paragraph."""
        first, second = self._first.after_lead_words, self._second.after_lead_words
        if not first.size or not second.size:
            return not first.size and not second.size
        return Overlap.between(first, second).of_smaller >= TEMPLATE_AFTER_LEAD

    @cached_property
    def lead_count_changed(self) -> bool:
        """Whether a lead gives a count the other text never does, in a lead otherwise
        like the other's: "arrested four people" for "arrested three people", the same
        statement about another raid. (A lead of its own with numbers, an editor's note
        put first, shares little with the other lead.)"""
        first, second = self._first, self._second
        if not (first.lead_counts - second.entity_words or second.lead_counts - first.entity_words):
            return False
        smaller = min(first.lead_skeleton.size, second.lead_skeleton.size)
        if not smaller:
            return False
        shared = np.isin(first.lead_skeleton, second.lead_skeleton).sum()
        return bool(shared >= LEADS_ALIKE * smaller)

    @cached_property
    def shares_background(self) -> bool:
        """Whether these are two stories over paragraphs they share word for word: the
        leads differ, a paragraph is in both texts as it stands, and at least
        NEW_PARAGRAPHS of the shorter text's paragraphs hold next to nothing of the other
        (an outlet's two reports of two meetings, reusing its background paragraphs and
        their figures). A spinner changes words in every paragraph and writes none; a
        syndicated copy keeps its source's lead."""
        if not self.leads_differ:
            return False
        matched, sizes = _paragraph_matches(self._shorter, self._longer)
        new = (sizes >= 3) & (matched <= NEW_PARAGRAPH * sizes)
        if int(new.sum()) < NEW_PARAGRAPHS:
            return False
        first, second = self._first, self._second
        return _has_verbatim_paragraph(first, second) or _has_verbatim_paragraph(second, first)

    @cached_property
    def follows_up_on_background(self) -> bool:
        """Whether the shorter text is a follow-up over the other's paragraphs: the two
        share background paragraphs (`shares_background`), REUSED_PARAGRAPHS or more
        paragraphs and at least REUSED_SHARE of the shorter text's are word for word in
        the other, and the shorter cites a number the other never does, its own event's
        ("aged 52", "$1.7 million frozen"). Another outlet's rewrite keeps a quote or two
        as they stand and retells the rest."""
        shorter, longer = self._shorter, self._longer
        own = shorter.cited_numbers - longer.cited_numbers - longer.spelled_numbers
        if not own or not self.shares_background:
            return False
        first, second = self._first, self._second
        text, other = (first, second) if first.text else (second, first)
        counted = int((np.diff(shorter.paragraph_ends, prepend=0) >= 3).sum())
        needed = max(REUSED_PARAGRAPHS, math.ceil(REUSED_SHARE * counted))
        return _verbatim_paragraphs(text, other, enough=needed) >= needed

    @cached_property
    def paragraphs_covered(self) -> float:
        """Share of the shorter text's paragraphs of which the other holds at least
        PARAGRAPH_MATCH of the skeleton shingles: a copy covers nearly all of them, a
        follow-up that quotes two paragraphs of a story only those two."""
        return _paragraphs_covered(self._shorter, self._longer)

    def __repr__(self) -> str:
        return (
            f"Comparison(words={self.words}, skeleton={self.skeleton}, "
            f"entities={self.entities:.3f}, numbers_shared={self.numbers_shared:.3f}, "
            f"paragraphs_covered={self.paragraphs_covered:.3f})"
        )


def _says_more(text: TextFeatures, other: TextFeatures) -> bool:
    """Whether `text`'s lead has a word shingle that `other` never has. (Its lead's too:
    a lead's last shingle, cut at the paragraph's end, is not among the whole text's,
    whose shingles run on into the next paragraph.)"""
    new = np.isin(text.lead_words, other.words, invert=True)
    return bool((new & np.isin(text.lead_words, other.lead_words, invert=True)).any())


def compare(first: TextFeatures, second: TextFeatures) -> Comparison:
    return Comparison(first, second)


def _paragraphs_covered(shorter: TextFeatures, longer: TextFeatures) -> float:
    if not shorter.paragraph_shingles.size:
        return 1.0
    matched, sizes = _paragraph_matches(shorter, longer)
    counted = sizes >= 3
    if not counted.any():
        return 1.0
    covered = (matched >= PARAGRAPH_MATCH * sizes) & counted
    return float(covered.sum() / counted.sum())


def covered_paragraphs(text: TextFeatures, other: TextFeatures) -> np.ndarray:
    """Which paragraphs of `text` (3 skeleton shingles or more) `other` covers, as
    `paragraphs_covered` counts them: a mask over `text`'s paragraphs."""
    matched, sizes = _paragraph_matches(text, other)
    return (sizes >= 3) & (matched >= PARAGRAPH_MATCH * sizes)


def _paragraph_matches(
    shorter: TextFeatures, longer: TextFeatures
) -> tuple[np.ndarray, np.ndarray]:
    """For each paragraph of `shorter`, how many of its skeleton shingles `longer` holds,
    and how many it has."""
    ends = shorter.paragraph_ends
    starts = np.concatenate(([0], ends[:-1])).astype(np.int64)
    sizes = ends - starts
    matched = np.zeros(len(sizes), dtype=np.int64)
    nonempty = sizes > 0
    if nonempty.any():
        found = np.isin(shorter.paragraph_shingles, longer.skeleton).astype(np.int64)
        matched[nonempty] = np.add.reduceat(found, starts[nonempty])
    return matched, sizes


def _has_verbatim_paragraph(text: TextFeatures, other: TextFeatures) -> bool:
    """Whether a paragraph of `text` (VERBATIM_MIN_SHINGLES word shingles or more) is in
    `other` word for word."""
    return _verbatim_paragraphs(text, other, enough=1) > 0


def _verbatim_paragraphs(text: TextFeatures, other: TextFeatures, enough: int = 1 << 30) -> int:
    """How many paragraphs of `text` (VERBATIM_MIN_SHINGLES word shingles or more) are in
    `other` word for word, counting up to `enough`."""
    found = 0
    for paragraph in _paragraphs(text.text):
        words = _word_shingles(_with_ascii_digits(tokenize(paragraph)))
        if words.size < VERBATIM_MIN_SHINGLES:
            continue
        if np.isin(words, other.words).sum() >= VERBATIM_PARAGRAPH * words.size:
            found += 1
            if found >= enough:
                break
    return found


def _paragraphs(text: str) -> list[str]:
    # Read as Simplified, as the rules and search read it: a Taiwanese or Hong Kong
    # outlet's copy in Traditional characters is a copy, not a text of its own.
    return [paragraph for paragraph in simplified(text).split("\n") if paragraph]


def _identity(value: int) -> int:
    return value


# Threads signing their first article at once (poll threads without worker processes)
# would each put the package in `sys.modules` and take it out under the others' feet.
_MINHASH_IMPORT = threading.Lock()


@cache
def _minhash_class() -> type[MinHash]:
    with _MINHASH_IMPORT:
        return _lean_minhash_class()


def _lean_minhash_class() -> type[MinHash]:
    """datasketch's MinHash, imported when first signing, without the rest of datasketch.

    `import datasketch` runs the package's `__init__`, which imports every index the
    package offers and SciPy with them (40 MB resident in each process that signs,
    half a second), none of which monitor uses: it signs with `MinHash` and keeps its
    index in the database. So the package is put in `sys.modules` without running its
    `__init__` just long enough to import `datasketch.minhash` (which needs only NumPy
    and `datasketch.hashfunc`), then taken out again: a later `import datasketch`
    anywhere still runs the real `__init__`, which reuses the modules loaded here.
    """
    if "datasketch" not in sys.modules:
        spec = importlib.util.find_spec("datasketch")
        if spec is not None and spec.loader is not None:
            sys.modules["datasketch"] = importlib.util.module_from_spec(spec)
            try:
                from datasketch.minhash import MinHash as Lean
            except ImportError:  # a datasketch whose minhash needs its whole package
                for name in [name for name in sys.modules if name.startswith("datasketch.")]:
                    del sys.modules[name]
            else:
                lean: type[MinHash] = Lean
                return lean
            finally:
                del sys.modules["datasketch"]
    from datasketch import MinHash

    minhash: type[MinHash] = MinHash
    return minhash


class Signer:
    """MinHash signatures with one fixed set of permutations (computed once)."""

    def __init__(self, num_perm: int = NUM_PERM, seed: int = MINHASH_SEED) -> None:
        self.num_perm = num_perm
        self.seed = seed

    @cached_property
    def _permutations(self) -> np.ndarray:
        permutations: np.ndarray = _minhash_class()(
            num_perm=self.num_perm, seed=self.seed, scheme=MINHASH_SCHEME
        ).permutations
        return permutations

    def signature(self, shingles: Shingles) -> np.ndarray:
        """uint32 MinHash values of a set of hashed shingles."""
        minhash = _minhash_class()(
            num_perm=self.num_perm,
            seed=self.seed,
            hashfunc=_identity,
            permutations=self._permutations,
            scheme=MINHASH_SCHEME,
        )
        values = shingles.tolist()
        if values:
            minhash.update_batch(values)
        hashvalues: np.ndarray = minhash.hashvalues.astype(np.uint32)
        return hashvalues
