"""Real-world corpora through the real pipeline.

../shared/corpora holds every test feed of feedparser's suite (2,107 files:
well-formed, ill-formed, encoding traps, undeclared entities, JSON Feed) and the
web pages of trafilatura's test suite (357 archived pages and its resources), with
their licenses (shared/corpora/*/README.md). They are served from the local site
and go through monitor's own Pipeline in-process into a migrated database
(PostgreSQL when reachable, else SQLite), four polls at a time as the daemon runs
them: every feed is polled (fetch, parse, claim each entry, fetch its page, extract,
clean, tag, dedup, store), and every page is an article of one of the feeds polled.

No file may make the pipeline raise; every feed and every entry ends with a recorded
outcome, ok or failed with a reason, and no entry fails with `unexpected_error` (our
code raising on odd input). What is stored as text is text: no U+FFFD, no control
characters, and feeds in undeclared legacy encodings (Big5, EUC-JP, KOI8-R…) read
in their script, not as Latin-1 soup.

The corpora stay out of this repository (the pages belong to their publishers and
must not reach an image or a release): without ../shared/corpora these tests skip,
saying so.
"""

from __future__ import annotations

import dataclasses
import html
import json
import re
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlencode, urlsplit
from xml.sax.saxutils import escape

import pytest
import sqlalchemy as sa

from monitor.analysis import Analyser
from monitor.config import FeedSettings, FetchSettings, Settings
from monitor.http import Fetcher
from monitor.pipeline import Pipeline, PollReport
from monitor.records import FetchedPage
from monitor.rules import RuleSet
from monitor.storage.database import create_database_engine, upgrade_database
from monitor.storage.store import Store
from tests.databases import postgres_schema, postgres_unavailable
from tests.localsite import Handler, LocalSite, SiteRequest

REPO = Path(__file__).resolve().parent.parent
CORPORA = REPO.parent / "shared" / "corpora"
FEEDPARSER = CORPORA / "feedparser"
TRAFILATURA = CORPORA / "trafilatura"

