"""`monitor run` as a service: politeness, backoff, hot reload, stop, health and metrics.

Each test runs the real daemon as a subprocess against the local site.
"""

from __future__ import annotations

import contextlib
import http.server
import itertools
import json
import os
import random
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from monitor.endpoints import record_path
from monitor.storage.database import create_database_engine
from tests.commands import MONITOR, environment, run_monitor
from tests.databases import scalar
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
    path: Path,
    site: LocalSite,
    feeds: dict[str, str],
    *,
    database_url: str,
    port: int = 0,
    extra: str = "",
    interval: str = "1s",
) -> None:
    path.write_text(
        f'[database]\nurl = "{database_url}"\n'
        '[fetch]\nallow_private_addresses = true\nper_host_delay = 0\ntimeout = "2s"\n'
        f'total_timeout = "3s"\nmax_backoff = "3s"\n{extra}'
        f"[http]\nport = {port}\n"
        + "".join(
            f'[[feeds]]\nname = "{name}"\nurl = "{site.url(path)}"\ninterval = "{interval}"\n'
            for name, path in feeds.items()
        ),
        encoding="utf-8",
    )


def empty_feed(
    site: LocalSite, name: str
) -> Callable[[SiteRequest], tuple[int, dict[str, str], bytes]]:
    """A route answering a feed with no item."""
    return lambda _: (200, {"Content-Type": RSS}, feed_xml(site, name, 0))


@pytest.fixture
def daemon(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[[Path], subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    # The daemons' records of their endpoints, and the health check's, in this test's own.
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))

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


def query(database_url: str, sql: str) -> list[tuple[object, ...]]:
    engine = create_database_engine(database_url)
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.execute(sa.text(sql))]
    finally:
        engine.dispose()


def test_conditional_get_then_304(
    site: LocalSite,
    tmp_path: Path,
    database_url: str,
    daemon: Callable[[Path], subprocess.Popen[str]],
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
    write_config(config, site, {"a": "/a.rss"}, database_url=database_url, port=port)
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
    site: LocalSite,
    tmp_path: Path,
    database_url: str,
    daemon: Callable[[Path], subprocess.Popen[str]],
) -> None:
    site.route("/busy.rss", lambda _: (429, {"Retry-After": "30"}, b"slow down"))
    site.route("/broken.rss", lambda _: (500, {}, b"oops"))
    config = tmp_path / "config.toml"
    write_config(
        config, site, {"busy": "/busy.rss", "broken": "/broken.rss"}, database_url=database_url
    )
    process = daemon(config)
    wait_for(lambda: site.hits("/broken.rss") >= 6, timeout=60)
    # Failing 6 times: backed off (the gaps grow to max_backoff), never given up.
    times = [moment for moment, path in site.request_times() if path == "/broken.rss"]
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert max(gaps[-3:]) >= 2.5
    ((failures, health),) = query(
        database_url, "SELECT consecutive_failures, health FROM feeds WHERE name = 'broken'"
    )
    assert isinstance(failures, int) and failures >= 5
    assert health in ("failing", "backing_off")
    # 429 with Retry-After: 30 s: not polled again before then.
    assert site.hits("/busy.rss") == 1
    ((due,),) = query(database_url, "SELECT next_poll_at FROM feeds WHERE name = 'busy'")
    assert due is not None
    assert stop(process)[0] == 0


