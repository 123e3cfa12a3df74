"""The network edge: one configured httpx client, and size- and address-limited GETs.

Every request carries the configured User-Agent and timeout; every hop of a
redirect chain is checked against the address guard; bodies are read as a
stream and cut off at the configured size. Failures become FetchError with a
short `reason` (`http_404`, `timeout`, `too_large`, `blocked_address`…).
"""

from __future__ import annotations

import functools
import html
import itertools
import logging
import re
import socket
import ssl
import threading
import time
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.robotparser import RobotFileParser

import httpcore
import httpx

from monitor.addresses import AddressPolicy
from monitor.config import FetchSettings
from monitor.errors import FetchError, HostWaiting
from monitor.health import parse_retry_after
from monitor.records import (
    MAX_ETAG_LENGTH,
    MAX_LAST_MODIFIED_LENGTH,
    MAX_URL_LENGTH,
    FeedResponse,
    FetchedPage,
)
from monitor.retry import BUSY_STATUSES, RetryPolicy
from monitor.urls import canonical_url, is_home_page

FEED_ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, "
    "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.8"
)
PAGE_ACCEPT = "text/html, application/xhtml+xml;q=0.9, */*;q=0.5"
PAGE_CONTENT_TYPES = (
    "text/html",
    "application/xhtml+xml",
    "text/plain",
    "application/xml",
    "text/xml",
)
# Media types that are never a feed, whatever the server or the feed's author meant:
# refused before a parser sees them.
NOT_FEED_PREFIXES = ("image/", "audio/", "video/", "font/", "model/", "multipart/")
NOT_FEED_TYPES = frozenset(
    {
        "application/pdf",
        "application/zip",
        "application/gzip",
        "application/x-tar",
        "application/msword",
        "application/vnd.ms-excel",
        "application/x-shockwave-flash",
    }
)
# Only encodings we decode ourselves, with the output bounded as it is produced.
ACCEPT_ENCODING = "gzip, deflate"
_DECODE_STEP = 64 * 1024

log = logging.getLogger(__name__)


def build_client(settings: FetchSettings) -> httpx.Client:
    """The one HTTP client a process uses for feeds and pages.

    Unless `allow_private_addresses` is set, every connection goes through the address
    guard: the host name is resolved once, every address it gives is checked, and the
    connection is made to a checked address (so a name that changes its answer between
    a check and the connection cannot slip through). Environment proxies are not used.
    """
    transport = httpx.HTTPTransport(trust_env=False)
    backend = (
        DeadlineBackend()
        if settings.allow_private_addresses
        else GuardedBackend(AddressPolicy.from_settings(settings.private_allowlist))
    )
    # httpx has no public hook for the network backend: give its transport a pool
    # built on ours (the same pool httpx builds, with our backend).
    transport._pool = httpcore.ConnectionPool(
        ssl_context=httpx.create_ssl_context(), network_backend=backend
    )
    return httpx.Client(
        headers={"User-Agent": settings.user_agent, "Accept-Encoding": ACCEPT_ENCODING},
        timeout=httpx.Timeout(settings.timeout),
        follow_redirects=True,
        max_redirects=settings.max_redirects,
        transport=transport,
        trust_env=False,
    )


# When the request this thread is making must be done by (time.monotonic()), for every
# read and write on its connection. httpx's timeouts bound one operation at a time, and
# a server that sends its headers a byte a second, or "100 Continue" forever, starts a
# new one each time: the request itself would never end.
_DEADLINE: ContextVar[float | None] = ContextVar("monitor_request_deadline", default=None)


