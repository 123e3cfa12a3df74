"""`monitor run` as a process: it polls on schedule, survives failing feeds, and stops
cleanly on SIGTERM and SIGINT."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from monitor.config import load_settings
from monitor.feeds import parse_feed
from monitor.storage.store import Store
from tests.commands import MONITOR, environment
from tests.databases import scalar
from tests.localsite import LocalSite

pytestmark = pytest.mark.slow


def wire_config(tmp_path: Path, site: LocalSite, database_url: str, *, interval: str) -> Path:
    """A configuration of the local site's wire feed alone, polled every `interval`."""
    config = tmp_path / "config.toml"
    config.write_text(
        f'[database]\nurl = "{database_url}"\n[fetch]\nallow_private_addresses = true\nper_host_delay = 0\n[http]\nport = 0\n'
        f'[[feeds]]\nname = "wire"\nurl = "{site.url("/feeds/wire.atom")}"\ninterval = "{interval}"\n',
        encoding="utf-8",
    )
    return config


def start(config: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [MONITOR, "--config", str(config), "run"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment(),
    )


def wait_for(condition: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError("condition not met in time")


def stop(process: subprocess.Popen[str], signum: int) -> tuple[int, str, float]:
    began = time.monotonic()
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=30)
    return process.returncode, stderr, time.monotonic() - began


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_daemon_polls_on_schedule_and_stops_on_signal(
    site: LocalSite, tmp_path: Path, database_url: str, signum: int
) -> None:
    config = wire_config(tmp_path, site, database_url, interval="1s")
    process = start(config)
    try:
        wait_for(lambda: scalar(database_url, "SELECT count(*) FROM articles") == 4)
        # The schedule goes on: the feed is polled again (answered 304 by the site).
        polls = site.hits("/feeds/wire.atom")
        wait_for(lambda: site.hits("/feeds/wire.atom") >= polls + 2, timeout=20)
    finally:
        returncode, stderr, seconds = stop(process, signum)
    assert returncode == 0, stderr
    assert seconds < 10
    assert "daemon stopped" in stderr
    assert "Traceback" not in stderr
    assert scalar(database_url, "SELECT count(*) FROM entries WHERE outcome = 'pending'") == 0


def test_daemon_keeps_running_when_feeds_fail(tmp_path: Path, database_url: str) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        f'[database]\nurl = "{database_url}"\n'
        '[fetch]\nallow_private_addresses = true\nper_host_delay = 0\ntimeout = "2s"\n[http]\nport = 0\n'
        '[[feeds]]\nname = "down"\nurl = "http://127.0.0.1:9/feed.rss"\ninterval = "1s"\n'
        '[[feeds]]\nname = "nowhere"\nurl = "http://monitor-test.invalid/feed.rss"\ninterval = "1s"\n',
        encoding="utf-8",
    )
    process = start(config)
    try:
        wait_for(
            lambda: scalar(database_url, "SELECT min(consecutive_failures) FROM feeds") >= 3,
            timeout=30,
        )
        assert process.poll() is None
    finally:
        returncode, stderr, _ = stop(process, signal.SIGTERM)
    assert returncode == 0
    assert "feed failed: down" in stderr and "feed failed: nowhere" in stderr
    assert "Traceback" not in stderr


def test_entries_cut_off_by_a_stop_are_finished_at_the_next_start(
    site: LocalSite, tmp_path: Path, database_url: str, store: Store
) -> None:
    """An operator audit: entries left pending by a stop waited for the feed's next
    regular poll (an interval after the last one: up to hours), not the next start."""
    config = wire_config(tmp_path, site, database_url, interval="6h")
    settings = load_settings(config)
    feed_id = store.sync_feeds(settings.feeds)[settings.feeds[0].url]
    body = (site.root / "feeds/wire.atom").read_bytes().replace(b"{{BASE}}", site.base_url.encode())
    entries = parse_feed(body, url=settings.feeds[0].url).entries
    # What a stop in the middle of a poll leaves: the feed polled just now, its entries
    # recorded and not worked on.
    store.claim_entries(feed_id, entries, max_attempts=settings.fetch.max_attempts)
    store.record_poll_success(
        feed_id, status=200, etag=None, last_modified=None, title=None, entry_count=len(entries)
    )
    process = start(config)
    try:
        wait_for(
            lambda: scalar(database_url, "SELECT count(*) FROM articles") == len(entries),
            timeout=60,
        )
    finally:
        returncode, stderr, _ = stop(process, signal.SIGTERM)
    assert returncode == 0, stderr
    assert scalar(database_url, "SELECT count(*) FROM entries WHERE outcome = 'pending'") == 0


def test_an_edit_that_drops_every_feed_or_the_topic_filter_is_said_out_loud() -> None:
    # An operator audit: a config file cut short before [topic] (a slow copy) was applied
    # with an INFO line; with its feeds before [topic], every article would be kept.
    from monitor.config import FeedSettings, Settings, TopicSettings
    from monitor.daemon import _drastic_changes

    feeds = (FeedSettings(name="a", url="http://127.0.0.1:1/a.rss"),)
    topic = TopicSettings(all=(("cambodia",), ("trafficking",)))
    filtered = Settings(feeds=feeds, topic=topic)
    assert _drastic_changes(filtered, filtered) == []
    assert _drastic_changes(filtered, Settings(feeds=feeds)) == [
        "[topic] lists no phrase any more: every article of the feeds is kept, and stored"
        " articles are never judged again"
    ]
    assert _drastic_changes(filtered, Settings(topic=topic)) == [
        "no feed is configured any more: nothing will be polled"
    ]
    assert _drastic_changes(Settings(), Settings(feeds=feeds)) == []