def test_hot_reload_add_break_remove(
    site: LocalSite,
    tmp_path: Path,
    database_url: str,
    daemon: Callable[[Path], subprocess.Popen[str]],
) -> None:
    for name in ("a", "b"):
        site.route(f"/{name}.rss", empty_feed(site, name))
    config = tmp_path / "config.toml"
    write_config(config, site, {"a": "/a.rss"}, database_url=database_url)
    process = daemon(config)
    wait_for(lambda: site.hits("/a.rss") >= 1)
    rule = '[[tags]]\nname = "place:bavet"\nany = ["bavet"]\n'
    write_config(
        config, site, {"a": "/a.rss", "b": "/b.rss"}, database_url=database_url, extra=rule
    )
    wait_for(lambda: site.hits("/b.rss") >= 1, timeout=10)  # added: polled within seconds
    full = config.read_text(encoding="utf-8")
    # Saved as editors do, truncated then written; and left empty for a while: the running
    # configuration keeps both feeds throughout.
    config.write_text("", encoding="utf-8")
    time.sleep(0.3)
    config.write_text(full, encoding="utf-8")
    time.sleep(5)
    config.write_text("# being edited\n", encoding="utf-8")
    time.sleep(5)
    config.write_text(full, encoding="utf-8")
    time.sleep(5)
    config.write_text(
        config.read_text(encoding="utf-8") + '[fetch2]\ntimeout = "fast"\n', encoding="utf-8"
    )
    time.sleep(5)  # an edit is read once it has stayed the same for one 2 s look
    hits = site.hits("/a.rss")
    wait_for(lambda: site.hits("/a.rss") >= hits + 3, timeout=15)  # the old config runs on
    write_config(config, site, {"b": "/b.rss"}, database_url=database_url)
    time.sleep(5)  # the watcher looks every 2 s
    process.send_signal(signal.SIGHUP)  # and SIGHUP reloads too, changed or not
    time.sleep(3)
    removed_at = site.hits("/a.rss")
    time.sleep(3)
    assert site.hits("/a.rss") == removed_at  # removed: its job stopped
    code, stderr, _ = stop(process)
    assert code == 0
    assert "configuration not reloaded" in stderr and "fetch2" in stderr
    assert "the file is empty" in stderr
    assert stderr.count("feed removed: a") == 1  # the real removal only
    assert stderr.count("configuration reloaded") >= 3  # add, remove, SIGHUP
    assert "tag rules (1 now) changed" in stderr
    assert "tag rules (0 now) changed" in stderr  # the rule removed again


def serve_slow_feed(site: LocalSite, items: int) -> None:
    """/slow.rss, whose pages take 1.5 s each (under the 2 s read timeout: slow, not
    failing)."""
    site.route("/slow.rss", lambda _: (200, {"Content-Type": RSS}, feed_xml(site, "slow", items)))

    def slow_page(request: SiteRequest) -> tuple[int, dict[str, str], bytes]:
        time.sleep(1.5)
        return article_page(request)

    for n in range(items):
        site.route(f"/slow/{n}.html", slow_page)


def start_on_slow_feed(
    site: LocalSite,
    tmp_path: Path,
    database_url: str,
    daemon: Callable[[Path], subprocess.Popen[str]],
    *,
    items: int,
    first_wait: int,
) -> subprocess.Popen[str]:
    """The daemon on the slow feed alone, once it has asked for page `first_wait`."""
    serve_slow_feed(site, items)
    config = tmp_path / "config.toml"
    write_config(config, site, {"slow": "/slow.rss"}, database_url=database_url)
    process = daemon(config)
    wait_for(lambda: site.hits(f"/slow/{first_wait}.html") >= 1)
    return process


