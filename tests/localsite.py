"""A local fixture web site for end-to-end tests, served on 127.0.0.1.

Serves the files under a root folder (feeds, article pages) the way a real
news site would, records every request, and lets a test override any path
with a handler (status codes, redirects, slow responses).

    with LocalSite(Path("tests/site")) as site:
        site.route("/gone.html", lambda request: (410, {}, b""))
        feed_url = site.url("/feeds/national.rss")
"""

from __future__ import annotations

import hashlib
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from email.utils import formatdate, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import unquote, urlsplit

BASE_PLACEHOLDER = b"{{BASE}}"

CONTENT_TYPES: dict[str, str] = {
    ".rss": "application/rss+xml; charset=utf-8",
    ".atom": "application/atom+xml; charset=utf-8",
    ".rdf": "application/rdf+xml; charset=utf-8",
    ".xml": "application/xml; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".json": "application/json",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".svg": "image/svg+xml",
}
DEFAULT_CONTENT_TYPE = "application/octet-stream"
TEXT_SUFFIXES = frozenset({".xml", ".rss", ".atom", ".rdf", ".html", ".txt"})


@dataclass(frozen=True)
class SiteRequest:
    """One request as the server saw it.

    `path` keeps the query string; header names are lower case.
    """

    method: str
    path: str
    headers: dict[str, str]


Response = tuple[int, Mapping[str, str], bytes | Iterable[bytes]]
"""What a route handler returns: status, headers, body. A body given as an iterable of
chunks is streamed with no Content-Length (unless given) until the client hangs up."""

Handler = Callable[[SiteRequest], Response]


class LocalSite:
    """Serves `root` on an OS-chosen port of 127.0.0.1 from a daemon thread.

    `{{BASE}}` in text files becomes `base_url` when served. A query string
    never changes which file is served; a path ending in `/` serves the
    `index.html` there; a missing file is a 404. Static responses carry an
    ETag and Last-Modified and answer a matching conditional GET with 304.
    """

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self._routes: dict[str, Handler] = {}
        self._requests: list[tuple[str, str, dict[str, str]]] = []
        self._times: list[tuple[float, str]] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # lifecycle

    def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("LocalSite is already started")
        server = _QuietServer(("127.0.0.1", 0), _make_handler_class(self))
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="localsite", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server, self._thread = None, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> LocalSite:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # addresses

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("LocalSite is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def url(self, path: str) -> str:
        """`url("/feeds/national.rss")` -> `http://127.0.0.1:PORT/feeds/national.rss`."""
        return self.base_url + (path if path.startswith("/") else "/" + path)

    # overrides and records

    def route(self, path: str, handler: Handler) -> None:
        """Answer requests for `path` (query string ignored) with `handler` instead of a file."""
        with self._lock:
            self._routes[path] = handler

    @property
    def requests(self) -> list[tuple[str, str, dict[str, str]]]:
        """A copy of every request so far: (method, path with query, headers)."""
        with self._lock:
            return list(self._requests)

    def request_times(self) -> list[tuple[float, str]]:
        """(time.monotonic(), path without query) of every request so far."""
        with self._lock:
            return list(self._times)

    def hits(self, path: str) -> int:
        """How many requests asked for `path`; any query matches unless `path` has one."""
        with self._lock:
            if "?" in path:
                return sum(1 for _, p, _ in self._requests if p == path)
            return sum(1 for _, p, _ in self._requests if p.split("?", 1)[0] == path)

    # used by the request handler

    def _record(self, request: SiteRequest) -> Handler | None:
        with self._lock:
            self._requests.append((request.method, request.path, request.headers))
            self._times.append((time.monotonic(), urlsplit(request.path).path))
            return self._routes.get(urlsplit(request.path).path)

    def _serve_file(self, request: SiteRequest) -> Response:
        url_path = unquote(urlsplit(request.path).path)
        if url_path.endswith("/"):
            url_path += "index.html"
        target = (self.root / url_path.lstrip("/")).resolve()
        if not target.is_relative_to(self.root) or not target.is_file():
            return 404, {"Content-Type": "text/plain; charset=utf-8"}, b"Not Found\n"
        body = target.read_bytes()
        suffix = target.suffix.lower()
        if suffix in TEXT_SUFFIXES:
            body = body.replace(BASE_PLACEHOLDER, self.base_url.encode("ascii"))
        mtime = int(target.stat().st_mtime)
        etag = '"' + hashlib.sha1(body).hexdigest()[:16] + '"'
        headers = {
            "Content-Type": CONTENT_TYPES.get(suffix, DEFAULT_CONTENT_TYPE),
            "ETag": etag,
            "Last-Modified": formatdate(mtime, usegmt=True),
        }
        if _not_modified(request.headers, etag, mtime):
            return 304, headers, b""
        return 200, headers, body


def _not_modified(headers: Mapping[str, str], etag: str, mtime: int) -> bool:
    if "if-none-match" in headers:
        tags = {tag.strip() for tag in headers["if-none-match"].split(",")}
        return etag in tags or "*" in tags
    since = headers.get("if-modified-since")
    if since is None:
        return False
    try:
        return parsedate_to_datetime(since).timestamp() >= mtime
    except (TypeError, ValueError):
        return False


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Client disconnects (timeouts under test) are expected: print nothing."""


def _make_handler_class(site: LocalSite) -> type[BaseHTTPRequestHandler]:
    class _RequestHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "LocalSite/1"
        # Headers and body go out in two writes; with Nagle's algorithm the body waits
        # for the client's delayed ACK (40 ms a response on Linux keep-alive connections).
        disable_nagle_algorithm = True

        def do_GET(self) -> None:
            self._answer(send_body=True)

        def do_HEAD(self) -> None:
            self._answer(send_body=False)

        def _answer(self, *, send_body: bool) -> None:
            headers: dict[str, str] = {}
            for name, value in self.headers.items():
                key = name.lower()
                headers[key] = f"{headers[key]}, {value}" if key in headers else value
            request = SiteRequest(self.command, self.path, headers)
            handler = site._record(request)
            try:
                if handler is not None:
                    status, reply_headers, body = handler(request)
                else:
                    status, reply_headers, body = site._serve_file(request)
            except Exception:  # noqa: BLE001 - a broken test handler becomes a visible 500
                status, reply_headers = 500, {"Content-Type": "text/plain; charset=utf-8"}
                body = traceback.format_exc().encode("utf-8")
            self.send_response(status)
            names = {name.lower() for name in reply_headers}
            for name, value in reply_headers.items():
                self.send_header(name, value)
            if not isinstance(body, bytes):
                self._stream(body if send_body else ())
                return
            if "content-length" not in names:
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if send_body and status not in (204, 304) and status >= 200:
                self.wfile.write(body)

        def _stream(self, chunks: Iterable[bytes]) -> None:
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            try:
                for chunk in chunks:
                    self.wfile.write(chunk)
            except OSError:
                pass  # the client had enough

        def log_message(self, format: str, *args: Any) -> None:
            """Stay quiet: tests read `LocalSite.requests` instead of a log."""

    return _RequestHandler
