"""The daemon: APScheduler runs one job per enabled feed; the configuration file is
watched and re-applied without a restart; a stop finishes or abandons the work in
hand cleanly within seconds.

The scheduler only runs the clock. Whether a feed may be polled now (backoff,
Retry-After) is the database's word (`feeds.next_poll_at`), checked when its job fires.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from monitor.analysis import Analyser
from monitor.config import (
    FeedSettings,
    HttpSettings,
    Settings,
    format_duration,
    load_settings,
)
from monitor.errors import ConfigError
from monitor.http import Fetcher
from monitor.leases import (
    LEASE_HOLD,
    LeaseKeeper,
    free_leases_of_the_dead,
    process_identity,
)
from monitor.observability import Metrics
from monitor.pipeline import Pipeline
from monitor.rules import RuleSet
from monitor.storage.database import first_line
from monitor.storage.store import Store

log = logging.getLogger(__name__)

WATCH_EVERY = 2.0  # seconds between looks at the configuration file
MAX_JITTER = 300.0  # seconds
# On a stop: how long the work in hand may take before its fetches are cut off (none
# after a second signal), then how long the jobs have to unwind once cut. With the
# leases given back (bounded too, monitor.leases) the exit comes within 10 seconds.
STOP_GRACE = 4.5
UNWIND_GRACE = 1.0
WATCH_JOB = "config-watch"


def jitter_for(interval: float) -> float:
    """Up to 10% of the interval (5 minutes at most), so feeds do not all fire together."""
    return min(interval * 0.1, MAX_JITTER)


class Daemon:
    """Polls the configured feeds until `stop` is set."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        stop: threading.Event,
        *,
        hurry: threading.Event | None = None,
        config_path: Path | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.settings = settings
        # What the parts that only a restart changes run with.
        self._started_with = settings
        self.store = store
        self.stop = stop
        # Set by a second stop signal: the work in hand is cut off at once.
        self.hurry = hurry or threading.Event()
        # The jobs running, by thread: what each does, in the operator's words.
        self._in_hand: dict[int, str] = {}
        self._in_hand_lock = threading.Lock()
        self.config_path = config_path
        self.metrics = metrics or Metrics()
        self.reload_requested = threading.Event()
        # Set by whoever serves /healthz and /metrics: called with the new [http] settings
        # on a reload that changes them, it answers whether they now apply.
        self.on_http_change: Callable[[HttpSettings], bool] | None = None
        self.identity = process_identity()
        self._config_signature = self._signature()
        # A change seen at one look is applied at the next if the file stayed the same
        # in between: an editor that truncates the file and then writes it must not be
        # caught half-way, with some or all of its feeds missing.
        self._changed_signature: tuple[int, int, int, int, int] | None = None
        self.scheduler = BackgroundScheduler(
            timezone=UTC,
            executors={
                "default": ThreadPoolExecutor(max_workers=settings.fetch.max_concurrent_polls),
                "watch": ThreadPoolExecutor(max_workers=1),
            },
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        )
        logging.getLogger("apscheduler.scheduler").addFilter(_still_polling)
        self.fetcher = Fetcher(settings.fetch)
        self.analyser = Analyser(settings.processing.workers)
        self.pipeline = Pipeline(
            store,
            self.fetcher,
            rules=RuleSet.from_settings(settings),
            stop=stop,
            metrics=self.metrics,
            analyser=self.analyser,
        )
        self._feed_ids: dict[str, int] = {}
        # Feeds whose first poll takes up entries left pending, earlier than their interval.
        self._resume: set[int] = set()
        self._scheduled: dict[str, FeedSettings] = {}

    @property
    def alive(self) -> bool:
        return bool(self.scheduler.running) and not self.stop.is_set()

    def run(self) -> None:
        self._apply_feeds(self.settings, self.store.sync_feeds(self.settings.feeds))
        if self.config_path is not None:
            self.scheduler.add_job(
                self._watch,
                IntervalTrigger(seconds=WATCH_EVERY),
                id=WATCH_JOB,
                name="the configuration watch",
                executor="watch",
            )
        free_leases_of_the_dead(self.store, self.identity)
        with LeaseKeeper(self.store, self.identity):
            self.scheduler.start()
            log.info("daemon started: %d feeds scheduled", len(self._scheduled))
            if not self._scheduled:
                log.warning(
                    "no enabled feed in the configuration: nothing is polled until one is added"
                )
            self.stop.wait()
            self._shut_down()

    # Scheduling

    def _apply_feeds(self, settings: Settings, feed_ids: dict[str, int]) -> None:
        """Make the scheduled jobs match the enabled feeds of `settings` (their rows' ids
        by URL: `Store.sync_feeds`)."""
        self._feed_ids = feed_ids
        wanted = {feed.url: feed for feed in settings.enabled_feeds}
        listed = {feed.url for feed in settings.feeds}
        for url in set(self._scheduled) - set(wanted):
            self.scheduler.remove_job(url)
            self.pipeline.withdraw(url)
            feed = self._scheduled.pop(url)
            what = "disabled" if url in listed else "removed"
            log.info("feed %s: %s", what, feed.name, extra=_feed_event(feed, what))
        now = datetime.now(UTC)
        for url, feed in wanted.items():
            if self._scheduled.get(url) == feed:
                continue
            changed = url in self._scheduled
            self.pipeline.restore(url)
            self.scheduler.add_job(
                self._poll_job,
                IntervalTrigger(seconds=feed.interval, jitter=jitter_for(feed.interval)),
                args=(feed, self._feed_ids[url]),
                id=url,
                name=feed.name,
                replace_existing=True,
                next_run_time=self._first_run(feed, self._feed_ids[url], now),
            )
            self._scheduled[url] = feed
            what = "changed" if changed else "scheduled"
            log.info(
                "feed %s: %s every %s",
                what,
                feed.name,
                format_duration(feed.interval),
                extra=_feed_event(feed, what),
            )
        self.metrics.feeds_scheduled.set(len(self._scheduled))

    def _first_run(self, feed: FeedSettings, feed_id: int, now: datetime) -> datetime:
        state = self.store.feed_state(feed_id)
        waiting = state.next_poll_at is not None and state.next_poll_at > now
        if not waiting and self.store.has_pending_entries(feed_id):
            # Entries cut off by a stop (or made pending by `refilter` or `retry`): their
            # poll comes now, not an interval after the last, which may be hours.
            self._resume.add(feed_id)
            return now
        due = [now]
        if state.last_polled_at is not None:
            due.append(state.last_polled_at + timedelta(seconds=feed.interval))
        if state.next_poll_at is not None:
            due.append(state.next_poll_at)
        return max(due)

    @contextlib.contextmanager
    def _job(self, what: str) -> Iterator[None]:
        """Count a job as in hand while it runs: a stop waits for it, for a while."""
        me = threading.get_ident()
        with self._in_hand_lock:
            self._in_hand[me] = what
        try:
            yield
        finally:
            with self._in_hand_lock:
                self._in_hand.pop(me, None)

    def _poll_job(self, feed: FeedSettings, feed_id: int) -> None:
        if self.stop.is_set():
            return
        with self._job(f"the poll of {feed.name}"):
            self._poll(feed, feed_id)

    def _poll(self, feed: FeedSettings, feed_id: int) -> None:
        try:
            state = self.store.feed_state(feed_id)
            if state.next_poll_at is not None and state.next_poll_at > datetime.now(UTC):
                log.debug("feed %s backing off until %s", feed.name, state.next_poll_at)
                return
            # Replicas on one database: whoever takes the lease polls; the others skip,
            # and nobody polls a feed again before most of its interval has passed.
            resuming = feed_id in self._resume
            self._resume.discard(feed_id)
            min_gap = 0.0 if resuming else feed.interval * 0.8
            if not self.store.lease_feed(
                feed_id, owner=self.identity, hold=LEASE_HOLD, min_gap=min_gap
            ):
                log.debug("feed %s polled or being polled by another replica", feed.name)
                return
            try:
                self.pipeline.poll(feed, feed_id)
            finally:
                self.store.release_feed(feed_id, owner=self.identity)
        except (sa.exc.OperationalError, sa.exc.InterfaceError) as error:
            # The database is away (a restart, the network): one line, not a traceback a
            # second; whatever was in hand stays pending and the next run takes it up.
            log.error(
                "poll of %s: database unavailable (%s); will retry at its next run",
                feed.name,
                first_line(error),
            )
        except sa.exc.DBAPIError as error:
            # The database refused what it was given: a fault of ours, not an outage.
            log.error(
                "poll of %s: database error (%s); will retry at its next run",
                feed.name,
                first_line(error),
            )
        except Exception:
            if self.stop.is_set():
                return  # cut off by the stop: nothing to report
            log.exception("poll of %s failed; will retry at its next run", feed.name)

    # Reloading

    def request_reload(self) -> None:
        """From a signal handler (SIGHUP): reload at the next look, within seconds."""
        self.reload_requested.set()

    def _signature(self) -> tuple[int, int, int, int, int] | None:
        """What changes when the file does: its modification time and size, and its
        inode and change time, which a file swapped in with the old one's size and
        modification time (a Kubernetes ConfigMap's symlink swap of a `cp -p` copy)
        does not keep."""
        if self.config_path is None:
            return None
        try:
            stat = self.config_path.stat()
        except OSError:
            return None
        return stat.st_mtime_ns, stat.st_size, stat.st_ino, stat.st_dev, stat.st_ctime_ns

    def _watch(self) -> None:
        if self.stop.is_set():
            return
        with self._job("the configuration watch"):
            self._look()

    def _look(self) -> None:
        signature = self._signature()
        if self.reload_requested.is_set():
            self.reload_requested.clear()
        elif signature == self._config_signature:
            self._changed_signature = None
            return
        elif signature != self._changed_signature:
            self._changed_signature = signature  # look again, once it has settled
            return
        self._config_signature = signature
        self._changed_signature = None
        self.reload()

    def reload(self) -> bool:
        """Read the configuration again and apply the difference; keep the old one on error."""
        assert self.config_path is not None
        try:
            settings = load_settings(self.config_path)
            if self.settings.feeds and not _has_content(self.config_path):
                raise ConfigError(f"{self.config_path}: the file is empty")
        except ConfigError as error:
            log.error("configuration not reloaded, the previous one keeps running: %s", error)
            self.metrics.reloads.labels(result="rejected").inc()
            return False
        try:
            # First, and before anything else changes: the feeds' rows, in one transaction.
            feed_ids = self.store.sync_feeds(settings.feeds)
        except sa.exc.DBAPIError as error:
            # A valid edit the database could not take now (an outage): nothing of it is
            # applied, and it is tried again at the next look rather than lost.
            log.error(
                "configuration not reloaded yet, the previous one keeps running: the"
                " database could not record its feeds (%s); trying again",
                first_line(error),
            )
            self.metrics.reloads.labels(result="failed").inc()
            self.reload_requested.set()
            return False
        http_changed = settings.http != self.settings.http
        if http_changed and self.on_http_change and not self.on_http_change(settings.http):
            # Still served as before: the next reload tries the new address again.
            settings = settings.model_copy(update={"http": self.settings.http})
        at_restart = ["database", "processing", "fetch.max_concurrent_polls"]
        if self.on_http_change is None:
            at_restart.append("http")
        for key in at_restart:
            new, previous, running = (
                _setting(config, key) for config in (settings, self.settings, self._started_with)
            )
            if new == previous:
                continue
            if new == running:
                log.info("%s is back to what this process runs with", key)
            else:
                log.warning("%s changed: it takes effect at the next restart", key)
        if settings.fetch != self.settings.fetch:
            # New requests use the new limits; requests in flight finish on the old client.
            self.fetcher = self.fetcher.renewed(settings.fetch)
            self.pipeline.fetcher = self.fetcher
        changed = [
            what
            for what, edited in (
                ("topic rules", settings.topic != self.settings.topic),
                (f"tag rules ({len(settings.tags)} now)", settings.tags != self.settings.tags),
            )
            if edited
        ]
        for warning in _drastic_changes(self.settings, settings):
            log.warning("%s: %s", self.config_path, warning)
        if changed:
            log.info(
                "%s changed: new articles are judged by them; %s",
                " and ".join(changed),
                "`monitor retag` applies tag rules to the articles already stored, `monitor"
                " refilter` gives the entries the topic dropped another chance",
            )
        self.pipeline.rules = RuleSet.from_settings(settings)
        self.store.health = settings.health
        self._apply_feeds(settings, feed_ids)
        self.settings = settings
        self.metrics.reloads.labels(result="applied").inc()
        log.info("configuration reloaded from %s", self.config_path)
        return True

    # Stopping

    def _shut_down(self) -> None:
        log.info("stopping: finishing the entries in hand")
        self.scheduler.shutdown(wait=False)
        deadline = time.monotonic() + STOP_GRACE
        while self.busy() and time.monotonic() < deadline and not self.hurry.is_set():
            time.sleep(0.1)
        if self.busy():
            log.warning("abandoning the work still in hand: %s", ", ".join(self.in_hand()))
        # Cutting the connections makes any fetch in hand fail at once; the pipeline
        # leaves its entry pending (nothing half-written) because a stop is set.
        self.fetcher.close()
        self.analyser.close()
        deadline = time.monotonic() + UNWIND_GRACE
        while self.busy() and time.monotonic() < deadline:
            time.sleep(0.05)
        log.info("daemon stopped")

    def busy(self) -> bool:
        """Whether a job (a poll, a look at the configuration) is still in hand."""
        return bool(self._in_hand)

    def in_hand(self) -> list[str]:
        """The jobs in hand, in the operator's words ("the poll of NAME")."""
        with self._in_hand_lock:
            return sorted(self._in_hand.values())