def test_run_once_stopped_by_a_signal_says_so_and_exits_non_zero(
    site: LocalSite, tmp_path: Path, database_url: str
) -> None:
    # An operator audit: run-once stopped by SIGTERM printed a summary like a complete
    # run's and exited 0; cron or a timeout wrapper could not tell.
    serve_slow_feed(site, 12)
    config = tmp_path / "config.toml"
    write_config(config, site, {"slow": "/slow.rss"}, database_url=database_url)
    process = subprocess.Popen(
        [MONITOR, "--config", str(config), "run-once"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment(),
    )
    wait_for(lambda: site.hits("/slow/2.html") >= 1)
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 128 + signal.SIGTERM, stderr[-3000:]
    ((pending,),) = query(database_url, "SELECT count(*) FROM entries WHERE outcome = 'pending'")
    assert isinstance(pending, int) and pending > 0
    assert f"interrupted by SIGTERM: {pending} entries left pending" in stdout
    assert f"stopped: {pending} left pending for the next poll" in stderr  # the poll's log
    # Every entry recorded is new to this run, and to this run only (a second audit: 13
    # new entries counted for 12 over two runs).
    ((recorded,),) = query(database_url, "SELECT count(*) FROM entries")
    assert f"(new: {recorded})" in stdout
    assert "(new: 0)" in run_monitor(config, "run-once")
    assert "stored: " in stdout  # the summary first


def articles_all_signed(database_url: str) -> object:
    """The number of stored articles, after checking each has its near-duplicate
    signature (stored whole, in one transaction)."""
    ((articles, signatures),) = query(
        database_url,
        "SELECT (SELECT count(*) FROM articles), (SELECT count(*) FROM article_signatures)",
    )
    assert articles == signatures
    return articles


def test_stop_mid_run_is_quick_and_clean(
    site: LocalSite,
    tmp_path: Path,
    database_url: str,
    daemon: Callable[[Path], subprocess.Popen[str]],
) -> None:
    process = start_on_slow_feed(site, tmp_path, database_url, daemon, items=6, first_wait=1)
    code, stderr, seconds = stop(process)
    assert code == 0, stderr
    assert seconds < 10
    # The fetch in flight was cut and its poll unwound: nothing was left waiting.
    assert "waiting for the database" not in stderr
    assert "exiting without waiting" not in stderr
    assert query(database_url, "SELECT count(*) FROM entries WHERE outcome = 'failed'") == [(0,)]
    articles_all_signed(database_url)


def test_a_second_signal_stops_at_once_and_leaves_the_rest_pending(
    site: LocalSite,
    tmp_path: Path,
    database_url: str,
    daemon: Callable[[Path], subprocess.Popen[str]],
) -> None:
    process = start_on_slow_feed(site, tmp_path, database_url, daemon, items=40, first_wait=4)
    process.send_signal(signal.SIGINT)
    time.sleep(0.5)
    second = time.monotonic()
    process.send_signal(signal.SIGINT)
    process.wait(timeout=30)
    seconds = time.monotonic() - second
    log = _LOGS[process.pid].read_text(encoding="utf-8")
    assert process.returncode == 0, log[-3000:]
    assert seconds < 4, log[-3000:]  # the grace period is not waited for
    assert "received SIGINT again: stopping at once" in log
    assert "Traceback" not in log
    # Nothing half-done: what was cut stays pending for the next start, nothing failed,
    # every article stored whole (with its near-duplicate signature).
    outcomes = {
        str(outcome): int(str(count))
        for outcome, count in query(
            database_url, "SELECT outcome, count(*) FROM entries GROUP BY outcome"
        )
    }
    assert "failed" not in outcomes, outcomes
    assert outcomes.get("pending", 0) > 0, outcomes
    articles = articles_all_signed(database_url)
    assert isinstance(articles, int) and articles < 20
    # Each page asked for once, and no new one after the stop: far from all of them.
    pages = [path for _, path in site.request_times() if path.startswith("/slow/")]
    assert len(pages) == len(set(pages)) and len(pages) < 20
    # The next start finishes them.
    process = daemon(tmp_path / "config.toml")
    wait_for(
        lambda: scalar(database_url, "SELECT count(*) FROM entries WHERE outcome = 'pending'") == 0,
        timeout=120,
    )
    assert stop(process)[0] == 0


def test_a_sighup_while_starting_is_remembered_not_fatal(
    site: LocalSite,
    tmp_path: Path,
    database_url: str,
    daemon: Callable[[Path], subprocess.Popen[str]],
) -> None:
    site.route("/a.rss", empty_feed(site, "a"))
    config = tmp_path / "config.toml"
    write_config(config, site, {"a": "/a.rss"}, database_url=database_url)
    process = daemon(config)
    time.sleep(0.2)  # still importing, before any handler of the command line's
    process.send_signal(signal.SIGHUP)
    wait_for(lambda: "configuration reloaded" in _LOGS[process.pid].read_text(encoding="utf-8"))
    assert process.poll() is None
    code, log, _ = stop(process)
    assert code == 0, log[-3000:]
    assert "received SIGHUP while starting" in log


def test_health_and_metrics_follow_the_work(
    site: LocalSite,
    tmp_path: Path,
    database_url: str,
    daemon: Callable[[Path], subprocess.Popen[str]],
) -> None:
    site.route("/a.rss", lambda _: (200, {"Content-Type": RSS}, feed_xml(site, "a", 2)))
    site.route("/a/0.html", article_page)
    site.route("/a/1.html", article_page)
    port = free_port()
    config = tmp_path / "config.toml"
    write_config(config, site, {"a": "/a.rss"}, database_url=database_url, port=port)
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
    assert "monitor_database_up 1.0" in metrics
    assert "monitor_fetch_seconds_bucket" in metrics
    assert healthcheck(config) == (0, "ok")
    # A broken edit: the daemon keeps its configuration, and the health check its port.
    config.write_text(
        config.read_text(encoding="utf-8")
        + f'[[feeds]]\nname = "b"\nurl = "{site.url("/b.rss")}"\ninterval = "soon"\n',
        encoding="utf-8",
    )
    assert healthcheck(config) == (0, "ok")
    # A new port in the file: the endpoint moves there, and the health check follows it.
    moved = free_port()
    write_config(config, site, {"a": "/a.rss"}, database_url=database_url, port=moved)
    wait_for(lambda: _answers(f"http://127.0.0.1:{moved}/healthz"), timeout=15)
    assert not _answers(f"{base}/healthz")
    assert healthcheck(config) == (0, "ok")
    assert stop(process)[0] == 0
    assert healthcheck(config)[0] != 0


def test_the_health_check_asks_where_the_daemon_serves_not_what_the_file_says(
    site: LocalSite,
    tmp_path: Path,
    sqlite_url: str,
    daemon: Callable[[Path], subprocess.Popen[str]],
) -> None:
    """An edited [http] port that another server holds: the endpoint stays where it was,
    and the health check finds it there, not the other server on the file's port."""
    port = free_port()
    config = tmp_path / "config.toml"
    write_config(config, site, {}, database_url=sqlite_url, port=port)
    process = daemon(config)
    wait_for(lambda: _answers(f"http://127.0.0.1:{port}/healthz"))
    site_port = int(site.base_url.rsplit(":", 1)[1])
    write_config(config, site, {}, database_url=sqlite_url, port=site_port)
    wait_for(lambda: "still serving them as before" in _LOGS[process.pid].read_text("utf-8"))
    assert _answers(f"http://127.0.0.1:{port}/healthz")
    assert healthcheck(config) == (0, "ok")
    # A broken edit naming yet another port: rejected, the endpoint stays, the check too.
    write_config(config, site, {}, database_url=sqlite_url, port=free_port(), extra="[nope]\n")
    wait_for(lambda: "configuration not reloaded" in _LOGS[process.pid].read_text("utf-8"))
    assert healthcheck(config) == (0, "ok")
    assert site.hits("/healthz") == 0
    code, log, _ = stop(process)
    assert code == 0, log
    assert not record_path(config).exists()
    assert healthcheck(config)[0] == 1


def test_a_dead_daemon_is_unhealthy_though_its_record_and_port_remain(
    tmp_path: Path,
    site: LocalSite,
    sqlite_url: str,
    daemon: Callable[[Path], subprocess.Popen[str]],
) -> None:
    """kill -9 leaves the record behind, and another server takes the daemon's port and
    answers 200: the check fails. Started again on another port, the daemon is found."""
    port = free_port()
    config = tmp_path / "config.toml"
    write_config(config, site, {}, database_url=sqlite_url, port=port)
    process = daemon(config)
    wait_for(lambda: _answers(f"http://127.0.0.1:{port}/healthz"))
    assert healthcheck(config) == (0, "ok")
    process.kill()
    process.wait(timeout=10)
    with impostor(port):
        assert _answers(f"http://127.0.0.1:{port}/healthz")
        result = ask_health(config)
        assert result.returncode == 1
        assert record_path(config).exists()
        assert "the daemon is not running" in result.stderr
        # Restarted with another port in the file (the impostor keeps the old one).
        moved = free_port()
        write_config(config, site, {}, database_url=sqlite_url, port=moved)
        daemon(config)
        wait_for(lambda: _answers(f"http://127.0.0.1:{moved}/healthz"))
        assert healthcheck(config) == (0, "ok")
        # Without its record (it could not be written), only the daemon's answer counts.
        record_path(config).unlink()
        assert healthcheck(config) == (0, "ok")
        write_config(config, site, {}, database_url=sqlite_url, port=port, extra="[nope]\n")
        result = ask_health(config)
        assert result.returncode == 1
        assert "answered by something else than the daemon" in result.stderr


def test_two_daemons_on_one_machine_each_answer_for_their_own_file(
    tmp_path: Path,
    site: LocalSite,
    sqlite_url: str,
    daemon: Callable[[Path], subprocess.Popen[str]],
) -> None:
    first, second = tmp_path / "first.toml", tmp_path / "second.toml"
    first_port, second_port = free_port(), free_port()
    write_config(first, site, {}, database_url=sqlite_url, port=first_port)
    write_config(second, site, {}, database_url=sqlite_url, port=second_port)
    daemon(first)
    other = daemon(second)
    wait_for(lambda: _answers(f"http://127.0.0.1:{first_port}/healthz"))
    wait_for(lambda: _answers(f"http://127.0.0.1:{second_port}/healthz"))
    # The second file edited to the first daemon's port: the second stays on its own.
    write_config(second, site, {}, database_url=sqlite_url, port=first_port)
    wait_for(lambda: "still serving them as before" in _LOGS[other.pid].read_text("utf-8"))
    assert healthcheck(first) == (0, "ok")
    assert healthcheck(second) == (0, "ok")
    # The second stopped: the first daemon, on the port its file names, does not answer for it.
    assert stop(other)[0] == 0
    assert healthcheck(second)[0] == 1
    assert healthcheck(first) == (0, "ok")


@contextlib.contextmanager
def impostor(port: int) -> Iterator[None]:
    """Another HTTP server on 127.0.0.1:`port`, answering 200 `{"status": "ok"}` to all."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b'{"status": "ok"}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()


def ask_health(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [MONITOR, "--config", str(config), "healthcheck"],
        capture_output=True,
        text=True,
        env=environment(),
        timeout=30,
        check=False,
    )


def healthcheck(config: Path) -> tuple[int, str]:
    """`monitor healthcheck`'s exit status and the status the daemon reported."""
    result = ask_health(config)
    assert "Traceback" not in result.stderr
    try:
        reported = json.loads(result.stdout)["status"]
    except ValueError:
        reported = result.stdout.strip()  # not the daemon's JSON
    return result.returncode, reported


def config_through(
    proxy: TcpProxy, tmp_path: Path, site: LocalSite, postgres_url: str, port: int
) -> Path:
    """A config polling /news.rss into PostgreSQL reached through `proxy`."""
    config = tmp_path / "config.toml"
    through_proxy = postgres_url.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")
    write_config(config, site, {"news": "/news.rss"}, database_url=through_proxy, port=port)
    return config


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_a_hanging_server_does_not_delay_other_feeds(
    site: LocalSite,
    tmp_path: Path,
    database_url: str,
    daemon: Callable[[Path], subprocess.Popen[str]],
) -> None:
    def hang(_: SiteRequest) -> tuple[int, dict[str, str], bytes]:
        time.sleep(600)
        return 200, {}, b""

    site.route("/hang.rss", hang)
    site.route("/ok.rss", lambda _: (200, {"Content-Type": RSS}, feed_xml(site, "ok", 0)))
    config = tmp_path / "config.toml"
    write_config(config, site, {"hang": "/hang.rss", "ok": "/ok.rss"}, database_url=database_url)
    process = daemon(config)
    wait_for(lambda: site.hits("/hang.rss") >= 1)
    started = site.hits("/ok.rss")
    wait_for(lambda: site.hits("/ok.rss") >= started + 4, timeout=10)
    code, _, seconds = stop(process)
    assert code == 0 and seconds < 10


def serve(
    content_type: str, body: bytes
) -> Callable[[SiteRequest], tuple[int, dict[str, str], bytes]]:
    return lambda _: (200, {"Content-Type": content_type}, body)


def distinct_articles(count: int) -> list[str]:
    """`count` article bodies that share a vocabulary but no passage (no near-duplicates)."""
    vocabulary = sorted(
        {
            word
            for path in STORIES.glob("*.json")
            for paragraph in json.loads(path.read_text("utf-8"))["paragraphs"]
            for word in paragraph.split()
            if word.isalpha()
        }
    )
    chooser = random.Random(20261129)
    return [
        "".join(
            f"<p>{' '.join(chooser.choices(vocabulary, k=60)).capitalize()}.</p>" for _ in range(6)
        )
        for _ in range(count)
    ]


def test_two_replicas_share_the_feeds_and_store_each_article_once(
    site: LocalSite,
    tmp_path: Path,
    postgres_url: str,
    daemon: Callable[[Path], subprocess.Popen[str]],
) -> None:
    """Two `monitor run` on one PostgreSQL; 200 articles in 20 feeds, each feed served at
    two addresses: every article stored once, every feed polled once per interval."""
    interval = 4.0
    bodies = iter(distinct_articles(200))
    feeds: dict[str, str] = {}
    for f in range(20):
        xml = feed_xml(site, f"f{f}", 10)
        for path in (f"/f{f}.rss", f"/mirror/f{f}.rss"):
            site.route(path, serve(RSS, xml))
            feeds[path.strip("/").replace("/", "-").removesuffix(".rss")] = path
        for n in range(10):
            html = (
                f"<html><body><article><h1>Story {f}-{n}</h1>{next(bodies)}</article></body></html>"
            )
            site.route(f"/f{f}/{n}.html", serve("text/html", html.encode()))
    config = tmp_path / "config.toml"
    write_config(config, site, feeds, database_url=postgres_url, interval=f"{interval:g}s")
    replicas = [daemon(config), daemon(config)]

    wait_for(lambda: scalar(postgres_url, "SELECT count(*) FROM articles") == 200, timeout=120)
    time.sleep(3 * interval)  # a few more polls of every feed, with nothing new
    logs = []
    for replica in replicas:
        code, log, _ = stop(replica)
        assert code == 0, log[-3000:]
        logs.append(log)
    assert all(" ERROR " not in log and "Traceback" not in log for log in logs), logs
    ((articles, urls, signatures),) = query(
        postgres_url,
        "SELECT count(*), count(DISTINCT url), (SELECT count(*) FROM article_signatures)"
        " FROM articles",
    )
    assert articles == urls == signatures == 200
    outcomes = {
        str(outcome): count
        for outcome, count in query(
            postgres_url, "SELECT outcome, count(*) FROM entries GROUP BY outcome"
        )
    }
    assert outcomes == {"stored": 200, "duplicate": 200}  # each story seen in two feeds
    for path in feeds.values():
        times = [moment for moment, requested in site.request_times() if requested == path]
        gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
        assert len(times) >= 3, path
        # Never twice within most of an interval, whichever replica polled.
        assert min(gaps) >= 0.8 * interval - 0.1, (path, gaps)


def test_the_database_going_away_loses_nothing(
    site: LocalSite,
    tmp_path: Path,
    postgres_url: str,
    daemon: Callable[[Path], subprocess.Popen[str]],
) -> None:
    """PostgreSQL unreachable for a minute (a restart): the daemon logs it, keeps its
    schedule, retries, and every story ends stored once, with no restart of the daemon."""
    started = time.monotonic()

    def stories_served() -> int:  # a new story every four seconds, 20 at most
        return min(20, 1 + int(time.monotonic() - started) // 4)

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
        return scalar(postgres_url, "SELECT count(*) FROM articles")

    with TcpProxy("127.0.0.1", 5432) as proxy:
        port = free_port()
        config = config_through(proxy, tmp_path, site, postgres_url, port)
        process = daemon(config)
        wait_for(lambda: stored() >= 2)
        proxy.cut()
        time.sleep(1)
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=20).status_code == 503
        away = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=20)
        assert away.status_code == 200 and "monitor_database_up 0.0" in away.text
        time.sleep(60)
        proxy.restore()
        wait_for(lambda: _answers(f"http://127.0.0.1:{port}/healthz"), timeout=30)
        wait_for(lambda: stored() >= stories_served() == 20, timeout=90)
        code, log, _ = stop(process)
    assert code == 0
    assert log.count("database unavailable") >= 20  # it kept its schedule, retrying each second
    assert "feed health unavailable for /metrics: the database:" in log
    assert "Traceback" not in log  # one line each, not a traceback a second
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


