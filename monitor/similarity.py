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

import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from datasketch import MinHash

from monitor.tokens import Role, Token, tokenize

WORD_SHINGLE = 4
UNSPACED_SHINGLE = 5
SKELETON_SHINGLE = 6
NUM_PERM = 128
MINHASH_SEED = 20240117
MINHASH_SCHEME = "affine32"
_PLACEHOLDER = "\x00"
PARAGRAPH_MATCH = 0.25


@dataclass(frozen=True, slots=True)
class TextFeatures:
    words: frozenset[int]
    skeleton: frozenset[int]
    entities: frozenset[int]
    numbers: frozenset[str]
    token_count: int
    # The skeleton shingles of each paragraph, to see how much of a text another covers.
    paragraphs: tuple[frozenset[int], ...] = ()


def text_features(text: str) -> TextFeatures:
    paragraph_tokens = [tokenize(paragraph) for paragraph in text.split("\n") if paragraph]
    tokens = [token for paragraph in paragraph_tokens for token in paragraph]
    numbers = frozenset(token.text for token in tokens if token.role is Role.NUMBER)
    names = {token.text for token in tokens if token.role is Role.NAME}
    paragraphs = tuple(frozenset(_skeleton_shingles(paragraph)) for paragraph in paragraph_tokens)
    return TextFeatures(
        words=frozenset(_word_shingles(tokens)),
        skeleton=frozenset().union(*paragraphs),
        entities=frozenset(_hash((entity,)) for entity in names | numbers),
        numbers=numbers,
        token_count=len(tokens),
        paragraphs=paragraphs,
    )


def _hash(parts: Sequence[str]) -> int:
    return zlib.crc32("\x1f".join(parts).encode("utf-8"))


def _shingles(sequence: Sequence[str], size: int) -> Iterable[int]:
    if not sequence:
        return
    if len(sequence) <= size:
        yield _hash(sequence)
        return
    for start in range(len(sequence) - size + 1):
        yield _hash(sequence[start : start + size])


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


def _word_shingles(tokens: Sequence[Token]) -> Iterable[int]:
    for unspaced, run in _runs(tokens):
        yield from _shingles(run, UNSPACED_SHINGLE if unspaced else WORD_SHINGLE)


def _skeleton_shingles(tokens: Sequence[Token]) -> Iterable[int]:
    skeleton: list[str] = []
    for token in tokens:
        if token.role is Role.CONTENT:
            if not skeleton or skeleton[-1] != _PLACEHOLDER:
                skeleton.append(_PLACEHOLDER)
        else:
            skeleton.append(token.text)
    yield from _shingles(skeleton, SKELETON_SHINGLE)


@dataclass(frozen=True, slots=True)
class Overlap:
    """How much of the smaller and of the larger of two shingle sets the other holds."""

    of_smaller: float
    of_larger: float

    @staticmethod
    def between(first: frozenset[int], second: frozenset[int]) -> Overlap:
        if not first or not second:
            return Overlap(0.0, 0.0)
        shared = len(first & second)
        small, large = sorted((len(first), len(second)))
        return Overlap(shared / small, shared / large)


@dataclass(frozen=True, slots=True)
class Comparison:
    words: Overlap
    skeleton: Overlap
    # Jaccard similarity of the sets of names and numbers.
    entities: float
    # Share of the numbers cited by the shorter text that the other cites too.
    numbers_shared: float
    # Share of the shorter text's paragraphs of which the other holds at least
    # PARAGRAPH_MATCH of the skeleton shingles: a copy covers nearly all of them, a
    # follow-up that quotes two paragraphs of a story only those two.
    paragraphs_covered: float


def compare(first: TextFeatures, second: TextFeatures) -> Comparison:
    shorter, longer = sorted((first, second), key=lambda features: features.token_count)
    if shorter.numbers:
        numbers_shared = len(shorter.numbers & longer.numbers) / len(shorter.numbers)
    else:
        numbers_shared = 1.0
    union = len(first.entities | second.entities)
    return Comparison(
        words=Overlap.between(first.words, second.words),
        skeleton=Overlap.between(first.skeleton, second.skeleton),
        entities=len(first.entities & second.entities) / union if union else 0.0,
        numbers_shared=numbers_shared,
        paragraphs_covered=_paragraphs_covered(shorter, longer),
    )


def _paragraphs_covered(shorter: TextFeatures, longer: TextFeatures) -> float:
    counted = [paragraph for paragraph in shorter.paragraphs if len(paragraph) >= 3]
    if not counted:
        return 1.0
    covered = sum(
        1
        for paragraph in counted
        if len(paragraph & longer.skeleton) >= PARAGRAPH_MATCH * len(paragraph)
    )
    return covered / len(counted)


def _identity(value: int) -> int:
    return value


class Signer:
    """MinHash signatures with one fixed set of permutations (computed once)."""

    def __init__(self, num_perm: int = NUM_PERM, seed: int = MINHASH_SEED) -> None:
        self.num_perm = num_perm
        self.seed = seed

    @cached_property
    def _permutations(self) -> np.ndarray:
        permutations: np.ndarray = MinHash(
            num_perm=self.num_perm, seed=self.seed, scheme=MINHASH_SCHEME
        ).permutations
        return permutations

    def signature(self, shingles: Iterable[int]) -> np.ndarray:
        """uint32 MinHash values of a set of hashed shingles."""
        minhash = MinHash(
            num_perm=self.num_perm,
            seed=self.seed,
            hashfunc=_identity,
            permutations=self._permutations,
            scheme=MINHASH_SCHEME,
        )
        values = list(shingles)
        if values:
            minhash.update_batch(values)
        hashvalues: np.ndarray = minhash.hashvalues.astype(np.uint32)
        return hashvalues
