"""Running the pipeline: once over every enabled feed, or as a scheduled daemon.

The scheduler (APScheduler 3) only runs the clock: one interval job per enabled
feed, first due when the database says the feed was last polled one interval ago.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from monitor.analysis import Analyser
from monitor.config import Settings
from monitor.errors import DatabaseError
from monitor.health import Health
from monitor.http import Fetcher
from monitor.leases import LEASE_HOLD, LeaseKeeper, free_leases_of_the_dead, process_identity
from monitor.pipeline import Pipeline, PollReport
from monitor.retry import BUSY_STATUSES
from monitor.rules import RuleSet
from monitor.storage.database import (
    SCHEMA_HEAD,
    check_reachable,
    create_database_engine,
    mask_url,
    missing_sqlite_file,
    stored_revision,
    upgrade_database,
)
from monitor.storage.schema import utc_now
from monitor.storage.store import Store

log = logging.getLogger(__name__)


def open_store(
    settings: Settings, *, sync_feeds: bool = True, create: bool = True, read_only: bool = False
) -> Store:
    """Open the configured database, create or migrate it to head, and (for the commands
    that poll) record the configured feeds. With `create` false (the commands that read),
    it must already exist at head: a wrong path or working directory would otherwise show
    a new empty database as if nothing had been polled, and reading never migrates.
    `read_only` (the commands that never write): a SQLite file on a read-only volume
    is still read."""
    if not create:
        missing = missing_sqlite_file(settings.database.url)
        if missing is not None:
            raise DatabaseError(
                f"no database at {missing}: `monitor run`, `monitor run-once` or"
                " `monitor db upgrade` creates it (check [database] url and the working"
                " directory)"
            )
    engine = create_database_engine(settings.database.url, read_only=read_only and not create)
    check_reachable(engine)
    if create:
        upgrade_database(engine)
    else:
        # Reading never migrates: a reader may lack the rights, and an older monitor
        # cannot open a database a newer one has migrated.
        revision = stored_revision(engine)
        if revision is None:
            raise DatabaseError(
                f"database {mask_url(engine.url)} has no monitor schema yet: `monitor run`,"
                " `monitor run-once` or `monitor db upgrade` creates it"
            )
        if revision != SCHEMA_HEAD:
            raise DatabaseError(
                f"database {mask_url(engine.url)} is at schema revision {revision}; this"
                f" monitor reads revision {SCHEMA_HEAD}: `monitor db upgrade` (as the"
                " database's owner) migrates it"
            )
    store = Store(engine, health=settings.health)
    if sync_feeds:
        store.sync_feeds(settings.feeds)
    return store


@dataclass(kw_only=True, slots=True)
class RunSummary:
    """Totals over the polls of one `run-once`."""

    reports: list[PollReport] = field(default_factory=list)
    # Feeds not polled: backing off after failures, or asked to wait (Retry-After).
    backing_off: list[tuple[str, datetime]] = field(default_factory=list)
    # Feeds not polled: another process (the daemon) is polling them.
    held_elsewhere: list[str] = field(default_factory=list)
    # Outcomes of the entries processed, read from the database after the run.
    outcomes: dict[str, int] = field(default_factory=dict)

    def add(self, report: PollReport) -> None:
        self.reports.append(report)

    @property
    def feeds_polled(self) -> int:
        return len(self.reports)

    @property
    def feeds_failed(self) -> int:
        return sum(1 for report in self.reports if report.error)

    def total(self, name: str) -> int:
        return sum(int(getattr(report, name)) for report in self.reports)


def run_once(
    settings: Settings,
    store: Store,
    *,
    stop: threading.Event | None = None,
    progress: Callable[[PollReport], None] | None = None,
    ignore_backoff: bool = False,
) -> RunSummary:
    """Poll every enabled feed once, one after the other, except those backing off
    (after failures, or a server's Retry-After), unless `ignore_backoff`: a run-once
    from cron must not hammer a site that asked it to wait."""
    feed_ids = store.sync_feeds(settings.feeds)
    summary = RunSummary()
    stop = stop or threading.Event()
    now = utc_now()
    put_off = {
        feed.url: feed.next_poll_at
        for feed, health in ([] if ignore_backoff else store.feed_health_report())
        if feed.next_poll_at is not None
        and (
            health == Health.BACKING_OFF
            # A server that answered 429 or 503 waits for its Retry-After (or the
            # feed's interval), even when that is not beyond the interval.
            or (feed.last_status in BUSY_STATUSES and feed.next_poll_at > now)
        )
    }
    owner = process_identity()
    free_leases_of_the_dead(store, owner)
    # A daemon on the same database polls feeds too: its feed's entries must not be
    # worked on by two processes at once (each would record the other's article as a
    # copy of itself). Every feed not held elsewhere is taken for the whole run.
    held = store.lease_feeds(
        [feed_ids[feed.url] for feed in settings.enabled_feeds], owner=owner, hold=LEASE_HOLD
    )
    with (
        LeaseKeeper(store, owner),
        Fetcher(settings.fetch) as fetcher,
        Analyser(settings.processing.workers) as analyser,
    ):
        pipeline = Pipeline(
            store, fetcher, rules=RuleSet.from_settings(settings), stop=stop, analyser=analyser
        )
        for feed in settings.enabled_feeds:
            if stop.is_set():
                break
            if feed_ids[feed.url] not in held:
                log.warning(
                    "feed being polled by another process: %s: not polled",
                    feed.name,
                    extra={"feed": feed.name, "url": feed.url, "outcome": "held_elsewhere"},
                )
                summary.held_elsewhere.append(feed.name)
                continue
            if (due := put_off.get(feed.url)) is not None:
                log.info(
                    "feed backing off: %s: not polled before %s",
                    feed.name,
                    due.isoformat(timespec="seconds"),
                    extra={"feed": feed.name, "url": feed.url, "outcome": "backing_off"},
                )
                summary.backing_off.append((feed.name, due))
                continue
            report = pipeline.poll(feed, feed_ids[feed.url])
            summary.add(report)
            if progress:
                progress(report)
    summary.outcomes = store.outcomes_of(
        entry_id for report in summary.reports for entry_id in report.processed
    )
    return summary