def test_an_edit_saved_while_the_database_is_away_is_applied_when_it_is_back(
    site: LocalSite,
    tmp_path: Path,
    postgres_url: str,
    daemon: Callable[[Path], subprocess.Popen[str]],
) -> None:
    """A valid edit the database cannot record (the feeds' rows) is not half-applied nor
    lost: it is tried again until the database is back."""
    for name in ("news", "late"):
        site.route(f"/{name}.rss", empty_feed(site, name))
    with TcpProxy("127.0.0.1", 5432) as proxy:
        config = config_through(proxy, tmp_path, site, postgres_url, free_port())
        process = daemon(config)
        wait_for(lambda: site.hits("/news.rss") >= 1, timeout=60)
        proxy.cut()
        time.sleep(1)
        edited = config.read_text(encoding="utf-8")
        config.write_text(
            edited + f'[[feeds]]\nname = "late"\nurl = "{site.url("/late.rss")}"\n'
            'interval = "1s"\n',
            encoding="utf-8",
        )
        time.sleep(8)  # two looks of the watcher at least: read, and tried
        assert site.hits("/late.rss") == 0
        proxy.restore()
        wait_for(lambda: site.hits("/late.rss") >= 1, timeout=30)
        code, log, _ = stop(process)
    assert code == 0
    assert "configuration not reloaded yet" in log and "configuration reloaded" in log
    assert "Traceback" not in log


