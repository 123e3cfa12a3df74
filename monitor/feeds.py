"""Feed parsing: RSS 0.9x/1.0/2.0, Atom and JSON Feed bytes → FeedDocument.

feedparser does the parsing of RSS and Atom; JSON Feed, which feedparser 6.0 does
not read, is read here. A feed marked malformed ("bozo") still yields every entry
that could be read; only a document with no feed in it is an error.
"""

from __future__ import annotations

import calendar
import codecs
import contextlib
import html
import json
import re
import time
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urljoin

import feedparser
import lxml.html
from feedparser.datetimes.rfc822 import timezone_names as _FEEDPARSER_ZONES
from lxml.etree import ParserError

from monitor.charsets import (
    codec_for,
    decode_mixed_utf8,
    detect,
    is_utf8,
    mostly_utf8,
    windows_1252_plausible,
)
from monitor.errors import FeedParseError, FetchError
from monitor.printable import printable
from monitor.records import MAX_URL_LENGTH, FeedDocument, FeedEntry
from monitor.urls import canonical_url, is_home_page


def parse_feed(body: bytes, *, url: str, headers: Mapping[str, str] | None = None) -> FeedDocument:
    """Parse feed bytes fetched from `url`; FeedParseError when there is no feed in them."""
    response_headers = {key.lower(): value for key, value in (headers or {}).items()}
    if _is_json(body):
        document = _parse_json_feed(body, url=url, headers=response_headers)
        return _links_of_their_own(_distinct_guids(document))
    response_headers.setdefault("content-location", url)
    parsed, misread = _parse(
        _with_bare_ampersands_escaped(_without_impossible_references(body)), response_headers
    )
    malformed = _bozo_reason(parsed) if _is_malformed(parsed) else None
    if misread:
        malformed = f"{misread}; {malformed}" if malformed else misread
    if not parsed.get("version") and not parsed.entries:
        if _HTML_START.match(body):
            raise FeedParseError(
                "not a feed: the server sent an HTML page (has the feed moved, or does"
                " the site put a login or consent page in front of it?)",
                reason="not_a_feed",
            )
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
    document = _distinct_guids(
        FeedDocument(
            title=_plain_text(feed.get("title")),
            language=_plain_text(feed.get("language")),
            entries=tuple(entries),
            malformed=malformed,
            skipped=skipped,
        )
    )
    return _links_of_their_own(document, _relative_guids(body, url))


def _distinct_guids(document: FeedDocument) -> FeedDocument:
    """The document with GUIDs that name several links dropped from those entries.

    A feed whose CMS gives every item one GUID (the site's home page, "1") would
    otherwise make each new story the entry seen before, lost without a record; an
    entry without a GUID is identified by its link. The same GUID on the same link
    (an item listed twice) is one entry, as it should be."""
    links: dict[str, set[str]] = {}
    for entry in document.entries:
        if entry.guid:
            links.setdefault(entry.guid, set()).add(entry.url)
    shared = {guid for guid, urls in links.items() if len(urls) > 1}
    if not shared:
        return document
    entries = tuple(
        replace(entry, guid=None) if entry.guid in shared else entry for entry in document.entries
    )
    count = sum(entry.guid in shared for entry in document.entries)
    note = f"{count} entries share a GUID with other links: identified by their links instead"
    malformed = f"{document.malformed}; {note}" if document.malformed else note
    return replace(document, entries=entries, malformed=malformed)


