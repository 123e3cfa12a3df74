"""A static news site for the documents, served by tests/localsite.LocalSite.

    manifest = write_site(documents, root)                         # pages, feeds in /feeds/
    feeds = write_feeds(documents, manifest, root, count=4, order_seed=1, directory="feeds/o1")

One HTML page per document in one of four templates (a national outlet, a wire service,
a regional outlet, a WordPress auto-blog), each with navigation, sidebars, related links,
comments and a footer around the article, `article:published_time` with an offset, an
author meta and a `<title>`. Feeds (RSS 2.0 and Atom, alternately) list the documents in
an arrival order: `"chronological"` or a seed for a shuffled order; monitor processes
feeds in the configured order and entries in document order, so the concatenation of the
feeds is the order monitor sees the documents in.

`{{BASE}}` in the files becomes the server's URL when LocalSite serves them.
`check_extraction` verifies that trafilatura extracts exactly each page's paragraphs.
"""

from __future__ import annotations

import hashlib
import json
import random
import string
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from functools import cache
from html import escape
from pathlib import Path
from typing import Any, Literal
from xml.sax.saxutils import escape as xml_escape

import lxml.html

from .variants import SOURCE_LINK, Document, slugify

BASE = "{{BASE}}"
Order = int | Literal["chronological"]


@dataclass(frozen=True, slots=True)
class ManifestEntry:
    doc_id: str
    cluster: str
    variant: str
    follows: str | None = None
    template: str | None = None


class Manifest(dict[str, ManifestEntry]):
    """URL path (as in the feeds, e.g. `/herald/2024/01/17/x.html`) -> the document's label."""

    def by_doc(self) -> dict[str, tuple[str, ManifestEntry]]:
        return {entry.doc_id: (path, entry) for path, entry in self.items()}

    def to_json(self) -> str:
        return json.dumps({path: asdict(entry) for path, entry in self.items()}, indent=1)

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        data: dict[str, dict[str, Any]] = json.loads(text)
        return cls({path: ManifestEntry(**entry) for path, entry in data.items()})


def page_paths(documents: Sequence[Document]) -> dict[str, str]:
    """doc_id -> a unique URL path in the style of the document's template."""
    paths: dict[str, str] = {}
    used: set[str] = set()
    for document in documents:
        local = document.published_at
        slug = slugify(document.title, limit=70) or "story"
        tag = _hex(document.doc_id)
        if document.template == "national":
            path = f"/{document.site}/{local:%Y/%m/%d}/{slug}.html"
        elif document.template == "wire":
            path = f"/{document.site}/stories/{slug}-{tag[:6]}.html"
        elif document.template == "regional":
            number = int(tag[:5], 16) % 90000 + 10000
            path = f"/{document.site}/news/{local:%Y/%m}/{slug}-{number}.html"
        else:
            path = f"/{document.site}/{slug}/"
        number = 2
        while path in used:
            stem, dot, suffix = path.rstrip("/").rpartition(".")
            if document.template == "autoblog":
                path = f"{path.rstrip('/')}-{number}/"
            else:
                path = f"{stem}-{number}{dot}{suffix}"
            number += 1
        used.add(path)
        paths[document.doc_id] = path
    return paths


def _hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def file_for(root: Path, url_path: str) -> Path:
    """Where LocalSite finds the file for `url_path` (`.../` serves `index.html`)."""
    relative = url_path.lstrip("/")
    return root / (relative + "index.html" if url_path.endswith("/") else relative)


