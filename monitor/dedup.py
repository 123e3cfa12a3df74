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
import json
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from monitor.records import CleanedArticle, Decision, DuplicateKind, TaggedArticle, TagSource
from monitor.repost import repost_signals
from monitor.similarity import (
    NEW_PARAGRAPHS,
    REUSED_PARAGRAPHS,
    Comparison,
    Signer,
    TextFeatures,
    compare,
    covered_paragraphs,
    text_features,
)

# LSH banding (bands, rows per band) of the two 128-value signatures; see
# docs/dedup.md for the probabilities. Copies, verbatim or spun, share most of
# their skeleton: 42 bands of 3 rows find a skeleton Jaccard of 0.4 94% of the
# time. Heavy spins and rewrites keep their names and numbers: 24 bands of 5
# find an entity Jaccard of 0.7 99% of the time, while articles that merely share
# the topic's names ("Cambodia", "NCCT", "2024") rarely collide in 5 values at once.
SKELETON_BANDS = (42, 3)
ENTITY_BANDS = (24, 5)
# The verification thresholds, measured on bench/corpus (docs/dedup.md).
NEAR_DUPLICATE_WORDS = 0.6  # of the shorter text's word 4-grams
NEAR_DUPLICATE_WORDS_OF_LARGER = 0.3
SPUN_SKELETON = 0.2  # of the shorter text's skeleton shingles
SPUN_PARAGRAPHS = 0.5  # of the shorter text's paragraphs covered
SPUN_ENTITIES = 0.35
REWRITE_ENTITIES = 0.55
REWRITE_WORDS = 0.1
REWRITE_NUMBERS = 0.7
NUMBERS_SHARED = 0.8
# A text whose lead cites a number the other never does and that leaves more than this
# share of the shorter text's paragraphs uncovered is a follow-up reusing background
# paragraphs, not a copy: a copy covers all of them, whichever side added or dropped some.
FOLLOW_UP_COVERAGE = 0.9
# A shorter text citing fewer numbers than this says too little by them: the two leads
# must not each say something the other text never does (`Comparison.leads_differ`).
FEW_NUMBERS = 2
# Another outlet rewrites a story while it is news; a text that recaps it weeks later (an
# appeal that upholds a verdict, an anniversary) is a story of its own.
REWRITE_WITHIN = timedelta(days=7)
# Publication times closer than this do not say which copy came first.
SAME_TIME = timedelta(minutes=10)
# Of a spun pair, the text that keeps clearly more of the taxonomy's phrases is the
# original: a spinner replaces words, so it loses "scam compound" or "National
# Committee for Counter Trafficking" and never gains them (docs/dedup.md).
KNOWN_PHRASES_RATIO = 1.5
KNOWN_PHRASES_MARGIN = 3


