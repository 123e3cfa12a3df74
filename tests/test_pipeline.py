"""The pipeline in-process, on SQLite and PostgreSQL: failures recorded, runs go on, crashes resume."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from monitor import extract as extract_module
from monitor import pipeline as pipeline_module
from monitor.config import FeedSettings, FetchSettings, ProcessingSettings, Settings
from monitor.extract import extract_article
from monitor.feeds import parse_feed
from monitor.http import Fetcher
from monitor.pipeline import Pipeline
from monitor.records import Outcome
from monitor.runner import run_once
from monitor.storage.schema import Article, Entry, Feed
from monitor.storage.store import Store
from tests.localsite import LocalSite

SITE = Path(__file__).parent / "site"
FETCH = FetchSettings(allow_private_addresses=True, timeout=5, max_attempts=2, per_host_delay=0)


def settings(site: LocalSite, *feeds: str) -> Settings:
    # In-process analysis, so that a test can patch a stage (the pool has its own tests).
    return Settings(
        fetch=FETCH,
        processing=ProcessingSettings(workers=0),
        feeds=tuple(FeedSettings(name=feed, url=site.url(f"/{feed}")) for feed in feeds),
    )


def rows(store: Store, model: Any) -> list[Any]:
    with store.engine.connect() as connection:
        return list(connection.execute(sa.select(model)).all())


def test_a_failing_feed_is_recorded_and_the_others_run(site: LocalSite, store: Store) -> None:
    config = settings(site, "feeds/missing.rss", "feeds/wire.atom")
    summary = run_once(config, store)
    assert summary.feeds_polled == 2 and summary.feeds_failed == 1
    assert summary.total("stored") > 0
    feeds = {row.name: row for row in rows(store, Feed)}
    missing = feeds["feeds/missing.rss"]
    assert (missing.last_status, missing.consecutive_failures) == (404, 1)
    assert missing.last_error.startswith("http_404")
    assert feeds["feeds/wire.atom"].consecutive_failures == 0


def test_a_feed_a_parser_cannot_read_is_a_failed_poll_and_the_others_run(
    site: LocalSite, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A parser's own bug (feedparser raised UnicodeEncodeError on "&#xD800;") took the
    # whole run-once down, and in the daemon failed every poll without a record.
    real = parse_feed

    def buggy(body: bytes, *, url: str, headers: Any = None) -> Any:
        if "national" in url:
            raise UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed")
        return real(body, url=url, headers=headers)

    monkeypatch.setattr(pipeline_module, "parse_feed", buggy)
    summary = run_once(settings(site, "feeds/national.rss", "feeds/wire.atom"), store)
    assert summary.feeds_polled == 2 and summary.feeds_failed == 1
    assert summary.total("stored") > 0
    feeds = {row.name: row for row in rows(store, Feed)}
    failed = feeds["feeds/national.rss"]
    assert failed.consecutive_failures == 1
    assert failed.last_error.startswith("unexpected_error: UnicodeEncodeError")


def test_what_is_never_text_is_not_stored_from_a_feed_or_a_page(
    site: LocalSite, store: Store
) -> None:
    sentence = (
        "<p>Police in Koh Kong freed 41 workers &#xD800;from a scam compound &#0;on"
        " Tuesday, provincial officials said.</p>"
    )
    page = f"<html><body><article><h1>Raid in Koh Kong</h1>{sentence * 6}</article></body></html>"
    site.route(
        "/hostile/raid.html",
        lambda _: (200, {"Content-Type": "text/html; charset=utf-8"}, page.encode()),
    )
    feed = (
        "<rss version='2.0'><channel><title>H &#xD800;</title><item>"
        f"<title>Raid &#xD800; in \u202eKoh Kong</title><guid>h1</guid>"
        f"<link>{site.url('/hostile/raid.html')}</link></item></channel></rss>"
    )
    site.route(
        "/hostile.rss",
        lambda _: (200, {"Content-Type": "application/rss+xml"}, feed.encode()),
    )
    summary = run_once(settings(site, "hostile.rss"), store)
    assert summary.total("stored") == 1
    ((title,),) = [(row.title,) for row in rows(store, Entry)]
    ((text, stored_title),) = [(row.text, row.title) for row in rows(store, Article)]
    assert title == "Raid in Koh Kong"
    assert "\ufffd" not in text and "freed 41 workers from a scam compound on Tuesday" in text
    assert "\ufffd" not in stored_title and "\u202e" not in stored_title


def test_not_a_feed_is_recorded(site: LocalSite, store: Store) -> None:
    site.route(
        "/feeds/html.rss", lambda _: (200, {"Content-Type": "text/html"}, b"<html>hi</html>")
    )
    summary = run_once(settings(site, "feeds/html.rss"), store)
    assert summary.feeds_failed == 1
    (feed,) = rows(store, Feed)
    assert feed.last_error.startswith("not_a_feed")
    assert feed.last_status == 200  # the server answered; what it sent was not a feed


def test_an_unexpected_error_on_one_page_fails_only_that_entry(
    site: LocalSite, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = extract_article

    def flaky(page: Any, entry: Any) -> Any:
        if "indonesia" in page.url:
            raise TypeError("library bug")
        return real(page, entry)

    monkeypatch.setattr(extract_module, "extract_article", flaky)
    summary = run_once(settings(site, "feeds/wire.atom"), store)
    assert summary.total("failed") == 1
    assert summary.total("stored") >= 2
    (failed,) = [row for row in rows(store, Entry) if row.outcome == Outcome.FAILED]
    assert failed.reason == "unexpected_error"
    assert "TypeError: library bug" in failed.error


def test_failed_entries_give_up_after_max_attempts(site: LocalSite, store: Store) -> None:
    config = settings(site, "feeds/national.rss")
    for _ in range(3):
        run_once(config, store)
    (failed,) = [row for row in rows(store, Entry) if row.outcome == Outcome.FAILED]
    assert failed.attempts == FETCH.max_attempts
    assert (
        site.hits(
            "/herald/2024/04/10/interior-ministry-extends-scam-crackdown-to-border-provinces.html"
        )
        == 2
    )


def test_an_entry_left_pending_by_a_crash_is_resumed(site: LocalSite, store: Store) -> None:
    config = settings(site, "feeds/wire.atom")
    feed_id = store.sync_feeds(config.feeds)[config.feeds[0].url]
    body = (site.root / "feeds/wire.atom").read_bytes().replace(b"{{BASE}}", site.base_url.encode())
    first = parse_feed(body, url=config.feeds[0].url).entries[0]
    # What a crash after "recorded, not yet stored" leaves behind:
    store.claim_entry(feed_id, first, max_attempts=2)
    store.record_poll_success(
        feed_id, status=200, etag=None, last_modified=None, title=None, entry_count=1
    )
    run_once(config, store)
    entries = {row.url: row for row in rows(store, Entry)}
    assert entries[first.url].outcome == Outcome.STORED
    assert len([r for r in rows(store, Article) if r.url == first.url]) == 1


def test_stop_finishes_the_entry_in_hand_and_keeps_validators(
    site: LocalSite, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    stop = threading.Event()
    real = pipeline_module.judge_article

    def stop_after_first(*args: Any, **kwargs: Any) -> Any:
        stop.set()  # as SIGTERM would, while the first page is in hand
        return real(*args, **kwargs)

    monkeypatch.setattr(pipeline_module, "judge_article", stop_after_first)
    config = settings(site, "feeds/wire.atom")
    summary = run_once(config, store, stop=stop)
    assert summary.reports[0].interrupted
    assert summary.total("stored") == 1  # the entry in hand was finished, not abandoned
    # The rest of the feed's entries were recorded (claimed in one batch) but not
    # worked on: pending, no attempt counted.
    outcomes = sorted((row.outcome, row.attempts) for row in rows(store, Entry))
    assert outcomes == [(Outcome.PENDING, 0)] * 3 + [(Outcome.STORED, 1)]
    (feed,) = rows(store, Feed)
    assert feed.etag is None  # the next poll must fetch the feed in full
    monkeypatch.setattr(pipeline_module, "judge_article", real)
    assert run_once(config, store).total("stored") == 3  # the other three entries of the feed


def test_a_stop_asks_for_no_page_whose_fetch_had_not_started(site: LocalSite, store: Store) -> None:
    # An operator audit: on SIGTERM the poll fetched every page of its window (eight with
    # two workers, two fetch threads), ran out the stop's few seconds on ordinary 2-second
    # pages, and was abandoned without recording the poll.
    stop = threading.Event()
    article = (
        (
            site.root
            / "herald/2024/03/14/police-free-312-foreigners-in-sihanoukville-scam-compound-raid.html"
        )
        .read_bytes()
        .replace(b"{{BASE}}", site.base_url.encode())
    )

    def slow_page(_: Any) -> tuple[int, dict[str, str], bytes]:
        stop.set()  # SIGTERM, while the first pages are being fetched
        time.sleep(0.3)
        return 200, {"Content-Type": "text/html; charset=utf-8"}, article

    items = "".join(
        f"<item><guid>s{n}</guid><title>Raid {n}</title><link>{site.url(f'/slow/{n}.html')}</link>"
        "</item>"
        for n in range(12)
    )
    feed = f'<rss version="2.0"><channel><title>t</title>{items}</channel></rss>'.encode()
    site.route("/slow.rss", lambda _: (200, {"Content-Type": "application/rss+xml"}, feed))
    for n in range(12):
        site.route(f"/slow/{n}.html", slow_page)
    config = settings(site, "slow.rss").model_copy(
        update={"processing": ProcessingSettings(workers=2)}
    )
    summary = run_once(config, store, stop=stop)
    (report,) = summary.reports
    assert report.interrupted
    asked = sum(site.hits(f"/slow/{n}.html") for n in range(12))
    # Those two threads had begun, and at most one more each before the stop was seen.
    assert 1 <= asked <= 2 * pipeline_module.FETCH_THREADS
    outcomes = [row.outcome for row in rows(store, Entry)]
    assert len(outcomes) == 12 and outcomes.count(Outcome.PENDING) == 12 - asked
    (polled,) = rows(store, Feed)
    assert polled.last_polled_at is not None and polled.last_entry_count == 12


def test_an_entry_listed_twice_is_processed_once_with_workers(
    site: LocalSite, store: Store
) -> None:
    """With pages in analysis while the next entries are claimed, the second listing of
    an entry must not start it again."""
    item = (
        f"<item><guid>same</guid><title>Raid</title><link>{site.url('/herald/2024/03/14/police-free-312-foreigners-in-sihanoukville-scam-compound-raid.html')}"
        "</link></item>"
    )
    site.route(
        "/twice.rss",
        lambda _: (
            200,
            {"Content-Type": "application/rss+xml"},
            f'<rss version="2.0"><channel><title>t</title>{item}{item}</channel></rss>'.encode(),
        ),
    )
    config = settings(site, "twice.rss").model_copy(
        update={"processing": ProcessingSettings(workers=2)}
    )
    summary = run_once(config, store)
    assert summary.total("new_entries") == 1
    assert [row.outcome for row in rows(store, Entry)] == [Outcome.STORED]


def test_every_entry_event_logs_its_feed_url_and_outcome(
    site: LocalSite, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    # The wire's feed links the Herald's own URL, met first in the national feed.
    with caplog.at_level("INFO", logger="monitor.pipeline"):
        run_once(settings(site, "feeds/national.rss", "feeds/wire.atom"), store)
    events = [r for r in caplog.records if r.getMessage().startswith(("stored", "duplicate"))]
    assert any("same_url" in record.getMessage() for record in events)
    for record in events:
        fields = (record.__dict__.get("feed"), record.__dict__.get("outcome"))
        assert fields[0] in ("feeds/national.rss", "feeds/wire.atom"), record.getMessage()
        assert fields[1] in ("stored", "duplicate") and record.__dict__.get("url")


STORIES = (
    "/herald/2024/03/14/police-free-312-foreigners-in-sihanoukville-scam-compound-raid.html",
    "/herald/2024/04/03/ncct-orders-provinces-to-report-monthly-on-scam-compounds.html",
    "/wire/stories/indonesia-flies-home-87-citizens-freed-from-cambodian-scam-compounds-3c91aa.html",
    "/observer/stories/battambang-shelter-opens-for-trafficking-survivors.html",
    "/observer/news/2024/05/siem-reap-police-arrest-telegram-broker-18832.html",
)


def test_a_feed_giving_every_item_one_guid_loses_no_story(site: LocalSite, store: Store) -> None:
    """Every item's GUID is the site's home page: each new story is stored, on the first
    poll and on the next, when two more are listed."""
    listed = 3

    def feed(_: Any) -> tuple[int, dict[str, str], bytes]:
        items = "".join(
            f"<item><title>{path}</title><link>{site.url(path)}</link>"
            f"<guid>{site.url('/')}</guid></item>"
            for path in STORIES[:listed]
        )
        body = f'<rss version="2.0"><channel><title>t</title>{items}</channel></rss>'
        return 200, {"Content-Type": "application/rss+xml"}, body.encode()

    site.route("/oneguid.rss", feed)
    first = run_once(settings(site, "oneguid.rss"), store)
    assert first.total("new_entries") == 3
    listed = 5
    second = run_once(settings(site, "oneguid.rss"), store)
    assert second.total("new_entries") == 2
    entries = rows(store, Entry)
    assert sorted(entry.url for entry in entries) == sorted(site.url(path) for path in STORIES)
    assert {entry.outcome for entry in entries} == {Outcome.STORED}


def test_a_json_feed_is_polled(site: LocalSite, store: Store) -> None:
    items = [
        {"id": path, "url": site.url(path), "title": path, "date_published": "2024-05-01T00:00:00Z"}
        for path in STORIES[:2]
    ]
    body = json.dumps({"version": "https://jsonfeed.org/version/1.1", "title": "J", "items": items})
    site.route(
        "/feed.json", lambda _: (200, {"Content-Type": "application/feed+json"}, body.encode())
    )
    summary = run_once(settings(site, "feed.json"), store)
    assert summary.feeds_failed == 0 and summary.total("stored") == 2
    (feed,) = rows(store, Feed)
    assert feed.title == "J"


def test_a_feed_that_moved_for_good_is_reported(
    site: LocalSite, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    site.route("/old.rss", lambda _: (301, {"Location": "/feeds/wire.atom"}, b""))
    site.route("/for-now.rss", lambda _: (302, {"Location": "/feeds/wire.atom"}, b""))
    with caplog.at_level("WARNING", logger="monitor.pipeline"):
        summary = run_once(settings(site, "old.rss", "for-now.rss"), store)
    assert summary.feeds_failed == 0
    moved = [r.getMessage() for r in caplog.records if r.getMessage().startswith("feed moved")]
    assert moved == [
        f"feed moved permanently: old.rss: {site.url('/old.rss')} now redirects to"
        f" {site.url('/feeds/wire.atom')}; put the new address in the config file"
    ]
    # An audit: `monitor status` and the feed_health view said nothing of it.
    errors = {feed.name: feed.last_error for feed in rows(store, Feed)}
    assert errors == {
        "old.rss": f"moved permanently to {site.url('/feeds/wire.atom')}: put the new address"
        " in the config file",
        "for-now.rss": None,
    }


def test_items_without_a_link_are_reported(
    site: LocalSite, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    body = (
        '<rss version="2.0"><channel><title>t</title>'
        f"<item><title>ok</title><link>{site.url(STORIES[0])}</link></item>"
        '<item><title>no link</title><guid isPermaLink="false">x-1</guid></item>'
        "<item><title>ftp</title><link>ftp://news.test/a</link></item>"
        "</channel></rss>"
    )
    site.route(
        "/links.rss", lambda _: (200, {"Content-Type": "application/rss+xml"}, body.encode())
    )
    with caplog.at_level("WARNING", logger="monitor.pipeline"):
        run_once(settings(site, "links.rss"), store)
    reason = "no usable link to an article (none, not http(s), or longer than 2,048 characters)"
    assert any(
        r.getMessage() == f"feed items skipped: links.rss: 2 with {reason}" for r in caplog.records
    )
    # An audit: with every item skipped, the feed showed ok with no last_error.
    assert [feed.last_error for feed in rows(store, Feed)] == [f"2 items skipped: {reason}"]


def test_run_once_leaves_a_feed_that_asked_to_wait(site: LocalSite, store: Store) -> None:
    """429 with Retry-After: an hour. A second run-once (cron's next) does not ask again;
    a feed failing once is only failing, and is polled; --ignore-backoff polls both."""
    site.route("/busy.rss", lambda _: (429, {"Retry-After": "3600"}, b""))
    site.route("/down.rss", lambda _: (500, {}, b""))
    config = settings(site, "busy.rss", "down.rss")
    first = run_once(config, store)
    assert (first.feeds_polled, first.feeds_failed, first.backing_off) == (2, 2, [])
    second = run_once(config, store)
    assert [report.feed for report in second.reports] == ["down.rss"]
    ((name, due),) = second.backing_off
    assert name == "busy.rss" and due > datetime.now(UTC) + timedelta(minutes=59)
    assert (site.hits("/busy.rss"), site.hits("/down.rss")) == (1, 2)
    forced = run_once(config, store, ignore_backoff=True)
    assert forced.feeds_polled == 2 and forced.backing_off == []
    assert site.hits("/busy.rss") == 2


def test_run_once_waits_for_a_retry_after_shorter_than_the_interval(
    site: LocalSite, store: Store
) -> None:
    # An operator audit: a Retry-After of 10 minutes on a feed polled every 15 was not
    # "backing off" (not beyond the interval), and the next run-once asked again at once.
    site.route("/busy.rss", lambda _: (429, {"Retry-After": "600"}, b""))
    site.route("/unavailable.rss", lambda _: (503, {}, b""))
    config = settings(site, "busy.rss", "unavailable.rss")
    assert config.feeds[0].interval > 600
    run_once(config, store)
    second = run_once(config, store)
    assert second.reports == [] and sorted(name for name, _ in second.backing_off) == [
        "busy.rss",
        "unavailable.rss",
    ]
    assert (site.hits("/busy.rss"), site.hits("/unavailable.rss")) == (1, 1)


def test_run_once_leaves_a_feed_the_daemon_is_polling(site: LocalSite, store: Store) -> None:
    """A daemon holds the feed's lease: run-once must not work on its entries too (each
    process recorded the other's article as a copy of itself)."""
    config = settings(site, "feeds/national.rss", "feeds/wire.atom")
    ids = store.sync_feeds(config.feeds)
    assert store.lease_feed(ids[site.url("/feeds/national.rss")], owner="daemon", hold=60)
    summary = run_once(config, store)
    assert summary.held_elsewhere == ["feeds/national.rss"]
    assert [report.feed for report in summary.reports] == ["feeds/wire.atom"]
    assert site.hits("/feeds/national.rss") == 0
    with store.engine.connect() as connection:
        owners = dict(connection.execute(sa.select(Feed.name, Feed.lease_owner)).all())
    # run-once gave back what it took, and only that.
    assert owners == {"feeds/national.rss": "daemon", "feeds/wire.atom": None}


def test_a_link_too_long_to_store_skips_only_that_item(site: LocalSite, store: Store) -> None:
    """On PostgreSQL a 2,300-character URL overflowed entries.url: the whole feed's
    claim failed at every poll, reported as the database being away."""
    long_link = site.url(STORIES[1]) + "?q=" + "x" * 2300
    body = (
        '<rss version="2.0"><channel><title>t</title>'
        f"<item><title>ok</title><link>{site.url(STORIES[0])}</link></item>"
        f"<item><title>long</title><link>{long_link}</link></item>"
        "</channel></rss>"
    )
    site.route("/long.rss", lambda _: (200, {"Content-Type": "application/rss+xml"}, body.encode()))
    summary = run_once(settings(site, "long.rss"), store)
    assert summary.feeds_failed == 0 and summary.total("stored") == 1
    assert [entry.url for entry in rows(store, Entry)] == [site.url(STORIES[0])]


@pytest.mark.parametrize("amp_first", [True, False])
def test_an_amp_page_is_kept_under_the_url_it_declares(
    site: LocalSite, store: Store, amp_first: bool
) -> None:
    # An audit: the AMP copy arriving first was kept under /amp/…, the article's real
    # URL became its copy, and story_reach counted the site as copying itself.
    raid = "/herald/2024/03/14/police-free-312-foreigners-in-sihanoukville-scam-compound-raid.html"
    page = (SITE / raid.lstrip("/")).read_text(encoding="utf-8").replace("{{BASE}}", site.base_url)
    site.route("/amp" + raid, lambda _: (200, {"Content-Type": "text/html"}, page.encode()))
    links = [site.url("/amp" + raid), site.url(raid)]
    items = "".join(
        f"<item><title>Raid</title><link>{link}</link></item>"
        for link in (links if amp_first else links[::-1])
    )
    site.route(
        "/both.rss",
        lambda _: (
            200,
            {"Content-Type": "application/rss+xml"},
            f'<rss version="2.0"><channel><title>t</title>{items}</channel></rss>'.encode(),
        ),
    )
    run_once(settings(site, "both.rss"), store)
    assert [row.url for row in rows(store, Article)] == [site.url(raid)]
    with store.engine.connect() as connection:
        reach = connection.execute(
            sa.text("SELECT copies, same_url_entries FROM story_reach")
        ).one()
    assert tuple(reach) == (0, 1)


def test_a_feed_disabled_by_another_configuration_is_enabled_by_its_next_poll(
    site: LocalSite, store: Store
) -> None:
    # An operator audit: a `run-once` with a one-feed test file marked the daemon's
    # other feed disabled while the daemon kept polling it, failing: its failures were
    # hidden from alerting as "disabled".
    both = settings(site, "feeds/national.rss", "feeds/missing.rss")
    ids = store.sync_feeds(both.feeds)
    store.sync_feeds(both.feeds[:1])
    with Fetcher(FETCH) as fetcher:
        pipeline = Pipeline(store, fetcher)
        pipeline.poll(both.feeds[1], ids[both.feeds[1].url])
    feed = store.feed_state(ids[both.feeds[1].url]).history
    assert feed.enabled
    (health,) = [h for f, h in store.feed_health_report() if f.url == both.feeds[1].url]
    assert health == "failing"


def test_a_feed_disabled_during_its_poll_stays_disabled_and_its_poll_stops(
    site: LocalSite, store: Store
) -> None:
    # The same audit: an edit disabled a feed in the middle of its poll; the poll went on
    # fetching every page and wrote health "ok" over "disabled".
    config = settings(site, "feeds/national.rss")
    (feed,) = config.feeds
    feed_id = store.sync_feeds(config.feeds)[feed.url]
    state = store.feed_state(feed_id)
    store.sync_feeds([])  # the edit, written while the poll runs
    store.record_poll_success(
        feed_id, status=200, etag=None, last_modified=None, title=None, entry_count=3, state=state
    )
    with store.engine.connect() as connection:
        health = connection.execute(sa.select(Feed.health).where(Feed.id == feed_id)).scalar()
    assert health == "disabled"
    # The daemon withdraws it from its pipeline: a poll starting or running stops.
    with Fetcher(FETCH) as fetcher:
        pipeline = Pipeline(store, fetcher)
        pipeline.withdraw(feed.url)
        report = pipeline.poll(feed, feed_id)
    assert report.interrupted and report.stored == 0 and site.hits("/feeds/national.rss") == 0
    assert not store.feed_state(feed_id).history.enabled


def test_a_poll_with_no_validator_to_send_is_a_full_fetch(site: LocalSite, store: Store) -> None:
    # A schema audit: a feed without ETag or Last-Modified is fetched in full at every
    # poll, while `feeds.last_full_fetch_at` stayed at the first poll's time.
    body = (site.root / "feeds/wire.atom").read_bytes().replace(b"{{BASE}}", site.base_url.encode())
    site.route("/feeds/plain.atom", lambda _: (200, {"Content-Type": "application/atom+xml"}, body))
    config = settings(site, "feeds/plain.atom")
    run_once(config, store)
    (first,) = rows(store, Feed)
    assert first.etag is None and first.last_modified is None
    run_once(config, store)
    (second,) = rows(store, Feed)
    assert second.last_full_fetch_at is not None and first.last_full_fetch_at is not None
    assert second.last_full_fetch_at > first.last_full_fetch_at
    assert second.last_full_fetch_at == second.last_polled_at