def _drastic_changes(previous: Settings, new: Settings) -> list[str]:
    """What an edit does that an operator rarely means, and a file cut short (a slow
    copy, a generator that failed half-way) does: applied, but said out loud."""
    warnings = []
    if previous.feeds and not new.feeds:
        warnings.append("no feed is configured any more: nothing will be polled")
    if new.feeds and previous.topic.all and not new.topic.all:
        warnings.append(
            "[topic] lists no phrase any more: every article of the feeds is kept, and"
            " stored articles are never judged again"
        )
    return warnings


def _has_content(path: Path) -> bool:
    """Whether the file holds anything but white space and comments: an empty file is
    valid TOML (all defaults, no feeds), and what an editor leaves for a moment."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return True  # load_settings has read it; let its verdict stand
    return any(line.strip() and not line.strip().startswith("#") for line in lines)


def _feed_event(feed: FeedSettings, what: str) -> dict[str, str]:
    """The fields a JSON log line about one feed carries (as the pipeline's do)."""
    return {"feed": feed.name, "url": feed.url, "outcome": what}


def _still_polling(record: logging.LogRecord) -> bool:
    """APScheduler warns, at every due time, that a job still running was not started
    again: for us that is a poll slower than its feed's interval, said in our words, at
    INFO, with the feed's fields."""
    if "maximum number of running instances reached" not in str(record.msg) or not record.args:
        return True
    job = record.args[0] if isinstance(record.args, tuple) else None
    name = getattr(job, "name", str(job))
    if getattr(job, "id", None) == WATCH_JOB:
        record.msg = (
            "the configuration watch is still busy (a reload recording the feeds in the"
            " database?) at its next look: that look is skipped"
        )
        record.args = ()
    else:
        record.msg = "poll of %s still running at its next due time: that run is skipped"
        record.args = (name,)
    record.levelno, record.levelname = logging.INFO, "INFO"
    record.feed, record.outcome = name, "skipped"
    return True


def _setting(settings: Settings, key: str) -> object:
    """A section ("database") or one key of one ("fetch.max_concurrent_polls")."""
    value: object = settings
    for part in key.split("."):
        value = getattr(value, part)
    return value