def _links_of_their_own(
    document: FeedDocument, relative_guids: frozenset[str] = frozenset()
) -> FeedDocument:
    """The document with the entries linked to the site's home page linked to their GUID
    instead when it is a URL (RSS `isPermaLink`, an Atom id): a CMS that links every item
    to its home page would otherwise make each new story the entry seen before, lost
    without a record. A GUID the feed wrote as no URL ("98765", which feedparser makes
    one against the feed's address: `relative_guids`) names no page, and an item left
    with the home page alone is skipped: the home page is no article. Items of different
    GUIDs that share another link (a live blog's updates, whose GUIDs need not be pages)
    stay one entry, one page, and are noted."""
    guids: dict[str, set[str]] = {}
    for entry in document.entries:
        if entry.guid:
            guids.setdefault(entry.url, set()).add(entry.guid)
    entries: list[FeedEntry] = []
    relinked = homeless = 0
    for entry in document.entries:
        guid = entry.guid
        # The link as written: "/?12345" is a page of its own that canonicalising loses.
        if is_home_page(entry.link):
            resolved = (
                _resolved(guid, guid)
                if guid and _is_permalink(guid) and guid not in relative_guids
                else None
            )
            if resolved is None or is_home_page(resolved[1]):
                homeless += 1
                continue
            entry = replace(entry, link=resolved[0], url=resolved[1])
            relinked += 1
        entries.append(entry)
    alike = sum(1 for entry in entries if entry.guid and len(guids.get(entry.url, ())) > 1)
    notes = [
        f"{relinked} entries link to the site's home page: linked to their GUIDs instead"
        if relinked
        else "",
        f"{homeless} entries link to the site's home page and give no address of their own: skipped"
        if homeless
        else "",
        f"{alike} entries of different GUIDs share one link: one article" if alike else "",
    ]
    note = "; ".join(filter(None, notes))
    if not note:
        return document
    malformed = f"{document.malformed}; {note}" if document.malformed else note
    # The skipped are in the note, not in `skipped` too (said once in `last_error`).
    return replace(document, entries=tuple(entries), malformed=malformed)


# An RSS item's GUID as written (in any encoding that writes ASCII as ASCII).
_WRITTEN_GUID = re.compile(rb"<guid\b[^>]*>\s*(?:<!\[CDATA\[)?\s*([^<\s\]]+)")


def _relative_guids(body: bytes, url: str) -> frozenset[str]:
    """The GUIDs written as a bare word or number, no path ("98765", "post-7"), as
    feedparser resolves them against the feed's address (it reads a GUID as a URL unless
    `isPermaLink="false"`). A path ("/news/123") is an address."""
    return frozenset(
        urljoin(url, written)
        for match in _WRITTEN_GUID.finditer(body)
        if "/" not in (written := match[1].decode("latin-1"))
    )


_JSON_START = re.compile(rb"^(?:\xef\xbb\xbf)?\s*\{")
_JSON_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_CHARACTER_REFERENCE = re.compile(rb"&#(?:[xX]([0-9a-fA-F]{1,8})|([0-9]{1,10}));")


def _without_impossible_references(body: bytes) -> bytes:
    """`body` with each reference to a character that cannot exist (`&#xD800;`, a
    surrogate; `&#0;`; past U+10FFFF) made U+FFFD's: feedparser encodes what a
    reference names as UTF-8 and raises on those."""
    if b"&#" not in body:
        return body

    def replaced(found: re.Match[bytes]) -> bytes:
        code = int(found[1], 16) if found[1] else int(found[2])
        impossible = code == 0 or 0xD800 <= code <= 0xDFFF or code > 0x10FFFF
        return b"&#xFFFD;" if impossible else found[0]

    return _CHARACTER_REFERENCE.sub(replaced, body)


def _with_bare_ampersands_escaped(body: bytes) -> bytes:
    """`body` with each "&" that starts no reference ("R&D", "AT&T") written `&amp;`,
    outside CDATA sections: XML allows no bare "&", and feedparser's lenient reading of
    one makes "R&D" "R&D;". Left alone in UTF-16 and UTF-32, whose bytes a byte pattern
    cannot read."""
    if b"&" not in body or body[:2] in (b"\xff\xfe", b"\xfe\xff") or b"\x00" in body[:64]:
        return body
    parts = _CDATA.split(body)
    return b"".join(
        part if part.startswith(b"<![CDATA[") else _BARE_AMPERSAND.sub(b"&amp;", part)
        for part in parts
    )


_CDATA = re.compile(rb"(<!\[CDATA\[.*?(?:\]\]>|$))", re.DOTALL)
_BARE_AMPERSAND = re.compile(rb"&(?!(?:[A-Za-z][A-Za-z0-9._-]*|#[0-9]+|#[xX][0-9A-Fa-f]+);)")


def _is_json(body: bytes) -> bool:
    """Whether `body` opens as a JSON object does, in UTF-8 or (with its byte order
    mark) UTF-16 or UTF-32."""
    for bom, codec in _JSON_BOMS:
        if body.startswith(bom):
            return body[len(bom) :].decode(codec, "ignore").lstrip().startswith("{")
    return _JSON_START.match(body) is not None


