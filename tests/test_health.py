"""Backoff, Retry-After, staleness, per-host limits and robots.txt."""

from __future__ import annotations

import itertools
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from monitor.config import FetchSettings, HealthSettings
from monitor.errors import FetchError
from monitor.health import (
    FeedHistory,
    Health,
    backoff_delay,
    feed_health,
    parse_retry_after,
)
from monitor.http import Fetcher, HostLimiter, RobotsCache
from tests.localsite import LocalSite

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)


def history(**values: object) -> FeedHistory:
    defaults: dict[str, object] = {
        "enabled": True,
        "interval": 900.0,
        "last_polled_at": NOW - timedelta(minutes=1),
        "consecutive_failures": 0,
        "next_poll_at": None,
        "first_new_entry_at": None,
        "last_new_entry_at": None,
        "polls_with_new_entries": 0,
    }
    return FeedHistory(**{**defaults, **values})  # type: ignore[arg-type]


def test_backoff_doubles_from_the_second_failure_up_to_the_cap() -> None:
    delays = [backoff_delay(900, failures, 6 * 3600) for failures in range(1, 9)]
    assert delays == [900, 1800, 3600, 7200, 14400, 21600, 21600, 21600]
    # A cap below the interval never makes a failing feed polled sooner than a healthy one.
    assert [backoff_delay(900, failures, 120) for failures in range(1, 4)] == [900, 900, 900]


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("120", 120.0), ("Sat, 01 Jun 2024 12:05:00 GMT", 300.0), ("soon", None), (None, None)],
)
def test_retry_after(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header, NOW) == seconds


def test_health_states() -> None:
    settings = HealthSettings()
    assert feed_health(history(enabled=False), settings, NOW) is Health.DISABLED
    assert feed_health(history(last_polled_at=None), settings, NOW) is Health.NEVER_POLLED
    assert (
        feed_health(
            history(consecutive_failures=1, next_poll_at=NOW + timedelta(minutes=14)), settings, NOW
        )
        is Health.FAILING
    )
    assert (
        feed_health(
            history(consecutive_failures=3, next_poll_at=NOW + timedelta(hours=1)), settings, NOW
        )
        is Health.BACKING_OFF
    )
    assert feed_health(history(), settings, NOW) is Health.OK


def test_stale_after_several_usual_gaps() -> None:
    settings = HealthSettings(stale_after_gaps=4, stale_minimum=3600)
    # New entries about every 2 hours (10 polls over 18 hours) …
    producing = {"first_new_entry_at": NOW - timedelta(hours=20), "polls_with_new_entries": 10}
    recent = history(last_new_entry_at=NOW - timedelta(hours=2), **producing)
    quiet = history(last_new_entry_at=NOW - timedelta(hours=9), **producing)
    assert feed_health(recent, settings, NOW) is Health.OK
    assert feed_health(quiet, settings, NOW) is Health.STALE  # 9 h > 4 × 2 h
    # A feed that never produced twice has no usual gap: never stale.
    assert (
        feed_health(
            history(
                last_new_entry_at=NOW - timedelta(days=9),
                polls_with_new_entries=1,
                first_new_entry_at=NOW - timedelta(days=9),
            ),
            settings,
            NOW,
        )
        is Health.OK
    )


