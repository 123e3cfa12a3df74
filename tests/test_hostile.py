"""Hostile feeds through `monitor run-once`, with the address guard on (the default).

One feed links to private addresses, to a page that redirects into the cloud
metadata service, to a 1 GB response and to gzip bombs; another is a billion-laughs
document, another reads a local file through an external entity. Every such entry
is refused and recorded with its reason, the good article beside them is stored,
and the process's peak memory stays under 300 MB. On SQLite and on PostgreSQL.
"""

from __future__ import annotations

import subprocess
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from monitor.storage.database import create_database_engine
from tests.commands import MONITOR, environment
from tests.localsite import LocalSite, SiteRequest

pytestmark = pytest.mark.slow
GIB = 1024 * 1024 * 1024
RSS = "application/rss+xml"
MEMORY_LIMIT = 300 * 1024 * 1024
ARTICLE = (
    "<html><head><title>Raid in Sihanoukville</title></head><body><article>"
    "<h1>Police free 300 workers from a Sihanoukville scam compound</h1>"
    + "".join(
        f"<p>Paragraph {n}: police in Sihanoukville said the workers, trafficked from"
        " several countries, were held in a compound and forced to run online scams.</p>"
        for n in range(8)
    )
    + "</article></body></html>"
)


def gzip_of_zeros(size: int) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = bytes(1024 * 1024)
    return b"".join(compressor.compress(block) for _ in range(size // len(block))) + (
        compressor.flush()
    )


def endless(total: int) -> Iterator[bytes]:
    """`total` bytes of HTML-ish filler, a megabyte at a time, never held at once."""
    chunk = b"<p>" + b"a" * (1024 * 1024 - 7) + b"</p>\n"
    for _ in range(total // len(chunk)):
        yield chunk


def peak_memory(process: subprocess.Popen[bytes]) -> int:
    """The process's peak resident memory in bytes (VmHWM, read until it exits).

    Not its rusage: that counts the copy of the test process that exists between the
    fork and the exec (pytest can be larger than the limit by then)."""
    peak = 0
    status = Path(f"/proc/{process.pid}/status")
    while process.poll() is None:
        try:
            for line in status.read_text(encoding="utf-8").splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]) * 1024)
        except OSError:
            pass  # exiting
        time.sleep(0.02)
    return peak


def answer(
    status: int, headers: dict[str, str], body: bytes
) -> Callable[[SiteRequest], tuple[int, dict[str, str], bytes]]:
    return lambda _: (status, headers, body)


def rss(items: list[str], *, preamble: str = "", title: str = "t") -> bytes:
    entries = "".join(
        f"<item><title>item {n}</title><link>{link}</link></item>" for n, link in enumerate(items)
    )
    return (
        f'<?xml version="1.0"?>\n{preamble}<rss version="2.0"><channel><title>{title}</title>'
        f"{entries}</channel></rss>"
    ).encode()


BILLION_LAUGHS = (
    '<!DOCTYPE rss [\n<!ENTITY lol0 "lol">\n'
    + "".join(f'<!ENTITY lol{n} "{f"&lol{n - 1};" * 10}">\n' for n in range(1, 10))
    + "]>\n"
)
EXTERNAL_ENTITY = '<!DOCTYPE rss [<!ENTITY secret SYSTEM "file:///etc/passwd">]>\n'


def test_hostile_feeds_are_refused_and_recorded_in_bounded_memory(
    site: LocalSite, tmp_path: Path, database_url: str
) -> None:
    bomb = gzip_of_zeros(GIB)  # 1 GiB of zeros in about 1 MB
    routes = {
        "/good.html": (200, {"Content-Type": "text/html"}, ARTICLE.encode()),
        "/hop": (302, {"Location": "http://169.254.169.254/latest/meta-data/"}, b""),
        "/bomb.html": (200, {"Content-Type": "text/html", "Content-Encoding": "gzip"}, bomb),
        "/bare-bomb.html": (200, {"Content-Type": "text/html"}, bomb),
    }
    for path, response in routes.items():
        site.route(path, answer(*response))

    def huge(_: SiteRequest) -> tuple[int, dict[str, str], Iterator[bytes]]:
        return 200, {"Content-Type": "text/html"}, endless(GIB)

    def huge_declared(_: SiteRequest) -> tuple[int, dict[str, str], Iterator[bytes]]:
        return 200, {"Content-Type": "text/html", "Content-Length": str(GIB)}, endless(GIB)

    site.route("/huge.html", huge)
    site.route("/huge-declared.html", huge_declared)
    refused = {
        "http://127.0.0.1/admin": "blocked_address",
        "http://169.254.169.254/latest/meta-data/": "blocked_address",
        "http://[::1]/admin": "blocked_address",
        "http://[::ffff:10.0.0.1]/admin": "blocked_address",
        site.url("/hop"): "blocked_address",
        site.url("/huge.html"): "too_large",
        site.url("/huge-declared.html"): "too_large",
        site.url("/bomb.html"): "too_large",
    }
    feeds = {
        "/hostile.rss": rss([*refused, site.url("/bare-bomb.html"), site.url("/good.html")]),
        "/laughs.rss": rss([site.url("/good.html")], preamble=BILLION_LAUGHS, title="&lol9;"),
        "/entity.rss": rss([site.url("/good.html")], preamble=EXTERNAL_ENTITY, title="&secret;"),
    }
    for path, body in feeds.items():
        site.route(path, answer(200, {"Content-Type": RSS}, body))
    port = site.base_url.rsplit(":", 1)[1]
    config = tmp_path / "config.toml"
    config.write_text(
        f'[database]\nurl = "{database_url}"\n'
        f'[fetch]\nprivate_allowlist = ["127.0.0.1:{port}"]\nper_host_delay = 0\n'
        'timeout = "5s"\n'
        # Everything in one process, so that its peak memory is the whole cost.
        "[processing]\nworkers = 0\n"
        + "".join(
            f'[[feeds]]\nname = "{path}"\nurl = "{site.url(path)}"\nfilter = false\n'
            for path in feeds
        ),
        encoding="utf-8",
    )
    log = tmp_path / "run.log"
    with log.open("w", encoding="utf-8") as stderr:
        process = subprocess.Popen(
            [MONITOR, "--config", str(config), "--log-format", "text", "run-once"],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            env=environment(),
        )
        peak = peak_memory(process)
    output = log.read_text(encoding="utf-8")
    assert process.returncode == 0, output[-3000:]
    assert "Traceback" not in output
    print(f"peak resident memory {peak / 2**20:.0f} MiB")
    assert peak < MEMORY_LIMIT, f"peak resident memory {peak / 2**20:.0f} MiB"

    engine = create_database_engine(database_url)
    with engine.connect() as connection:
        entries = {
            link: (outcome, reason)
            for link, outcome, reason in connection.execute(
                sa.text("SELECT link, outcome, reason FROM entries")
            )
        }
        titles = [title for (title,) in connection.execute(sa.text("SELECT title FROM feeds"))]
        articles = connection.execute(sa.text("SELECT url, text FROM articles")).all()
    engine.dispose()
    for link, reason in refused.items():
        assert entries[link] == ("failed", reason), link
    # Decompressed by nobody past trafilatura's own cap: no text, recorded as such.
    assert entries[site.url("/bare-bomb.html")][0] == "failed"
    assert [url for url, _ in articles] == [site.url("/good.html")]
    assert all("root:" not in (title or "") for title in titles)
    assert all("lol" * 100 not in (title or "") for title in titles)
    # Nobody reached a private address: only the allowed site saw requests.
    assert not [path for _, path, _ in site.requests if path.startswith("/latest")]
