"""Bytes whose encoding is missing or wrong become text, or a recorded failure.

Feeds: feedparser reads bytes that match no declared encoding as windows-1252;
monitor keeps that reading only where it looks like text. Pages: the charset a page
declares wins over trafilatura's guess. tests/test_corpora.py runs the same through
the pipeline on feedparser's and trafilatura's own test files.
"""

from __future__ import annotations

import gzip
from datetime import UTC, datetime

import pytest

from monitor.charsets import (
    codec_for,
    decode_declared,
    decode_mixed_utf8,
    mostly_utf8,
    windows_1252_plausible,
)
from monitor.errors import ExtractionError, FeedParseError
from monitor.extract import extract_article, page_markup
from monitor.feeds import parse_feed
from monitor.records import FeedEntry, FetchedPage

URL = "http://news.test/feed.xml"
XML = {"Content-Type": "application/xml"}
# Long enough for trafilatura to call it an article.
PARAGRAPH = (
    "Die Behörden in Phnom Penh haben am Montag mehr als zweihundert Menschen aus einem"
    " Gebäudekomplex befreit, in dem sie zu Online-Betrug gezwungen worden waren. Sie"
    " stammen aus Indonesien, Vietnam und China, sagte ein Sprecher der Polizei."
)


def rss(title: str, *, declaration: str = "", description: str = "") -> str:
    return (
        f"{declaration}<rss version='2.0'><channel><title>Feed</title>"
        f"<item><title>{title}</title><link>http://news.test/a</link>"
        f"<description>{description}</description></item></channel></rss>"
    )


@pytest.mark.parametrize(
    ("title", "description", "encoding"),
    [
        ("不归移民漫画系列：专业工作", "", "gb2312"),
        ("我希望很容易其翻成中文，并有助于改件。", "", "big5"),
        (
            "Как пережить новогодние праздники",
            "Наверное, единственное, во что сегодня можно верить безоговорочно, так это"
            " в то, что Новый год обязательно наступит.",
            "koi8-r",
        ),
        ("ドリコムRSSに記事投稿が反映されない", "", "shift_jis"),
        ("타입키 한글 닉네임 표시하기", "", "euc-kr"),
    ],
)
def test_an_undeclared_legacy_encoding_is_detected(
    title: str, description: str, encoding: str
) -> None:
    body = rss(title, description=description).encode(encoding)
    document = parse_feed(body, url=URL, headers=XML)
    assert [entry.title for entry in document.entries] == [title]
    assert document.malformed and "encoding not as declared" in document.malformed


def test_too_little_text_to_tell_the_encoding_is_a_recorded_failure() -> None:
    """One short KOI8-R title reads as well in Shift-JIS or windows-1251: no text
    rather than a guess."""
    body = rss("Как пережить новогодние праздники").encode("koi8-r")
    with pytest.raises(FeedParseError) as raised:
        parse_feed(body, url=URL, headers=XML)
    assert raised.value.reason == "bad_encoding"


def test_a_declared_legacy_encoding_needs_no_detection() -> None:
    title = "Как пережить новогодние праздники"
    body = rss(title, declaration="<?xml version='1.0' encoding='koi8-r'?>").encode("koi8-r")
    document = parse_feed(body, url=URL, headers=XML)
    assert document.entries[0].title == title
    assert document.malformed is None


@pytest.mark.parametrize(
    "title",
    [
        "It’s a “new” day – café",
        "München: Grüße aus Österreich – über Straßen",
        "L’été à Phnom Penh : français, déjà vu, naïve",
        "Price £5",
    ],
)
def test_windows_1252_declared_as_utf8_stays_windows_1252(title: str) -> None:
    """The most common wrong declaration: feedparser's own fallback reads it right,
    and detection (which calls short French text windows-1250) must not overrule it."""
    body = rss(title, declaration="<?xml version='1.0' encoding='utf-8'?>").encode("cp1252")
    document = parse_feed(body, url=URL, headers=XML)
    assert document.entries[0].title == title


