"""Pages that fail for a passing reason wait and are tried again; hosts that ask to wait
are left alone; `monitor retry` gives failed entries another chance. On SQLite and
PostgreSQL, against the local site."""

from __future__ import annotations

import subprocess
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from monitor.config import FeedSettings, FetchSettings, ProcessingSettings, Settings
from monitor.errors import FetchError
from monitor.records import Outcome
from monitor.retry import RetryPolicy, is_transient
from monitor.runner import run_once
from monitor.storage.schema import Entry
from monitor.storage.store import Store
from tests.commands import MONITOR, environment, run_monitor
from tests.localsite import Handler, LocalSite, Response, SiteRequest

FEED = "/feeds/wire.atom"
STORIES = (
    "/wire/stories/us-keeps-cambodia-at-tier-3-in-annual-trafficking-report-7be20d.html",
    "/wire/stories/cambodia-hands-over-46-thais-rescued-from-scam-compounds-a1f3c9.html",
    "/herald/2024/03/14/police-free-312-foreigners-in-sihanoukville-scam-compound-raid.html",
    "/wire/stories/indonesia-flies-home-87-citizens-freed-from-cambodian-scam-compounds-3c91aa.html",
)
FIRST = STORIES[0]


def settings(site: LocalSite, **fetch: Any) -> Settings:
    # One request at a time to the host: the page that gets the 429 is answered before
    # the next one's turn, as with the default per_host_delay on a real site.
    options: dict[str, Any] = {
        "allow_private_addresses": True,
        "timeout": 5,
        "per_host_delay": 0,
        "per_host_concurrency": 1,
        **fetch,
    }
    return Settings(
        fetch=FetchSettings(**options),
        processing=ProcessingSettings(workers=0),
        feeds=(FeedSettings(name="wire", url=site.url(FEED)),),
    )


def entries(store: Store) -> dict[str, Any]:
    """Every entry, by the path of its URL."""
    with store.engine.connect() as connection:
        rows = connection.execute(sa.select(Entry)).all()
    return {"/" + row.url.split("/", 3)[3]: row for row in rows}


def answers(site: LocalSite, *replies: Response) -> Handler:
    """A handler giving `replies` one after the other, then the file itself."""
    queue = list(replies)

    def handle(request: SiteRequest) -> Response:
        return queue.pop(0) if queue else site._serve_file(request)

    return handle


def time_passes(store: Store) -> None:
    """What the clock does: every entry waiting for a later try is due now."""
    with store.engine.begin() as connection:
        connection.execute(
            sa.update(Entry)
            .where(Entry.next_attempt_at.is_not(None))
            .values(next_attempt_at=datetime.now(UTC) - timedelta(seconds=1))
        )


def test_a_page_answering_429_with_retry_after_waits_and_its_host_with_it(
    site: LocalSite, store: Store
) -> None:
    """The audit: a 429 with Retry-After: 3600 was fetched again at every run-once and
    failed for good after three; the host's other pages were asked for meanwhile."""
    site.route(FIRST, answers(site, (429, {"Retry-After": "3600"}, b"slow down")))
    config = settings(site)
    first = run_once(config, store)
    assert first.total("waiting") == 4 and first.total("failed") == 0
    rows = entries(store)
    busy = rows[FIRST]
    assert (busy.outcome, busy.attempts, busy.reason) == (Outcome.PENDING, 1, "http_429")
    assert "Retry-After: 3600" in busy.error
    soon = datetime.now(UTC) + timedelta(minutes=59)
    assert soon < busy.next_attempt_at < soon + timedelta(minutes=2)
    # The host's other pages: not asked for in that poll, and no attempt spent.
    assert [site.hits(path) for path in STORIES[1:]] == [0, 0, 0]
    for path in STORIES[1:]:
        other = rows[path]
        assert (other.outcome, other.attempts, other.reason) == (
            Outcome.PENDING,
            0,
            "host_waiting",
        )
        assert other.next_attempt_at == busy.next_attempt_at or (
            abs(other.next_attempt_at - busy.next_attempt_at) < timedelta(seconds=5)
        )

    # cron's next run-once, seconds later: nothing asked of the site but its feed.
    for _ in range(3):
        again = run_once(config, store)
        assert again.total("failed") == 0
    assert [site.hits(path) for path in STORIES] == [1, 0, 0, 0]
    assert {row.outcome for row in entries(store).values()} == {Outcome.PENDING}

    time_passes(store)
    last = run_once(config, store)
    assert last.outcomes.get(Outcome.STORED) == 4
    assert [site.hits(path) for path in STORIES] == [2, 1, 1, 1]
    stored = entries(store)[FIRST]
    assert (stored.outcome, stored.attempts, stored.next_attempt_at) == (Outcome.STORED, 2, None)


