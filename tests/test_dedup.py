"""Exact-text duplicate decision."""

from __future__ import annotations

from datetime import UTC, datetime

from monitor.dedup import decide, text_fingerprint
from monitor.records import CleanedArticle, DuplicateKind, ExtractedArticle, TaggedArticle


def tagged(text: str) -> TaggedArticle:
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
    return TaggedArticle(cleaned=CleanedArticle(article=article, text=text))


def test_fingerprint_ignores_case_and_spacing_only() -> None:
    assert text_fingerprint("Police  rescued\n312 workers") == text_fingerprint(
        "police rescued 312 WORKERS"
    )
    assert text_fingerprint("Police rescued 312 workers") != text_fingerprint(
        "Police rescued 313 workers"
    )


def test_new_story_when_no_match() -> None:
    decision = decide(tagged("a story"), find_by_fingerprint=lambda _: None)
    assert not decision.is_duplicate
    assert decision.fingerprint == text_fingerprint("a story")


def test_exact_copy_of_kept_story() -> None:
    kept = {text_fingerprint("a story"): 7}
    decision = decide(tagged("A  STORY"), find_by_fingerprint=kept.get)
    assert decision.duplicate_of == 7
    assert decision.kind is DuplicateKind.EXACT_TEXT
    assert decision.similarity == 1.0