@pytest.mark.parametrize(
    ("declaration", "headers"),
    [
        ("<?xml version='1.0' encoding='windows-1252'?>", XML),
        (
            "<?xml version='1.0' encoding='utf-8'?>",
            {"Content-Type": "text/xml; charset=windows-1252"},
        ),
        ("\ufeff<?xml version='1.0' encoding='iso-8859-1'?>", XML),
    ],
)
def test_utf8_declared_as_windows_1252_is_read_as_utf8(
    declaration: str, headers: dict[str, str]
) -> None:
    # An audit: every UTF-8 sequence of this title maps to windows-1252 characters, so
    # the declared reading "worked" and stored "CafÃ© â€“ Cambodia â€˜human traffickingâ€™".
    title = "Café – Cambodia ‘human trafficking’ 604"
    body = rss(title, declaration=declaration, description="Droits de l’homme").encode()
    document = parse_feed(body, url=URL, headers=headers)
    assert document.entries[0].title == title
    assert "read as UTF-8" in (document.malformed or "")


def test_utf8_with_a_stray_latin1_byte_is_read_as_utf8() -> None:
    body = rss("Phnom Penh – “Spain” in Khmer is អេស្ប៉ាញ, in Spanish EspaXa").encode()
    document = parse_feed(body.replace(b"EspaXa", b"Espa\xf1a"), url=URL, headers=XML)
    assert document.entries[0].title == (
        "Phnom Penh – “Spain” in Khmer is អេស្ប៉ាញ, in Spanish España"
    )
    assert "UTF-8 with stray windows-1252 bytes" in (document.malformed or "")


def test_utf8_without_a_content_type_is_utf8() -> None:
    """Headers without a Content-Type make feedparser assume ISO-8859-1; XML says UTF-8."""
    body = rss("Phnom Penh: la police a libéré 215 travailleurs").encode()
    document = parse_feed(body, url=URL, headers={"Server": "test"})
    assert document.entries[0].title == "Phnom Penh: la police a libéré 215 travailleurs"
    assert document.malformed is None


def test_bytes_no_encoding_reads_are_a_recorded_failure() -> None:
    noise = bytes(range(0x80, 0x100)) * 8
    body = rss("x").encode().replace(b"<title>x", b"<title>" + noise)
    with pytest.raises(FeedParseError) as raised:
        parse_feed(body, url=URL, headers=XML)
    assert raised.value.reason == "bad_encoding"


def test_codec_for_reads_labels_as_browsers_do() -> None:
    assert codec_for("ISO-8859-1") == "cp1252"
    assert codec_for(" 'gb2312' ") == "gb18030"
    assert codec_for("koi8-r") == "koi8-r"
    for refused in ("utf-16", "UTF-32LE", "utf-7", "base64", "unicode_escape", "bogus", ""):
        assert codec_for(refused) is None, refused


def test_decode_declared_takes_the_first_label_that_reads_every_byte() -> None:
    data = "dziesiątej".encode("iso-8859-2")
    assert decode_declared(data, ["utf-8", "utf-16", "iso-8859-2"]) == ("dziesiątej", "iso8859-2")
    assert decode_declared(b"\x81\xff\xfe", ["utf-8"]) is None


def test_mostly_utf8() -> None:
    assert mostly_utf8("Phnom Penh – Ѩ".encode() + b"Espa\xf1a")
    assert mostly_utf8(b"\xef\xbb\xbfEspa\xf1a")
    assert not mostly_utf8("Müller, Größe, Straße".encode("cp1252"))
    assert not mostly_utf8("我希望很容易其翻成中文".encode("big5"))
    assert decode_mixed_utf8(b"\xef\xbb\xbf\xe2\x80\x93 Espa\xf1a \x93q\x94 \x81") == (
        "– España “q” \x81"
    )


def test_windows_1252_plausible() -> None:
    assert windows_1252_plausible("Grüße aus Österreich – über Straßen".encode("cp1252"))
    markup = b"<rss><channel><item><link>http://news.test/a</link><title>%s</title>"
    assert not windows_1252_plausible(markup % "不归移民漫画系列".encode("gb2312"))
    assert not windows_1252_plausible(markup % "Как пережить".encode("koi8-r"))


