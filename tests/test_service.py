"""`monitor run` as a service: politeness, backoff, hot reload, stop, health and metrics.

Each test runs the real daemon as a subprocess against the local site.
"""

from __future__ import annotations

import itertools
import json
import signal
import socket
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from monitor.storage.database import create_database_engine
from tests.commands import MONITOR, environment
from tests.localsite import LocalSite, SiteRequest
from tests.tcpproxy import TcpProxy

pytestmark = pytest.mark.slow
STORIES = Path(__file__).resolve().parent.parent / "bench" / "corpus" / "stories"
RSS = "application/rss+xml"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def feed_xml(site: LocalSite, name: str, items: int = 1) -> bytes:
    entries = "".join(
        f"<item><title>{name} {n}</title><link>{site.url(f'/{name}/{n}.html')}</link></item>"
        for n in range(items)
    )
    return f'<rss version="2.0"><channel><title>{name}</title>{entries}</channel></rss>'.encode()


def article_page(_: SiteRequest) -> tuple[int, dict[str, str], bytes]:
    body = "".join(
        f"<p>Police in Sihanoukville freed {n} workers from a scam compound, officials said.</p>"
        for n in range(8)
    )
    return (
        200,
        {"Content-Type": "text/html"},
        f"<html><body><article>{body}</article></body></html>".encode(),
    )


