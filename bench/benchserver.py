"""A fast local web site for the benchmarks, served from its own process.

    with ServerProcess(root) as server:            # python -m bench.benchserver --root …
        server.url("/feeds/feed-1.rss")
        server.stats()                              # requests served, the server's CPU time

Every file under `root` is read into memory once (`{{BASE}}` replaced by the server's
URL, an ETag computed), so a request costs a dictionary look-up and a socket write, and
the measurement's process never shares its GIL with the server. A conditional GET whose
If-None-Match holds the ETag is answered 304. `/robots.txt` and unknown paths are 404.

With `--poll-feeds N` it also serves the polling benchmark's feeds (bench/polling.py):

- `/poll/static/feed-F.rss`: the same `--poll-items` items on every request (304 once
  monitor holds its ETag);
- `/poll/live/feed-F.rss`: a window of `--poll-items` items that moves by `--poll-new`
  items each generation: at generation 0 items 0…49, at generation g items 5g…5g+49
  (newest first), so each new generation lists 5 items never listed before. Items below
  `--poll-items` link to `/poll/old/…` (never fetched: the benchmark records them as done
  beforehand); newer ones link to the pages listed in `root/poll-new-items.json`.
- `/__bench__/generation?g=N` sets the generation; `/__bench__/stats` returns JSON.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit
from urllib.request import urlopen
from xml.sax.saxutils import escape as xml_escape

REPO = Path(__file__).resolve().parent.parent
BASE_PLACEHOLDER = b"{{BASE}}"
CONTENT_TYPES = {
    ".rss": "application/rss+xml; charset=utf-8",
    ".atom": "application/atom+xml; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".json": "application/json",
}
NEW_ITEMS_FILE = "poll-new-items.json"
POLL_EPOCH = datetime(2025, 6, 1, tzinfo=UTC)

Response = tuple[int, str, bytes, str | None]
"""status, content type, body, ETag."""


def _etag(body: bytes) -> str:
    return '"' + hashlib.sha1(body).hexdigest()[:20] + '"'


class Content:
    """Everything the server answers, computed before the first request."""

    def __init__(
        self,
        root: Path,
        base_url: str,
        *,
        poll_feeds: int = 0,
        poll_items: int = 50,
        poll_new: int = 5,
    ) -> None:
        self.base_url = base_url
        self.files: dict[str, Response] = {}
        base = base_url.encode("ascii")
        for path in sorted(root.rglob("*")):
            if not path.is_file() or path.suffix not in CONTENT_TYPES:
                continue
            body = path.read_bytes().replace(BASE_PLACEHOLDER, base)
            url_path = "/" + path.relative_to(root).as_posix()
            response = (200, CONTENT_TYPES[path.suffix], body, _etag(body))
            self.files[url_path] = response
            if url_path.endswith("/index.html"):
                self.files[url_path.removesuffix("index.html")] = response
        self.poll_feeds = poll_feeds
        self.poll_items = poll_items
        self.poll_new = poll_new
        new_items = root / NEW_ITEMS_FILE
        self.new_items: list[dict[str, str]] = (
            json.loads(new_items.read_text(encoding="utf-8")) if new_items.is_file() else []
        )
        self.generation = 0
        self._feeds: dict[tuple[str, int, int], Response] = {}
        self._lock = threading.Lock()
        self.requests = 0
        self.not_modified = 0

    def answer(self, path: str, if_none_match: str | None) -> Response:
        with self._lock:
            self.requests += 1
        parts = urlsplit(path)
        if parts.path.startswith("/__bench__/"):
            return self._control(parts.path, parse_qs(parts.query))
        response = self.files.get(parts.path)
        if response is None and parts.path.startswith("/poll/") and self.poll_feeds:
            response = self._poll_feed(parts.path)
        if response is None:
            return 404, "text/plain; charset=utf-8", b"Not Found\n", None
        etag = response[3]
        if if_none_match and etag:
            tags = {tag.strip() for tag in if_none_match.split(",")}
            if etag in tags or "*" in tags:
                with self._lock:
                    self.not_modified += 1
                return 304, response[1], b"", etag
        return response

    def _control(self, path: str, query: Mapping[str, list[str]]) -> Response:
        if path == "/__bench__/generation":
            generation = int(query["g"][0])
            # Rendered now, so that the cycle measured next does not wait for it.
            rendered = {
                ("live", number, generation): self._response(
                    self._render_feed("live", number, generation)
                )
                for number in range(self.poll_feeds)
            }
            with self._lock:
                self.generation = generation
                self._feeds = {k: v for k, v in self._feeds.items() if k[0] == "static"}
                self._feeds.update(rendered)
        usage = resource.getrusage(resource.RUSAGE_SELF)
        body = json.dumps(
            {
                "requests": self.requests,
                "not_modified": self.not_modified,
                "generation": self.generation,
                "cpu_seconds": usage.ru_utime + usage.ru_stime,
            }
        ).encode()
        return 200, "application/json", body, None

    # The polling benchmark's feeds

    def _poll_feed(self, path: str) -> Response | None:
        segments = path.strip("/").split("/")
        if len(segments) != 3 or not segments[2].startswith("feed-"):
            return None
        kind = segments[1]
        try:
            number = int(segments[2].removeprefix("feed-").removesuffix(".rss"))
        except ValueError:
            return None
        if kind not in ("static", "live") or not 0 <= number < self.poll_feeds:
            return None
        generation = self.generation if kind == "live" else 0
        key = (kind, number, generation)
        with self._lock:
            cached = self._feeds.get(key)
        if cached is None:
            cached = self._response(self._render_feed(kind, number, generation))
            with self._lock:
                self._feeds[key] = cached
        return cached

    @staticmethod
    def _response(feed: str) -> Response:
        body = feed.encode("utf-8")
        return 200, CONTENT_TYPES[".rss"], body, _etag(body)

    def _render_feed(self, kind: str, number: int, generation: int) -> str:
        first = generation * self.poll_new
        items = []
        for index in reversed(range(first, first + self.poll_items)):
            items.append(self._item(kind, number, index))
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"'
            ' xmlns:dc="http://purl.org/dc/elements/1.1/">\n<channel>\n'
            f"  <title>Polling benchmark feed {kind} {number}</title>\n"
            f"  <link>{self.base_url}/poll/{kind}/</link>\n"
            "  <description>Regional news from Cambodia and the Mekong</description>\n"
            "  <language>en</language>\n" + "".join(items) + "</channel>\n</rss>\n"
        )

    def _item(self, kind: str, number: int, index: int) -> str:
        published = POLL_EPOCH + timedelta(hours=index, minutes=number % 60)
        if index < self.poll_items:
            link = f"{self.base_url}{old_item_path(kind, number, index)}"
            title = f"Provincial news {kind} {number}-{index}: officials meet on border trade"
            description = OLD_DESCRIPTION
        else:
            new = index - self.poll_items
            cycle, slot = divmod(new, self.poll_new)
            item = self.new_items[(cycle * self.poll_feeds + number) * self.poll_new + slot]
            link = self.base_url + item["path"]
            title = item["title"]
            description = item["description"]
        return (
            "  <item>\n"
            f"    <title>{xml_escape(title)}</title>\n"
            f"    <link>{xml_escape(link)}</link>\n"
            f'    <guid isPermaLink="false">{item_guid(kind, number, index)}</guid>\n'
            f"    <pubDate>{format_datetime(published)}</pubDate>\n"
            "    <dc:creator>Staff Reporter</dc:creator>\n"
            "    <category>Cambodia</category>\n    <category>News</category>\n"
            f"    <description>{xml_escape(description)}</description>\n"
            "  </item>\n"
        )


OLD_DESCRIPTION = (
    "Officials from both sides of the border met on Tuesday to discuss trade, customs"
    " procedures and the reopening of two checkpoints closed during the rainy season, and"
    " agreed to meet again next month to review progress on the new market."
)


def old_item_path(kind: str, feed: int, index: int) -> str:
    return f"/poll/old/{kind}/{feed}/{index}.html"


def item_guid(kind: str, feed: int, index: int) -> str:
    return f"urn:bench:poll:{kind}:{feed}:{index}"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 128

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that disconnects is not an error worth a traceback."""


