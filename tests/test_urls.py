"""URL canonicalisation."""

from __future__ import annotations

import pytest

from monitor.errors import FetchError
from monitor.urls import canonical_url, site_of


@pytest.mark.parametrize(
    ("url", "canonical"),
    [
        ("HTTPS://WWW.Example.COM:443/a/b?id=5", "https://www.example.com/a/b?id=5"),
        ("https://example.com/story?utm_source=x&utm_medium=rss", "https://example.com/story"),
        ("https://example.com/story?fbclid=abc&gclid=def", "https://example.com/story"),
        ("https://example.com/story#comments", "https://example.com/story"),
        ("https://example.com/s?b=2&a=1", "https://example.com/s?a=1&b=2"),
        # Content ids that courlan's tracker list would drop: two articles, two URLs.
        ("http://news.example/news.php?cid=3031&ref=rss", "http://news.example/news.php?cid=3031"),
        (
            "https://example.com/a?uid=7&gallery=2&source=rss",
            "https://example.com/a?gallery=2&uid=7",
        ),
        (
            "https://example.com/a?mc_cid=1&mc_eid=2&_hsenc=3&msclkid=4&p=9",
            "https://example.com/a?p=9",
        ),
        ("http://127.0.0.1:8080/a.html?utm_source=x", "http://127.0.0.1:8080/a.html"),
    ],
)
def test_canonical_url(url: str, canonical: str) -> None:
    assert canonical_url(url) == canonical


def test_canonical_url_is_idempotent() -> None:
    url = "HTTPS://Example.com/a/?utm_campaign=z&p=1#x"
    assert canonical_url(canonical_url(url)) == canonical_url(url)


@pytest.mark.parametrize(
    "url", ["ftp://example.com/", "/relative/path", "http://[::1", "http://a b.com/", "mailto:x@y"]
)
def test_rejects_non_http_urls(url: str) -> None:
    with pytest.raises(FetchError) as caught:
        canonical_url(url)
    assert caught.value.reason == "invalid_url"


def test_site_of() -> None:
    assert site_of("https://www.khmertimeskh.com/501/x/") == "khmertimeskh.com"
    assert site_of("http://127.0.0.1:8000/a") == "127.0.0.1"
