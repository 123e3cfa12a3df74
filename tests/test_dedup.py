"""The duplicate decision on plain objects: fingerprints, verification, the original."""

from __future__ import annotations

from datetime import UTC, datetime

from monitor.dedup import (
    Candidate,
    Provenance,
    decide,
    newcomer_is_original,
    prepare,
    text_fingerprint,
)
from monitor.records import CleanedArticle, DuplicateKind, ExtractedArticle, TaggedArticle
from monitor.similarity import Signer, text_features

SIGNER = Signer()


def tagged(text: str, removed: tuple[str, ...] = ()) -> TaggedArticle:
    article = ExtractedArticle(
        url="https://a.example/x",
        title="t",
        text=text,
        author=None,
        published_at=None,
        language="en",
        site="a.example",
        fetched_at=datetime(2024, 1, 1, tzinfo=UTC),
    )
    return TaggedArticle(cleaned=CleanedArticle(article=article, text=text, removed=removed))


def test_fingerprint_ignores_case_and_spacing_only() -> None:
    assert text_fingerprint("Police  rescued\n312 workers") == text_fingerprint(
        "police rescued 312 WORKERS"
    )
    assert text_fingerprint("Police rescued 312 workers") != text_fingerprint(
        "Police rescued 313 workers"
    )


def test_new_story_when_no_candidate() -> None:
    decision = decide(prepare(tagged("a story"), SIGNER), [])
    assert not decision.is_duplicate
    assert decision.fingerprint == text_fingerprint("a story")


def test_exact_copy_of_kept_story() -> None:
    new = prepare(tagged("A  STORY"), SIGNER)
    kept = Candidate(article_id=7, features=text_features("a story"), same_fingerprint=True)
    decision = decide(new, [kept])
    assert decision.duplicate_of == 7
    assert decision.kind is DuplicateKind.EXACT_TEXT
    assert decision.similarity == 1.0


def test_the_original_wins() -> None:
    early, late = datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 1, 2, tzinfo=UTC)
    plain, wrapped = (), ("ad_markers",)
    assert newcomer_is_original(Provenance(early, plain), Provenance(late, plain))
    assert not newcomer_is_original(Provenance(late, plain), Provenance(early, plain))
    # A copy without repost signals beats a wrapped or spun one, whatever the dates.
    assert newcomer_is_original(Provenance(late, plain), Provenance(early, wrapped))
    assert not newcomer_is_original(Provenance(early, wrapped), Provenance(late, plain))
    # Unknown dates or a tie keep what is kept.
    assert not newcomer_is_original(Provenance(None, plain), Provenance(late, plain))
    assert not newcomer_is_original(Provenance(early, plain), Provenance(early, plain))