def text_fingerprint(text: str) -> str:
    """SHA-256 of the text in NFKC form, case-folded, white space collapsed (docs/schema.md)."""
    normalized = " ".join(unicodedata.normalize("NFKC", text).casefold().split())
    return hashlib.sha256(normalized.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class DedupInput:
    """Everything the duplicate decision needs to know about a new article."""

    fingerprint: str
    features: TextFeatures
    skeleton_signature: np.ndarray
    entities_signature: np.ndarray
    buckets: tuple[int, ...]
    repost_signals: tuple[str, ...]
    published_at: datetime | None = None


def prepare(article: TaggedArticle | CleanedArticle, signer: Signer) -> DedupInput:
    """Everything about `article` the decision needs that does not depend on the index:
    CPU work only, so it can run in an extraction worker."""
    cleaned = article.cleaned if isinstance(article, TaggedArticle) else article
    return prepare_text(
        cleaned.text,
        signer,
        published_at=cleaned.article.published_at,
        signals=repost_signals(cleaned),
    )


def prepare_text(
    text: str,
    signer: Signer,
    *,
    published_at: datetime | None = None,
    signals: tuple[str, ...] = (),
) -> DedupInput:
    """`prepare` for a cleaned text (a stored article's, to compare it again)."""
    features = text_features(text)
    skeleton_signature = signer.signature(features.skeleton)
    entities_signature = signer.signature(features.entities)
    return DedupInput(
        fingerprint=text_fingerprint(text),
        features=features,
        skeleton_signature=skeleton_signature,
        entities_signature=entities_signature,
        buckets=bucket_keys(skeleton_signature, entities_signature),
        repost_signals=signals,
        published_at=published_at,
    )


def bucket_keys(skeleton_signature: np.ndarray, entities_signature: np.ndarray) -> tuple[int, ...]:
    """Signed 64-bit keys, one per LSH band of each signature.

    A band's key mixes the signature's name, the band's number and its values
    (a polynomial over uint64 finished with the splitmix64 finaliser): two bands
    share a key only when they hold the same values, or by a 2**-64 accident.
    """
    keys: list[int] = []
    for view, signature, (bands, rows) in (
        (1, skeleton_signature, SKELETON_BANDS),
        (2, entities_signature, ENTITY_BANDS),
    ):
        values = np.asarray(signature[: bands * rows], dtype=np.uint64).reshape(bands, rows)
        key = np.arange(bands, dtype=np.uint64) + np.uint64(view << 32)
        for row in range(rows):
            key = key * _BAND_MIX + values[:, row]
        keys.extend(_finalise(key).view(np.int64).tolist())
    return tuple(keys)


_BAND_MIX = np.uint64(0x100000001B3)


def _finalise(key: np.ndarray) -> np.ndarray:
    key = (key ^ (key >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    key = (key ^ (key >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    mixed: np.ndarray = key ^ (key >> np.uint64(31))
    return mixed


@dataclass(frozen=True, slots=True)
class Candidate:
    """A kept article that may be the same story."""

    article_id: int
    features: TextFeatures
    same_fingerprint: bool = False
    published_at: datetime | None = None


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
        verdict = verify(new, candidate)
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


def verify(new: DedupInput, candidate: Candidate) -> tuple[DuplicateKind, float] | None:
    """`classify` of the new text and a candidate, published `apart` as far as known."""
    apart = None
    if new.published_at is not None and candidate.published_at is not None:
        apart = abs(new.published_at - candidate.published_at)
    return classify(compare(new.features, candidate.features), apart=apart)


def classify(
    comparison: Comparison, *, apart: timedelta | None = None
) -> tuple[DuplicateKind, float] | None:
    """The kind of copy and its score, or None for two different stories; `apart` is
    the time between their publications, when both are known.

    Every rule asks that the texts cite the same numbers: a follow-up or another
    raid on the same compound brings new ones. Where they cite too few to tell, their
    leads stand in for them. Cheap measures are asked first.
    """
    numbers = comparison.numbers_shared
    if numbers < min(NUMBERS_SHARED, REWRITE_NUMBERS):
        return None
    if comparison.numbers_cited < FEW_NUMBERS and comparison.leads_differ:
        return None
    if _follow_up(comparison):
        return None
    words = comparison.words
    if _one_template(comparison):
        return None
    if (
        numbers >= NUMBERS_SHARED
        and words.of_smaller >= NEAR_DUPLICATE_WORDS
        and words.of_larger >= NEAR_DUPLICATE_WORDS_OF_LARGER
        and not comparison.shares_background
    ):
        return DuplicateKind.NEAR_DUPLICATE, round(words.of_smaller, 4)
    if (
        numbers >= NUMBERS_SHARED
        and comparison.entities >= SPUN_ENTITIES
        and comparison.skeleton.of_smaller >= SPUN_SKELETON
        and comparison.paragraphs_covered >= SPUN_PARAGRAPHS
        and not comparison.shares_background
    ):
        return DuplicateKind.SPUN, round(comparison.skeleton.of_smaller, 4)
    if (
        numbers >= REWRITE_NUMBERS
        and (apart is None or apart <= REWRITE_WITHIN)
        and comparison.entities >= REWRITE_ENTITIES
        and REWRITE_WORDS <= words.of_smaller < NEAR_DUPLICATE_WORDS
        and not comparison.lead_brings_new_numbers
        and not comparison.follows_up_on_background
    ):
        return DuplicateKind.REWRITE, round(comparison.entities, 4)
    return None


def _one_template(comparison: Comparison) -> bool:
    """Two stories told from one template (police statements, wire briefs): word for
    word the same after their leads, and their leads name another place, nationality
    or day, or give another count."""
    return (comparison.leads_name_apart or comparison.lead_count_changed) and (
        comparison.same_after_leads
    )


def two_stories(first: TextFeatures, second: TextFeatures) -> bool:
    """Whether two kept texts are two stories, whatever a newcomer that resembles both
    says: told from one template (a spun copy of one brief verifies against the
    template's other briefs too), or over one outlet's background paragraphs (a spun
    copy of one report verifies against the other report too: its spinner changed the
    paragraphs the two share word for word). Asks for both texts (`TextFeatures.text`)."""
    comparison = compare(first, second)
    return _one_template(comparison) or comparison.shares_background


def one_part_of(newcomer: TextFeatures, first: TextFeatures, second: TextFeatures) -> bool:
    """Whether two kept texts that a newcomer resembles cover some paragraph of it both,
    as two copies of the newcomer's story do (a truncated one covers its first
    paragraphs, a spun one all of them, one that dropped the lead all but those). A
    digest, a roundup or a live blog holds several stories whole, each in paragraphs of
    its own: its likeness to each is no proof that they are one story."""
    covered_by_first = covered_paragraphs(newcomer, first)
    covered_by_second = covered_paragraphs(newcomer, second)
    if not covered_by_first.any() or not covered_by_second.any():
        return True
    return bool((covered_by_first & covered_by_second).any())


def _follow_up(comparison: Comparison) -> bool:
    """A new event in a lead, over background paragraphs reused word for word: the
    lead's own number says so, and the paragraphs it does not share with the story."""
    return comparison.lead_brings_new_numbers and comparison.paragraphs_covered < FOLLOW_UP_COVERAGE


@dataclass(frozen=True, slots=True)
class PairReport:
    """`classify`'s verdict on a pair, with the measures and why (`monitor explain`)."""

    verdict: tuple[DuplicateKind, float] | None
    measures: str
    reason: str


def explain_pair(comparison: Comparison, *, apart: timedelta | None = None) -> PairReport:
    """What `classify` decides and why: the rule that fits, or what each rule missed.
    Every measure is computed (explaining one pair, not deciding thousands)."""
    words, numbers = comparison.words, comparison.numbers_shared
    measures = (
        f"words {words.of_smaller:.2f} of the shorter ({words.of_larger:.2f} of the longer),"
        f" skeleton {comparison.skeleton.of_smaller:.2f},"
        f" paragraphs covered {comparison.paragraphs_covered:.2f},"
        f" entities {comparison.entities:.2f},"
        f" numbers shared {numbers:.2f} (the shorter cites {comparison.numbers_cited}),"
        f" leads differ: {'yes' if comparison.leads_differ else 'no'},"
        f" a lead brings new numbers: {'yes' if comparison.lead_brings_new_numbers else 'no'}"
        + (f", published {_days(apart)} apart" if apart is not None else "")
    )
    verdict = classify(comparison, apart=apart)
    if verdict is not None:
        return PairReport(verdict, measures, f"a copy: the `{verdict[0]}` rule fits")
    lowest = min(NUMBERS_SHARED, REWRITE_NUMBERS)
    if numbers < lowest:
        reason = (
            f"other figures: numbers shared {_short_of(numbers, lowest)}, every rule asks {lowest}"
        )
    elif comparison.numbers_cited < FEW_NUMBERS and comparison.leads_differ:
        reason = (
            f"the shorter cites fewer than {FEW_NUMBERS} numbers and each lead says"
            " something the other text never does"
        )
    elif _follow_up(comparison):
        reason = (
            "a follow-up: a lead cites a number the other text never does, and"
            f" paragraphs covered {_short_of(comparison.paragraphs_covered, FOLLOW_UP_COVERAGE)}"
            f" < {FOLLOW_UP_COVERAGE} (a copy covers them all)"
        )
    elif _one_template(comparison):
        reason = (
            "one template, two stories: word for word alike after their leads, which"
            " name another place, nationality or day, or give another count"
        )
    else:
        background = (
            [
                f"no paragraphs word for word alike beside {NEW_PARAGRAPHS} or more of"
                " the shorter text's own (two stories sharing background paragraphs)"
            ]
            if comparison.shares_background
            else []
        )
        missed = {
            DuplicateKind.NEAR_DUPLICATE: _missed(
                (numbers, NUMBERS_SHARED, "numbers shared"),
                (words.of_smaller, NEAR_DUPLICATE_WORDS, "words"),
                (words.of_larger, NEAR_DUPLICATE_WORDS_OF_LARGER, "words of the longer"),
            )
            + background,
            DuplicateKind.SPUN: _missed(
                (numbers, NUMBERS_SHARED, "numbers shared"),
                (comparison.entities, SPUN_ENTITIES, "entities"),
                (comparison.skeleton.of_smaller, SPUN_SKELETON, "skeleton"),
                (comparison.paragraphs_covered, SPUN_PARAGRAPHS, "paragraphs covered"),
            )
            + background,
            DuplicateKind.REWRITE: _missed(
                (comparison.entities, REWRITE_ENTITIES, "entities"),
                (words.of_smaller, REWRITE_WORDS, "words"),
            )
            + (
                [f"words under {NEAR_DUPLICATE_WORDS} (a copy's wording, not a copy's numbers)"]
                if words.of_smaller >= NEAR_DUPLICATE_WORDS
                else []
            )
            + (["a lead without new numbers"] if comparison.lead_brings_new_numbers else [])
            + (
                [
                    f"no {REUSED_PARAGRAPHS} or more paragraphs word for word alike beside"
                    " the shorter text's own, which cite numbers the other never does"
                    " (a follow-up over its story's paragraphs)"
                ]
                if comparison.follows_up_on_background
                else []
            )
            + (
                [f"publication within {REWRITE_WITHIN.days} days"]
                if apart is not None and apart > REWRITE_WITHIN
                else []
            ),
        }
        reason = "no rule fits: " + "; ".join(
            f"`{kind}` needs {', '.join(needs)}" for kind, needs in missed.items()
        )
    return PairReport(None, measures, reason)


def _missed(*checks: tuple[float, float, str]) -> list[str]:
    return [
        f"{name} ≥ {least} ({_short_of(value, least)})"
        for value, least, name in checks
        if value < least
    ]


def _short_of(value: float, least: float) -> str:
    """`value`, below `least`, with the digits that show it is below: 0.2987 is "0.299"
    against 0.3, not "0.30"."""
    for digits in range(2, 6):
        shown = f"{value:.{digits}f}"
        if float(shown) < least:
            return shown
    return f"{value:.6f}"


def _days(apart: timedelta) -> str:
    days = apart.total_seconds() / 86400
    if days < 1:
        return f"{apart.total_seconds() / 3600:.1f} hours"
    return "1 day" if round(days) == 1 else f"{days:.0f} days"


@dataclass(frozen=True, slots=True)
class Provenance:
    """What says which of two copies is the original."""

    published_at: datetime | None
    repost_signals: Sequence[str]
    # The distinct phrases of the tag rules its title and text hold.
    known_phrases: int = 0


def newcomer_is_original(
    newcomer: Provenance, kept: Provenance, kind: DuplicateKind | None = None
) -> bool:
    """The original wins: a copy without repost signals beats one with them; of a spun
    pair, the text that keeps clearly more of the taxonomy's phrases; else the earlier
    publication time wins; a tie keeps the article already kept."""
    if bool(newcomer.repost_signals) != bool(kept.repost_signals):
        return not newcomer.repost_signals
    if kind is DuplicateKind.SPUN:
        if _clearly_more(newcomer.known_phrases, kept.known_phrases):
            return True
        if _clearly_more(kept.known_phrases, newcomer.known_phrases):
            return False
    if newcomer.published_at is None or kept.published_at is None:
        return False
    return newcomer.published_at < kept.published_at - SAME_TIME


def _clearly_more(more: int, fewer: int) -> bool:
    return more >= KNOWN_PHRASES_RATIO * fewer and more - fewer >= KNOWN_PHRASES_MARGIN


def known_phrases(tags: Iterable[tuple[TagSource | str, str | None]]) -> int:
    """The distinct phrases the rule tags (source, detail) of one article matched."""
    phrases: set[str] = set()
    for source, detail in tags:
        if source == TagSource.RULE and detail:
            phrases.update(json.loads(detail))
    return len(phrases)