def test_retry_after_as_an_http_date_and_a_503_without_one(site: LocalSite, store: Store) -> None:
    later = datetime.now(UTC) + timedelta(hours=2)
    site.route(
        FIRST, answers(site, (503, {"Retry-After": format_datetime(later, usegmt=True)}, b""))
    )
    site.route(STORIES[1], answers(site, (503, {}, b"down for maintenance")))
    run_once(settings(site), store)
    busy = entries(store)[FIRST]
    assert abs(busy.next_attempt_at - later) < timedelta(seconds=5)
    assert busy.reason == "http_503"

    # Without Retry-After the host still waits: as long as the page that got the 503.
    time_passes(store)
    site.route(FIRST, answers(site))
    run_once(settings(site, retry_delay="10m"), store)
    rows = entries(store)
    down = rows[STORIES[1]]
    assert (down.outcome, down.attempts, down.reason) == (Outcome.PENDING, 1, "http_503")
    ten_minutes = datetime.now(UTC) + timedelta(minutes=10)
    assert abs(down.next_attempt_at - ten_minutes) < timedelta(seconds=30)
    # The pages never tried go first (the feed answered 304: retries, oldest attempt
    # first): the first of them got the 503, and the others waited, the 429's page too.
    waited = [FIRST, *STORIES[2:]]
    assert [rows[path].reason for path in waited] == ["host_waiting"] * 3
    assert [site.hits(path) for path in waited] == [1, 0, 0]
    assert [rows[path].next_attempt_at for path in waited] == [down.next_attempt_at] * 3 or all(
        abs(rows[path].next_attempt_at - down.next_attempt_at) < timedelta(seconds=5)
        for path in waited
    )


def test_an_outage_spanning_several_polls_loses_no_entry(site: LocalSite, store: Store) -> None:
    """Polls every 0.1 s through an outage of 1.2 s, with three attempts 0.4 s apart and
    then 1.6 s: before, the first three polls spent the attempts and the story was lost."""
    outage_ends = time.monotonic() + 1.2

    def flaky(request: SiteRequest) -> Response:
        if time.monotonic() < outage_ends:
            return 502, {}, b"bad gateway"
        return site._serve_file(request)

    site.route(FIRST, flaky)
    config = settings(site, max_attempts=3, retry_delay=0.4)
    deadline = time.monotonic() + 8
    while entries(store).get(FIRST) is None or entries(store)[FIRST].outcome == Outcome.PENDING:
        assert time.monotonic() < deadline, entries(store)[FIRST]
        summary = run_once(config, store)
        assert summary.total("failed") == 0
        time.sleep(0.1)
    story = entries(store)[FIRST]
    assert (story.outcome, story.attempts) == (Outcome.STORED, 3)
    assert site.hits(FIRST) == 3
    # A 502 is the page's own: the host's other pages went on.
    assert [site.hits(path) for path in STORIES[1:]] == [1, 1, 1]


def test_a_permanent_failure_fails_as_before(site: LocalSite, store: Store) -> None:
    site.route(FIRST, lambda _: (404, {}, b"gone"))
    config = settings(site, max_attempts=2)
    run_once(config, store)
    missing = entries(store)[FIRST]
    assert (missing.outcome, missing.attempts, missing.reason) == (Outcome.FAILED, 1, "http_404")
    assert missing.next_attempt_at is None
    run_once(config, store)  # retried at the next poll, then given up
    run_once(config, store)
    missing = entries(store)[FIRST]
    assert (missing.outcome, missing.attempts) == (Outcome.FAILED, 2)
    assert site.hits(FIRST) == 2


def test_the_last_attempt_of_a_transient_failure_fails_for_good(
    site: LocalSite, store: Store
) -> None:
    site.route(FIRST, lambda _: (500, {}, b"oops"))
    run_once(settings(site, max_attempts=1), store)
    failed = entries(store)[FIRST]
    assert (failed.outcome, failed.attempts, failed.reason) == (Outcome.FAILED, 1, "http_500")
    assert failed.next_attempt_at is None