def _parse_json_feed(body: bytes, *, url: str, headers: Mapping[str, str]) -> FeedDocument:
    """A JSON Feed (https://jsonfeed.org/version/1.1, and 1.0), which feedparser 6.0
    does not read. JSON is UTF-8 (or UTF-16, UTF-32 with a byte order mark); a feed in
    another charset is read in the one its Content-Type declares."""
    try:
        try:
            document = json.loads(body)
        except UnicodeDecodeError:
            declared = _CHARSET_PARAMETER.search(headers.get("content-type", ""))
            codec = codec_for(declared[1]) if declared else None
            if codec is None:
                raise
            document = json.loads(body.decode(codec))
    except (UnicodeDecodeError, ValueError) as error:
        raise FeedParseError(f"not a feed: invalid JSON: {error}", reason="not_a_feed") from None
    version = document.get("version") if isinstance(document, dict) else None
    if not isinstance(version, str) or not version.startswith("https://jsonfeed.org/version/"):
        raise FeedParseError(
            'not a feed: a JSON document without JSON Feed\'s "version"', reason="not_a_feed"
        )
    items = document.get("items")
    if not isinstance(items, list):
        raise FeedParseError('not a feed: JSON Feed without "items"', reason="not_a_feed")
    entries: list[FeedEntry] = []
    for item in items:
        entry = _json_feed_entry(item, base=url) if isinstance(item, dict) else None
        if entry is not None:
            entries.append(entry)
    return FeedDocument(
        title=_plain_text(document.get("title")),
        language=_plain_text(document.get("language")),
        entries=tuple(entries),
        skipped=len(items) - len(entries),
    )


def _json_feed_entry(item: dict[str, Any], *, base: str) -> FeedEntry | None:
    # The item's own page; `external_url` is the page a link post points to.
    link = next(
        (value for key in ("url", "external_url") if isinstance(value := item.get(key), str)), None
    )
    guid = item.get("id")
    guid = str(guid) if isinstance(guid, str | int) and not isinstance(guid, bool) else None
    categories = tuple(
        dict.fromkeys(word for tag in item.get("tags") or () if (word := _words(str(tag))))
    )
    published = next(
        (
            moment
            for key in ("date_published", "date_modified")
            if (moment := _rfc3339(item.get(key))) is not None
        ),
        None,
    )
    # JSON Feed 1.1's `authors`, 1.0's `author`.
    authors = item.get("authors") or [item.get("author")]
    first = authors[0] if isinstance(authors, list) and authors else None
    return _feed_entry(
        link,
        guid=guid,
        title=item.get("title"),
        published_at=published,
        categories=categories,
        base=base,
        author=first.get("name") if isinstance(first, dict) else None,
    )


