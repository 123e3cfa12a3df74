"""The network edge against a local server: statuses, redirects, limits, the address guard."""

from __future__ import annotations

import contextlib
import gzip
import socket
import threading
import time
import tracemalloc
import zlib
from collections.abc import Callable

import pytest

from monitor.addresses import is_public_address
from monitor.config import FetchSettings
from monitor.errors import FetchError
from monitor.http import Fetcher, build_client, fetch_feed, fetch_page
from monitor.retry import is_transient
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


def test_a_redirect_to_an_overlong_url_is_refused_before_it_is_requested(
    site: LocalSite,
) -> None:
    # A schema audit: the overlong URL was requested, and its 404 (or 429) became the
    # entry's reason instead of invalid_url.
    long_path = "/" + "r" * 2_100
    site.route("/short", lambda _: (301, {"Location": site.url(long_path)}, b""))
    with Fetcher(LOCAL) as fetcher, pytest.raises(FetchError) as caught:
        fetcher.page(site.url("/short"))
    assert caught.value.reason == "invalid_url"
    assert "longer than 2048 characters" in str(caught.value)
    assert site.hits(long_path) == 0


def test_a_meta_refresh_to_another_page_is_followed_as_a_redirect(site: LocalSite) -> None:
    # An audit: a stub page forwarding with <meta http-equiv="refresh"> failed as
    # no_article_text, and its target was never asked for.
    site.route(
        "/stub",
        lambda _: html(
            '<html><head><meta content="0; URL=\'/story?id=7&amp;p=1\'" HTTP-EQUIV="Refresh">'
            "</head><body>Redirecting…</body></html>"
        ),
    )
    site.route("/story", lambda _: html())
    site.route("/reloads", lambda _: html('<meta http-equiv="refresh" content="300; url=/story">'))
    site.route(
        "/itself", lambda _: html('<meta http-equiv="refresh" content="0; url=/itself#top">')
    )
    site.route(  # a second audit: its own address with a tracking parameter
        "/tracked",
        lambda _: html('<meta http-equiv="refresh" content="5; url=/tracked?utm_source=x">'),
    )
    site.route(
        "/nowhere", lambda _: html('<meta http-equiv="refresh" content="0;url=javascript:x">')
    )
    # trafilatura's corpus: a German magazine's "enable JavaScript" page, for browsers
    # without it; the page is the article.
    site.route(
        "/noscript",
        lambda _: html(
            '<html><head><noscript><meta http-equiv="refresh" content="0; url=/enable-js">'
            "</noscript></head><body><p>The article.</p></body></html>"
        ),
    )
    site.route("/loop", lambda _: html('<meta http-equiv="refresh" content="0; url=/loop2">'))
    site.route("/loop2", lambda _: html('<meta http-equiv="refresh" content="0; url=/loop">'))
    with Fetcher(LOCAL.model_copy(update={"per_host_delay": 0})) as fetcher:
        page = fetcher.page(site.url("/stub"))
        assert page.final_url == site.url("/story?id=7&p=1")
        assert page.body == b"<html><body><p>Hello</p></body></html>"
        for stays in ("/reloads", "/itself", "/tracked", "/nowhere", "/noscript"):
            assert fetcher.page(site.url(stays)).final_url == site.url(stays)
        with pytest.raises(FetchError) as caught:
            fetcher.page(site.url("/loop"))
        assert caught.value.reason == "too_many_redirects"
        # A feed is not a page: its fetch follows HTTP redirects only.
        assert fetcher.get(site.url("/stub"), headers={})[0].url == site.url("/stub")


def test_an_article_redirected_to_the_sites_home_page_is_no_article(site: LocalSite) -> None:
    # An audit: a removed story answered 301 to the home page, which was stored as the
    # article (the home page's headlines as its text), and the next removed story became
    # its copy.
    site.route("/story/removed", lambda _: (301, {"Location": site.url("/")}, b""))
    site.route("/story/stub", lambda _: html('<meta http-equiv="refresh" content="0; url=/">'))
    site.route("/", lambda _: html())
    site.route("/story/moved", lambda _: (301, {"Location": site.url("/?p=7")}, b""))
    with Fetcher(LOCAL.model_copy(update={"per_host_delay": 0})) as fetcher:
        for removed in ("/story/removed", "/story/stub"):
            with pytest.raises(FetchError) as caught:
                fetcher.page(site.url(removed))
            assert caught.value.reason == "redirected_home"
            assert not is_transient(caught.value)
            assert "redirected to the site's home page" in str(caught.value)
        # The home page asked for is a page like any other; a query is another page.
        assert fetcher.page(site.url("/")).final_url == site.url("/")
        assert fetcher.page(site.url("/story/moved")).final_url == site.url("/?p=7")