def test_retry_policy() -> None:
    policy = RetryPolicy(first=900, longest=6 * 3600)
    assert [policy.delay(attempts=n) for n in (1, 2, 3, 4)] == [900, 3600, 14400, 21600]
    assert policy.delay(attempts=1, retry_after=7200) == 7200
    assert policy.delay(attempts=1, retry_after=10**9) == 86400  # "2099" is not obeyed
    assert policy.host_wait(None) == 900 and policy.host_wait(30) == 30
    transient = ["timeout", "network_error", "dns_error", "http_429", "http_503"]
    assert all(is_transient(FetchError("x", reason=reason)) for reason in transient)
    assert is_transient(FetchError("x", reason="http_502", status=502))
    permanent = ["http_404", "http_410", "too_large", "unsupported_content", "blocked_address"]
    assert not any(is_transient(FetchError("x", reason=reason)) for reason in permanent)


def test_monitor_retry_queues_failed_entries_again(
    site: LocalSite, tmp_path: Path, database_url: str
) -> None:
    outage = [True]
    site.route(
        FIRST,
        lambda request: (500, {}, b"outage") if outage[0] else site._serve_file(request),
    )
    config = tmp_path / "config.toml"
    config.write_text(
        f'[database]\nurl = "{database_url}"\n'
        "[fetch]\nallow_private_addresses = true\nper_host_delay = 0\nmax_attempts = 1\n"
        f'[[feeds]]\nname = "wire"\nurl = "{site.url(FEED)}"\n',
        encoding="utf-8",
    )

    def run(*arguments: str) -> str:
        return run_monitor(config, *arguments)

    assert "failed: 1" in run("run-once")
    outage[0] = False
    run("run-once")  # given up: not fetched again
    assert site.hits(FIRST) == 1
    explained = run("explain", site.url(FIRST))  # which fetches it now
    assert "outcome failed after 1 attempts: " in explained
    assert "(`monitor retry` queues it again)" in explained
    assert "1 failed entries would be tried again" in run("retry", "--dry-run")
    assert "0 failed entries" in run("retry", "--since", "2999-01-01")
    assert "0 failed entries" in run("retry", "--reason", "http_404")
    # An operator audit: "HTTP_500" or "500" selected nothing, silently.
    # (A second audit: HTTP_500 was answered "did you mean 'http_404'" when no entry had
    # failed with a 500; its lower case is the spelling meant.)
    for written, hint in (("HTTP_500", "did you mean 'http_500'? "), ("500", "")):
        refused = subprocess.run(
            [MONITOR, "--config", str(config), "retry", "--reason", written, "--dry-run"],
            capture_output=True,
            text=True,
            env=environment(),
            check=False,
        )
        assert refused.returncode == 2, refused.stderr
        assert f"{hint}failed entries: http_500 (1)" in refused.stderr
    assert "1 failed entries queued" in run("retry", "--feed", "wire", "--reason", "http_500")
    assert "stored: 1" in run("run-once")
    assert site.hits(FIRST) == 3
    assert "0 failed entries" in run("retry")


def test_status_and_explain_show_an_entry_waiting(
    site: LocalSite, tmp_path: Path, database_url: str
) -> None:
    site.route(FIRST, answers(site, (429, {"Retry-After": "3600"}, b"")))
    config = tmp_path / "config.toml"
    config.write_text(
        f'[database]\nurl = "{database_url}"\n'
        "[fetch]\nallow_private_addresses = true\nper_host_delay = 0\n"
        "per_host_concurrency = 1\n"
        f'[[feeds]]\nname = "wire"\nurl = "{site.url(FEED)}"\n',
        encoding="utf-8",
    )
    assert "to be tried later: 4" in run_monitor(config, "run-once")
    status = run_monitor(config, "status").splitlines()
    assert "waiting" in status[0].split()
    assert status[1].split()[:2] == ["wire", "ok"] and " 4@" in status[1]
    asked = site.hits(FIRST), site.hits(STORIES[1])
    explained = run_monitor(config, "explain", site.url(FIRST))
    assert "outcome pending, waiting until " in explained
    assert "(attempt 2 of 3): " in explained and "HTTP 429" in explained
    assert "Retry-After: 3600" in explained
    other = run_monitor(config, "explain", site.url(STORIES[1]))
    assert "no attempt spent: its host asked to wait" in other
    assert "(HTTP 429, Retry-After 3600)" in other
    # Explaining does not ask a server again before the time it asked for.
    assert "not fetched now" in explained and "not fetched now" in other
    assert (site.hits(FIRST), site.hits(STORIES[1])) == asked
