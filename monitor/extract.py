"""Extraction: a fetched page → the article in it (trafilatura), with the feed entry's
title and date as fallbacks and the language detected from the text."""

from __future__ import annotations

import html
import json
import logging
import re
import threading
import unicodedata
from collections import deque
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urljoin, urlsplit

import regex
import trafilatura
from htmldate import find_date
from lxml.etree import LxmlError
from trafilatura.metadata import (
    examine_meta,
    extract_author,
    extract_meta_json,
    extract_title,
    extract_url,
)
from trafilatura.settings import Document, use_config
from trafilatura.utils import handle_compressed_file

from monitor.charsets import (
    decode_declared,
    decode_mixed_utf8,
    detect,
    is_utf8,
    mostly_utf8,
    windows_1252_plausible,
)
from monitor.errors import ExtractionError, FetchError
from monitor.language import classify
from monitor.printable import printable
from monitor.records import ExtractedArticle, FeedEntry, FetchedPage
from monitor.titles import headline, names_site
from monitor.urls import canonical_url, site_of

log = logging.getLogger(__name__)

# Before any news site: a content system's placeholder for "no date".
EARLIEST_PUBLICATION = datetime(1990, 1, 1, tzinfo=UTC)

# Below this, what trafilatura found is a menu or a caption, not an article.
MIN_ARTICLE_CHARS = 80
# Latin-script text this long lets the classifier beat a site-wide <html lang>;
# Khmer and Chinese say as much in far fewer characters.
_MIN_TEXT_FOR_DETECTION = 200
_DETECTION_SAMPLE = 1000
_DATE_FORMAT = "%Y-%m-%dT%H:%M:%S%z"
# trafilatura takes less than 250 characters of text for a failed extraction and falls
# back to the whole page's text on one line (dates, view counts, share buttons). Chinese
# and Japanese say in 100 characters what English says in 250-300: a short Chinese
# report came out as one line with its page around it.
_DENSE_SCRIPT = re.compile("[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_DENSE_SCRIPT_CONFIG = use_config()
_DENSE_SCRIPT_CONFIG.set("DEFAULT", "MIN_EXTRACTED_SIZE", "100")
# Where a page says its charset: <meta charset>, <meta http-equiv="Content-Type">,
# <?xml encoding?>, looked for in the head (some put 30 KB of scripts before it).
_DECLARED_CHARSET = re.compile(
    rb"""<meta[^>]*?charset\s*=\s*["']?\s*([-\w.:]+)|<\?xml[^>]*?\sencoding\s*=\s*["']([-\w.:]+)""",
    re.IGNORECASE,
)
_HEAD_BYTES = 32 * 1024
_CHARSET_PARAMETER = re.compile(r"""charset\s*=\s*["']?([^"';\s]+)""", re.IGNORECASE)
# trafilatura (lxml, libxml2) can corrupt memory and kill the process when several
# threads extract at once ("double free or corruption": trafilatura issues #840 and
# #925, still open in 2.3): one extraction at a time per process. It holds the GIL
# nearly throughout anyway; worker processes (monitor.analysis) run it in parallel.
EXTRACTION_LOCK = threading.Lock()
# schema.org's Article and its kinds (NewsArticle, ReportageNewsArticle, BlogPosting,
# LiveBlogPosting, Report…), however prefixed ("schema:NewsArticle").
_JSON_LD_ARTICLE_TYPES = ("Article", "BlogPosting", "Posting", "Report")
_PUBLISHED_XPATH = (
    "//meta[@property='article:published_time' or @name='article:published_time'"
    " or @property='og:published_time' or @itemprop='datePublished'"
    " or @name='pubdate' or @name='publishdate' or @name='dc.date.issued'"
    " or @name='DC.date.issued']/@content"
    " | //time[@itemprop='datePublished' or @pubdate"
    " or contains(concat(' ', normalize-space(@class), ' '), ' published ')]/@datetime"
)


def extract_article(page: FetchedPage, entry: FeedEntry) -> ExtractedArticle:
    """The article in `page`; ExtractionError when it holds no article text."""
    markup = page_markup(page)
    if _media_type(page.content_type) == "text/plain":
        markup = plain_text_as_html(markup if isinstance(markup, str) else markup.decode())
    with EXTRACTION_LOCK:
        try:
            tree = trafilatura.load_html(markup)
        except (LxmlError, ValueError) as exc:
            raise ExtractionError(
                f"{page.final_url}: unparseable HTML: {exc}", reason="bad_html"
            ) from None
        if tree is None:
            raise ExtractionError(f"{page.final_url}: not an HTML document", reason="bad_html")
        html_language = _html_language(tree)
        declared_time = published_time_in_metadata(tree)
        metadata = page_metadata(tree, page.final_url)
        # trafilatura drops a relative rel=canonical ("/news/960"), which is common.
        declared_url = next(iter(tree.xpath(_CANONICAL_XPATH)), None) or metadata.url
        document = trafilatura.bare_extraction(
            tree,
            url=page.final_url,
            include_comments=False,
            include_tables=True,
            **_extraction_options(metadata.title or entry.title),
        )
    text = (getattr(document, "text", None) or "").strip()
    # The page's own <title> too: trafilatura takes a title from the <h1> first, and a
    # consent or bot-check page's heading is its message ("We value your privacy") or
    # the site's name, under the <title> that says what it is ("Before you continue").
    titles = (_clean(metadata.title), _clean(next(iter(tree.xpath("//head/title/text()")), None)))
    if (wall := interstitial(page.final_url, titles, text)) is not None:
        # Stored, it would be the "original" of every later story behind the same wall.
        raise ExtractionError(
            f"{page.final_url}: not the article but {wall}", reason="interstitial"
        )
    if len(text) < MIN_ARTICLE_CHARS:
        raise ExtractionError(
            f"{page.final_url}: no article text found ({len(text)} characters)",
            reason="no_article_text",
        )
    if (missing := _not_found_title(titles, text)) is not None:
        # A "soft 404": the site answers 200 with its "page not found" page, which would
        # be stored under the feed's title, its recent posts as the text.
        raise ExtractionError(
            f"{page.final_url}: no article text found: a page titled {missing!r}",
            reason="no_article_text",
        )
    url = _declared_url(declared_url, page.final_url)
    title = headline(
        _clean(metadata.title), _clean(entry.title), url, _clean(metadata.sitename)
    ) or _first_words(text)
    published_at = choose_published_at(
        declared_time or _parse_page_date(metadata.date),
        entry.published_at,
        fetched_at=page.fetched_at,
    )
    language = detect_language(text, html_language)
    if _links_to_its_source(markup):
        # An auto-blog's closing "<p><a href=…>Source link</a></p>": trafilatura drops a
        # paragraph that is all link, and with it the mark of the repost, which the
        # cleaner removes and records (`repost_signals`) wherever the text ends with it.
        text += "\nSource link"
    return ExtractedArticle(
        url=url,
        title=title,
        text=text,
        author=_byline(_clean(metadata.author), url, _clean(metadata.sitename))
        or _byline(_clean(entry.author), url, _clean(metadata.sitename)),
        published_at=published_at,
        language=language,
        site=site_of(url),
        fetched_at=page.fetched_at,
    )


def _declared_url(declared: str | None, final_url: str) -> str:
    """The article's own URL: the page's rel=canonical (else og:url) when it names the
    same page on the same site, else the URL the page was fetched from (canonicalised).

    An AMP page (/amp/news/960, /news/960/amp, ?amp=1, amp.example.com), the mobile
    site's copy (m.example.com) or a variant with another query would otherwise be
    kept as the article, its real URL becoming a copy of it, and the site would count
    as copying itself. Only such variants are taken: a canonical naming another page
    (a section, the home page: common misconfigurations, which would make every
    article of the site one URL) or another site (a syndication partner's credit) is
    not."""
    fetched = canonical_url(final_url)
    if not declared:
        return fetched
    try:
        url = canonical_url(urljoin(final_url, declared.strip()))
    except (FetchError, ValueError):
        return fetched
    return url if _page_of(url) == _page_of(fetched) else fetched


_MOBILE_PREFIXES = ("www.", "m.", "mobile.", "amp.")


def _page_of(url: str) -> tuple[str, tuple[str, ...]]:
    """The host without its mobile prefixes and the path without AMP segments: what
    a page's variants have in common."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    for prefix in _MOBILE_PREFIXES:
        host = host.removeprefix(prefix)
    segments = tuple(segment for segment in parts.path.split("/") if segment and segment != "amp")
    return host, segments


# The link auto-blogs (WordPress's WP Automatic and its like) put under a scraped article.
_SOURCE_LINK_ANCHOR = r">\s*Source link\s*</a\s*>"
_SOURCE_LINK_IN_TEXT = re.compile(_SOURCE_LINK_ANCHOR, re.IGNORECASE)
_SOURCE_LINK_IN_BYTES = re.compile(_SOURCE_LINK_ANCHOR.encode(), re.IGNORECASE)


def _links_to_its_source(markup: bytes | str) -> bool:
    if isinstance(markup, str):
        return _SOURCE_LINK_IN_TEXT.search(markup) is not None
    return _SOURCE_LINK_IN_BYTES.search(markup) is not None


_CANONICAL_XPATH = (
    "//head/link[translate(@rel, 'CANOICL', 'canoicl') = 'canonical'][@href][1]/@href"
)


def _same_site(first: str, second: str) -> bool:
    def site(url: str) -> str:
        host = (urlsplit(url).hostname or "").lower()
        for prefix in _MOBILE_PREFIXES:
            host = host.removeprefix(prefix)
        return host

    return site(first) == site(second)


# Pages a site or a service shows instead of the article: cookie consent, bot checks,
# access walls. Known by where they are served from, or by their whole title.
_CONSENT_HOSTS = frozenset(
    {"consent.google.com", "consent.youtube.com", "consent.yahoo.com", "guce.yahoo.com"}
)
_INTERSTITIAL_TITLE = re.compile(
    r"before you continue(?: to \w+)?|just a moment\W*|attention required!? \| cloudflare"
    r"|access denied|access to this page has been denied|are you a (?:robot|human)\??"
    r"|please verify you are a human|security check|checking your browser\W*|ddos-guard"
    r"|one more step|verify you are human|please enable (?:javascript|cookies)\W*",
    re.IGNORECASE,
)
# A consent page's text is short; an article titled "Access denied" is not.
_INTERSTITIAL_MAX_CHARS = 3000
# What a site's "page not found" page is titled, the site's name aside.
_NOT_FOUND_TITLE = re.compile(
    # "404", "404 Not Found", "Error 404 | Site": after a bare 404, only a "|" or a "·"
    # before the site's name ("404 – Workers freed…" is a headline).
    r"(?:error\s*)?404(?:\s*error)?(?:\s*[-–—:|]?\s*(?:(?:the )?page )?not found)?"
    r"(?:\s*[|·•].{0,80})?"
    # "Page not found – Site", "Oops! That page can't be found.", "Not Found | Site".
    r"|(?:error\s*404\s*[-–—:|]?\s*)?(?:oops!?\s*)?(?:(?:that|this|the) )?page (?:was )?"
    r"(?:not found|(?:can(?:no|')t|could not|couldn't) be found|(?:does not|doesn't) exist)"
    r"\W*(?:\s[-–—|·•:]\s.{0,80})?"
    r"|not found\W*(?:\s[-–—|·•:]\s.{0,80})?",
    re.IGNORECASE,
)


def _not_found_title(titles: tuple[str | None, str | None], text: str) -> str | None:
    """The title that says the page is a site's "not found" page, if one does: the
    extracted one (often the page's heading) or its <title>, but not a part of the
    <title> that trafilatura cut at a dash ("404" of "404 – Workers freed in…")."""
    if len(text) > _INTERSTITIAL_MAX_CHARS:
        return None
    extracted, written = titles
    if extracted and written and extracted != written and extracted in written:
        extracted = None
    for title in (extracted, written):
        if title and _NOT_FOUND_TITLE.fullmatch(
            title.replace("\N{RIGHT SINGLE QUOTATION MARK}", "'")
        ):
            return title
    return None


def _extraction_options(title: str | None) -> dict[str, Any]:
    """trafilatura's settings for a page whose title is mostly Chinese or Japanese."""
    letters = [character for character in title or "" if character.isalpha()]
    dense = sum(1 for character in letters if _DENSE_SCRIPT.match(character))
    return {"config": _DENSE_SCRIPT_CONFIG} if letters and dense * 2 >= len(letters) else {}


def interstitial(final_url: str, titles: Iterable[str | None], text: str) -> str | None:
    """What the page is when it is a consent, bot-check or access page, else None: by
    its address, or by any of its titles (the extracted one, its <title>)."""
    if (urlsplit(final_url).hostname or "").lower() in _CONSENT_HOSTS:
        return "a consent page"
    if len(text) > _INTERSTITIAL_MAX_CHARS:
        return None
    for title in titles:
        if title and _INTERSTITIAL_TITLE.fullmatch(title):
            return f"a page titled {title!r} (consent, bot check or access wall)"
    return None


def plain_text_as_html(text: str) -> str:
    """A text/plain page as HTML trafilatura reads: a paragraph at each blank line, and
    the first one the title when it is a single short line."""
    blocks = [block.strip() for block in re.split(r"\n\s*\n", text) if block.strip()]
    head = body = ""
    if blocks and "\n" not in blocks[0] and len(blocks[0]) <= 200:
        title = html.escape(blocks.pop(0))
        head, body = f"<title>{title}</title>", f"<h1>{title}</h1>"
    body += "".join(f"<p>{html.escape(' '.join(block.split()))}</p>" for block in blocks)
    return f"<html><head>{head}</head><body><article>{body}</article></body></html>"


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def page_metadata(tree: Any, url: str) -> Document:
    """The page's title, author and date, found as trafilatura's `extract_metadata`
    finds them, without the categories, tags, licence and site name that monitor does
    not keep: those walk every link on the page (2.4 of the 13.6 ms a benchmark page
    cost in one process)."""
    metadata: Document = examine_meta(tree)
    if metadata.author and " " not in metadata.author and metadata.author.isascii():
        # A handle, as extract_metadata judges it; but Chinese names have no spaces.
        metadata.author = None
    try:
        metadata = extract_meta_json(tree, metadata)
    except Exception:
        log.debug("%s: unreadable JSON-LD metadata", url, exc_info=True)
    metadata.title = metadata.title or extract_title(tree)
    metadata.author = _with_its_marks(metadata.author or extract_author(tree), tree)
    metadata.url = metadata.url or extract_url(tree, url)
    # Extensive search guesses dates from any link or text on the page (a sidebar's
    # /2024/05/ links), which is worse than the feed's date.
    try:
        metadata.date = find_date(
            tree,
            url=metadata.url,
            extensive_search=False,
            original_date=True,
            outputformat=_DATE_FORMAT,
        )
    except Exception:
        # htmldate raises on what a page may well hold ("+25:00" as an offset): the
        # feed's time stands in, and the article is not lost over its date.
        log.debug("%s: unreadable date in the page", url, exc_info=True)
        metadata.date = None
    metadata.clean_and_trim()
    return metadata


def page_markup(page: FetchedPage) -> bytes | str:
    """The page as trafilatura should read it: the bytes when they are UTF-8, else
    the text in the first declared encoding that reads every byte (HTTP charset, then
    the page's own).

    trafilatura reads UTF-8 and otherwise asks charset_normalizer, which ignores the
    declared charset and reads a Polish ISO-8859-2 page as windows-1250 ("±" for
    "ą"). A UTF-8 page with a few stray Latin-1 bytes (declared UTF-8, or not at
    all) is read as UTF-8 with those bytes as windows-1252 rather than with U+FFFD in
    their place. Bytes that declare nothing are read as windows-1252 when they read as
    text, else as detected; ExtractionError when no one reading stands out.
    """
    if is_utf8(page.body):
        return page.body
    # A compressed body without Content-Encoding: trafilatura decompresses it too.
    body: bytes = handle_compressed_file(page.body)
    if body is not page.body and is_utf8(body):
        return body
    declared = decode_declared(body, _declared_charsets(body, page.content_type))
    if declared:
        return declared[0]
    if mostly_utf8(body):
        return decode_mixed_utf8(body)
    # Nothing declared. trafilatura's own guess reads a mostly English page with one
    # French sentence in windows-1252 as windows-1250 ("ętres", "frontičre"): take
    # windows-1252, the web's default, when it reads as text, and otherwise the
    # detection that refuses to choose between equally likely readings.
    if windows_1252_plausible(body):
        return body.decode("cp1252")
    if (detected := detect(body)) is not None:
        return detected[0]
    raise ExtractionError(
        f"{page.final_url}: undecodable: no charset declared, and no one encoding reads"
        " the bytes as text",
        reason="bad_encoding",
    )


def _declared_charsets(body: bytes, content_type: str | None) -> list[str]:
    """The HTTP charset, then the page's own (`<meta>`, XML declaration), as browsers
    take them."""
    labels: list[str] = []
    if charset := _CHARSET_PARAMETER.search(content_type or ""):
        labels.append(charset[1])
    for declared in _DECLARED_CHARSET.finditer(body[:_HEAD_BYTES]):
        labels.append((declared[1] or declared[2]).decode("ascii", "replace"))
    return labels


def published_time_in_metadata(tree: Any) -> datetime | None:
    """The publication time a page declares with an offset (Open Graph, schema.org, <time>)."""
    candidates: list[str] = [str(value) for value in tree.xpath(_PUBLISHED_XPATH)]
    for script in tree.xpath('//script[@type="application/ld+json"]/text()'):
        candidates.extend(_json_ld_dates(script))
    for candidate in candidates:
        parsed = _parse_iso(candidate)
        if parsed is not None and parsed.tzinfo is not None:
            return parsed.astimezone(UTC)
    return None


def choose_published_at(
    page_time: datetime | None, feed_time: datetime | None, *, fetched_at: datetime
) -> datetime | None:
    """The page's declared publication time, else the feed's, else the page's day.

    A page time with an offset (article:published_time and the like) is exact.
    A bare day is htmldate's reading of the page (sometimes of its URL, or of a
    date in a sidebar), so the feed's own time wins over it; the day is used,
    at 00:00 UTC, only when the feed gives none. A time more than a day after
    the fetch is a parsing accident and is ignored, and so is one before 1990: a
    content system's empty date (1970-01-01, 0001-01-01), not a news story's.
    """
    latest = fetched_at + timedelta(days=1)
    if feed_time is not None and not EARLIEST_PUBLICATION <= feed_time <= latest:
        feed_time = None
    if page_time is None or not (
        EARLIEST_PUBLICATION <= page_time.replace(tzinfo=page_time.tzinfo or UTC) <= latest
    ):
        return feed_time
    if page_time.tzinfo is not None:
        return page_time.astimezone(UTC)
    if feed_time is not None:
        return feed_time
    return page_time.replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=UTC)


def _parse_page_date(value: str | None) -> datetime | None:
    if not value:
        return None
    parsed = _parse_iso(value)
    if parsed is None:
        return None
    if parsed.tzinfo is None and parsed.time() != datetime.min.time():
        # A wall time without a zone says no more than its day.
        return parsed.replace(hour=0, minute=0, second=0, microsecond=0)
    return parsed


def _parse_iso(value: str) -> datetime | None:
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def _json_ld_dates(script: str) -> list[str]:
    """The `datePublished` values of a JSON-LD block, the article's own first: a page's
    graph also dates its web page, its site and the related stories it lists."""
    try:
        data = json.loads(script)
    except ValueError:
        return []
    found: list[tuple[int, int, str]] = []
    queue: deque[Any] = deque([data])
    while queue and len(found) < 10:
        item = queue.popleft()
        if isinstance(item, dict):
            value = item.get("datePublished")
            if isinstance(value, str):
                found.append((_json_ld_rank(item.get("@type")), len(found), value))
            queue.extend(item.values())
        elif isinstance(item, list):
            queue.extend(item)
    return [value for _, _, value in sorted(found)]


def _json_ld_rank(types: Any) -> int:
    """0 for an article, 1 for a web page, 2 for anything else (a list, an image, a site)."""
    names = [types] if isinstance(types, str) else types if isinstance(types, list) else []
    names = [name for name in names if isinstance(name, str)]
    if any(name.endswith(_JSON_LD_ARTICLE_TYPES) for name in names):
        return 0
    return 1 if any(name.endswith("WebPage") for name in names) else 2


def detect_language(text: str, declared: str | None) -> str | None:
    """ISO 639-1 code: classified from the text when there is enough of it."""
    if len(text) >= _MIN_TEXT_FOR_DETECTION or not declared or not _mostly_latin(text):
        # The opening of a text tells its language as well as the whole, and classifying
        # costs in proportion to the length: 1,000 characters gave the whole text's
        # language on all 961 texts of bench/language_sample.py, in 0.4 ms, not 0.7.
        return classify(text[:_DETECTION_SAMPLE])
    return declared


def _mostly_latin(text: str) -> bool:
    letters = [char for char in text[:1000] if char.isalpha()]
    return sum(char < "\u0250" for char in letters) * 2 >= len(letters)


def _html_language(tree: Any) -> str | None:
    values = tree.xpath("/html/@lang | /html/@xml:lang")
    if not values:
        return None
    code = str(values[0]).strip().split("-")[0].split("_")[0].lower()
    return code if 2 <= len(code) <= 3 and code.isalpha() else None


def _clean(value: str | None) -> str | None:
    if not value:
        return None
    text = " ".join(printable(value).split())
    return text or None


# A Chinese byline's role before the name: "記者 陳美玲", "记者：林志强", "文／王芳".
# And "by" before it in Khmer and Thai: "ដោយ៖ ជា សុខា", "โดย สมชาย ใจดี"; and an English
# credit's ("Story: Nguyen Quy", read as "Story Nguyen Quy").
_ROLE_LABEL = re.compile(
    r"^(?:(?:記者|记者|撰文|撰稿|編輯|编辑)\s*[:：/／]?|文\s*[:：/／]|(?:ដោយ|โดย)\s*[:៖]?"
    r"|(?:story|text|words|reporting)\s*:?(?=\s+\S+\s+\S))\s*",
    re.IGNORECASE,
)
# What content systems put where a writer's name belongs.
_NO_WRITER = re.compile(
    r"(?:by\s+)?(?:the\s+)?(?:admin(?:istrator)?|staff(?:\s+(?:reporter|writer)s?)?|editor(?:ial)?"
    r"(?:\s+(?:team|desk|board))?|web\s*desk|news\s*desk|newsroom|guest|anonymous|unknown"
    r"|(?:reporter|correspondent|writer)s?|desk|team|bureau|no\s+author|not\s+available"
    # A Chinese agency's or paper's reporter, unnamed: "新华社记者", "本报记者" (not
    # "王芳记者", a name and her role).
    r"|(?:新华社|新華社|中新社|本报|本報|本台|本网|本網|央视|央視|人民日报|人民日報)"
    r"(?:驻\S{1,8}|駐\S{1,8})?(?:记者|記者|通讯员|通訊員|编辑部|編輯部))",
    re.IGNORECASE,
)


def _byline(author: str | None, url: str, site_name: str | None = None) -> str | None:
    """The author, without a role label ("記者 陳美玲"), unless it is a content system's
    placeholder ("Admin", "Staff Reporter"), the site itself ("Khmer Times" on
    khmertimeskh.com, or the page's og:site_name) or both ("Khmer Times Staff", "Kulu
    Media News Desk"): no writer."""
    if author is None:
        return None
    author = _ROLE_LABEL.sub("", author).strip() or author
    words = author.split()
    for count in range(len(words) + 1):
        site, rest = " ".join(words[:count]), " ".join(words[count:])
        is_site = not site or names_site(site, url, site_name)
        if is_site and (not rest or _NO_WRITER.fullmatch(rest)):
            return None
    return author


def _first_words(text: str, limit: int = 120) -> str:
    line = text.split("\n", 1)[0]
    return line if len(line) <= limit else line[:limit].rsplit(" ", 1)[0] + "…"


def _with_its_marks(author: str | None, tree: Any) -> str | None:
    """The byline as the page writes it when trafilatura's cleaning took combining marks
    out of it: it drops Khmer, Thai and Myanmar signs, the last name's vowel among them
    ("សុខ ចាន់ធី" became "សុខ ចាន់ធ", "สมชาย ใจดี" "สมชาย ใจด"), wherever it read the
    byline (a meta tag, JSON-LD, the byline's element)."""
    if not author:
        return author
    bare = _without_marks(author)
    if not _MARKED_SCRIPT.search(author):
        # Other scripts: the author meta as written, when only marks tell them apart.
        for written in tree.xpath('//meta[@name="author"]/@content')[:1]:
            written = " ".join(str(written).split())
            if written != author and _without_marks(written) == bare:
                return written
        return author
    # The name's letters, each with any marks after it, and no letter or mark after
    # the last: "ចាន់ធ" must not match the start of "ចាន់ធីតា". Looked for wherever the
    # page may write it (a walk of its text: only for these scripts).
    pattern = regex.compile(
        r"\s+".join(
            "".join(regex.escape(letter) + r"\p{M}*" for letter in word) for word in bare.split()
        )
        + r"(?![\p{L}\p{M}])"
    )
    for written in _written_bylines(tree):
        found = pattern.search(" ".join(written.split()))
        if found is not None:
            return found[0]
    return author


# Scripts whose vowels and tones are combining signs after a letter.
_MARKED_SCRIPT = regex.compile(
    r"[\p{Khmer}\p{Thai}\p{Lao}\p{Myanmar}\p{Tibetan}\p{Devanagari}\p{Bengali}\p{Tamil}"
    r"\p{Sinhala}]"
)


def _written_bylines(tree: Any) -> Iterator[str]:
    """Where a page writes its byline, its author meta first, then its body's text."""
    yield from (str(value) for value in tree.xpath('//meta[@name="author"]/@content')[:1])
    yield from (str(value) for value in tree.xpath("//meta/@content"))
    yield from (str(text) for text in tree.xpath('//script[contains(@type, "ld+json")]/text()'))
    yield from (str(text) for text in tree.xpath("//body//text()"))


def _without_marks(text: str) -> str:
    return "".join(c for c in text if not unicodedata.category(c).startswith("M"))