FETCH = FetchSettings(
    allow_private_addresses=True,
    timeout=10,
    per_host_delay=0,
    max_attempts=1,
    per_host_concurrency=4,
)
# Feeds polled at once, as the daemon's scheduler does (fetch.max_concurrent_polls).
CONCURRENT_POLLS = 4
# Text that is not text: the replacement character, and control characters.
NOT_TEXT = re.compile(r"[\ufffd\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
OUTCOMES = {"stored", "duplicate", "failed", "off_topic"}


def require(corpus: Path) -> None:
    if not (corpus / "README.md").is_file():
        pytest.skip(f"{corpus} is missing: the shared corpora are not next to this checkout")


def table(engine: sa.Engine, name: str) -> list[Any]:
    with engine.connect() as connection:
        return list(connection.execute(sa.text(f"SELECT * FROM {name}")).mappings())


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    """Each corpus goes into both databases; PostgreSQL is the stricter one (it refuses
    NUL characters and invalid UTF-8, which SQLite would store silently)."""
    if request.param == "postgresql" and (reason := postgres_unavailable()):
        pytest.skip(reason)
    return str(request.param)


def answer(headers: dict[str, str], body: bytes) -> Handler:
    """A route that serves `body` with `headers`."""

    def respond(_: SiteRequest) -> tuple[int, dict[str, str], bytes]:
        return 200, headers, body

    return respond


@contextmanager
def migrated(backend: str, directory: Path) -> Iterator[sa.Engine]:
    """A fresh, migrated database on `backend` (PostgreSQL: skipped when unreachable)."""
    with (
        postgres_schema()
        if backend == "postgresql"
        else nullcontext(f"sqlite:///{directory / 'monitor.db'}")
    ) as url:
        engine = create_database_engine(url)
        upgrade_database(engine)
        try:
            yield engine
        finally:
            engine.dispose()


def poll_all(
    store: Store, fetcher: Fetcher, feeds: Sequence[FeedSettings]
) -> dict[str, PollReport]:
    """One poll of every feed through the pipeline, several at once; whatever a poll
    raises fails the test."""
    feed_ids = store.sync_feeds(feeds)
    with Analyser("auto") as analyser, ThreadPoolExecutor(CONCURRENT_POLLS) as pool:
        pipeline = Pipeline(
            store,
            fetcher,
            rules=RuleSet.from_settings(Settings(feeds=tuple(feeds))),
            analyser=analyser,
        )
        polls = {feed.name: pool.submit(pipeline.poll, feed, feed_ids[feed.url]) for feed in feeds}
        return {name: poll.result() for name, poll in polls.items()}


# The feed corpus

# What upstream's harness serves with the files it fetches over HTTP, and what stands
# for "no Content-Type" with the others (feedparser then reads the XML declaration).
HTTP_DEFAULT_TYPE = "text/xml"
FILE_TYPES = {
    ".atom": "application/atom+xml",
    ".rss": "application/rss+xml",
    ".json": "application/feed+json",
    ".gz": "application/gzip",
}
# illformed/chardet/: undeclared legacy encodings, and the script their text is in.
CHARDET_SCRIPTS = {
    "big5.xml": r"[\u4e00-\u9fff]",
    "eucjp.xml": r"[\u3040-\u30ff\u4e00-\u9fff]",
    "euckr.xml": r"[\uac00-\ud7a3]",
    "gb2312.xml": r"[\u4e00-\u9fff]",
    "koi8r.xml": r"[\u0400-\u04ff]",
    "shiftjis.xml": r"[\u3040-\u30ff\u4e00-\u9fff]",
    "tis620.xml": r"[\u0e00-\u0e7f]",
    "windows1255.xml": r"[\u0590-\u05ff]",
}


@dataclass(frozen=True)
class Served:
    name: str
    path: str
    headers: dict[str, str]
    body: bytes


def feed_files() -> Iterator[Served]:
    """Every feed file of feedparser's suite, with the HTTP headers upstream serves it
    with, then the feeds and sitemaps among trafilatura's resources."""
    manifest: dict[str, dict[str, Any]] = json.loads(
        (FEEDPARSER / "manifest.json").read_text(encoding="utf-8")
    )
    for path, spec in sorted(manifest.items()):
        headers = dict(spec.get("http_headers") or {})
        if "served over HTTP" in str(spec.get("upstream_input")):
            if not any(name.lower() == "content-type" for name in headers):
                headers["Content-Type"] = HTTP_DEFAULT_TYPE
        elif not headers:
            headers["Content-Type"] = FILE_TYPES.get(Path(path).suffix, "application/xml")
        body = (FEEDPARSER / path).read_bytes()
        yield Served(path, "/feedparser/" + quote(path), headers, body)
    for file in sorted((TRAFILATURA / "resources").iterdir()):
        if file.suffix in (".atom", ".rss", ".json", ".xml") or file.name.endswith(".xml.gz"):
            path = f"resources/{file.name}"
            content_type = FILE_TYPES.get(file.suffix, "application/xml")
            yield Served(
                path,
                "/trafilatura/" + quote(path),
                {"Content-Type": content_type},
                file.read_bytes(),
            )


def with_links(body: bytes) -> bytes:
    """A feed whose items have no link, given one each, so that their titles (in an
    undeclared legacy encoding) reach the database; the bytes are otherwise the same."""
    return body.replace(b"<item>", b"<item><link>http://chardet.example/item</link>").replace(
        b"<entry>", b'<entry><link href="http://chardet.example/entry"/>'
    )


def article_page(request: SiteRequest) -> tuple[int, dict[str, str], bytes]:
    """The stand-in for any article a corpus feed links to."""
    link = parse_qs(urlsplit(request.path).query).get("link", [""])[0]
    text = (
        f"This page stands in for {html.escape(link)}, the article an entry of one of"
        " feedparser's test feeds links to: the test never fetches that address."
    )
    body = f"<html><body><article><p>{text}</p></article></body></html>"
    return 200, {"Content-Type": "text/html; charset=utf-8"}, body.encode("utf-8")


class CorpusFetcher(Fetcher):
    """Fetches every feed as it is, and every article link (example.com, the upstream
    harness's 127.0.0.1:8097…, never fetched) from the local site's stand-in page."""

    def __init__(self, settings: FetchSettings, site: LocalSite) -> None:
        super().__init__(settings)
        self.site = site

    def page(self, url: str) -> FetchedPage:
        local = self.site.url("/article?" + urlencode({"link": url}))
        return dataclasses.replace(super().page(local), url=url)


@dataclass
class FeedRun:
    served: dict[str, Served]
    reports: dict[str, PollReport]
    feeds: dict[str, Any]
    entries: list[Any]
    titles: list[tuple[str, str]]


@pytest.fixture(scope="module")
def feed_run(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FeedRun]:
    require(FEEDPARSER)
    require(TRAFILATURA)
    served = {item.name: item for item in feed_files()}
    for name, item in list(served.items()):
        if name.startswith("illformed/chardet/"):
            variant = "variants/" + name
            served[variant] = Served(
                variant, "/" + quote(variant), item.headers, with_links(item.body)
            )
    with migrated(backend, tmp_path_factory.mktemp("feeds")) as engine:
        with LocalSite(CORPORA) as site, CorpusFetcher(FETCH, site) as fetcher:
            site.route("/article", article_page)
            for item in served.values():
                site.route(item.path, answer(item.headers, item.body))
            feeds = [
                FeedSettings(name=item.name, url=site.url(item.path)) for item in served.values()
            ]
            reports = poll_all(Store(engine), fetcher, feeds)
        feed_rows = {row["name"]: row for row in table(engine, "feeds")}
        names = {row["id"]: row["name"] for row in feed_rows.values()}
        entries = table(engine, "entries")
        titles = [(name, row["title"]) for name, row in feed_rows.items() if row["title"]]
        titles += [(names[row["feed_id"]], row["title"]) for row in entries if row["title"]]
        titles += [("article", row["title"]) for row in table(engine, "articles")]
        titles += [
            ("duplicate", row["title"]) for row in table(engine, "duplicates") if row["title"]
        ]
    yield FeedRun(served, reports, feed_rows, entries, titles)


@pytest.mark.slow
def test_every_feed_file_is_polled_to_a_recorded_outcome(feed_run: FeedRun) -> None:
    assert len(feed_run.reports) == len(feed_run.served) > 2100
    failed = {}
    for name, report in feed_run.reports.items():
        row = feed_run.feeds[name]
        if report.error is None:
            assert row["last_success_at"] is not None and row["consecutive_failures"] == 0, name
            assert row["last_status"] == 200, name
        else:
            assert row["consecutive_failures"] == 1 and row["last_error"], name
            failed[name] = row["last_error"].split(":", 1)[0]
    # Only what holds no feed fails: an empty document, sitemaps (one gzipped) and CDF
    # channels without items. The rest yields its entries, malformed or not; JSON Feed
    # too (read by monitor: feedparser 6.0 reads no JSON), with feedparser's own
    # expectation for its example ("feed.title == 'My Example Feed' and len(entries) == 2").
    assert set(failed.values()) == {"not_a_feed", "unsupported_content"}, failed
    assert failed["resources/sitemap.xml.gz"] == "unsupported_content"
    assert not [name for name in failed if name.endswith(".json")]
    assert feed_run.reports["json/example.json"].entries_seen == 2
    assert feed_run.feeds["json/example.json"]["title"] == "My Example Feed"
    assert feed_run.reports["resources/feed.json"].entries_seen == 25
    others = [name for name in failed if not name.startswith(("resources/", "json/"))]
    assert others and all(
        name == "illformed/rss_empty_document.xml"
        or (name.startswith("wellformed/cdf/") and b"<item" not in feed_run.served[name].body)
        for name in others
    ), others


@pytest.mark.slow
def test_every_entry_ends_with_an_outcome(feed_run: FeedRun) -> None:
    assert sum(report.new_entries for report in feed_run.reports.values()) == len(feed_run.entries)
    assert len(feed_run.entries) > 100
    for entry in feed_run.entries:
        assert entry["outcome"] in OUTCOMES, entry
        if entry["outcome"] == "failed":
            assert entry["reason"] and entry["reason"] != "unexpected_error", entry
    assert any(entry["outcome"] == "stored" for entry in feed_run.entries)


@pytest.mark.slow
def test_what_is_stored_as_text_is_text(feed_run: FeedRun) -> None:
    garbled = [(name, title) for name, title in feed_run.titles if NOT_TEXT.search(title)]
    assert not garbled
    # Hostile markup in titles (wellformed/sanitize/) is stored as plain text.
    assert not [title for _, title in feed_run.titles if "<script" in title.lower()]


@pytest.mark.slow
def test_undeclared_legacy_encodings_are_read_in_their_script(feed_run: FeedRun) -> None:
    """Big5, EUC-JP, KOI8-R… with no declaration: feedparser alone reads them as
    windows-1252 (Latin-1 soup); monitor detects the encoding."""
    for file, script in CHARDET_SCRIPTS.items():
        name = f"variants/illformed/chardet/{file}"
        assert feed_run.reports[name].error is None, name
        assert "encoding not as declared" in (feed_run.feeds[name]["last_error"] or ""), name
        texts = [title for feed, title in feed_run.titles if feed == name]
        if file in ("tis620.xml", "windows1255.xml"):
            assert not texts, "these two items have a description only: nothing stored"
            continue
        assert texts and all(re.search(script, text) for text in texts), (name, texts)
    (big5,) = [t for feed, t in feed_run.titles if feed == "illformed/chardet/big5.xml"]
    assert big5.startswith("我希望")


@pytest.mark.slow
def test_utf8_with_a_stray_latin1_byte_is_read_as_utf8(feed_run: FeedRun) -> None:
    row = feed_run.feeds["encoding/bozo_invalid-bytes-with-bom.xml"]
    assert row["title"] == "Valid UTF8: ѨInvalid UTF8: España"
    assert "UTF-8 with stray windows-1252 bytes" in row["last_error"]


# The page corpus


def page_files() -> list[str]:
    """Every page of trafilatura's suite and every HTML file among its resources."""
    pages = sorted(
        str(file.relative_to(TRAFILATURA))
        for file in (TRAFILATURA / "pages").rglob("*")
        if file.is_file()
    )
    resources = sorted(
        f"resources/{file.name}"
        for file in (TRAFILATURA / "resources").iterdir()
        if file.name.endswith((".html", ".html.gz"))
    )
    return pages + resources


def corpus_feed(site: LocalSite, pages: Sequence[str]) -> bytes:
    items = "".join(
        f"<item><title>{escape(page)}</title><link>{escape(site.url('/' + quote(page)))}</link>"
        f"<guid isPermaLink='false'>{escape(page)}</guid></item>"
        for page in pages
    )
    return (
        f"<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel>"
        f"<title>trafilatura's test pages</title>{items}</channel></rss>"
    ).encode()


@dataclass
class PageRun:
    pages: list[str]
    reports: dict[str, PollReport]
    entries: dict[str, Any]
    articles: dict[int, Any]


@pytest.fixture(scope="module")
def page_run(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PageRun]:
    """Every page, an article of one of four feeds polled at once with the real fetcher."""
    require(TRAFILATURA)
    pages = page_files()
    with migrated(backend, tmp_path_factory.mktemp("pages")) as engine:
        with LocalSite(TRAFILATURA) as site, Fetcher(FETCH) as fetcher:
            feeds = []
            for number in range(CONCURRENT_POLLS):
                feed = corpus_feed(site, pages[number::CONCURRENT_POLLS])
                path = f"/corpus-{number}.rss"
                site.route(path, answer({"Content-Type": "application/rss+xml"}, feed))
                feeds.append(FeedSettings(name=f"pages {number}", url=site.url(path)))
            # A compressed page served as HTML without Content-Encoding (trafilatura's test).
            gzipped = (TRAFILATURA / "resources" / "webpage.html.gz").read_bytes()
            site.route("/resources/webpage.html.gz", answer({"Content-Type": "text/html"}, gzipped))
            reports = poll_all(Store(engine), fetcher, feeds)
        entries = {row["guid"]: row for row in table(engine, "entries")}
        articles = {row["id"]: row for row in table(engine, "articles")}
    yield PageRun(pages, reports, entries, articles)


@pytest.mark.slow
def test_every_page_ends_with_an_outcome(page_run: PageRun) -> None:
    assert len(page_run.pages) > 360
    assert not [report.error for report in page_run.reports.values() if report.error]
    assert sorted(page_run.entries) == sorted(page_run.pages)
    failed = {}
    for page, entry in page_run.entries.items():
        assert entry["outcome"] in OUTCOMES, (page, entry)
        if entry["outcome"] == "failed":
            failed[page] = entry["reason"]
        else:
            assert entry["article_id"] is not None, page
    # The one page with no article in it (upstream's test: extract() gives None).
    assert failed == {"resources/utf8.html": "no_article_text"}
    stored = sum(1 for entry in page_run.entries.values() if entry["outcome"] == "stored")
    assert stored > 340


@pytest.mark.slow
def test_stored_pages_are_text(page_run: PageRun) -> None:
    for article in page_run.articles.values():
        assert not NOT_TEXT.search(article["title"]), article["url"]
        found = NOT_TEXT.findall(article["text"])
        assert not found, (article["url"], found[:5])


def stored_text(run: PageRun, page: str) -> str:
    entry = run.entries[page]
    assert entry["outcome"] == "stored", entry
    return str(run.articles[entry["article_id"]]["text"])


@pytest.mark.slow
def test_pages_in_legacy_encodings_read_as_they_declare(page_run: PageRun) -> None:
    """Served with `charset=utf-8` (a common misconfiguration) but not UTF-8: the page's
    own <meta charset> is used, ISO-8859-2 included (trafilatura alone guesses
    windows-1250 there: "dziesi±tej")."""
    polish = next(page for page in page_run.pages if page.startswith("pages/eval/_Ziemniaki"))
    text = stored_text(page_run, polish)
    assert "dziesiątej" in text and "±" not in text
    chinese = stored_text(page_run, "pages/eval/archive.org.he.xinhuanet.com.25340717.html")
    assert "一个约定" in chinese
    german = stored_text(page_run, "pages/eval/singapur-reiseinfo.de.abc.html")
    assert "Österreich" in german
    # A UTF-8 page with a few Latin-1 bytes: text, not U+FFFD.
    assert "Olivenöl" in stored_text(
        page_run, "pages/eval/der-erfolg-gibt-recht.de.rinderleber.html"
    )
    # A gzip body without Content-Encoding.
    assert "capital" in stored_text(page_run, "resources/webpage.html.gz")


@pytest.mark.slow
def test_no_page_extracts_worse_than_trafilatura_did(page_run: PageRun) -> None:
    """Against the corpus's baseline (trafilatura 2.3.1 with the settings monitor uses:
    no comments, tables kept): every page it passes, the stored article passes too.
    bench/extraction_report.py compares both on the same run."""
    expectations = json.loads((TRAFILATURA / "expectations/by_file.json").read_text("utf-8"))
    baseline = json.loads(
        (TRAFILATURA / "expectations/baseline.trafilatura-2.3.1.json").read_text("utf-8")
    )["pages"]
    regressions, passed = [], 0
    for page, spec in expectations.items():
        entry = page_run.entries[page]
        if entry["outcome"] != "stored":
            continue
        text = " ".join(stored_text(page_run, page).split())
        missing = [s for s in spec["with"] if " ".join(s.split()) not in text]
        unwanted = [s for s in spec["without"] if " ".join(s.split()) in text]
        before = baseline[page]
        passes = not missing and not unwanted
        passed += passes
        if (
            not passes
            and before["with_found"] == before["with_total"]
            and not before["without_found"]
        ):
            regressions.append((page, missing, unwanted))
    assert not regressions
    assert passed >= 240
