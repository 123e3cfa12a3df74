"""The network edge against a local server: statuses, redirects, limits, the address guard."""

from __future__ import annotations

import time

import pytest

from monitor.config import FetchSettings
from monitor.errors import FetchError
from monitor.http import address_guard, build_client, fetch_feed, fetch_page, is_public_address
from tests.localsite import LocalSite, SiteRequest

LOCAL = FetchSettings(
    allow_private_addresses=True, timeout=5, user_agent="monitor-test (+http://t/)"
)


def html(body: str = "<html><body><p>Hello</p></body></html>") -> tuple[int, dict[str, str], bytes]:
    return 200, {"Content-Type": "text/html; charset=utf-8"}, body.encode()


def test_page_after_redirect_with_user_agent(site: LocalSite) -> None:
    site.route("/old", lambda _: (301, {"Location": site.url("/new")}, b""))
    site.route("/new", lambda _: html())
    with build_client(LOCAL) as client:
        page = fetch_page(client, site.url("/old"), max_size=10_000)
    assert page.final_url == site.url("/new")
    assert page.body == b"<html><body><p>Hello</p></body></html>"
    assert page.fetched_at.utcoffset() is not None
    user_agents = {headers.get("user-agent") for _, _, headers in site.requests}
    assert user_agents == {"monitor-test (+http://t/)"}


def test_http_error_status(site: LocalSite) -> None:
    with build_client(LOCAL) as client, pytest.raises(FetchError) as caught:
        fetch_page(client, site.url("/missing.html"), max_size=10_000)
    assert caught.value.reason == "http_404"
    assert caught.value.status == 404


def test_too_many_redirects(site: LocalSite) -> None:
    site.route("/loop", lambda _: (302, {"Location": site.url("/loop")}, b""))
    with build_client(LOCAL) as client, pytest.raises(FetchError) as caught:
        fetch_page(client, site.url("/loop"), max_size=10_000)
    assert caught.value.reason == "too_many_redirects"


def test_declared_size_over_the_limit(site: LocalSite) -> None:
    site.route("/big", lambda _: html("x" * 50_000))
    with build_client(LOCAL) as client, pytest.raises(FetchError) as caught:
        fetch_page(client, site.url("/big"), max_size=10_000)
    assert caught.value.reason == "too_large"


def test_non_html_page_is_refused(site: LocalSite) -> None:
    site.route("/file.pdf", lambda _: (200, {"Content-Type": "application/pdf"}, b"%PDF-1.4"))
    with build_client(LOCAL) as client, pytest.raises(FetchError) as caught:
        fetch_page(client, site.url("/file.pdf"), max_size=10_000)
    assert caught.value.reason == "unsupported_content"


def test_timeout(site: LocalSite) -> None:
    def slow(_: SiteRequest) -> tuple[int, dict[str, str], bytes]:
        time.sleep(1.5)
        return html()

    site.route("/slow", slow)
    with (
        build_client(LOCAL.model_copy(update={"timeout": 0.3})) as client,
        pytest.raises(FetchError) as caught,
    ):
        fetch_page(client, site.url("/slow"), max_size=10_000)
    assert caught.value.reason == "timeout"


def test_private_addresses_refused_by_default(site: LocalSite) -> None:
    with build_client(FetchSettings()) as client, pytest.raises(FetchError) as caught:
        fetch_page(client, site.url("/anything.html"), max_size=10_000)
    assert caught.value.reason == "blocked_address"
    assert "allow_private_addresses" in str(caught.value)
    assert site.requests == []


def test_redirect_to_a_private_address_is_refused(site: LocalSite) -> None:
    # The first hop is allowed here only because the test server is local; the guard
    # sees every hop, so a redirect into 169.254.x is refused before connecting.
    site.route(
        "/hop", lambda _: (302, {"Location": "http://169.254.169.254/latest/meta-data/"}, b"")
    )
    with build_client(LOCAL) as client:
        client.event_hooks["request"] = [address_guard(exempt_hosts=frozenset({"127.0.0.1"}))]
        with pytest.raises(FetchError) as caught:
            fetch_page(client, site.url("/hop"), max_size=10_000)
    assert caught.value.reason == "blocked_address"


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.216.34", True),
        ("127.0.0.1", False),
        ("10.0.0.1", False),
        ("169.254.169.254", False),
        ("::1", False),
        ("::ffff:10.0.0.1", False),
        ("224.0.0.1", False),
        ("2606:4700::1111", True),
    ],
)
def test_is_public_address(address: str, public: bool) -> None:
    assert is_public_address(address) is public


def test_conditional_feed_fetch(site: LocalSite) -> None:
    def feed(request: SiteRequest) -> tuple[int, dict[str, str], bytes]:
        if request.headers.get("if-none-match") == '"v1"':
            return 304, {"ETag": '"v1"'}, b""
        return (
            200,
            {
                "Content-Type": "application/rss+xml",
                "ETag": '"v1"',
                "Last-Modified": "Wed, 13 Mar 2024 00:00:00 GMT",
            },
            b"<rss/>",
        )

    site.route("/feed.rss", feed)
    with build_client(LOCAL) as client:
        first = fetch_feed(client, site.url("/feed.rss"), max_size=10_000)
        assert (first.status, first.etag, first.body) == (200, '"v1"', b"<rss/>")
        second = fetch_feed(
            client,
            site.url("/feed.rss"),
            max_size=10_000,
            etag=first.etag,
            last_modified=first.last_modified,
        )
    assert second.not_modified and second.body == b""
    assert second.last_modified == "Wed, 13 Mar 2024 00:00:00 GMT"