def _rfc3339(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


# Control characters: never text, and PostgreSQL refuses NUL in a string.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# Notes about the HTTP headers, not about the document: the feed parsed as it should.
_BENIGN_BOZO = (feedparser.NonXMLContentType, feedparser.CharacterEncodingOverride)


def _is_malformed(parsed: Any) -> bool:
    return bool(parsed.get("bozo")) and not isinstance(parsed.get("bozo_exception"), _BENIGN_BOZO)


def _bozo_reason(parsed: Any) -> str:
    exception = parsed.get("bozo_exception")
    return f"{type(exception).__name__}: {exception}" if exception else "malformed feed"


_HTML_START = re.compile(
    rb"(?:\xef\xbb\xbf)?\s*(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html[\s>])",
    re.IGNORECASE | re.DOTALL,
)
# What feedparser reads bytes as when no declared encoding reads them.
_LAST_RESORT_CODECS = frozenset({"cp1252", "iso8859-2"})
_XML_ENCODING = re.compile(rb"""^(?:\xef\xbb\xbf)?\s*<\?xml[^>]*?\sencoding\s*=\s*["']([^"']+)""")
_CHARSET_PARAMETER = re.compile(r"""charset\s*=\s*["']?([^"';\s]+)""", re.IGNORECASE)


def _parse(body: bytes, headers: dict[str, str]) -> tuple[Any, str | None]:
    """feedparser's reading of `body`, and what was wrong with its encoding if anything.

    When the bytes are in none of the encodings the HTTP header and the XML declaration
    name, feedparser reads them as windows-1252 (or ISO-8859-2), which turns Big5 or
    KOI8-R into Latin-1 soup. Such a feed is read again: as UTF-8 when it mostly is
    (a Latin-1 fragment pasted into a UTF-8 feed), as windows-1252 when that looks like
    text, else in the encoding detected; a FeedParseError when nothing reads it.
    """
    parsed = feedparser.parse(body, response_headers=headers)
    codec = codec_for(str(parsed.get("encoding") or "utf-8"))
    if codec not in _LAST_RESORT_CODECS or body.isascii():
        return parsed, None
    declared = codec in _declared_codecs(body, headers)
    if declared and not is_utf8(body):
        return parsed, None
    read_as: str | None = None
    if is_utf8(body):
        # Nothing declared, and headers without a Content-Type make feedparser assume
        # ISO-8859-1; XML's default is UTF-8. Declared windows-1252, bytes that are all
        # valid UTF-8 are UTF-8: real windows-1252 text forms such sequences only as
        # mojibake ("Ã©"), as pages are read too.
        text = body.decode("utf-8-sig")
        if declared:
            read_as = f"UTF-8 (declared {codec})"
    elif mostly_utf8(body):
        text, read_as = decode_mixed_utf8(body), "UTF-8 with stray windows-1252 bytes"
    elif codec == "cp1252" and windows_1252_plausible(body):
        return parsed, None
    elif (detected := detect(body)) is not None:
        text, read_as = detected[0], f"{detected[1]} (detected)"
    else:
        raise FeedParseError(
            "undecodable: no declared encoding reads the bytes, and no one encoding"
            " reads them as text",
            reason="bad_encoding",
        )
    reparsed = feedparser.parse(
        text.encode("utf-8"),
        response_headers={**headers, "content-type": "application/xml; charset=utf-8"},
    )
    return reparsed, f"encoding not as declared: read as {read_as}" if read_as else None


def _declared_codecs(body: bytes, headers: Mapping[str, str]) -> set[str | None]:
    """The encodings the XML declaration and the HTTP Content-Type name."""
    labels: list[str] = []
    if declaration := _XML_ENCODING.match(body):
        labels.append(declaration[1].decode("ascii", "replace"))
    if charset := _CHARSET_PARAMETER.search(headers.get("content-type", "")):
        labels.append(charset[1])
    return {codec_for(label) for label in labels}


def _entry(raw: Any, *, base: str) -> FeedEntry | None:
    categories = tuple(
        dict.fromkeys(
            term
            for tag in raw.get("tags") or ()
            # An Atom category's label is what a reader sees ("Trafficking in Persons"),
            # its term often a key or a path ("trafficking", "asia/cambodia").
            if (term := _words(str(tag.get("label") or tag.get("term") or "")))
        )
    )
    return _feed_entry(
        raw.get("link"),
        guid=raw.get("id"),
        title=raw.get("title"),
        published_at=_entry_time(raw),
        categories=categories,
        author=(raw.get("author_detail") or {}).get("name") or raw.get("author"),
        base=base,
    )


def _feed_entry(
    link: object,
    *,
    guid: object,
    title: object,
    published_at: datetime | None,
    categories: tuple[str, ...],
    base: str,
    author: object = None,
) -> FeedEntry | None:
    """The entry, its link resolved against `base` and canonicalised; None without an
    http(s) link (its GUID when that is a URL)."""
    guid = _plain_text(guid)
    if not isinstance(link, str) or not link.strip():
        link = guid if _is_permalink(guid) else None
    resolved = _resolved(link, base) if link else None
    if resolved is None:
        return None
    link, url = resolved
    return FeedEntry(
        link=link,
        url=url,
        guid=guid[:2048] if guid else None,
        title=_plain_text(title),
        published_at=published_at,
        categories=categories,
        author=_author(author),
    )


def _author(written: object) -> str | None:
    """An item's author as a name: an RSS <author> is an address ("desk@news.test
    (Sok Chea)"), whose name feedparser gives apart; an address alone names no one."""
    name = _plain_text(written)
    if not name or "@" in name:
        return None
    name = _BY.sub("", " ".join(name.split()))
    return name[:200] or None


_BY = re.compile(r"^by\s+", re.IGNORECASE)


def _resolved(link: str, base: str) -> tuple[str, str] | None:
    """The link resolved against `base`, and its canonical URL; None when it is not an
    http(s) URL the database can hold."""
    # Controls percent-encoded (they may mean something to the server), then what is
    # never text (a surrogate, U+FFFD, a bidi override) dropped.
    link = printable(
        _CONTROL.sub(lambda control: quote(control[0]), urljoin(base, link.strip())), ""
    )
    try:
        url = canonical_url(link)
    except FetchError:
        return None
    if max(len(link), len(url)) > MAX_URL_LENGTH:
        return None  # the database keeps links and URLs of at most this length
    return link, url


def _is_permalink(guid: str | None) -> bool:
    return guid is not None and guid.startswith(("http://", "https://"))


def _entry_time(raw: Any) -> datetime | None:
    for key in ("published", "updated", "created"):
        written = raw.get(key)
        if isinstance(written, str) and (numeric := _NUMERIC_DATE.match(written)):
            # Written with numbers only, as feedparser misreads: "2025/03/08" became
            # December 1, "08-03-2025" March 20, 2008.
            if (read := _numeric_time(numeric)) is not None:
                return read
            continue
        value = raw.get(f"{key}_parsed")
        if not isinstance(value, time.struct_time) or not _plausible(written, value):
            continue
        offset = _zone_offset(written)
        if offset is None:
            continue
        try:
            # feedparser normalises every date to UTC, reading a zone it does not know as UTC.
            return datetime.fromtimestamp(calendar.timegm(value), tz=UTC) - offset
        except (OverflowError, ValueError, OSError):
            continue
    return None


# A date in numbers only, year first with '/', '.' or 年月日 ("2025/03/08 10:00",
# "2025.03.08", "2025年3月9日"), or year last ("08-03-2025"), then a time and a zone.
_NUMERIC_DATE = re.compile(
    r"^\s*(?:(?P<year>\d{4})\s*[/.年]\s*(?P<month>\d{1,2})\s*[/.月]\s*(?P<day>\d{1,2})"
    r"\s*日?|(?P<first>\d{1,2})\s*(?P<sep>[-/.])\s*(?P<second>\d{1,2})\s*(?P=sep)\s*"
    r"(?P<last_year>\d{4}))(?:(?:\s+|T)(?P<hour>\d{1,2}):(?P<minute>\d{2})(?::(?P<second_of>\d{2}))?)?"
    r"\s*(?P<zone>Z|[+-]\d{2}:?\d{2}|[A-Za-z]{2,5})?\s*$"
)


def _numeric_time(written: re.Match[str]) -> datetime | None:
    """The time a date in numbers only gives, in UTC (without a zone, read as UTC, as
    feedparser reads one); None when it cannot be told: a zone neither knows, a day its
    month does not have, or a day and a month in either order ("08-03-2025": March 8
    or August 3?)."""
    if written["year"]:
        year, month, day = int(written["year"]), int(written["month"]), int(written["day"])
    else:
        first, second = int(written["first"]), int(written["second"])
        if first > 12 >= second:
            day, month = first, second
        elif second > 12 >= first:
            month, day = first, second
        else:
            return None
        year = int(written["last_year"])
    zone = _written_offset(written["zone"])
    if zone is None:
        return None
    try:
        local = datetime(
            year,
            month,
            day,
            int(written["hour"] or 0),
            int(written["minute"] or 0),
            int(written["second_of"] or 0),
            tzinfo=UTC,
        )
    except ValueError:
        return None
    return local - zone


def _written_offset(zone: str | None) -> timedelta | None:
    """A zone as written after a time: an offset, Z, or an abbreviation feedparser or
    the region's feeds know; None for one that neither knows."""
    if zone is None or zone == "Z":
        return timedelta(0)
    if zone[0] in "+-":
        digits = zone[1:].replace(":", "")
        sign = -1 if zone[0] == "-" else 1
        return sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    if (hours := _FEEDPARSER_ZONES.get(zone.lower())) is not None:
        return timedelta(hours=hours)
    hours = _ZONES.get(zone.upper())
    return None if hours is None else timedelta(hours=hours)


def _plausible(written: object, parsed: time.struct_time) -> bool:
    """Whether feedparser's reading keeps the year and the day the date was written with
    (give or take one, as a zone moves them across midnight): it reads some forms it does
    not know as another date ("2025-W10" as December 1)."""
    if not isinstance(written, str):
        return True
    if _YEAR_OR_MONTH.fullmatch(written):
        return True  # "2025-03", "2025": the first of the month, of the year, as written
    numbers: set[int] = set()
    for digits in re.findall(r"\d+", _TIME_OR_OFFSET.sub(" ", written)):
        if len(digits) == 8:  # 20250308
            numbers |= {int(digits[:4]), int(digits[6:])}
        else:
            numbers.add(int(digits))
    years = {number for number in numbers if number >= 1000} or {
        2000 + number for number in numbers if number < 100
    }
    days = {number for number in numbers if 1 <= number <= 31}
    return any(abs(parsed.tm_year - year) <= 1 for year in years) and any(
        abs(parsed.tm_mday - day) <= 1 or _across_months(parsed.tm_mday, day) for day in days
    )


def _across_months(parsed: int, written: int) -> bool:
    """A first of the month against its month's last days: a zone's hours moved it."""
    return min(parsed, written) == 1 and max(parsed, written) >= 28


_YEAR_OR_MONTH = re.compile(r"\s*\d{4}(?:-\d{1,2})?\s*")
# A date's time ("T10:00:00.123") and zone offset ("+07:00", "-0500"): not its day.
_TIME_OR_OFFSET = re.compile(r"\d{1,2}:\d{2}(?::\d{2})?(?:[.,]\d+)?|[+-]\d{2}:?\d{2}\s*$")


# Time zones by the abbreviations the region's feeds write, which feedparser does not
# know (it reads them as UTC): "Thu, 01 May 2025 15:00:00 ICT" is 08:00 UTC.
_ZONES = {
    "UTC": 0,
    "ICT": 7,  # Indochina: Cambodia, Laos, Thailand, Vietnam
    "WIB": 7,
    "WITA": 8,
    "WIT": 9,
    "SGT": 8,
    "MYT": 8,
    "HKT": 8,
    "PHT": 8,
    "MMT": 6.5,
    "JST": 9,
    "KST": 9,
    "AWST": 8,
    "AEST": 10,
    "AEDT": 11,
    "NZST": 12,
    "NZDT": 13,
    "BST": 1,
    "CET": 1,
    "CEST": 2,
    "EET": 2,
    "EEST": 3,
    "WET": 0,
    "WEST": 1,
    "MSK": 3,
}
_WRITTEN_ZONE = re.compile(r"\d{1,2}:\d{2}(?::\d{2})?\s*([A-Za-z]{2,5})\s*$")
_ISO_DAY = re.compile(r"^\s*(\d{4})-(\d{2})-(\d{2})")


def _zone_offset(written: object) -> timedelta | None:
    """How far feedparser's reading of `written` is from UTC: zero, unless the date ends
    with a zone abbreviation it does not know; None when the date cannot be right (a
    zone neither knows, rather than UTC; a day the month does not have, which it moves
    into the next month)."""
    if not isinstance(written, str):
        return timedelta(0)
    if day := _ISO_DAY.match(written):
        try:
            datetime(int(day[1]), int(day[2]), int(day[3]))
        except ValueError:
            return None
    zone = _WRITTEN_ZONE.search(written)
    if zone is None or zone[1].lower() in _FEEDPARSER_ZONES:
        return timedelta(0)
    hours = _ZONES.get(zone[1].upper())
    return None if hours is None else timedelta(hours=hours)


def _plain_text(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    text = printable(value)
    if "<" in text:
        with contextlib.suppress(ParserError, ValueError):
            text = lxml.html.fromstring(text).text_content()
    if _ENTITY.search(text):
        # Escaped twice by the feed's software ("Cambodia&amp;#8217;s"): a headline
        # never means the entity's letters.
        text = html.unescape(text)
    return _words(text) or None


_ENTITY = re.compile(r"&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});")


def _words(text: str) -> str:
    """`text` on one line: what is never text dropped, runs of whitespace made one space."""
    return " ".join(printable(text).split())