def page(body: bytes, content_type: str | None = "text/html; charset=utf-8") -> FetchedPage:
    return FetchedPage(
        url="http://news.test/story.html",
        final_url="http://news.test/story.html",
        status=200,
        content_type=content_type,
        body=body,
        fetched_at=datetime(2024, 3, 14, tzinfo=UTC),
    )


def html_page(charset: str, text: str = PARAGRAPH) -> str:
    return (
        f"<html><head><meta charset='{charset}'><title>Story</title></head><body>"
        f"<article><h1>Story</h1><p>{text}</p><p>{text}</p></article></body></html>"
    )


ENTRY = FeedEntry(link="http://news.test/story.html", url="http://news.test/story.html")


def test_a_page_is_read_in_the_charset_it_declares() -> None:
    """ISO-8859-2 served as `charset=utf-8`: the page's <meta> wins over both the wrong
    header and trafilatura's guess (windows-1250, which reads "ą" as "±")."""
    text = "Ziemniaki na szóstej, surówka na dziesiątej. Jak pomagać, żeby nie zaszkodzić. "
    body = html_page("ISO-8859-2", text * 3).encode("iso-8859-2")
    article = extract_article(page(body), ENTRY)
    assert "dziesiątej" in article.text and "±" not in article.text


def test_the_http_charset_comes_before_the_meta() -> None:
    body = html_page("utf-8").encode("cp1252")
    assert page_markup(page(body, "text/html; charset=windows-1252")) == body.decode("cp1252")


def test_a_utf8_page_with_stray_latin1_bytes_has_no_replacement_characters() -> None:
    body = html_page("utf-8").encode() + b"<!-- K\xfcchenblogs -->"
    body = body.replace(b"Gem", b"Gem\xfcse ", 1)
    markup = page_markup(page(body))
    assert isinstance(markup, str) and "\ufffd" not in markup and "Küchenblogs" in markup


def test_utf8_pages_are_left_to_trafilatura() -> None:
    utf8 = html_page("utf-8").encode()
    assert page_markup(page(utf8)) is utf8


ENGLISH = (
    "Police in Cambodia freed hundreds of workers from a scam compound in Sihanoukville,"
    " officials said on Monday, in the latest raid on the industry. "
) * 3


@pytest.mark.parametrize(
    ("sentence", "codec"),
    [
        (
            "Cambodge : la traite des êtres humains à la frontière, ça coûte. L'œuvre naïve.",
            "cp1252",
        ),
        ("Los niños de la compañía, señor, este año: ¿dónde? ¡Sí!", "cp1252"),
        ("He called it naïve.", "cp1252"),
        ("Камбоджа: торговля людьми на границе, сказал представитель полиции.", "cp1251"),
    ],
)
def test_an_undeclared_page_mostly_in_english_keeps_its_other_language(
    sentence: str, codec: str
) -> None:
    """No charset anywhere: trafilatura's guess read these as windows-1250 ("ętres",
    "frontičre", "nińos") or a Baltic code page; the web's default and a detection
    that weighs the whole text read them right."""
    body = html_page("x-unknown", ENGLISH).replace("</article>", f"<p>{sentence}</p></article>")
    article = extract_article(page(body.encode(codec), "text/html"), ENTRY)
    assert sentence in article.text


def test_an_undeclared_page_no_encoding_reads_is_a_failure_not_garbage() -> None:
    # Bytes that read as text in no encoding more than in another: random high bytes.
    noise = bytes(range(0x80, 0x100)) * 4
    body = (
        html_page("x-unknown", ENGLISH)
        .encode("ascii")
        .replace(b"</article>", noise + b"</article>")
    )
    with pytest.raises(ExtractionError) as failure:
        extract_article(page(body, "text/html"), ENTRY)
    assert failure.value.reason == "bad_encoding"


def test_a_gzipped_page_without_content_encoding_is_read() -> None:
    body = gzip.compress(html_page("iso-8859-1").encode("cp1252"))
    article = extract_article(page(body, "text/html"), ENTRY)
    assert "Behörden" in article.text