def serve(content_factory: Any, port: int = 0) -> None:
    """Serve until killed; print `PORT n` once listening (what ServerProcess waits for)."""
    holder: dict[str, Content] = {}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "BenchSite/1"
        # Headers and body go out in two writes: with Nagle's algorithm the body's last
        # segment waits for the client's delayed ACK of the headers (40 ms a response on
        # a kept-alive connection). Web servers set TCP_NODELAY; so does this one.
        disable_nagle_algorithm = True

        def do_GET(self) -> None:
            self._answer(send_body=True)

        def do_HEAD(self) -> None:
            self._answer(send_body=False)

        def _answer(self, *, send_body: bool) -> None:
            status, content_type, body, etag = holder["content"].answer(
                self.path, self.headers.get("If-None-Match")
            )
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            if etag:
                self.send_header("ETag", etag)
            self.send_header("Content-Length", "0" if status == 304 else str(len(body)))
            self.end_headers()
            if send_body and status != 304:
                self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet."""

    server = _Server(("127.0.0.1", port), Handler)
    host, bound = server.server_address[:2]
    holder["content"] = content_factory(f"http://{host!s}:{bound}")
    print(f"PORT {bound}", flush=True)
    server.serve_forever()


class ServerProcess:
    """`python -m bench.benchserver` as a child process, for a `with` block."""

    def __init__(self, root: Path, *, extra: tuple[str, ...] = (), timeout: float = 300) -> None:
        self.root = root
        self.extra = extra
        self.timeout = timeout
        self.process: subprocess.Popen[str] | None = None
        self.base_url = ""

    def __enter__(self) -> ServerProcess:
        environment = dict(os.environ)
        environment["PYTHONPATH"] = os.pathsep.join(
            [str(REPO), *filter(None, [environment.get("PYTHONPATH")])]
        )
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.benchserver", "--root", str(self.root), *self.extra],
            stdout=subprocess.PIPE,
            text=True,
            env=environment,
            cwd=REPO,
        )
        assert self.process.stdout is not None
        started = time.monotonic()
        line = self.process.stdout.readline()
        if not line.startswith("PORT "):
            self.__exit__(None, None, None)
            raise RuntimeError(f"benchserver did not start: {line!r}")
        self.base_url = f"http://127.0.0.1:{int(line.split()[1])}"
        self.startup_seconds = time.monotonic() - started
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None

    def url(self, path: str) -> str:
        return self.base_url + path

    def stats(self) -> dict[str, Any]:
        with urlopen(self.url("/__bench__/stats"), timeout=30) as response:
            data: dict[str, Any] = json.loads(response.read())
        return data

    def set_generation(self, generation: int) -> None:
        with urlopen(self.url(f"/__bench__/generation?g={generation}"), timeout=30) as response:
            response.read()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve a benchmark site on 127.0.0.1.")
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--poll-feeds", type=int, default=0)
    parser.add_argument("--poll-items", type=int, default=50)
    parser.add_argument("--poll-new", type=int, default=5)
    args = parser.parse_args(argv)

    def content(base_url: str) -> Content:
        return Content(
            args.root,
            base_url,
            poll_feeds=args.poll_feeds,
            poll_items=args.poll_items,
            poll_new=args.poll_new,
        )

    serve(content, args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