def write_site(
    documents: Sequence[Document],
    root: Path,
    *,
    feeds: int = 4,
    order_seed: Order = "chronological",
    feed_directory: str = "feeds",
) -> Manifest:
    """Every document's page under `root`, and `feeds` feeds in `order_seed` under
    `root/feed_directory`. Returns the manifest of the pages."""
    paths = page_paths(documents)
    by_site: dict[str, list[Document]] = {}
    for document in documents:
        by_site.setdefault(document.site, []).append(document)
    manifest = Manifest()
    for document in documents:
        path = paths[document.doc_id]
        siblings = by_site[document.site]
        index = siblings.index(document)
        related = [
            (sibling.title, paths[sibling.doc_id])
            for sibling in (siblings[index - 1 - i] for i in range(min(4, len(siblings) - 1)))
        ]
        source = paths.get(document.story_id) if document.story_id != document.doc_id else None
        html = render_page(document, path, related=related, source_path=source)
        target = file_for(root, path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(html, encoding="utf-8")
        manifest[path] = ManifestEntry(
            doc_id=document.doc_id,
            cluster=document.cluster,
            variant=document.variant,
            follows=document.follows,
            template=document.template,
        )
    write_feeds(
        documents, manifest, root, count=feeds, order_seed=order_seed, directory=feed_directory
    )
    return manifest


def arrival_order(documents: Iterable[Document], order_seed: Order) -> list[Document]:
    """The documents in the order the feeds list them: by publication time for
    `"chronological"`, else shuffled with the seed (copies often before originals)."""
    ordered = sorted(documents, key=lambda d: d.doc_id)
    if order_seed == "chronological":
        return sorted(ordered, key=lambda d: (d.published_at.astimezone(UTC), d.doc_id))
    random.Random(f"order:{order_seed}").shuffle(ordered)
    return ordered


def write_feeds(
    documents: Sequence[Document],
    manifest: Mapping[str, ManifestEntry],
    root: Path,
    *,
    count: int = 4,
    order_seed: Order = "chronological",
    directory: str = "feeds",
) -> list[str]:
    """`count` feeds, alternately RSS 2.0 and Atom, that list the documents in `order_seed`
    in consecutive chunks. Returns their URL paths in the order monitor must poll them."""
    if count < 1:
        raise ValueError("at least one feed is needed")
    paths = {entry.doc_id: path for path, entry in manifest.items()}
    ordered = arrival_order(documents, order_seed)
    size = -(-len(ordered) // count) if ordered else 0
    chunks = [ordered[i * size : (i + 1) * size] for i in range(count)]
    folder = root / directory.strip("/")
    folder.mkdir(parents=True, exist_ok=True)
    feed_paths = []
    for number, chunk in enumerate(chunks, start=1):
        atom = number % 2 == 0
        name = f"feed-{number}.{'atom' if atom else 'rss'}"
        url_path = f"/{directory.strip('/')}/{name}"
        items = [(document, paths[document.doc_id]) for document in chunk]
        body = _atom(url_path, number, items) if atom else _rss(url_path, number, items)
        (folder / name).write_text(body, encoding="utf-8")
        feed_paths.append(url_path)
    return feed_paths


def _excerpt(document: Document, limit: int = 200) -> str:
    text = " ".join(document.paragraphs[:2])
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + " […]"


def _rss(url_path: str, number: int, items: list[tuple[Document, str]]) -> str:
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"'
        ' xmlns:dc="http://purl.org/dc/elements/1.1/"'
        ' xmlns:atom="http://www.w3.org/2005/Atom">\n<channel>\n'
        f"  <title>Evaluation feed {number}</title>\n"
        f'  <atom:link href="{BASE}{url_path}" rel="self" type="application/rss+xml"/>\n'
        f"  <link>{BASE}/</link>\n"
        "  <description>News about trafficking in Cambodia from many outlets</description>\n"
        "  <language>en</language>\n"
    ]
    for document, path in items:
        categories = "".join(
            f"    <category>{xml_escape(c)}</category>\n" for c in document.categories
        )
        creator = (
            f"    <dc:creator>{xml_escape(document.author)}</dc:creator>\n"
            if document.author
            else ""
        )
        parts.append(
            "  <item>\n"
            f"    <title>{xml_escape(document.title)}</title>\n"
            f"    <link>{BASE}{path}</link>\n"
            f'    <guid isPermaLink="false">urn:eval:{xml_escape(document.doc_id)}</guid>\n'
            f"    <pubDate>{_rfc822(document.published_at)}</pubDate>\n"
            f"{creator}{categories}"
            f"    <description>{xml_escape(_excerpt(document))}</description>\n"
            "  </item>\n"
        )
    parts.append("</channel>\n</rss>\n")
    return "".join(parts)


def _atom(url_path: str, number: int, items: list[tuple[Document, str]]) -> str:
    updated = max((d.published_at for d, _ in items), default=datetime(2024, 1, 1, tzinfo=UTC))
    parts = [
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="en">\n'
        f"  <id>urn:eval:feed:{number}</id>\n"
        f"  <title>Evaluation feed {number}</title>\n"
        f"  <updated>{updated.isoformat()}</updated>\n"
        f'  <link rel="self" type="application/atom+xml" href="{BASE}{url_path}"/>\n'
        f'  <link rel="alternate" type="text/html" href="{BASE}/"/>\n'
        "  <author><name>Evaluation site</name></author>\n"
    ]
    for document, path in items:
        categories = "".join(
            f'    <category term="{xml_escape(c, {chr(34): "&quot;"})}"/>\n'
            for c in document.categories
        )
        author = (
            f"    <author><name>{xml_escape(document.author)}</name></author>\n"
            if document.author
            else ""
        )
        parts.append(
            "  <entry>\n"
            f"    <id>urn:eval:{xml_escape(document.doc_id)}</id>\n"
            f'    <title type="text">{xml_escape(document.title)}</title>\n'
            f'    <link rel="alternate" type="text/html" href="{BASE}{path}"/>\n'
            f"    <published>{document.published_at.isoformat()}</published>\n"
            f"    <updated>{document.published_at.isoformat()}</updated>\n"
            f"{author}{categories}"
            f'    <summary type="text">{xml_escape(_excerpt(document))}</summary>\n'
            "  </entry>\n"
        )
    parts.append("</feed>\n")
    return "".join(parts)


def _rfc822(moment: datetime) -> str:
    return format_datetime(moment)


# Pages

TEMPLATE_DIRECTORY = Path(__file__).with_name("templates")


@cache
def _template(template: str) -> string.Template:
    return string.Template((TEMPLATE_DIRECTORY / f"{template}.html").read_text(encoding="utf-8"))


def render_page(
    document: Document,
    path: str,
    *,
    related: Sequence[tuple[str, str]] = (),
    source_path: str | None = None,
) -> str:
    """The HTML page of `document` at URL path `path`, in the document's template.

    `related` (title, URL path) fill the page's "related" or "most read" lists;
    `source_path` is where a wrapped copy's "Source link" points.
    """
    site_url = f"{BASE}/{document.site}/"
    author = escape(document.author or "")
    published = document.published_at
    if document.template == "autoblog":
        # WordPress states times in UTC.
        published = published.astimezone(UTC)
    fields = {
        "language": document.language,
        "title": escape(document.title),
        "outlet": escape(document.outlet),
        "url": BASE + path,
        "site_url": site_url,
        "published": published.isoformat(),
        "shown_date": f"{published.day} {published:%B %Y, %H:%M}",
        "description": escape(_description(document)),
        "author_meta": f'<meta name="author" content="{author}">\n' if author else "",
        "author": author or "admin",
        "author_slug": slugify(document.author or "") or "admin",
        "post_id": str(int(_hex(document.doc_id)[:4], 16)),
        "body": _body(document, source_path),
        "related": "\n".join(
            f'<li><a href="{BASE}{href}">{escape(title)}</a></li>' for title, href in related
        ),
        "byline": _byline(document, site_url),
        "info": f"{author} &middot; " if author else "",
    }
    page = _template(document.template).substitute(fields)
    if "${" in page or "$$" in page:
        raise ValueError(f"{document.template}.html: a placeholder was left in the page")
    return page


def _byline(document: Document, site_url: str) -> str:
    if not document.author:
        return ""
    author = escape(document.author)
    if document.template == "national":
        slug = slugify(document.author) or "staff"
        return (
            f'<span class="byline">By <a rel="author" href="{site_url}authors/{slug}.html">'
            f"{author}</a></span>"
        )
    return f'<div class="story-byline">By <span class="author-name">{author}</span></div>'


def _body(document: Document, source_path: str | None) -> str:
    lines = []
    for paragraph in document.paragraphs:
        if paragraph == SOURCE_LINK:
            href = BASE + source_path if source_path else "https://example.com/"
            lines.append(f'<p><a href="{href}" rel="nofollow">{SOURCE_LINK}</a></p>')
        else:
            lines.append(f"<p>{escape(paragraph, quote=False)}</p>")
    return "\n".join(lines)


def _description(document: Document) -> str:
    paragraphs = [p for p in document.body_paragraphs if p not in ("[ad_1]", "[ad_2]")]
    return paragraphs[0][:160] if paragraphs else ""


# Checking what trafilatura makes of the pages


@dataclass(frozen=True, slots=True)
class ExtractionProblem:
    doc_id: str
    path: str
    what: str
    expected: str
    got: str

    def __str__(self) -> str:
        return (
            f"{self.doc_id} ({self.path}): {self.what}: expected {self.expected!r}, "
            f"got {self.got!r}"
        )


def check_extraction(
    documents: Iterable[Document],
    manifest: Mapping[str, ManifestEntry],
    root: Path,
    *,
    base_url: str = "http://127.0.0.1:8000",
) -> list[ExtractionProblem]:
    """Problems where trafilatura's text of a page is not the document's paragraphs
    (markers included, a trailing "Source link" excluded), its title or author differ, or
    the page's `article:published_time` is not the document's time (with an offset).

    trafilatura falls back to a whole-page extraction for texts under about 250
    characters (`min_extracted_size`): such pages show up here too."""
    import trafilatura

    paths = {entry.doc_id: path for path, entry in manifest.items()}
    problems: list[ExtractionProblem] = []
    for document in documents:
        path = paths[document.doc_id]
        html = file_for(root, path).read_bytes().replace(BASE.encode(), base_url.encode())
        result = trafilatura.bare_extraction(html, with_metadata=True)
        text = getattr(result, "text", None) or ""
        got = [" ".join(line.split()) for line in text.splitlines() if line.strip()]
        expected = [" ".join(p.split()) for p in document.body_paragraphs]
        if got != expected:
            problems.append(_first_difference(document.doc_id, path, expected, got))
        title = getattr(result, "title", None) or ""
        if " ".join(title.split()) != " ".join(document.title.split()):
            problems.append(
                ExtractionProblem(document.doc_id, path, "title", document.title, title)
            )
        declared = _published_time(html)
        if declared != document.published_at:
            problems.append(
                ExtractionProblem(
                    document.doc_id,
                    path,
                    "article:published_time",
                    document.published_at.isoformat(),
                    declared.isoformat() if declared else "",
                )
            )
        author = getattr(result, "author", None) or ""
        if document.author and _letters(author) != _letters(document.author):
            problems.append(
                ExtractionProblem(document.doc_id, path, "author", document.author, author)
            )
    return problems


def _published_time(html: bytes) -> datetime | None:
    """The page's `article:published_time`, when it is a time with an offset."""
    values = lxml.html.fromstring(html).xpath("//meta[@property='article:published_time']/@content")
    try:
        moment = datetime.fromisoformat(str(values[0])) if values else None
    except ValueError:
        return None
    return moment if moment is not None and moment.tzinfo is not None else None


def _letters(name: str) -> str:
    """A name without case and combining marks: trafilatura drops a Khmer name's final
    vowel sign (ម៉ៅ សុជាតា -> ម៉ៅ សុជាត), a quirk of its author cleaning, not of the page."""
    return "".join(c for c in name.casefold() if not unicodedata.category(c).startswith("M"))


def _first_difference(
    doc_id: str, path: str, expected: list[str], got: list[str]
) -> ExtractionProblem:
    for index, (want, have) in enumerate(zip(expected, got, strict=False)):
        if want != have:
            return ExtractionProblem(doc_id, path, f"paragraph {index + 1}", want, have)
    if len(got) > len(expected):
        return ExtractionProblem(doc_id, path, "extra paragraph", "", got[len(expected)])
    return ExtractionProblem(doc_id, path, "missing paragraph", expected[len(got)], "")
