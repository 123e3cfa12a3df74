"""Extraction: a fetched page → the article in it (trafilatura), with the feed entry's
title and date as fallbacks and the language detected from the text."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import py3langid
import trafilatura
from lxml.etree import LxmlError

from monitor.errors import ExtractionError
from monitor.records import ExtractedArticle, FeedEntry, FetchedPage
from monitor.urls import canonical_url, site_of

# Long enough for the language classifier to beat a site-wide <html lang>.
_MIN_TEXT_FOR_DETECTION = 200
_DATE_FORMAT = "%Y-%m-%dT%H:%M:%S%z"


def extract_article(page: FetchedPage, entry: FeedEntry) -> ExtractedArticle:
    """The article in `page`; ExtractionError when it holds no article text."""
    try:
        tree = trafilatura.load_html(page.body)
    except (LxmlError, ValueError) as exc:
        raise ExtractionError(
            f"{page.final_url}: unparseable HTML: {exc}", reason="bad_html"
        ) from None
    if tree is None:
        raise ExtractionError(f"{page.final_url}: not an HTML document", reason="bad_html")
    html_language = _html_language(tree)
    document = trafilatura.bare_extraction(
        tree,
        url=page.final_url,
        with_metadata=True,
        include_comments=False,
        include_tables=True,
        date_extraction_params={
            "extensive_search": True,
            "original_date": True,
            "outputformat": _DATE_FORMAT,
        },
    )
    text = (getattr(document, "text", None) or "").strip()
    if not text:
        raise ExtractionError(f"{page.final_url}: no article text found", reason="no_article_text")
    title = _clean(getattr(document, "title", None)) or entry.title or _first_words(text)
    return ExtractedArticle(
        url=canonical_url(page.final_url),
        title=title,
        text=text,
        author=_clean(getattr(document, "author", None)),
        published_at=choose_published_at(getattr(document, "date", None), entry.published_at),
        language=detect_language(text, html_language),
        site=site_of(page.final_url),
        fetched_at=page.fetched_at,
    )


def choose_published_at(page_date: str | None, feed_date: datetime | None) -> datetime | None:
    """The page's publication date, made precise by the feed's when the page gives only a day.

    htmldate gives a date with a time and offset when the page has them, a bare
    day otherwise; a bare day that matches the feed's date yields the feed's time.
    """
    parsed = _parse_page_date(page_date)
    if parsed is None:
        return feed_date
    if parsed.tzinfo is not None:
        return parsed.astimezone(UTC)
    if feed_date is not None and feed_date.date() == parsed.date():
        return feed_date
    return parsed.replace(tzinfo=UTC)


def _parse_page_date(value: str | None) -> datetime | None:
    if not value:
        return None
    for pattern in (_DATE_FORMAT, "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"):
        try:
            parsed = datetime.strptime(value.strip(), pattern)
        except ValueError:
            continue
        return parsed
    return None


def detect_language(text: str, declared: str | None) -> str | None:
    """ISO 639-1 code: classified from the text when there is enough of it."""
    if len(text) >= _MIN_TEXT_FOR_DETECTION or not declared:
        code: str = py3langid.classify(text[:5000])[0]
        return code
    return declared


def _html_language(tree: Any) -> str | None:
    values = tree.xpath("/html/@lang | /html/@xml:lang")
    if not values:
        return None
    code = str(values[0]).strip().split("-")[0].split("_")[0].lower()
    return code if 2 <= len(code) <= 3 and code.isalpha() else None


def _clean(value: str | None) -> str | None:
    if not value:
        return None
    text = " ".join(value.split())
    return text or None


def _first_words(text: str, limit: int = 120) -> str:
    line = text.split("\n", 1)[0]
    return line if len(line) <= limit else line[:limit].rsplit(" ", 1)[0] + "…"