def test_host_limiter_spaces_requests_to_one_host() -> None:
    limiter = HostLimiter(concurrency=2, delay=0.2)
    starts: list[float] = []

    def request() -> None:
        with limiter.slot("news.example"):
            starts.append(time.monotonic())

    threads = [threading.Thread(target=request) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    starts.sort()
    assert all(later - earlier >= 0.18 for earlier, later in itertools.pairwise(starts))
    with limiter.slot("other.example"):  # another host is not held up
        pass


def test_robots_txt_is_honoured_for_pages(site: LocalSite) -> None:
    site.route(
        "/robots.txt",
        lambda _: (200, {"Content-Type": "text/plain"}, b"User-agent: *\nDisallow: /private/\n"),
    )
    site.route("/private/a.html", lambda _: (200, {"Content-Type": "text/html"}, b"<p>x</p>"))
    site.route("/public/a.html", lambda _: (200, {"Content-Type": "text/html"}, b"<p>x</p>"))
    settings = FetchSettings(allow_private_addresses=True, per_host_delay=0)
    with Fetcher(settings) as fetcher:
        assert fetcher.page(site.url("/public/a.html")).body == b"<p>x</p>"
        with pytest.raises(FetchError) as caught:
            fetcher.page(site.url("/private/a.html"))
        assert caught.value.reason == "robots_disallowed"
        fetcher.page(site.url("/public/a.html"))
    assert site.hits("/robots.txt") == 1  # cached per host
    assert site.hits("/private/a.html") == 0


def test_robots_txt_is_honoured_at_every_redirect_hop(site: LocalSite) -> None:
    """An aggregator's link that redirects into a disallowed path: refused before the
    disallowed page is requested."""
    site.route(
        "/robots.txt",
        lambda _: (200, {"Content-Type": "text/plain"}, b"User-agent: *\nDisallow: /private/\n"),
    )
    site.route("/r/private", lambda _: (302, {"Location": "/private/a.html"}, b""))
    site.route("/r/public", lambda _: (301, {"Location": "/r/private2"}, b""))
    site.route("/r/private2", lambda _: (307, {"Location": site.url("/public/a.html")}, b""))
    site.route("/private/a.html", lambda _: (200, {"Content-Type": "text/html"}, b"<p>x</p>"))
    site.route("/public/a.html", lambda _: (200, {"Content-Type": "text/html"}, b"<p>y</p>"))
    settings = FetchSettings(allow_private_addresses=True, per_host_delay=0)
    with Fetcher(settings) as fetcher:
        with pytest.raises(FetchError) as caught:
            fetcher.page(site.url("/r/private"))
        assert caught.value.reason == "robots_disallowed"
        assert "/private/a.html" in str(caught.value)
        page = fetcher.page(site.url("/r/public"))
    assert (page.body, page.final_url) == (b"<p>y</p>", site.url("/public/a.html"))
    assert site.hits("/private/a.html") == 0


def test_each_redirect_hop_takes_its_hosts_turn(site: LocalSite) -> None:
    """The per-host limit holds for every request, redirects included: three hops on one
    host are three requests one `per_host_delay` apart, and the chain still ends."""
    site.route("/hop/1", lambda _: (302, {"Location": "/hop/2"}, b""))
    site.route("/hop/2", lambda _: (302, {"Location": "/hop/3"}, b""))
    site.route("/hop/3", lambda _: (200, {"Content-Type": "text/html"}, b"<p>z</p>"))
    settings = FetchSettings(allow_private_addresses=True, per_host_delay=0.3, robots_txt=False)
    with Fetcher(settings) as fetcher:
        assert fetcher.page(site.url("/hop/1")).body == b"<p>z</p>"
    starts = sorted(moment for moment, path in site.request_times() if path.startswith("/hop/"))
    assert len(starts) == 3
    assert all(later - earlier >= 0.28 for earlier, later in itertools.pairwise(starts))


def test_missing_robots_txt_allows_everything(site: LocalSite) -> None:
    site.route("/a.html", lambda _: (200, {"Content-Type": "text/html"}, b"<p>x</p>"))
    with Fetcher(FetchSettings(allow_private_addresses=True, per_host_delay=0)) as fetcher:
        assert fetcher.page(site.url("/a.html")).status == 200


def test_robots_txt_is_kept_for_the_hosts_asked_about_most_recently(site: LocalSite) -> None:
    page = (200, {"Content-Type": "text/html"}, b"<p>x</p>")
    site.route("/a.html", lambda _: page)
    with LocalSite(site.root) as other:
        other.route("/a.html", lambda _: page)
        with Fetcher(FetchSettings(allow_private_addresses=True, per_host_delay=0)) as fetcher:
            fetcher.robots = RobotsCache(fetcher, capacity=1)
            fetcher.page(site.url("/a.html"))
            fetcher.page(site.url("/a.html"))
            assert site.hits("/robots.txt") == 1
            fetcher.page(other.url("/a.html"))  # a second host: the first one's rules go
            fetcher.page(site.url("/a.html"))
            assert site.hits("/robots.txt") == 2
            assert other.hits("/robots.txt") == 1


def test_host_limiter_forgets_idle_hosts_but_not_their_delay() -> None:
    limiter = HostLimiter(concurrency=2, delay=0.0)
    for number in range(3 * HostLimiter.SWEEP_EVERY):
        with limiter.slot(f"site{number}.example"):
            pass
    assert limiter.hosts_held < HostLimiter.SWEEP_EVERY

    # A host whose delay has not run out is kept, so the next request still waits.
    spaced = HostLimiter(concurrency=1, delay=1.0)
    with spaced.slot("news.example"):
        first = time.monotonic()
    for number in range(HostLimiter.SWEEP_EVERY):
        with spaced.slot(f"site{number}.example"):
            pass
    assert time.monotonic() - first < 1.0  # the sweep ran meanwhile
    with spaced.slot("news.example"):
        assert time.monotonic() - first >= 0.95