def test_a_database_that_stops_answering_leaves_health_and_stop_working(
    site: LocalSite,
    tmp_path: Path,
    postgres_url: str,
    daemon: Callable[[Path], subprocess.Popen[str]],
) -> None:
    """PostgreSQL behind a frozen line (no answer, no error: a stopped proxy): /healthz
    and /metrics still answer, unhealthy, and SIGTERM still ends the daemon, with 0."""
    site.route("/news.rss", lambda _: (200, {"Content-Type": RSS}, feed_xml(site, "news", 1)))
    html = "<html><body><article><h1>Raid</h1>" + "<p>Police raided a compound.</p>" * 20
    site.route("/news/0.html", lambda _: (200, {"Content-Type": "text/html"}, html.encode()))
    with TcpProxy("127.0.0.1", 5432) as proxy:
        port = free_port()
        config = config_through(proxy, tmp_path, site, postgres_url, port)
        process = daemon(config)
        wait_for(lambda: _answers(f"http://127.0.0.1:{port}/healthz"), timeout=60)
        proxy.freeze()
        time.sleep(2)  # polls every second: some are now waiting on the frozen line
        health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=30)
        assert health.status_code == 503
        assert "no answer within" in health.json()["database"]
        assert httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=30).status_code == 200
        code, log, seconds = stop(process)
    assert code == 0, log[-3000:]
    assert seconds < 20, log[-3000:]
    assert "Traceback" not in log


