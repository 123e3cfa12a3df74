"""Feed parsing: RSS 0.9x/1.0/2.0, Atom and JSON Feed bytes → FeedDocument.

feedparser does the parsing. A feed it marks malformed ("bozo") still yields
every entry it could read; only a document with no feed in it is an error.
"""

from __future__ import annotations

import calendar
import contextlib
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin

import feedparser
import lxml.html
from lxml.etree import ParserError

from monitor.errors import FeedParseError, FetchError
from monitor.records import FeedDocument, FeedEntry
from monitor.urls import canonical_url


def parse_feed(body: bytes, *, url: str, headers: Mapping[str, str] | None = None) -> FeedDocument:
    """Parse feed bytes fetched from `url`; FeedParseError when there is no feed in them."""
    response_headers = {key.lower(): value for key, value in (headers or {}).items()}
    response_headers.setdefault("content-location", url)
    parsed = feedparser.parse(body, response_headers=response_headers)
    malformed = _bozo_reason(parsed) if _is_malformed(parsed) else None
    if not parsed.get("version") and not parsed.entries:
        raise FeedParseError(
            f"not a feed: {malformed or 'no RSS, Atom or JSON Feed document found'}",
            reason="not_a_feed",
        )
    entries: list[FeedEntry] = []
    skipped = 0
    for raw in parsed.entries:
        entry = _entry(raw, base=url)
        if entry is None:
            skipped += 1
        else:
            entries.append(entry)
    feed = parsed.get("feed", {})
    return FeedDocument(
        title=_plain_text(feed.get("title")),
        language=feed.get("language") or None,
        entries=tuple(entries),
        malformed=malformed,
        skipped=skipped,
    )


# Notes about the HTTP headers, not about the document: the feed parsed as it should.
_BENIGN_BOZO = (feedparser.NonXMLContentType, feedparser.CharacterEncodingOverride)


def _is_malformed(parsed: Any) -> bool:
    return bool(parsed.get("bozo")) and not isinstance(parsed.get("bozo_exception"), _BENIGN_BOZO)


def _bozo_reason(parsed: Any) -> str:
    exception = parsed.get("bozo_exception")
    return f"{type(exception).__name__}: {exception}" if exception else "malformed feed"


def _entry(raw: Any, *, base: str) -> FeedEntry | None:
    guid = _plain_text(raw.get("id"))
    link = raw.get("link") or (guid if guid and guid.startswith(("http://", "https://")) else None)
    if not link:
        return None
    link = urljoin(base, link.strip())
    try:
        url = canonical_url(link)
    except FetchError:
        return None
    categories = tuple(
        dict.fromkeys(
            term
            for tag in raw.get("tags") or ()
            if (term := " ".join(str(tag.get("term") or tag.get("label") or "").split()))
        )
    )
    return FeedEntry(
        link=link,
        url=url,
        guid=guid[:2048] if guid else None,
        title=_plain_text(raw.get("title")),
        published_at=_entry_time(raw),
        categories=categories,
    )


def _entry_time(raw: Any) -> datetime | None:
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        value = raw.get(key)
        if isinstance(value, time.struct_time):
            try:
                # feedparser normalises every date to UTC.
                return datetime.fromtimestamp(calendar.timegm(value), tz=UTC)
            except (OverflowError, ValueError, OSError):
                continue
    return None


def _plain_text(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    text = value
    if "<" in text:
        with contextlib.suppress(ParserError, ValueError):
            text = lxml.html.fromstring(text).text_content()
    text = " ".join(text.split())
    return text or None