@pytest.mark.parametrize("allow_private", [True, False])
def test_a_name_that_does_not_resolve_is_a_dns_error(allow_private: bool) -> None:
    # An audit: with private addresses allowed (httpx's own connection, not the address
    # guard's), it was a network_error. ".invalid" never resolves (RFC 2606).
    settings = LOCAL.model_copy(update={"allow_private_addresses": allow_private})
    with build_client(settings) as client, pytest.raises(FetchError) as caught:
        fetch_page(client, "http://no-such-host.invalid/a", max_size=10_000)
    assert caught.value.reason == "dns_error", caught.value


@pytest.mark.parametrize("location", ["http://127.0.0.1:99999/x", "javascript:alert(1)"])
def test_a_redirect_to_no_possible_address_is_an_invalid_url(
    site: LocalSite, location: str
) -> None:
    # A feeds audit: a redirect to port 99999 was reported as a blocked private address.
    site.route("/hop", lambda _: (302, {"Location": location}, b""))
    with Fetcher(LOCAL) as fetcher, pytest.raises(FetchError) as caught:
        fetcher.page(site.url("/hop"))
    assert caught.value.reason == "invalid_url"
    assert "redirect" in str(caught.value), caught.value


def test_declared_size_over_the_limit(site: LocalSite) -> None:
    site.route("/big", lambda _: html("x" * 50_000))
    with build_client(LOCAL) as client, pytest.raises(FetchError) as caught:
        fetch_page(client, site.url("/big"), max_size=10_000)
    assert caught.value.reason == "too_large"
    # The server answered: feeds.last_status says so (an audit saw "-", as for no answer).
    assert caught.value.status == 200


def test_non_html_page_is_refused(site: LocalSite) -> None:
    site.route("/file.pdf", lambda _: (200, {"Content-Type": "application/pdf"}, b"%PDF-1.4"))
    with build_client(LOCAL) as client, pytest.raises(FetchError) as caught:
        fetch_page(client, site.url("/file.pdf"), max_size=10_000)
    assert (caught.value.reason, caught.value.status) == ("unsupported_content", 200)


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


def guarded(site: LocalSite, **changes: object) -> FetchSettings:
    """The default guard, with only the local test site's own port allowed."""
    port = site.base_url.rsplit(":", 1)[1]
    return FetchSettings(private_allowlist=(f"127.0.0.1:{port}",), timeout=2).model_copy(
        update=changes
    )


@pytest.mark.parametrize(
    "target",
    [
        "http://127.0.0.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/",
        "http://[::ffff:10.0.0.1]/",
        "http://[::ffff:127.0.0.1]:{port}/page",
        "http://0.0.0.0:{port}/page",
        "http://localhost:1/",
        "http://224.0.0.1/",
        "http://[fe80::1]/",
    ],
)
def test_non_public_targets_are_refused(site: LocalSite, target: str) -> None:
    port = site.base_url.rsplit(":", 1)[1]
    with build_client(guarded(site)) as client, pytest.raises(FetchError) as caught:
        fetch_page(client, target.format(port=port), max_size=10_000)
    assert caught.value.reason == "blocked_address", caught.value
    assert site.requests == []


def test_the_allowlist_admits_one_port_only(site: LocalSite) -> None:
    site.route("/page", lambda _: html())
    with build_client(guarded(site)) as client:
        assert fetch_page(client, site.url("/page"), max_size=10_000).status == 200


def test_redirect_to_a_private_address_is_refused(site: LocalSite) -> None:
    # The first hop is allowed (the operator listed it); the guard sees every hop.
    site.route(
        "/hop", lambda _: (302, {"Location": "http://169.254.169.254/latest/meta-data/"}, b"")
    )
    with build_client(guarded(site)) as client, pytest.raises(FetchError) as caught:
        fetch_page(client, site.url("/hop"), max_size=10_000)
    assert caught.value.reason == "blocked_address"
    assert [path for _, path, _ in site.requests] == ["/hop"]