@contextmanager
def request_deadline(deadline: float | None) -> Iterator[None]:
    """Every read and write of this thread's requests fails by `deadline`."""
    token = _DEADLINE.set(deadline)
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def _within_deadline(timeout: float | None, error: type[Exception]) -> float | None:
    """`timeout`, shortened to what is left of the request's deadline."""
    deadline = _DEADLINE.get()
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if left <= 0:
        raise error("the request took longer than fetch.total_timeout")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    """A connection whose every read and write ends by the request's deadline."""

    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, _within_deadline(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _within_deadline(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        return _DeadlineStream(
            self._stream.start_tls(
                ssl_context, server_hostname, _within_deadline(timeout, httpcore.ConnectTimeout)
            )
        )

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class DeadlineBackend(httpcore.SyncBackend):
    """Connections bounded by the request's deadline (`request_deadline`)."""

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.NetworkStream:
        timeout = _within_deadline(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(
            super().connect_tcp(host, port, timeout, local_address, socket_options)
        )


class GuardedBackend(DeadlineBackend):
    """Connects only to addresses the policy permits: the check is on the address
    actually connected to, for every connection, so for every redirect hop too."""

    def __init__(self, policy: AddressPolicy) -> None:
        self.policy = policy

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.NetworkStream:
        addresses = resolve(host, port)
        for address in addresses:
            if not self.policy.permits(address, port):
                raise FetchError(
                    f"refused {host}:{port}: it resolves to the non-public address {address}"
                    " (set fetch.allow_private_addresses, or list it in"
                    " fetch.private_allowlist, to allow it)",
                    reason="blocked_address",
                )
        failure: httpcore.ConnectError | None = None
        for address in addresses:
            try:
                return super().connect_tcp(address, port, timeout, local_address, socket_options)
            except httpcore.ConnectError as error:
                failure = error
        assert failure is not None  # resolve() never returns an empty list
        raise failure


SocketOption = (
    tuple[int, int, int] | tuple[int, int, bytes | bytearray] | tuple[int, int, None, int]
)


def resolve(host: str, port: int) -> list[str]:
    """Every address `host` has, in the resolver's order."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise FetchError(f"cannot resolve {host}: {exc}", reason="dns_error") from None
    addresses = list(dict.fromkeys(str(sockaddr[0]) for *_, sockaddr in infos))
    if not addresses:
        raise FetchError(f"cannot resolve {host}: no address", reason="dns_error")
    return addresses


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
    if response.status_code == 304 and not (etag or last_modified):
        # A cache in front of the feed that answers 304 to everyone: taken as "nothing
        # new", the feed would look healthy and never be read again.
        raise FetchError(
            f"{url}: answered 304 Not Modified to a request that asked for the whole feed",
            reason="http_304",
            status=304,
        )
    media_type = _media_type(response)
    if response.status_code == 200 and (
        media_type in NOT_FEED_TYPES or media_type.startswith(NOT_FEED_PREFIXES)
    ):
        raise FetchError(
            f"{url}: not a feed (Content-Type {media_type})",
            reason="unsupported_content",
            status=response.status_code,
        )
    if body.startswith(_GZIP_MAGIC) and response.status_code == 200:
        # A gzipped feed file served without Content-Encoding (a static feed.xml.gz).
        body = _gunzipped(url, body, max_size, response.status_code)
    permanent = bool(response.history) and all(
        hop.status_code in (301, 308) for hop in response.history
    )
    return FeedResponse(
        url=str(response.url),
        moved_to=str(response.url) if permanent and str(response.url) != url else None,
        status=response.status_code,
        body=body,
        headers=dict(response.headers),
        etag=_validator(response, "etag", MAX_ETAG_LENGTH)
        or (etag if response.status_code == 304 else None),
        last_modified=_validator(response, "last-modified", MAX_LAST_MODIFIED_LENGTH)
        or (last_modified if response.status_code == 304 else None),
    )


def _validator(response: httpx.Response, header: str, limit: int) -> str | None:
    """A cache validator to send back next time, unless it is longer than the database
    keeps: then the feed is fetched in full each time rather than not at all."""
    value: str | None = response.headers.get(header)
    if value is not None and len(value) > limit:
        log.info(
            "%s: %s of %d characters not kept (at most %d)", response.url, header, len(value), limit
        )
        return None
    return value


def fetch_page(
    client: httpx.Client, url: str, *, max_size: int, get: Getter | None = None
) -> FetchedPage:
    """GET an article page; only HTML-like content is accepted."""
    if get is None:
        response, body = _get(client, url, headers={"Accept": PAGE_ACCEPT}, max_size=max_size)
    else:
        response, body = get(url, headers={"Accept": PAGE_ACCEPT})
    if response.status_code != 200:
        retry_after = None
        message = _status_message(response)
        if response.status_code in BUSY_STATUSES:
            header = response.headers.get("retry-after")
            retry_after = parse_retry_after(header, datetime.now(UTC))
            if retry_after is not None:
                message += f" (Retry-After: {header.strip()})"
        raise FetchError(
            message,
            reason=f"http_{response.status_code}",
            status=response.status_code,
            retry_after=retry_after,
        )
    if len(str(response.url)) > MAX_URL_LENGTH:
        raise FetchError(
            f"{url}: redirected to a URL longer than {MAX_URL_LENGTH} characters",
            reason="invalid_url",
        )
    final_url = str(response.url)
    if is_home_page(final_url) and not is_home_page(url):
        # How many sites answer for an article they removed or moved: its text would be
        # the home page's headlines, and every other such link its copy.
        raise FetchError(
            f"{url}: redirected to the site's home page, {final_url}: the article was"
            " removed or moved",
            reason="redirected_home",
        )
    content_type = response.headers.get("content-type")
    media_type = _media_type(response)
    if media_type and media_type not in PAGE_CONTENT_TYPES:
        raise FetchError(
            f"{url}: not a web page (Content-Type {media_type})",
            reason="unsupported_content",
            status=response.status_code,
        )
    return FetchedPage(
        url=url,
        final_url=final_url,
        status=response.status_code,
        content_type=content_type,
        body=body,
        fetched_at=datetime.now(UTC),
    )


def _media_type(response: httpx.Response) -> str:
    content_type: str = response.headers.get("content-type", "")
    return content_type.split(";", 1)[0].strip().lower()


def _status_message(response: httpx.Response) -> str:
    return f"{response.url}: HTTP {response.status_code} {response.reason_phrase}".strip()


def _get(
    client: httpx.Client,
    url: str,
    *,
    headers: dict[str, str],
    max_size: int,
    deadline: float | None = None,
    follow_redirects: bool = True,
) -> tuple[httpx.Response, bytes]:
    """GET with the body read as a stream: cut at `max_size` bytes, and abandoned at the
    `deadline` (time.monotonic()) however slowly the server trickles its headers or body."""
    try:
        with (
            request_deadline(deadline),
            client.stream(
                "GET", url, headers=headers, follow_redirects=follow_redirects
            ) as response,
        ):
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > max_size:
                raise _too_large(url, max_size, response.status_code)
            chunks: list[bytes] = []
            received = 0
            for chunk in _decoded(url, response):
                received += len(chunk)
                if received > max_size:
                    raise _too_large(url, max_size, response.status_code)
                chunks.append(chunk)
            return response, b"".join(chunks)
    except httpx.TooManyRedirects:
        raise FetchError(f"{url}: too many redirects", reason="too_many_redirects") from None
    except httpx.TimeoutException:
        if deadline is not None and time.monotonic() >= deadline:
            raise FetchError(f"{url}: took longer than allowed", reason="timeout") from None
        raise FetchError(f"{url}: timed out", reason="timeout") from None
    except httpx.InvalidURL as exc:
        # `url` was checked before it was asked for: what httpx could not read is the
        # Location of its redirect, which it reads before handing the answer back.
        raise FetchError(
            f"{url}: redirected to an invalid URL: {exc}", reason="invalid_url"
        ) from None
    except httpx.UnsupportedProtocol as exc:
        raise FetchError(f"{url}: {exc}", reason="invalid_url") from None
    except httpx.DecodingError as exc:
        raise FetchError(f"{url}: undecodable body: {exc}", reason="bad_encoding") from None
    except httpx.HTTPError as exc:
        if isinstance(exc, httpx.ConnectError) and _cause_is(exc, socket.gaierror):
            # The resolver's failure under httpx's own connection (private addresses
            # allowed): a name that does not resolve, as the address guard reports it.
            raise FetchError(f"{url}: cannot resolve: {exc}", reason="dns_error") from None
        raise FetchError(f"{url}: {type(exc).__name__}: {exc}", reason="network_error") from None


def _cause_is(error: BaseException, kind: type[BaseException]) -> bool:
    seen: BaseException | None = error
    for _ in range(10):  # a chain, not a cycle
        if seen is None:
            return False
        if isinstance(seen, kind):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _decoded(url: str, response: httpx.Response) -> Iterator[bytes]:
    """The body as it arrives, decompressed here rather than by httpx so that no step
    produces more than `_DECODE_STEP` bytes from however small a compressed input: a
    gzip bomb is cut off at the size limit like any other large body."""
    codings = [
        coding.strip().lower()
        for coding in response.headers.get("content-encoding", "").split(",")
        if coding.strip() and coding.strip().lower() != "identity"
    ]
    if not codings:
        yield from response.iter_raw()
        return
    if len(codings) > 1 or codings[0] not in ("gzip", "x-gzip", "deflate"):
        raise FetchError(
            f"{url}: unsupported Content-Encoding {', '.join(codings)}", reason="bad_encoding"
        )
    decoder = _Inflater(gzip=codings[0] != "deflate")
    for raw in response.iter_raw():
        yield from decoder.feed(raw)
    yield from decoder.finish()


class _Inflater:
    """gzip (several members too) or deflate (zlib-wrapped or raw), in bounded steps."""

    def __init__(self, *, gzip: bool) -> None:
        self._gzip = gzip
        self._inflater: zlib._Decompress | None = (
            zlib.decompressobj(16 + zlib.MAX_WBITS) if gzip else None
        )

    def feed(self, data: bytes) -> Iterator[bytes]:
        try:
            while data:
                if self._inflater is None:
                    # Some servers send raw deflate as "deflate": a zlib header tells.
                    wrapped = (
                        len(data) > 1
                        and data[0] & 0x0F == 8
                        and (data[0] * 256 + data[1]) % 31 == 0
                    )
                    self._inflater = zlib.decompressobj(
                        zlib.MAX_WBITS if wrapped else -zlib.MAX_WBITS
                    )
                output = self._inflater.decompress(data, _DECODE_STEP)
                if output:
                    yield output
                if self._inflater.eof:
                    data = self._inflater.unused_data
                    if not (self._gzip and data.startswith(b"\x1f\x8b")):
                        return  # what follows the end of the stream is ignored
                    self._inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)  # next member
                    continue
                data = self._inflater.unconsumed_tail
                if not data and len(output) == _DECODE_STEP:  # more output may be pending
                    while pending := self._inflater.decompress(b"", _DECODE_STEP):
                        yield pending
        except zlib.error as exc:
            raise FetchError(f"undecodable compressed body: {exc}", reason="bad_encoding") from None

    def finish(self) -> Iterator[bytes]:
        if self._inflater is None:
            return
        try:
            while pending := self._inflater.flush(_DECODE_STEP):
                yield pending
                if len(pending) < _DECODE_STEP:
                    return
        except zlib.error as exc:
            raise FetchError(f"undecodable compressed body: {exc}", reason="bad_encoding") from None


_GZIP_MAGIC = b"\x1f\x8b"


def _gunzipped(url: str, body: bytes, max_size: int, status: int) -> bytes:
    """A gzip body decompressed within `max_size`, as a Content-Encoding would be."""
    inflater = _Inflater(gzip=True)
    chunks: list[bytes] = []
    received = 0
    for chunk in itertools.chain(inflater.feed(body), inflater.finish()):
        received += len(chunk)
        if received > max_size:
            raise _too_large(url, max_size, status)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(url: str, max_size: int, status: int) -> FetchError:
    return FetchError(
        f"{url}: response larger than {max_size} bytes", reason="too_large", status=status
    )


class _HostSlot:
    __slots__ = ("next_start", "semaphore", "users")

    def __init__(self, concurrency: int) -> None:
        self.semaphore = threading.BoundedSemaphore(concurrency)
        self.next_start = 0.0
        self.users = 0  # requests holding or waiting for the semaphore


class HostLimiter:
    """At most `concurrency` requests in flight per host, and `delay` seconds between the
    starts of two requests to one host; shared by feed and page fetches.

    A host's state goes once no request holds or waits for it and its delay has run
    out (looked for every `SWEEP_EVERY` requests): articles link to ever more hosts,
    and a daemon that kept one for each would grow for as long as it runs."""

    SWEEP_EVERY = 256

    def __init__(self, concurrency: int, delay: float) -> None:
        self._concurrency = concurrency
        self._delay = delay
        self._lock = threading.Lock()
        self._hosts: dict[str, _HostSlot] = {}
        self._finished = 0

    @property
    def hosts_held(self) -> int:
        """Hosts whose state is kept now."""
        with self._lock:
            return len(self._hosts)

    @contextmanager
    def slot(self, host: str) -> Iterator[None]:
        with self._lock:
            state = self._hosts.get(host)
            if state is None:
                state = self._hosts[host] = _HostSlot(self._concurrency)
            state.users += 1
        try:
            with state.semaphore:
                with self._lock:
                    now = time.monotonic()
                    start = max(now, state.next_start)
                    state.next_start = start + self._delay
                if start > now:
                    time.sleep(start - now)
                yield
        finally:
            with self._lock:
                state.users -= 1
                self._finished += 1
                if self._finished % self.SWEEP_EVERY == 0:
                    self._forget_idle_hosts(time.monotonic())

    def _forget_idle_hosts(self, now: float) -> None:
        idle = [
            host
            for host, state in self._hosts.items()
            if state.users == 0 and state.next_start <= now
        ]
        for host in idle:
            del self._hosts[host]


class HostWaits:
    """Hosts that answered a page 429 or 503, and until when their other pages wait.

    A rate limit or an outage is the host's, not one page's: the pages of a host that
    asked to wait are not asked for before its time, in this poll or the next ones of
    this process (the entries themselves wait in the database, `entries.next_attempt_at`).
    A host is forgotten once its time has passed."""

    SWEEP_AT = 1024

    def __init__(self, policy: RetryPolicy) -> None:
        self._policy = policy
        self._lock = threading.Lock()
        self._until: dict[str, tuple[datetime, str]] = {}

    def adopt(self, other: HostWaits) -> None:
        """Keep the waits `other` knows of."""
        with other._lock:
            until = dict(other._until)
        with self._lock:
            self._until = until

    def hold(self, host: str, response: httpx.Response) -> None:
        """`host` answered `response` (429 or 503): leave it alone for its Retry-After, or
        without one, for the first retry delay."""
        now = datetime.now(UTC)
        header = response.headers.get("retry-after")
        retry_after = parse_retry_after(header, now)
        wait = self._policy.host_wait(retry_after)
        cause = f"HTTP {response.status_code}, " + (
            f"Retry-After {header.strip()}" if retry_after is not None else "no Retry-After"
        )
        until = now + timedelta(seconds=wait)
        with self._lock:
            held = self._until.get(host)
            if held is None or held[0] < until:
                self._until[host] = (until, cause)
            if len(self._until) > self.SWEEP_AT:
                for name in [name for name, (due, _) in self._until.items() if due <= now]:
                    del self._until[name]
        log.info(
            "host asked to wait: %s: %s; its pages wait until %s",
            host,
            cause,
            until.isoformat(timespec="seconds"),
        )

    def check(self, url: str, host: str) -> None:
        """Raise HostWaiting when `host` still asks to be left alone."""
        with self._lock:
            held = self._until.get(host)
            if held is not None and held[0] <= datetime.now(UTC):
                del self._until[host]
                held = None
        if held is not None:
            until, cause = held
            raise HostWaiting(
                f"{url}: not fetched: {host} asked to wait until"
                f" {until:%Y-%m-%d %H:%M:%S} UTC ({cause})",
                until=until,
                cause=cause,
            )

    @property
    def hosts_held(self) -> int:
        with self._lock:
            return len(self._until)


class RobotsCache:
    """robots.txt per host, fetched through the same client and limits, kept for a day,
    for the `capacity` hosts asked about most recently: articles link to ever more
    hosts, and a daemon that kept every one would grow for as long as it runs."""

    KEEP = 24 * 3600.0
    KEEP_AFTER_ERROR = 600.0
    CAPACITY = 1024

    def __init__(self, fetcher: Fetcher, *, capacity: int = CAPACITY) -> None:
        self._fetcher = fetcher
        self._capacity = capacity
        self._lock = threading.Lock()
        self._rules: OrderedDict[str, tuple[float, RobotFileParser]] = OrderedDict()

    def adopt(self, other: RobotsCache) -> None:
        """Keep the files `other` holds, until they would have expired there."""
        with other._lock:
            rules = OrderedDict(other._rules)
        with self._lock:
            self._rules = rules

    def allows(self, url: str) -> bool:
        parts = httpx.URL(url)
        origin = f"{parts.scheme}://{parts.netloc.decode('ascii')}"
        with self._lock:
            cached = self._rules.get(origin)
            if cached is not None:
                self._rules.move_to_end(origin)
        if cached is None or cached[0] < time.monotonic():
            cached = self._load(origin)
            with self._lock:
                self._rules[origin] = cached
                self._rules.move_to_end(origin)
                while len(self._rules) > self._capacity:
                    self._rules.popitem(last=False)
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
        self.waits = HostWaits(
            RetryPolicy(first=settings.retry_delay, longest=settings.max_backoff)
        )

    def renewed(self, settings: FetchSettings) -> Fetcher:
        """A fetcher with new settings that remembers what hosts said to this one: their
        robots.txt (asked with the new user agent: it is the agent that is judged, not the
        file) and the waits they asked for. An edit of `[fetch]` would otherwise fetch
        every host's robots.txt again at once, and ask a rate-limited host again."""
        renewed = Fetcher(settings)
        renewed.robots.adopt(self.robots)
        renewed.waits.adopt(self.waits)
        return renewed

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def get(
        self,
        url: str,
        *,
        headers: dict[str, str],
        allowed: Callable[[str], None] | None = None,
        waits: HostWaits | None = None,
        follow_refresh: bool = False,
    ) -> tuple[httpx.Response, bytes]:
        """GET `url`, following redirects one hop at a time: each hop waits for its own
        host's turn (an aggregator's link must not reach the publisher outside its
        limits) and is first passed to `allowed` (robots.txt for pages), which raises to
        refuse it. With `waits` (pages), a hop to a host that asked to wait is not made
        (HostWaiting), and a 429 or 503 makes its host wait. With `follow_refresh`
        (pages), an HTML page's `<meta http-equiv="refresh">` to another address within
        REFRESH_WITHIN seconds is a hop as well. The response's `history` holds the
        redirects, as httpx's would."""
        deadline = time.monotonic() + self.settings.total_timeout
        history: list[httpx.Response] = []
        while True:
            host = httpx.URL(url).host
            if waits is not None:
                waits.check(url, host)  # before robots.txt is asked for, too
            if allowed is not None:
                allowed(url)
            with self.limiter.slot(host):
                # Checked once this hop's turn has come: another page of the host may
                # have been told to wait meanwhile.
                if waits is not None:
                    waits.check(url, host)
                response, body = _get(
                    self.client,
                    url,
                    headers=headers,
                    max_size=self.settings.max_response_size,
                    deadline=deadline,
                    follow_redirects=False,
                )
                # Before the slot is given up: the host's next request must see it.
                if waits is not None and response.status_code in BUSY_STATUSES:
                    waits.hold(host, response)
            location = response.headers.get("location") if response.is_redirect else None
            if location is None and follow_refresh and response.status_code == 200:
                location = refresh_target(url, response.headers.get("content-type"), body)
            if location is None:
                response.history = history
                return response, body
            if len(history) >= self.settings.max_redirects:
                raise FetchError(
                    f"{url}: too many redirects",
                    reason="too_many_redirects",
                    status=response.status_code,
                )
            history.append(response)
            url = _redirect_target(url, location)

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
        get: Getter = functools.partial(self.get, waits=self.waits, follow_refresh=True)
        if self.settings.robots_txt:
            get = functools.partial(
                self.get, allowed=self._robots_allow, waits=self.waits, follow_refresh=True
            )
        return fetch_page(self.client, url, max_size=self.settings.max_response_size, get=get)

    def _robots_allow(self, url: str) -> None:
        if not self.robots.allows(url):
            raise FetchError(f"{url}: disallowed by robots.txt", reason="robots_disallowed")


# A `<meta http-equiv="refresh">` sooner than this is a redirect (a stub page that
# forwards to the article); later, a page that reloads itself or moves on after reading.
REFRESH_WITHIN = 10
_META_TAG = re.compile(rb"<meta\b[^>]*>", re.IGNORECASE)
_REFRESH = re.compile(rb"""http-equiv\s*=\s*["']?refresh\b""", re.IGNORECASE)
_CONTENT = re.compile(rb"""\bcontent\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))""", re.IGNORECASE)
_DELAY_AND_URL = re.compile(
    rb"""^\s*(\d+)(?:\.\d*)?\s*[;,]?\s*(?:url\s*=\s*)?["']?([^"'\s][^"']*)""", re.IGNORECASE
)
_NOSCRIPT = re.compile(rb"<noscript\b.*?(?:</noscript\s*>|$)", re.IGNORECASE | re.DOTALL)
# Where a page's head is: a refresh further down is not the page's own.
_HEAD_BYTES = 16 * 1024


def refresh_target(url: str, content_type: str | None, body: bytes) -> str | None:
    """The address an HTML page's meta refresh sends to within REFRESH_WITHIN seconds,
    when it is another page; else None."""
    if content_type and "html" not in content_type.lower():
        return None
    # Not one in <noscript>: "please enable JavaScript", for browsers that run none; the
    # page itself is the article.
    head = _NOSCRIPT.sub(b"", body[:_HEAD_BYTES])
    for tag in _META_TAG.findall(head):
        if not _REFRESH.search(tag) or not (content := _CONTENT.search(tag)):
            continue
        value = content[1] or content[2] or content[3] or b""
        found = _DELAY_AND_URL.match(value)
        if found is None or int(found[1]) > REFRESH_WITHIN:
            continue
        location = html.unescape(found[2].decode("utf-8", "replace")).strip()
        try:
            target = _redirect_target(url, location)
            if canonical_url(target) != canonical_url(url):  # not itself, tracked or not
                return location
        except FetchError:
            continue  # nowhere a page can be fetched from ("javascript:…")
    return None


def _redirect_target(url: str, location: str) -> str:
    """Where a redirect from `url` leads: an http(s) URL, fragment dropped."""
    try:
        target = httpx.URL(url).join(location.strip()).copy_with(fragment=None)
    except (httpx.InvalidURL, ValueError) as exc:
        raise FetchError(
            f"{url}: invalid redirect to {location!r}: {exc}", reason="invalid_url"
        ) from None
    if target.scheme not in ("http", "https"):
        raise FetchError(
            f"{url}: redirect to {location!r}: not an http(s) URL", reason="invalid_url"
        )
    if target.port is not None and not 0 < target.port < 65536:
        raise FetchError(f"{url}: redirect to {location!r}: no such port", reason="invalid_url")
    if len(str(target)) > MAX_URL_LENGTH:
        # Refused before it is asked for, whatever it would answer.
        raise FetchError(
            f"{url}: redirected to a URL longer than {MAX_URL_LENGTH} characters",
            reason="invalid_url",
        )
    return str(target)
