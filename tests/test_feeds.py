"""Feed parsing: the three formats of the fixture site, malformed and non-feeds."""

from __future__ import annotations

import codecs
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from monitor.errors import FeedParseError
from monitor.feeds import parse_feed

SITE = Path(__file__).parent / "site"
BASE = "http://news.test"
EXPECTATIONS: dict[str, Any] = json.loads((SITE / "expectations.json").read_text(encoding="utf-8"))


def feed_bytes(name: str) -> bytes:
    return (SITE / name).read_bytes().replace(b"{{BASE}}", BASE.encode())


@pytest.mark.parametrize("feed", EXPECTATIONS["feeds"])
def test_fixture_feeds(feed: str) -> None:
    document = parse_feed(feed_bytes(feed), url=f"{BASE}/{feed}")
    expected = [item for item in EXPECTATIONS["items"] if item["feed"] == feed]
    assert document.malformed is None
    assert document.title
    assert [entry.link for entry in document.entries] == [
        item["link"].replace("{{BASE}}", BASE) for item in expected
    ]
    for entry, item in zip(document.entries, expected, strict=True):
        assert entry.guid == item["guid"].replace("{{BASE}}", BASE)
        assert entry.title == item["feed_title"]
        assert entry.published_at == datetime.fromisoformat(item["feed_published_at"])
        assert entry.published_at is not None and entry.published_at.tzinfo is UTC
        assert list(entry.categories) == item["categories"]
        assert "utm_" not in entry.url and "#" not in entry.url