def test_the_address_checked_is_the_address_connected_to(
    site: LocalSite, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DNS rebinding: a name that answers a public address, then a private one. The guard
    resolves once per connection and connects to the address it checked."""
    answers = iter(["93.184.216.34", "127.0.0.1"])
    real = socket.getaddrinfo

    def rebinding(host: str, port: object, *args: object, **kwargs: object) -> object:
        if host == "rebind.example":
            address = next(answers)
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]
        return real(host, port, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    url = f"http://rebind.example:{site.base_url.rsplit(':', 1)[1]}/page"
    with build_client(FetchSettings(timeout=0.5)) as client:
        with pytest.raises(FetchError) as first:
            fetch_page(client, url, max_size=10_000)  # public: connects there (unreachable)
        assert first.value.reason in ("network_error", "timeout")
        with pytest.raises(FetchError) as second:
            fetch_page(client, url, max_size=10_000)  # now private: refused
        assert second.value.reason == "blocked_address"
    assert site.requests == []  # never reached the private address


def test_allowlist_entries_are_checked() -> None:
    with pytest.raises(ValueError, match="host names are not accepted"):
        FetchSettings(private_allowlist=("intranet.example",))
    with pytest.raises(ValueError, match="port"):
        FetchSettings(private_allowlist=("10.0.0.1:http",))
    assert FetchSettings(private_allowlist=("10.0.0.0/8", "[fd00::1]:8080")).private_allowlist


def gzip_bytes(size: int, *, members: int = 1) -> bytes:
    """`size` zero bytes, gzip-compressed (1 GB of zeros is about 1 MB)."""
    out = b""
    for _ in range(members):
        compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        block = bytes(1024 * 1024)
        parts = [compressor.compress(block) for _ in range(size // len(block))]
        out += b"".join(parts) + compressor.flush()
    return out


def test_a_gzip_bomb_is_cut_off_at_the_size_limit_in_bounded_memory(site: LocalSite) -> None:
    bomb = gzip_bytes(512 * 1024 * 1024)  # 512 MiB of zeros in about 500 KB
    site.route(
        "/bomb",
        lambda _: (200, {"Content-Type": "text/html", "Content-Encoding": "gzip"}, bomb),
    )
    tracemalloc.start()
    try:
        with build_client(LOCAL) as client, pytest.raises(FetchError) as caught:
            fetch_page(client, site.url("/bomb"), max_size=1_000_000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert caught.value.reason == "too_large"
    assert peak < 8_000_000  # the size limit and a decoding step, not 512 MiB


@pytest.mark.parametrize(
    ("encoding", "body"),
    [
        ("gzip", gzip.compress(b"<p>first</p>") + gzip.compress(b"<p>second</p>")),
        ("deflate", zlib.compress(b"<p>first</p><p>second</p>")),
        ("deflate", zlib.compress(b"<p>first</p><p>second</p>")[2:-4]),  # raw deflate
        ("identity", b"<p>first</p><p>second</p>"),
    ],
    ids=["gzip-two-members", "zlib", "raw-deflate", "identity"],
)
def test_compressed_bodies_are_decoded(site: LocalSite, encoding: str, body: bytes) -> None:
    site.route(
        "/c", lambda _: (200, {"Content-Type": "text/html", "Content-Encoding": encoding}, body)
    )
    with build_client(LOCAL) as client:
        page = fetch_page(client, site.url("/c"), max_size=10_000)
    assert page.body == b"<p>first</p><p>second</p>"


@pytest.mark.parametrize(
    ("encoding", "body"),
    [
        ("gzip, gzip", gzip.compress(gzip.compress(b"x"))),  # a bomb squared, if decoded
        ("br", b"\x0b\x00\x80hello\x03"),
        ("gzip", b"\x1f\x8bnot really gzip"),
    ],
)
def test_unsupported_or_broken_encodings_are_recorded(
    site: LocalSite, encoding: str, body: bytes
) -> None:
    site.route(
        "/c", lambda _: (200, {"Content-Type": "text/html", "Content-Encoding": encoding}, body)
    )
    with build_client(LOCAL) as client, pytest.raises(FetchError) as caught:
        fetch_page(client, site.url("/c"), max_size=10_000)
    assert caught.value.reason == "bad_encoding"


def test_a_feed_that_is_an_image_is_refused_before_parsing(site: LocalSite) -> None:
    site.route("/feed", lambda _: (200, {"Content-Type": "image/png"}, b"\x89PNG\r\n"))
    with build_client(LOCAL) as client, pytest.raises(FetchError) as caught:
        fetch_feed(client, site.url("/feed"), max_size=10_000)
    assert (caught.value.reason, caught.value.status) == ("unsupported_content", 200)


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


def test_validators_longer_than_the_database_keeps_are_not_sent_back(site: LocalSite) -> None:
    # An audit's server sent a 1,502-character ETag: kept, it stopped PostgreSQL's write of
    # the poll (varchar 1024), and the feed was never polled again.
    long_etag = '"' + "e" * 1500 + '"'
    site.route(
        "/feed.rss",
        lambda _: (
            200,
            {"Content-Type": "application/rss+xml", "ETag": long_etag, "Last-Modified": "x" * 300},
            b"<rss/>",
        ),
    )
    with build_client(LOCAL) as client:
        response = fetch_feed(client, site.url("/feed.rss"), max_size=10_000)
    assert (response.status, response.etag, response.last_modified) == (200, None, None)


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


def test_a_304_to_a_request_for_the_whole_feed_is_an_error(site: LocalSite) -> None:
    # An audit: a cache answering 304 to every request left the feed "ok" for ever,
    # its new items never read (each poll after revalidate_after asks for the whole feed).
    site.route("/feed.rss", lambda _: (304, {}, b""))
    with build_client(LOCAL) as client:
        with pytest.raises(FetchError) as raised:
            fetch_feed(client, site.url("/feed.rss"), max_size=10_000)
        assert raised.value.reason == "http_304" and raised.value.status == 304
        assert "asked for the whole feed" in str(raised.value)
        conditional = fetch_feed(client, site.url("/feed.rss"), max_size=10_000, etag='"v1"')
    assert conditional.not_modified


def test_a_gzipped_feed_without_content_encoding_is_read(site: LocalSite) -> None:
    # An audit: a static feed.xml.gz served as application/rss+xml, no Content-Encoding,
    # failed as "undecodable: no declared encoding reads the bytes".
    feed = b"<rss version='2.0'><channel><title>T</title></channel></rss>"
    site.route(
        "/feed.rss", lambda _: (200, {"Content-Type": "application/rss+xml"}, gzip.compress(feed))
    )
    site.route("/bomb.rss", lambda _: (200, {}, gzip.compress(b" " * 200_000)))
    with build_client(LOCAL) as client:
        assert fetch_feed(client, site.url("/feed.rss"), max_size=10_000).body == feed
        with pytest.raises(FetchError) as caught:
            fetch_feed(client, site.url("/bomb.rss"), max_size=10_000)
    assert caught.value.reason == "too_large"


def test_an_xhtml_page_served_as_text_xml_is_a_web_page(site: LocalSite) -> None:
    # docs/security.md accepts XML pages; "text/xml" was refused while "application/xml" was not.
    page = b"<html xmlns='http://www.w3.org/1999/xhtml'><body><p>Raid</p></body></html>"
    site.route("/a.xhtml", lambda _: (200, {"Content-Type": "text/xml; charset=utf-8"}, page))
    with build_client(LOCAL) as client:
        assert fetch_page(client, site.url("/a.xhtml"), max_size=10_000).body == page


def test_a_renewed_fetcher_remembers_robots_and_host_waits(site: LocalSite) -> None:
    # An operator audit: any edit of [fetch] fetched every host's robots.txt again.
    site.route(
        "/robots.txt",
        lambda _: (200, {"Content-Type": "text/plain"}, b"User-agent: *\nDisallow: /private/\n"),
    )
    with Fetcher(LOCAL) as fetcher:
        assert fetcher.robots.allows(site.url("/a.html"))
        assert not fetcher.robots.allows(site.url("/private/a.html"))
        renewed = fetcher.renewed(LOCAL.model_copy(update={"timeout": 7.0}))
    with renewed:
        assert not renewed.robots.allows(site.url("/private/b.html"))
        assert renewed.settings.timeout == 7.0
    assert site.hits("/robots.txt") == 1


def _raw_server(answer: Callable[[socket.socket], None]) -> tuple[str, threading.Event]:
    """A server on 127.0.0.1 that reads a request and then runs `answer` on the socket,
    until the client hangs up or the returned event is set."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        with listener:
            listener.settimeout(0.2)
            while not stop.is_set():
                try:
                    connection, _ = listener.accept()
                except TimeoutError:
                    continue
                with connection:
                    connection.recv(65536)
                    with contextlib.suppress(OSError):  # the client gave up, as it should
                        answer(connection)

    threading.Thread(target=serve, daemon=True).start()
    return f"http://127.0.0.1:{listener.getsockname()[1]}/article.html", stop


def _headers_a_byte_a_second(connection: socket.socket) -> None:
    for byte in b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nX-Padding: " + b"x" * 600:
        connection.sendall(bytes([byte]))
        time.sleep(0.3)


def _continue_forever(connection: socket.socket) -> None:
    for _ in range(600):
        connection.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        time.sleep(0.3)


@pytest.mark.parametrize("answer", [_headers_a_byte_a_second, _continue_forever])
@pytest.mark.parametrize("guarded", [True, False])
def test_a_server_trickling_its_headers_is_cut_at_the_total_timeout(
    answer: Callable[[socket.socket], None], guarded: bool
) -> None:
    # An audit: each byte (or each "100 Continue") started a new read timeout, so the
    # request never ended, and its poll held a slot of max_concurrent_polls for good.
    url, stop = _raw_server(answer)
    port = url.split(":")[2].split("/")[0]
    settings = FetchSettings(
        timeout=5,
        total_timeout=2,
        robots_txt=False,
        per_host_delay=0,
        **(
            {"private_allowlist": (f"127.0.0.1:{port}",)}
            if guarded
            else {"allow_private_addresses": True}
        ),
    )
    started = time.monotonic()
    try:
        with Fetcher(settings) as fetcher, pytest.raises(FetchError) as caught:
            fetcher.page(url)
    finally:
        stop.set()
    assert caught.value.reason == "timeout"
    assert "took longer than allowed" in str(caught.value)
    assert time.monotonic() - started < 4