def test_a_file_swapped_in_with_the_same_size_and_time_is_read(
    site: LocalSite,
    tmp_path: Path,
    sqlite_url: str,
    daemon: Callable[[Path], subprocess.Popen[str]],
) -> None:
    """An operator audit: a ConfigMap's symlink swap of a file copied with its time
    (`cp -p`, `rsync -t`), the same size by chance, was never picked up."""
    for name in ("a", "b"):
        site.route(f"/{name}.rss", empty_feed(site, name))
    config = tmp_path / "config.toml"
    write_config(config, site, {"a": "/a.rss"}, database_url=sqlite_url)
    process = daemon(config)
    wait_for(lambda: site.hits("/a.rss") >= 1)
    swapped = tmp_path / "swapped.toml"
    write_config(swapped, site, {"b": "/b.rss"}, database_url=sqlite_url)
    assert swapped.stat().st_size == config.stat().st_size
    before = config.stat()
    os.utime(swapped, ns=(before.st_atime_ns, before.st_mtime_ns))
    time.sleep(2.5)  # past the first look
    swapped.replace(config)
    wait_for(lambda: site.hits("/b.rss") >= 1, timeout=15)
    code, log, _ = stop(process)
    assert code == 0 and "feed removed: a" in log


def test_a_black_holed_database_does_not_hold_up_the_stop(
    site: LocalSite,
    tmp_path: Path,
    postgres_url: str,
    daemon: Callable[[Path], subprocess.Popen[str]],
) -> None:
    """PostgreSQL behind a line that swallows everything (no RST): SIGTERM ends the
    daemon within seconds, with 0, whatever its threads wait on. (That the kernel
    notices the dead peer, by the keepalives and tcp_user_timeout the connections
    ask for, a proxy in this process cannot show: its own socket acknowledges.)"""
    site.route("/news.rss", lambda _: (200, {"Content-Type": RSS}, feed_xml(site, "news", 1)))
    html = "<html><body><article><h1>Raid</h1>" + "<p>Police raided a compound.</p>" * 20
    site.route("/news/0.html", lambda _: (200, {"Content-Type": "text/html"}, html.encode()))
    with TcpProxy("127.0.0.1", 5432) as proxy:
        port = free_port()
        config = config_through(proxy, tmp_path, site, postgres_url, port)
        process = daemon(config)
        wait_for(lambda: _answers(f"http://127.0.0.1:{port}/healthz"), timeout=60)
        wait_for(lambda: site.hits("/news.rss") >= 1, timeout=30)
        proxy.freeze()
        time.sleep(4)  # polls and the configuration watch are now waiting on the line
        code, log, seconds = stop(process)
    assert code == 0, log[-3000:]
    assert seconds < 12, log[-3000:]
    assert "_watch" not in log  # no internal name shown to the operator
    assert "Traceback" not in log