def write_config(
    path: Path, site: LocalSite, feeds: dict[str, str], *, port: int = 0, extra: str = ""
) -> None:
    path.write_text(
        f'[database]\nurl = "sqlite:///{path.parent / "monitor.db"}"\n'
        '[fetch]\nallow_private_addresses = true\nper_host_delay = 0\ntimeout = "2s"\n'
        f'total_timeout = "3s"\nmax_backoff = "3s"\n{extra}'
        f"[http]\nport = {port}\n"
        + "".join(
            f'[[feeds]]\nname = "{name}"\nurl = "{site.url(path)}"\ninterval = "1s"\n'
            for name, path in feeds.items()
        ),
        encoding="utf-8",
    )


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Callable[[Path], subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []

    def start(config: Path) -> subprocess.Popen[str]:
        # The log goes to a file: a pipe nobody reads would fill and block the daemon.
        log = tmp_path / f"daemon-{len(started)}.log"
        with log.open("w", encoding="utf-8") as handle:
            process = subprocess.Popen(
                [MONITOR, "--config", str(config), "--log-format", "text", "run"],
                stdout=subprocess.DEVNULL,
                stderr=handle,
                text=True,
                env=environment(),
            )
        _LOGS[process.pid] = log
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.communicate()


def wait_for(condition: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


_LOGS: dict[int, Path] = {}


def stop(process: subprocess.Popen[str]) -> tuple[int, str, float]:
    """SIGTERM; the exit status, the daemon's log and how long the stop took."""
    began = time.monotonic()
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=30)
    seconds = time.monotonic() - began
    return process.returncode, _LOGS[process.pid].read_text(encoding="utf-8"), seconds


def query(database: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(database) as connection:
        return connection.execute(sql).fetchall()


def test_conditional_get_then_304(
    site: LocalSite, tmp_path: Path, daemon: Callable[[Path], subprocess.Popen[str]]
) -> None:
    def feed(request: SiteRequest) -> tuple[int, dict[str, str], bytes]:
        if request.headers.get("if-none-match") == '"v1"':
            return 304, {"ETag": '"v1"'}, b""
        return (
            200,
            {"Content-Type": RSS, "ETag": '"v1"', "Last-Modified": "Mon, 01 Jan 2024 00:00:00 GMT"},
            feed_xml(site, "a"),
        )

    site.route("/a.rss", feed)
    site.route("/a/0.html", article_page)
    port = free_port()
    config = tmp_path / "config.toml"
    write_config(config, site, {"a": "/a.rss"}, port=port)
    process = daemon(config)
    wait_for(lambda: site.hits("/a.rss") >= 3)
    conditional = [headers for method, path, headers in site.requests if path == "/a.rss"][1:]
    assert all(h.get("if-none-match") == '"v1"' for h in conditional)
    assert all(h.get("if-modified-since") == "Mon, 01 Jan 2024 00:00:00 GMT" for h in conditional)
    metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    assert 'monitor_polls_total{result="not_modified"}' in metrics
    assert 'monitor_polls_total{result="ok"} 1.0' in metrics  # parsed once only
    assert site.hits("/a/0.html") == 1
    assert stop(process)[0] == 0


def test_retry_after_and_backoff(
    site: LocalSite, tmp_path: Path, daemon: Callable[[Path], subprocess.Popen[str]]
) -> None:
    site.route("/busy.rss", lambda _: (429, {"Retry-After": "30"}, b"slow down"))
    site.route("/broken.rss", lambda _: (500, {}, b"oops"))
    config = tmp_path / "config.toml"
    write_config(config, site, {"busy": "/busy.rss", "broken": "/broken.rss"})
    process = daemon(config)
    database = tmp_path / "monitor.db"
    wait_for(lambda: site.hits("/broken.rss") >= 6, timeout=60)
    # Failing 6 times: backed off (the gaps grow to max_backoff), never given up.
    times = [moment for moment, path in site.request_times() if path == "/broken.rss"]
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert max(gaps[-3:]) >= 2.5
    ((failures, health),) = query(
        database, "SELECT consecutive_failures, health FROM feeds WHERE name = 'broken'"
    )
    assert isinstance(failures, int) and failures >= 5
    assert health in ("failing", "backing_off")
    # 429 with Retry-After: 30 s: not polled again before then.
    assert site.hits("/busy.rss") == 1
    ((due,),) = query(database, "SELECT next_poll_at FROM feeds WHERE name = 'busy'")
    assert due is not None
    assert stop(process)[0] == 0


def test_hot_reload_add_break_remove(
    site: LocalSite, tmp_path: Path, daemon: Callable[[Path], subprocess.Popen[str]]
) -> None:
    def empty_feed(name: str) -> Callable[[SiteRequest], tuple[int, dict[str, str], bytes]]:
        return lambda _: (200, {"Content-Type": RSS}, feed_xml(site, name, 0))

    for name in ("a", "b"):
        site.route(f"/{name}.rss", empty_feed(name))
    config = tmp_path / "config.toml"
    write_config(config, site, {"a": "/a.rss"})
    process = daemon(config)
    wait_for(lambda: site.hits("/a.rss") >= 1)
    write_config(config, site, {"a": "/a.rss", "b": "/b.rss"})
    wait_for(lambda: site.hits("/b.rss") >= 1, timeout=10)  # added: polled within seconds
    config.write_text(
        config.read_text(encoding="utf-8") + '[fetch2]\ntimeout = "fast"\n', encoding="utf-8"
    )
    hits = site.hits("/a.rss")
    wait_for(lambda: site.hits("/a.rss") >= hits + 3, timeout=15)  # the old config runs on
    write_config(config, site, {"b": "/b.rss"})
    time.sleep(5)  # the watcher looks every 2 s
    process.send_signal(signal.SIGHUP)  # and SIGHUP reloads too, changed or not
    time.sleep(3)
    removed_at = site.hits("/a.rss")
    time.sleep(3)
    assert site.hits("/a.rss") == removed_at  # removed: its job stopped
    code, stderr, _ = stop(process)
    assert code == 0
    assert "configuration not reloaded" in stderr and "fetch2" in stderr
    assert stderr.count("configuration reloaded") >= 3  # add, remove, SIGHUP


def test_stop_mid_run_is_quick_and_clean(
    site: LocalSite, tmp_path: Path, daemon: Callable[[Path], subprocess.Popen[str]]
) -> None:
    site.route("/slow.rss", lambda _: (200, {"Content-Type": RSS}, feed_xml(site, "slow", 6)))

    def slow_page(request: SiteRequest) -> tuple[int, dict[str, str], bytes]:
        time.sleep(1.5)  # under the 2 s read timeout: slow, not failing
        return article_page(request)

    for n in range(6):
        site.route(f"/slow/{n}.html", slow_page)
    config = tmp_path / "config.toml"
    write_config(config, site, {"slow": "/slow.rss"})
    process = daemon(config)
    wait_for(lambda: site.hits("/slow/1.html") >= 1)
    code, stderr, seconds = stop(process)
    assert code == 0, stderr
    assert seconds < 10
    database = tmp_path / "monitor.db"
    assert query(database, "SELECT count(*) FROM entries WHERE outcome = 'failed'") == [(0,)]
    ((articles, signatures),) = query(
        database,
        "SELECT (SELECT count(*) FROM articles), (SELECT count(*) FROM article_signatures)",
    )
    assert articles == signatures


def test_health_and_metrics_follow_the_work(
    site: LocalSite, tmp_path: Path, daemon: Callable[[Path], subprocess.Popen[str]]
) -> None:
    site.route("/a.rss", lambda _: (200, {"Content-Type": RSS}, feed_xml(site, "a", 2)))
    site.route("/a/0.html", article_page)
    site.route("/a/1.html", article_page)
    port = free_port()
    config = tmp_path / "config.toml"
    write_config(config, site, {"a": "/a.rss"}, port=port)
    process = daemon(config)
    base = f"http://127.0.0.1:{port}"
    wait_for(lambda: _answers(f"{base}/healthz"))
    health = httpx.get(f"{base}/healthz", timeout=5)
    assert health.status_code == 200
    assert health.json() == {"status": "ok", "scheduler": "running", "database": "reachable"}

    def polls() -> float:
        for line in httpx.get(f"{base}/metrics", timeout=5).text.splitlines():
            if line.startswith('monitor_polls_total{result="ok"}'):
                return float(line.split()[-1])
        return 0.0

    first = polls()
    wait_for(lambda: polls() > first + 1)
    metrics = httpx.get(f"{base}/metrics", timeout=5).text
    assert 'monitor_entries_total{outcome="stored"}' in metrics
    assert 'monitor_duplicates_total{kind="exact_text"}' in metrics  # two pages, one text
    assert 'monitor_feeds{health="ok"} 1.0' in metrics
    assert "monitor_fetch_seconds_bucket" in metrics
    assert stop(process)[0] == 0


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_a_hanging_server_does_not_delay_other_feeds(
    site: LocalSite, tmp_path: Path, daemon: Callable[[Path], subprocess.Popen[str]]
) -> None:
    def hang(_: SiteRequest) -> tuple[int, dict[str, str], bytes]:
        time.sleep(600)
        return 200, {}, b""

    site.route("/hang.rss", hang)
    site.route("/ok.rss", lambda _: (200, {"Content-Type": RSS}, feed_xml(site, "ok", 0)))
    config = tmp_path / "config.toml"
    write_config(config, site, {"hang": "/hang.rss", "ok": "/ok.rss"})
    process = daemon(config)
    wait_for(lambda: site.hits("/hang.rss") >= 1)
    started = site.hits("/ok.rss")
    wait_for(lambda: site.hits("/ok.rss") >= started + 4, timeout=10)
    code, _, seconds = stop(process)
    assert code == 0 and seconds < 10


def test_two_replicas_poll_each_feed_once_per_interval(
    site: LocalSite,
    tmp_path: Path,
    postgres_url: str,
    daemon: Callable[[Path], subprocess.Popen[str]],
) -> None:
    site.route("/a.rss", lambda _: (200, {"Content-Type": RSS}, feed_xml(site, "a", 0)))
    config = tmp_path / "config.toml"
    write_config(config, site, {"a": "/a.rss"})
    text = config.read_text(encoding="utf-8")
    text = text.replace(f'url = "sqlite:///{tmp_path / "monitor.db"}"', f'url = "{postgres_url}"')
    config.write_text(text.replace('interval = "1s"', 'interval = "2s"'), encoding="utf-8")
    replicas = [daemon(config), daemon(config)]
    time.sleep(10)
    for replica in replicas:
        code, log, _ = stop(replica)
        assert code == 0, log[-3000:]
    # Alone, one daemon polls about 5 times in 10 s; two must not make it 10.
    assert 3 <= site.hits("/a.rss") <= 7


def test_the_database_going_away_loses_nothing(
    site: LocalSite,
    tmp_path: Path,
    postgres_url: str,
    daemon: Callable[[Path], subprocess.Popen[str]],
) -> None:
    """PostgreSQL unreachable for a while (a restart; 8 s here): the daemon logs it,
    keeps its schedule, retries, and every story ends stored once."""
    started = time.monotonic()

    def stories_served() -> int:  # a new story every two seconds, 20 at most
        return min(20, 1 + int(time.monotonic() - started) // 2)

    site.route(
        "/news.rss",
        lambda _: (200, {"Content-Type": RSS}, feed_xml(site, "news", stories_served())),
    )
    originals = [
        story
        for story in (
            json.loads(path.read_text("utf-8")) for path in sorted(STORIES.glob("a-*.json"))
        )
        if story["kind"] == "original"
    ]
    for n, story in enumerate(originals[:20]):
        body = "".join(f"<p>{paragraph}</p>" for paragraph in story["paragraphs"])
        html = f"<html><body><article><h1>{story['title']}</h1>{body}</article></body></html>"

        def page(_: SiteRequest, html: str = html) -> tuple[int, dict[str, str], bytes]:
            return 200, {"Content-Type": "text/html"}, html.encode()

        site.route(f"/news/{n}.html", page)

    def stored() -> int:
        engine = create_database_engine(postgres_url)
        try:
            with engine.connect() as connection:
                return int(
                    connection.execute(sa.text("SELECT count(*) FROM articles")).scalar() or 0
                )
        except sa.exc.ProgrammingError:
            return 0  # not migrated yet
        finally:
            engine.dispose()

    with TcpProxy("127.0.0.1", 5432) as proxy:
        port = free_port()
        config = tmp_path / "config.toml"
        write_config(config, site, {"news": "/news.rss"}, port=port)
        through_proxy = postgres_url.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")
        config.write_text(
            config.read_text("utf-8").replace(
                f'url = "sqlite:///{tmp_path / "monitor.db"}"', f'url = "{through_proxy}"'
            ),
            encoding="utf-8",
        )
        process = daemon(config)
        wait_for(lambda: stored() >= 2)
        proxy.cut()
        time.sleep(1)
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=20).status_code == 503
        time.sleep(7)
        proxy.restore()
        wait_for(lambda: stored() >= stories_served() == 20, timeout=90)
        code, log, _ = stop(process)
    assert code == 0
    assert "database unavailable" in log
    engine = create_database_engine(postgres_url)
    with engine.connect() as connection:
        outcomes: dict[str, int] = dict(
            connection.execute(
                sa.text("SELECT outcome, count(*) FROM entries GROUP BY outcome")
            ).all()
        )
        articles, signatures, urls = connection.execute(
            sa.text(
                "SELECT (SELECT count(*) FROM articles), (SELECT count(*) FROM article_signatures),"
                " (SELECT count(DISTINCT url) FROM articles)"
            )
        ).one()
    engine.dispose()
    assert outcomes == {"stored": 20}  # every story once; nothing failed for the outage
    assert articles == signatures == urls == 20
