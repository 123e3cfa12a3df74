"""Cleaning: strip what auto-blogs wrap around a scraped article.

`[ad_1]`-style markers, a trailing "Source link", a trailing "- Tags: …" line and
paragraphs repeated word for word. A paragraph said twice in different words
may be the source's own text, so only exact repeats go.
"""

from __future__ import annotations

import re
import unicodedata

from monitor.printable import printable
from monitor.records import CleanedArticle, ExtractedArticle

AD_MARKER = re.compile(r"\[\s*/?\s*ad_?\d+\s*\]", re.IGNORECASE)
SOURCE_LINK = re.compile(r"^(?:source\s+link|source|original\s+article)\s*[:.]?$", re.IGNORECASE)
TAGS_LINE = re.compile(r"^[-–—•*]?\s*tags?\s*:", re.IGNORECASE)
# Shorter paragraphs ("Advertisement", "***", a one-line quote) may repeat legitimately.
_MIN_WORDS_FOR_REPEAT = 8


def clean_article(article: ExtractedArticle) -> CleanedArticle:
    text, removed = clean_text(article.text)
    return CleanedArticle(article=article, text=text, removed=removed)


def clean_text(text: str) -> tuple[str, tuple[str, ...]]:
    """The cleaned text and the names of what was removed from it."""
    removed: list[str] = []
    normalized = unicodedata.normalize("NFC", printable(text))
    if AD_MARKER.search(normalized):
        removed.append("ad_markers")
        # Until none is left: removing "[ad_1]" from "[[ad_1]ad_2]" leaves a marker.
        while AD_MARKER.search(normalized):
            normalized = AD_MARKER.sub(" ", normalized)
    paragraphs = [" ".join(line.split()) for line in normalized.splitlines()]
    paragraphs = [paragraph for paragraph in paragraphs if paragraph]
    # Repeats first: dropping a repeated last paragraph can leave a "Source link" last.
    paragraphs, repeated = _drop_exact_repeats(paragraphs)
    paragraphs, trailing = _drop_trailing_boilerplate(paragraphs)
    removed.extend(trailing)
    if repeated:
        removed.append("repeated_paragraphs")
    return "\n".join(paragraphs), tuple(removed)


def _drop_trailing_boilerplate(paragraphs: list[str]) -> tuple[list[str], list[str]]:
    removed: list[str] = []
    while paragraphs:
        last = paragraphs[-1]
        if SOURCE_LINK.match(last):
            removed.append("source_link")
        elif TAGS_LINE.match(last) and len(last) < 300:
            removed.append("tags_line")
        else:
            break
        paragraphs = paragraphs[:-1]
    return paragraphs, sorted(set(removed), key=removed.index)


def _drop_exact_repeats(paragraphs: list[str]) -> tuple[list[str], bool]:
    seen: set[str] = set()
    kept: list[str] = []
    for paragraph in paragraphs:
        key = paragraph.casefold()
        if len(paragraph.split()) >= _MIN_WORDS_FOR_REPEAT and key in seen:
            continue
        seen.add(key)
        kept.append(paragraph)
    return kept, len(kept) != len(paragraphs)
