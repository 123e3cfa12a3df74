"""Duplicate decision: is this article a story we already keep, and which copy is the original?

1. `prepare` (outside any transaction, CPU only): the text's fingerprint, its
   features, its two MinHash signatures and their LSH bucket keys.
2. The store finds candidates: the same fingerprint, or articles sharing an LSH
   bucket, and hands them back with their features.
3. `decide` verifies each candidate on exact overlaps (never on the MinHash
   estimate alone) and returns the decision with the score that made it.
4. `newcomer_is_original` says which of the two copies the kept article should be.

docs/dedup.md explains the thresholds and what they were measured on.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from monitor.records import Decision, DuplicateKind, TaggedArticle
from monitor.repost import repost_signals
from monitor.similarity import Comparison, Signer, TextFeatures, compare, text_features

# LSH banding (bands, rows per band) of each 128-value signature. datasketch's
# optimiser gives (25, 5) for a Jaccard threshold of 0.5 and (32, 4) for 0.4:
# syndicated copies are found on word shingles, spun ones on the skeleton.
WORD_BANDS = (25, 5)
SKELETON_BANDS = (32, 4)
# The verification thresholds (see docs/dedup.md for how they were chosen).
NEAR_DUPLICATE_OF_SMALLER = 0.6
NEAR_DUPLICATE_OF_LARGER = 0.3
SPUN_OF_SMALLER = 0.55
SPUN_OF_LARGER = 0.35
NUMBERS_SHARED = 0.8
# Publication times closer than this do not say which copy came first.
SAME_TIME = timedelta(minutes=10)


def text_fingerprint(text: str) -> str:
    """SHA-256 of the text, case-folded with white space collapsed."""
    normalized = " ".join(unicodedata.normalize("NFKC", text).casefold().split())
    return hashlib.sha256(normalized.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class DedupInput:
    """Everything the duplicate decision needs to know about a new article."""

    fingerprint: str
    features: TextFeatures
    words_signature: np.ndarray
    skeleton_signature: np.ndarray
    buckets: tuple[int, ...]
    repost_signals: tuple[str, ...]


def prepare(article: TaggedArticle, signer: Signer) -> DedupInput:
    features = text_features(article.text)
    words_signature = signer.signature(features.words)
    skeleton_signature = signer.signature(features.skeleton)
    return DedupInput(
        fingerprint=text_fingerprint(article.text),
        features=features,
        words_signature=words_signature,
        skeleton_signature=skeleton_signature,
        buckets=bucket_keys(words_signature, skeleton_signature),
        repost_signals=repost_signals(article.cleaned),
    )


def bucket_keys(words_signature: np.ndarray, skeleton_signature: np.ndarray) -> tuple[int, ...]:
    """Signed 64-bit keys, one per LSH band of each signature."""
    keys: list[int] = []
    for view, signature, (bands, rows) in (
        (b"w", words_signature, WORD_BANDS),
        (b"s", skeleton_signature, SKELETON_BANDS),
    ):
        values = np.ascontiguousarray(signature, dtype="<u4")
        for band in range(bands):
            chunk = values[band * rows : (band + 1) * rows].tobytes()
            digest = hashlib.blake2b(
                view + band.to_bytes(2, "little") + chunk, digest_size=8
            ).digest()
            keys.append(int.from_bytes(digest, "little", signed=True))
    return tuple(keys)


@dataclass(frozen=True, slots=True)
class Candidate:
    """A kept article that may be the same story."""

    article_id: int
    features: TextFeatures
    same_fingerprint: bool = False


def decide(new: DedupInput, candidates: Iterable[Candidate]) -> Decision:
    """New story, or a copy of the most similar candidate that passes verification."""
    best: Decision | None = None
    for candidate in candidates:
        if candidate.same_fingerprint:
            return Decision(
                duplicate_of=candidate.article_id,
                kind=DuplicateKind.EXACT_TEXT,
                similarity=1.0,
                fingerprint=new.fingerprint,
            )
        verdict = classify(compare(new.features, candidate.features))
        if verdict is None:
            continue
        kind, similarity = verdict
        if best is None or similarity > best.similarity:
            best = Decision(
                duplicate_of=candidate.article_id,
                kind=kind,
                similarity=similarity,
                fingerprint=new.fingerprint,
            )
    return best or Decision(fingerprint=new.fingerprint)


def classify(comparison: Comparison) -> tuple[DuplicateKind, float] | None:
    """The kind of copy and its score, or None for two different stories."""
    if comparison.numbers_shared < NUMBERS_SHARED:
        return None
    words, skeleton = comparison.words, comparison.skeleton
    if (
        words.of_smaller >= NEAR_DUPLICATE_OF_SMALLER
        and words.of_larger >= NEAR_DUPLICATE_OF_LARGER
    ):
        return DuplicateKind.NEAR_DUPLICATE, round(words.of_smaller, 4)
    if skeleton.of_smaller >= SPUN_OF_SMALLER and skeleton.of_larger >= SPUN_OF_LARGER:
        return DuplicateKind.SPUN, round(skeleton.of_smaller, 4)
    return None


@dataclass(frozen=True, slots=True)
class Provenance:
    """What says which of two copies is the original."""

    published_at: datetime | None
    repost_signals: Sequence[str]


def newcomer_is_original(newcomer: Provenance, kept: Provenance) -> bool:
    """The original wins: a copy without repost signals beats one with them; else the
    earlier publication time wins; a tie keeps the article already kept."""
    if bool(newcomer.repost_signals) != bool(kept.repost_signals):
        return not newcomer.repost_signals
    if newcomer.published_at is None or kept.published_at is None:
        return False
    return newcomer.published_at < kept.published_at - SAME_TIME
