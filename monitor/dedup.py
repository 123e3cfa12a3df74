"""Duplicate decision: is this article a story we already keep?

Copies by the same canonical URL are caught before the page is fetched. Here:
identical cleaned text, by a fingerprint of the text with case and spacing
normalised, so a verbatim copy under another headline or byline is one story.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Callable

from monitor.records import Decision, DuplicateKind, TaggedArticle


def text_fingerprint(text: str) -> str:
    """SHA-256 of the text, case-folded with white space collapsed."""
    normalized = " ".join(unicodedata.normalize("NFKC", text).casefold().split())
    return hashlib.sha256(normalized.encode("utf-8")).hexdigest()


def decide(article: TaggedArticle, *, find_by_fingerprint: Callable[[str], int | None]) -> Decision:
    """New story, or an exact copy of a kept article."""
    fingerprint = text_fingerprint(article.text)
    kept = find_by_fingerprint(fingerprint)
    if kept is not None:
        return Decision(
            duplicate_of=kept,
            kind=DuplicateKind.EXACT_TEXT,
            similarity=1.0,
            fingerprint=fingerprint,
        )
    return Decision(fingerprint=fingerprint)
