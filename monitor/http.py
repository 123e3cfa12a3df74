"""The network edge: one configured httpx client, and size- and address-limited GETs.

Every request carries the configured User-Agent and timeout; every hop of a
redirect chain is checked against the address guard; bodies are read as a
stream and cut off at the configured size. Failures become FetchError with a
short `reason` (`http_404`, `timeout`, `too_large`, `blocked_address`…).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from datetime import UTC, datetime

import httpx

from monitor.config import FetchSettings
from monitor.errors import FetchError
from monitor.records import FeedResponse, FetchedPage

FEED_ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, "
    "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.8"
)
PAGE_ACCEPT = "text/html, application/xhtml+xml;q=0.9, */*;q=0.5"
PAGE_CONTENT_TYPES = ("text/html", "application/xhtml+xml", "text/plain", "application/xml")


def build_client(settings: FetchSettings) -> httpx.Client:
    """The one HTTP client a process uses for feeds and pages."""
    hooks = [] if settings.allow_private_addresses else [address_guard()]
    return httpx.Client(
        headers={"User-Agent": settings.user_agent},
        timeout=httpx.Timeout(settings.timeout),
        follow_redirects=True,
        max_redirects=settings.max_redirects,
        event_hooks={"request": hooks},
    )


def is_public_address(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def address_guard(exempt_hosts: frozenset[str] = frozenset()) -> Callable[[httpx.Request], None]:
    """A request hook refusing hosts that resolve to a non-public address (every hop)."""

    def refuse_private_addresses(request: httpx.Request) -> None:
        if request.url.host not in exempt_hosts:
            _check_host(request)

    return refuse_private_addresses


def _check_host(request: httpx.Request) -> None:
    host = request.url.host
    try:
        infos = socket.getaddrinfo(host, request.url.port or 443, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise FetchError(f"cannot resolve {host}: {exc}", reason="dns_error") from None
    for *_, sockaddr in infos:
        if not is_public_address(str(sockaddr[0])):
            raise FetchError(
                f"refused {request.url}: {host} resolves to the non-public address {sockaddr[0]}"
                " (set fetch.allow_private_addresses to allow it)",
                reason="blocked_address",
            )


def fetch_feed(
    client: httpx.Client,
    url: str,
    *,
    max_size: int,
    etag: str | None = None,
    last_modified: str | None = None,
) -> FeedResponse:
    """GET a feed, conditionally when validators are known; 304 gives an empty body."""
    headers = {"Accept": FEED_ACCEPT}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    response, body = _get(client, url, headers=headers, max_size=max_size)
    if response.status_code not in (200, 304):
        raise FetchError(
            _status_message(response),
            reason=f"http_{response.status_code}",
            status=response.status_code,
        )
    return FeedResponse(
        url=str(response.url),
        status=response.status_code,
        body=body,
        headers=dict(response.headers),
        etag=response.headers.get("etag") or (etag if response.status_code == 304 else None),
        last_modified=response.headers.get("last-modified")
        or (last_modified if response.status_code == 304 else None),
    )


def fetch_page(client: httpx.Client, url: str, *, max_size: int) -> FetchedPage:
    """GET an article page; only HTML-like content is accepted."""
    response, body = _get(client, url, headers={"Accept": PAGE_ACCEPT}, max_size=max_size)
    if response.status_code != 200:
        raise FetchError(
            _status_message(response),
            reason=f"http_{response.status_code}",
            status=response.status_code,
        )
    content_type = response.headers.get("content-type")
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if media_type and media_type not in PAGE_CONTENT_TYPES:
        raise FetchError(
            f"{url}: not a web page (Content-Type {media_type})", reason="unsupported_content"
        )
    return FetchedPage(
        url=url,
        final_url=str(response.url),
        status=response.status_code,
        content_type=content_type,
        body=body,
        fetched_at=datetime.now(UTC),
    )


def _status_message(response: httpx.Response) -> str:
    return f"{response.url}: HTTP {response.status_code} {response.reason_phrase}".strip()


def _get(
    client: httpx.Client, url: str, *, headers: dict[str, str], max_size: int
) -> tuple[httpx.Response, bytes]:
    try:
        with client.stream("GET", url, headers=headers) as response:
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > max_size:
                raise _too_large(url, max_size)
            chunks: list[bytes] = []
            received = 0
            for chunk in response.iter_bytes():
                received += len(chunk)
                if received > max_size:
                    raise _too_large(url, max_size)
                chunks.append(chunk)
            return response, b"".join(chunks)
    except httpx.TooManyRedirects:
        raise FetchError(f"{url}: too many redirects", reason="too_many_redirects") from None
    except httpx.TimeoutException:
        raise FetchError(f"{url}: timed out", reason="timeout") from None
    except httpx.InvalidURL as exc:
        raise FetchError(f"{url}: invalid URL: {exc}", reason="invalid_url") from None
    except httpx.UnsupportedProtocol as exc:
        raise FetchError(f"{url}: {exc}", reason="invalid_url") from None
    except httpx.DecodingError as exc:
        raise FetchError(f"{url}: undecodable body: {exc}", reason="bad_encoding") from None
    except httpx.HTTPError as exc:
        raise FetchError(f"{url}: {type(exc).__name__}: {exc}", reason="network_error") from None


def _too_large(url: str, max_size: int) -> FetchError:
    return FetchError(f"{url}: response larger than {max_size} bytes", reason="too_large")