def test_malformed_feed_still_yields_its_entries() -> None:
    broken = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>T & Co</title>
    <item><title>One</title><link>http://news.test/1</link></item>
    <item><title>Two</title><link>http://news.test/2</link></item>
    <item><title>Unclosed"""
    document = parse_feed(broken, url="http://news.test/feed")
    assert document.malformed
    assert [entry.url for entry in document.entries][:2] == [
        "http://news.test/1",
        "http://news.test/2",
    ]


def test_relative_links_resolve_against_the_feed() -> None:
    feed = b"""<rss version="2.0"><channel><title>T</title>
    <item><title>Rel</title><link>/stories/a.html?utm_source=rss</link><guid>a</guid></item>
    </channel></rss>"""
    (entry,) = parse_feed(feed, url="http://news.test/feeds/x.rss").entries
    assert entry.link == "http://news.test/stories/a.html?utm_source=rss"
    assert entry.url == "http://news.test/stories/a.html"


def test_entries_without_a_usable_link_are_skipped() -> None:
    feed = b"""<rss version="2.0"><channel><title>T</title>
    <item><title>No link</title></item>
    <item><title>Mail</title><link>mailto:desk@news.test</link></item>
    <item><title>Good</title><link>http://news.test/ok</link></item>
    </channel></rss>"""
    document = parse_feed(feed, url="http://news.test/feed")
    assert [entry.title for entry in document.entries] == ["Good"]
    assert document.skipped == 2


def test_html_in_titles_becomes_text() -> None:
    feed = b"""<feed xmlns="http://www.w3.org/2005/Atom"><title>T</title>
    <entry><title type="html">Police &lt;b&gt;free&lt;/b&gt; 312 &amp;amp; more</title>
    <link href="http://news.test/a"/><id>urn:a</id><updated>2024-01-01T00:00:00Z</updated></entry>
    </feed>"""
    (entry,) = parse_feed(feed, url="http://news.test/feed").entries
    assert entry.title == "Police free 312 & more"


@pytest.mark.parametrize(
    "body", [b"<html><body><p>Not a feed</p></body></html>", b"", b"\x00\x01\x02", b"{not json"]
)
def test_not_a_feed(body: bytes) -> None:
    with pytest.raises(FeedParseError) as caught:
        parse_feed(body, url="http://news.test/feed")
    assert caught.value.reason == "not_a_feed"


@pytest.mark.parametrize(
    "body",
    [
        b"<!DOCTYPE html>\n<html lang='en'><head><title>Sign in</title></head><body>x</body></html>",
        b"\n<!-- cached -->\n<html><body><p>Page moved</p></body></html>",
    ],
)
def test_an_html_page_in_place_of_the_feed_is_named_as_one(body: bytes) -> None:
    # An audit: the message was "SAXParseException: <unknown>:2:0: syntax error".
    with pytest.raises(FeedParseError) as caught:
        parse_feed(body, url="http://news.test/feed")
    assert caught.value.reason == "not_a_feed"
    assert "the server sent an HTML page" in str(caught.value)


@pytest.mark.parametrize(
    "body",
    [
        b'{"title": "no version", "items": []}',
        b"[1, 2]",
        b'{"version": "https://jsonfeed.org/version/1.1"}',
    ],
)
def test_json_that_is_not_a_json_feed(body: bytes) -> None:
    with pytest.raises(FeedParseError) as caught:
        parse_feed(body, url="http://news.test/feed.json")
    assert caught.value.reason == "not_a_feed"


def test_json_feed() -> None:
    feed = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": "Mekong <b>Herald</b>",
        "language": "en",
        "items": [
            {
                "id": "2024-0314",
                "url": "/2024/03/14/raid.html?utm_source=json",
                "title": "Police free 312 in Sihanoukville raid",
                "content_html": "<p>Police freed 312 workers.</p>",
                "date_published": "2024-03-14T09:30:00+07:00",
                "tags": ["Human trafficking", " Crime "],
            },
            # JSON Feed 1.0 allowed numeric ids; a link post's page is its external_url.
            {
                "id": 7,
                "external_url": "https://wire.test/tip-report",
                "title": "TIP report",
                "date_modified": "2024-06-24T00:00:00Z",
            },
            {"id": "no-link", "title": "Nothing to fetch"},
            "not an item",
        ],
    }
    document = parse_feed(
        b"\xef\xbb\xbf" + json.dumps(feed).encode(), url="http://news.test/feeds/h.json"
    )
    assert (document.title, document.language, document.skipped) == ("Mekong Herald", "en", 2)
    raid, tip = document.entries
    assert raid.link == "http://news.test/2024/03/14/raid.html?utm_source=json"
    assert raid.url == "http://news.test/2024/03/14/raid.html"
    assert (raid.guid, raid.title) == ("2024-0314", "Police free 312 in Sihanoukville raid")
    assert raid.published_at == datetime(2024, 3, 14, 2, 30, tzinfo=UTC)
    assert raid.categories == ("Human trafficking", "Crime")
    assert (tip.url, tip.guid, tip.published_at) == (
        "https://wire.test/tip-report",
        "7",
        datetime(2024, 6, 24, tzinfo=UTC),
    )


def test_a_guid_shared_by_different_links_identifies_none_of_them() -> None:
    """A CMS that gives every item the site's home page as GUID: each story would be the
    entry seen before and be lost. The same GUID on the same link is one entry."""
    items = "".join(
        f"<item><title>Story {n}</title><link>http://news.test/{n}.html</link>"
        "<guid>http://news.test/</guid></item>"
        for n in (1, 2, 3)
    )
    items += (
        "<item><title>A</title><link>http://news.test/a.html</link><guid>urn:a</guid></item>" * 2
    )
    feed = f'<rss version="2.0"><channel><title>T</title>{items}</channel></rss>'.encode()
    document = parse_feed(feed, url="http://news.test/feed")
    assert [(entry.url, entry.guid) for entry in document.entries] == [
        ("http://news.test/1.html", None),
        ("http://news.test/2.html", None),
        ("http://news.test/3.html", None),
        ("http://news.test/a.html", "urn:a"),
        ("http://news.test/a.html", "urn:a"),
    ]
    assert document.malformed is not None and "3 entries share a GUID" in document.malformed


@pytest.mark.parametrize(
    ("escaped", "title"),
    [
        ("Cambodia&amp;#8217;s scam compounds", "Cambodia\u2019s scam compounds"),
        ("Cambodia&amp;rsquo;s scam compounds", "Cambodia\u2019s scam compounds"),
        ("AT&amp;amp;T and Q&amp;A", "AT&T and Q&A"),
    ],
)
def test_a_title_escaped_twice_is_read_as_text(escaped: str, title: str) -> None:
    # An audit: WordPress-style double escaping was stored as "Cambodia&#8217;s".
    feed = (
        f"<rss version='2.0'><channel><title>T</title><item><title>{escaped}</title>"
        "<link>http://news.test/a</link></item></channel></rss>"
    ).encode()
    (entry,) = parse_feed(feed, url="http://news.test/feed").entries
    assert entry.title == title


def test_an_atom_category_is_stored_by_its_label() -> None:
    atom = (
        b'<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title>'
        b"<entry><title>Raid</title><id>urn:1</id>"
        b'<link href="https://news.example/raid"/>'
        b'<category term="trafficking" label="Trafficking in Persons"/>'
        b'<category term="asia/cambodia"/></entry></feed>'
    )
    (entry,) = parse_feed(atom, url="https://news.example/feed.atom").entries
    assert entry.categories == ("Trafficking in Persons", "asia/cambodia")


def test_characters_that_are_never_text_leave_every_field_of_a_feed() -> None:
    # An audit: a lone surrogate (&#xD800;) reached the database driver, which cannot
    # encode it, and took the whole run down; bidi overrides and C1 controls were stored.
    rss = (
        "<rss version='2.0'><channel><title>Wire &#xD800;</title><item>"
        "<title>Raid &#xD800; in \u202eKoh Kong\u202c \ufffe now &#x85;</title>"
        "<guid>urn:&#xDFFF;1</guid><category>Scam &#xD800;compounds</category>"
        "<link>https://news.example/raid&#xD800;.html</link></item></channel></rss>"
    ).encode("utf-8", "surrogatepass")
    document = parse_feed(rss, url="https://news.example/feed.rss")
    json_feed = json.dumps(
        {
            "version": "https://jsonfeed.org/version/1.1",
            "title": "Wire \ud800",
            "items": [
                {
                    "id": "urn:\ud8001",
                    "url": "https://news.example/raid.html",
                    "title": "Raid \ud800 in \u202eKoh Kong",
                    "tags": ["Scam \ud800compounds"],
                }
            ],
        }
    ).encode()
    for parsed in (document, parse_feed(json_feed, url="https://news.example/feed.json")):
        (entry,) = parsed.entries
        fields = [parsed.title, entry.title, entry.guid, entry.link, entry.url, *entry.categories]
        for field in fields:
            assert field is not None
            field.encode("utf-8")  # a lone surrogate would raise here
            assert not {"\ufffe", "\ufffd", "\u202e", "\u202c", "\x85"} & set(field), field
        assert entry.title is not None and "Koh Kong" in entry.title


def test_items_linked_to_the_home_page_take_their_guids_permalink() -> None:
    # An audit: items linked to the site's home page with GUIDs of their own were one
    # entry: the first failed on the home page, the others were lost.
    items = "".join(
        f"<item><title>S{n}</title><link>http://news.test/</link>"
        f'<guid isPermaLink="true">http://news.test/a/{n}.html</guid></item>'
        for n in (1, 2)
    )
    items += "".join(
        f"<item><title>W{n}</title><link>http://news.test/live</link>"
        f'<guid isPermaLink="false">http://news.test/?p={n}</guid></item>'
        for n in (5, 6)
    )
    items += "".join(
        f"<item><title>H{n}</title><link>http://news.test/app/#!/story/{n}</link>"
        f'<guid isPermaLink="false">hb-{n}</guid></item>'
        for n in (1, 2)
    )
    items += "<item><title>A</title><link>http://news.test/a.html</link><guid>urn:a</guid></item>"
    feed = f'<rss version="2.0"><channel><title>T</title>{items}</channel></rss>'.encode()
    document = parse_feed(feed, url="http://news.test/feed")
    # A live blog's updates share its link, with GUIDs that need not be pages (a second
    # audit: relinked, all three failed 404): one entry, the live blog's page.
    assert [entry.url for entry in document.entries] == [
        "http://news.test/a/1.html",
        "http://news.test/a/2.html",
        "http://news.test/live",
        "http://news.test/live",
        "http://news.test/app/",
        "http://news.test/app/",
        "http://news.test/a.html",
    ]
    assert document.malformed == (
        "2 entries link to the site's home page: linked to their GUIDs instead;"
        " 4 entries of different GUIDs share one link: one article"
    )


def test_items_linked_to_the_home_page_with_no_address_of_their_own_are_skipped() -> None:
    # An audit: a GUID written as a number ("98765", a permalink by RSS's default) was
    # made a URL against the feed's address by feedparser, and monitor fetched that
    # made-up page (404); an item left with the home page would store the home page.
    items = (
        "<item><title>N</title><link>http://news.test/</link><guid>98765</guid></item>"
        '<item><title>F</title><link>http://news.test/</link><guid isPermaLink="false">'
        "post-7</guid></item>"
        "<item><title>E</title><link>http://news.test</link></item>"
        "<item><title>R</title><link>http://news.test/</link>"
        "<guid><![CDATA[ http://news.test/a/9.html ]]></guid></item>"
        # A second audit: a GUID written as a path is an address; a link whose query
        # canonicalising drops is a page of its own.
        "<item><title>P</title><link>http://news.test/</link><guid>/news/123</guid></item>"
        "<item><title>Q</title><link>http://news.test/?12345</link></item>"
    )
    feed = f'<rss version="2.0"><channel><title>T</title>{items}</channel></rss>'.encode()
    document = parse_feed(feed, url="http://news.test/h/feed.xml")
    assert [entry.link for entry in document.entries] == [
        "http://news.test/a/9.html",
        "http://news.test/news/123",
        "http://news.test/?12345",
    ]
    assert document.skipped == 0  # said once, in the note below
    assert document.malformed == (
        "2 entries link to the site's home page: linked to their GUIDs instead;"
        " 3 entries link to the site's home page and give no address of their own: skipped"
    )


@pytest.mark.parametrize(
    ("written", "utc"),
    [
        ("Thu, 01 May 2025 15:00:00 ICT", datetime(2025, 5, 1, 8, tzinfo=UTC)),
        ("Thu, 01 May 2025 15:00:00 +0700", datetime(2025, 5, 1, 8, tzinfo=UTC)),
        ("Thu, 01 May 2025 15:00:00 GMT", datetime(2025, 5, 1, 15, tzinfo=UTC)),
        ("Thu, 01 May 2025 15:00:00 UTC", datetime(2025, 5, 1, 15, tzinfo=UTC)),
        ("Thu, 01 May 2025 15:00:00 EST", datetime(2025, 5, 1, 20, tzinfo=UTC)),
        ("Thu, 01 May 2025 15:00:00 QQT", None),
        ("2024-02-30T10:00:00Z", None),
        ("2024-02-28T10:00:00+07:00", datetime(2024, 2, 28, 3, tzinfo=UTC)),
        # Dates in numbers only, which feedparser read as December 1 or as 2008.
        ("2025/03/08 10:00", datetime(2025, 3, 8, 10, tzinfo=UTC)),
        ("2025.03.08 10:00 +0700", datetime(2025, 3, 8, 3, tzinfo=UTC)),
        ("2025/03/08 10:00 ICT", datetime(2025, 3, 8, 3, tzinfo=UTC)),
        ("2025年03月08日 10:00", datetime(2025, 3, 8, 10, tzinfo=UTC)),
        ("2025年3月9日", datetime(2025, 3, 9, tzinfo=UTC)),
        ("31-03-2025 10:00", datetime(2025, 3, 31, 10, tzinfo=UTC)),
        ("03/31/2025", datetime(2025, 3, 31, tzinfo=UTC)),
        ("08-03-2025 10:00", None),  # March 8 or August 3
        ("2025/02/30", None),
        ("2025/03/08 10:00 QQT", None),
        # feedparser's reading that keeps neither the year nor the day written: no date.
        ("2025-W10", None),
        # … and those a zone moves across midnight, a month's end or a year's, kept.
        ("Sun, 01 Jun 2025 01:00:00 +0900", datetime(2025, 5, 31, 16, tzinfo=UTC)),
        ("Wed, 31 Dec 2025 23:30:00 -0500", datetime(2026, 1, 1, 4, 30, tzinfo=UTC)),
        ("20250308", datetime(2025, 3, 8, tzinfo=UTC)),
        ("2025-03-08T10:00:00.123Z", datetime(2025, 3, 8, 10, tzinfo=UTC)),
        ("2025-03", datetime(2025, 3, 1, tzinfo=UTC)),
        ("2025", datetime(2025, 1, 1, tzinfo=UTC)),
    ],
)
def test_an_entrys_date_is_read_in_its_zone_or_not_at_all(written: str, utc: datetime) -> None:
    # An audit: "ICT", Cambodia's own zone, unknown to feedparser, was read as UTC (seven
    # hours late), and February 30 became March 1. A second: feedparser read "2025/03/08"
    # and "2025年3月9日" as 2025-12-01 and "08-03-2025" as 2008-03-20.
    feed = (
        '<rss version="2.0"><channel><title>T</title><item><link>http://news.test/a</link>'
        f"<pubDate>{written}</pubDate></item></channel></rss>"
    ).encode()
    assert parse_feed(feed, url="http://news.test/feed").entries[0].published_at == utc


@pytest.mark.parametrize(
    ("encoded", "content_type"),
    [
        (lambda text: text.encode("iso-8859-1"), "application/json; charset=iso-8859-1"),
        (lambda text: text.encode("utf-16"), "application/feed+json"),
        (lambda text: codecs.BOM_UTF8 + text.encode("utf-8"), "application/json"),
    ],
)
def test_a_json_feed_in_another_encoding_is_read(
    encoded: Callable[[str], bytes], content_type: str
) -> None:
    # An audit: a JSON Feed declaring iso-8859-1 failed as invalid UTF-8, one in UTF-16
    # was taken for XML ("not well-formed").
    text = json.dumps(
        {
            "version": "https://jsonfeed.org/version/1.1",
            "title": "Sécurité",
            "items": [{"id": "1", "url": "http://news.test/a", "title": "Réfugiés"}],
        },
        ensure_ascii=False,
    )
    document = parse_feed(
        encoded(text), url="http://news.test/feed", headers={"Content-Type": content_type}
    )
    assert document.title == "Sécurité"
    assert [entry.title for entry in document.entries] == ["Réfugiés"]


def test_a_bare_ampersand_is_read_as_itself() -> None:
    # An audit: "R&D & co" in a feed that is not well-formed XML was stored "R&D; & co".
    items = (
        "<item><title>R&D & co at AT&T</title><link>http://news.test/a?id=1&section=2</link>"
        "</item><item><title><![CDATA[Q&A &amp; more]]></title><link>http://news.test/b</link>"
        "</item><item><title>caf&#233; &amp; bar</title><link>http://news.test/c</link></item>"
    )
    feed = f'<rss version="2.0"><channel><title>T</title>{items}</channel></rss>'.encode()
    document = parse_feed(feed, url="http://news.test/feed")
    assert [entry.title for entry in document.entries] == [
        "R&D & co at AT&T",
        "Q&A & more",  # as feedparser reads a CDATA title, nothing escaped twice
        "café & bar",
    ]
    assert document.entries[0].url == "http://news.test/a?id=1&section=2"


def test_an_items_author_is_read_as_a_name() -> None:
    # An audit: the feed's dc:creator and JSON Feed's authors were never used, where the
    # page named no writer.
    items = (
        "<item><title>A</title><link>http://news.test/a</link><dc:creator>By Dewi Lestari"
        "</dc:creator></item>"
        "<item><title>B</title><link>http://news.test/b</link>"
        "<author>desk@news.test (Sok Chea)</author></item>"
        "<item><title>C</title><link>http://news.test/c</link><author>desk@news.test</author>"
        "</item>"
    )
    feed = (
        '<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/"><channel><title>T'
        f"</title>{items}</channel></rss>"
    ).encode()
    entries = parse_feed(feed, url="http://news.test/feed").entries
    assert [entry.author for entry in entries] == ["Dewi Lestari", "Sok Chea", None]
    json_feed = json.dumps(
        {
            "version": "https://jsonfeed.org/version/1.1",
            "title": "T",
            "items": [
                {"id": "1", "url": "http://news.test/j", "authors": [{"name": "Ry Sochan"}]},
                {"id": "2", "url": "http://news.test/k", "author": {"name": "Kong Meta"}},
            ],
        }
    ).encode()
    entries = parse_feed(json_feed, url="http://news.test/feed.json").entries
    assert [entry.author for entry in entries] == ["Ry Sochan", "Kong Meta"]
