"""The network edge: one configured httpx client, and size- and address-limited GETs.

Every request carries the configured User-Agent and timeout; every hop of a
redirect chain is checked against the address guard; bodies are read as a
stream and cut off at the configured size. Failures become FetchError with a
short `reason` (`http_404`, `timeout`, `too_large`, `blocked_address`…).
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from urllib.robotparser import RobotFileParser

import httpx

from monitor.config import FetchSettings
from monitor.errors import FetchError
from monitor.health import parse_retry_after
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


Getter = Callable[..., tuple[httpx.Response, bytes]]


def fetch_feed(
    client: httpx.Client,
    url: str,
    *,
    max_size: int,
    etag: str | None = None,
    last_modified: str | None = None,
    get: Getter | None = None,
) -> FeedResponse:
    """GET a feed, conditionally when validators are known; 304 gives an empty body."""
    headers = {"Accept": FEED_ACCEPT}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    if get is None:
        response, body = _get(client, url, headers=headers, max_size=max_size)
    else:
        response, body = get(url, headers=headers)
    if response.status_code in (429, 503):
        raise FetchError(
            _status_message(response),
            reason=f"http_{response.status_code}",
            status=response.status_code,
            retry_after=parse_retry_after(response.headers.get("retry-after"), datetime.now(UTC)),
        )
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


def fetch_page(
    client: httpx.Client, url: str, *, max_size: int, get: Getter | None = None
) -> FetchedPage:
    """GET an article page; only HTML-like content is accepted."""
    if get is None:
        response, body = _get(client, url, headers={"Accept": PAGE_ACCEPT}, max_size=max_size)
    else:
        response, body = get(url, headers={"Accept": PAGE_ACCEPT})
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
    client: httpx.Client,
    url: str,
    *,
    headers: dict[str, str],
    max_size: int,
    deadline: float | None = None,
) -> tuple[httpx.Response, bytes]:
    """GET with the body read as a stream: cut at `max_size` bytes, and abandoned at the
    `deadline` (time.monotonic()) however slowly the server trickles it."""
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
                if deadline is not None and time.monotonic() > deadline:
                    raise FetchError(f"{url}: took longer than allowed", reason="timeout")
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


class HostLimiter:
    """At most `concurrency` requests in flight per host, and `delay` seconds between the
    starts of two requests to one host; shared by feed and page fetches."""

    def __init__(self, concurrency: int, delay: float) -> None:
        self._concurrency = concurrency
        self._delay = delay
        self._lock = threading.Lock()
        self._slots: dict[str, threading.BoundedSemaphore] = {}
        self._next_start: dict[str, float] = {}

    @contextmanager
    def slot(self, host: str) -> Iterator[None]:
        with self._lock:
            semaphore = self._slots.setdefault(host, threading.BoundedSemaphore(self._concurrency))
        with semaphore:
            with self._lock:
                now = time.monotonic()
                start = max(now, self._next_start.get(host, now))
                self._next_start[host] = start + self._delay
            if start > now:
                time.sleep(start - now)
            yield


class RobotsCache:
    """robots.txt per host, fetched through the same client and limits, kept for a day."""

    KEEP = 24 * 3600.0
    KEEP_AFTER_ERROR = 600.0

    def __init__(self, fetcher: Fetcher) -> None:
        self._fetcher = fetcher
        self._lock = threading.Lock()
        self._rules: dict[str, tuple[float, RobotFileParser]] = {}

    def allows(self, url: str) -> bool:
        parts = httpx.URL(url)
        origin = f"{parts.scheme}://{parts.netloc.decode('ascii')}"
        with self._lock:
            cached = self._rules.get(origin)
        if cached is None or cached[0] < time.monotonic():
            cached = self._load(origin)
            with self._lock:
                self._rules[origin] = cached
        return cached[1].can_fetch(self._fetcher.settings.user_agent, url)

    def _load(self, origin: str) -> tuple[float, RobotFileParser]:
        parser = RobotFileParser()
        try:
            response, body = self._fetcher.get(
                f"{origin}/robots.txt", headers={"Accept": "text/plain"}
            )
        except FetchError:
            parser.parse([])  # unreachable: allow, and ask again soon
            return time.monotonic() + self.KEEP_AFTER_ERROR, parser
        if response.status_code >= 500:
            parser.parse([])
            return time.monotonic() + self.KEEP_AFTER_ERROR, parser
        lines = body.decode("utf-8", "replace").splitlines() if response.status_code == 200 else []
        parser.parse(lines)  # 4xx: no robots.txt, everything allowed
        return time.monotonic() + self.KEEP, parser


class Fetcher:
    """The HTTP side of the pipeline: one client, per-host limits, robots.txt for pages."""

    def __init__(self, settings: FetchSettings) -> None:
        self.settings = settings
        self.client = build_client(settings)
        self.limiter = HostLimiter(settings.per_host_concurrency, settings.per_host_delay)
        self.robots = RobotsCache(self)

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def get(self, url: str, *, headers: dict[str, str]) -> tuple[httpx.Response, bytes]:
        with self.limiter.slot(httpx.URL(url).host):
            return _get(
                self.client,
                url,
                headers=headers,
                max_size=self.settings.max_response_size,
                deadline=time.monotonic() + self.settings.total_timeout,
            )

    def feed(
        self, url: str, *, etag: str | None = None, last_modified: str | None = None
    ) -> FeedResponse:
        return fetch_feed(
            self.client,
            url,
            max_size=self.settings.max_response_size,
            etag=etag,
            last_modified=last_modified,
            get=self.get,
        )

    def page(self, url: str) -> FetchedPage:
        if self.settings.robots_txt and not self.robots.allows(url):
            raise FetchError(f"{url}: disallowed by robots.txt", reason="robots_disallowed")
        return fetch_page(self.client, url, max_size=self.settings.max_response_size, get=self.get)
