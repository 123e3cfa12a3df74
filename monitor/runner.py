"""Running the pipeline: once over every enabled feed, or as a scheduled daemon.

The scheduler (APScheduler 3) only runs the clock: one interval job per enabled
feed, first due when the database says the feed was last polled one interval ago.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from monitor.config import FeedSettings, Settings
from monitor.http import build_client
from monitor.pipeline import Pipeline, PollReport
from monitor.rules import RuleSet
from monitor.storage.database import check_reachable, create_database_engine, upgrade_database
from monitor.storage.store import Store

log = logging.getLogger(__name__)

MAX_CONCURRENT_POLLS = 4


def open_store(settings: Settings) -> Store:
    """Open the configured database, migrate it to head, and record the configured feeds."""
    engine = create_database_engine(settings.database.url)
    check_reachable(engine)
    upgrade_database(engine)
    store = Store(engine)
    store.sync_feeds(settings.feeds)
    return store


@dataclass(kw_only=True, slots=True)
class RunSummary:
    """Totals over the polls of one `run-once`."""

    reports: list[PollReport] = field(default_factory=list)
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
    settings: Settings, store: Store, *, stop: threading.Event | None = None
) -> RunSummary:
    """Poll every enabled feed once, one after the other."""
    feed_ids = store.sync_feeds(settings.feeds)
    summary = RunSummary()
    stop = stop or threading.Event()
    with build_client(settings.fetch) as client:
        pipeline = Pipeline(
            store, client, settings.fetch, rules=RuleSet.from_settings(settings), stop=stop
        )
        for feed in settings.enabled_feeds:
            if stop.is_set():
                break
            summary.add(pipeline.poll(feed, feed_ids[feed.url]))
    summary.outcomes = store.outcomes_of(
        entry_id for report in summary.reports for entry_id in report.processed
    )
    return summary


def run_daemon(settings: Settings, store: Store, stop: threading.Event) -> None:
    """Poll each enabled feed at its interval until `stop` is set; then finish the entries
    in hand and return."""
    feed_ids = store.sync_feeds(settings.feeds)
    feeds = settings.enabled_feeds
    if not feeds:
        log.warning("no enabled feeds in the configuration; waiting for a stop signal")
    scheduler = BackgroundScheduler(
        timezone=UTC,
        executors={"default": ThreadPoolExecutor(max_workers=MAX_CONCURRENT_POLLS)},
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
    )
    with build_client(settings.fetch) as client:
        pipeline = Pipeline(
            store, client, settings.fetch, rules=RuleSet.from_settings(settings), stop=stop
        )
        now = datetime.now(UTC)
        for feed in feeds:
            feed_id = feed_ids[feed.url]
            scheduler.add_job(
                _poll_job,
                IntervalTrigger(seconds=feed.interval, timezone=UTC),
                args=(pipeline, feed, feed_id),
                id=feed.url,
                name=feed.name,
                next_run_time=_first_run(store, feed, feed_id, now),
            )
        scheduler.start()
        log.info("daemon started: %d feeds scheduled", len(feeds))
        stop.wait()
        log.info("stopping: finishing the entries in hand")
        scheduler.shutdown(wait=True)
    log.info("daemon stopped")


def _first_run(store: Store, feed: FeedSettings, feed_id: int, now: datetime) -> datetime:
    last = store.feed_state(feed_id).last_polled_at
    if last is None:
        return now
    return max(now, last + timedelta(seconds=feed.interval))


def _poll_job(pipeline: Pipeline, feed: FeedSettings, feed_id: int) -> None:
    if pipeline.stop.is_set():
        return
    try:
        pipeline.poll(feed, feed_id)
    except Exception:
        log.exception("poll of %s failed; will retry at its next run", feed.name)
