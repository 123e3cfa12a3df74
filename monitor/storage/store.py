"""The store: every read and write the pipeline makes, each its own short transaction.

An entry is recorded (outcome `pending`) before any work on it starts and gets its
final outcome in the same transaction that stores its article or duplicate, so a
crash at any point leaves either nothing or a `pending` row that the next poll resumes.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased, sessionmaker

from monitor.config import FeedSettings, HealthSettings
from monitor.dedup import (
    Candidate,
    DedupInput,
    PairReport,
    Provenance,
    decide,
    explain_pair,
    known_phrases,
    newcomer_is_original,
    one_part_of,
    two_stories,
    verify,
)
from monitor.health import FeedHistory, Health, backoff_delay, feed_health
from monitor.records import (
    Decision,
    DuplicateKind,
    FeedEntry,
    Outcome,
    Tag,
    TaggedArticle,
    TagSource,
)
from monitor.retry import honoured_retry_after
from monitor.similarity import TextFeatures, compare
from monitor.storage import index
from monitor.storage.schema import Article, ArticleTag, Duplicate, Entry, Feed, utc_now
from monitor.storage.search import SearchHit, search_articles
from monitor.urls import site_of

MAX_ERROR_LENGTH = 2000

# The hot path (claims, polls, ingest) writes through Core on these tables: building,
# flushing and expiring ORM objects cost more than the statements themselves.
_FEEDS = cast(sa.Table, Feed.__table__)
_ENTRIES = cast(sa.Table, Entry.__table__)
_ARTICLES = cast(sa.Table, Article.__table__)
_TAGS = cast(sa.Table, ArticleTag.__table__)
_DUPLICATES = cast(sa.Table, Duplicate.__table__)
# The ingest transaction's statements, built once: it runs them for every article, and
# building a statement took SQLAlchemy about five times what SQLite takes to run it.
_ARTICLE_WITH_URL = sa.select(_ARTICLES.c.id).where(_ARTICLES.c.url == sa.bindparam("url")).limit(1)
_ENTRY_RESULT = sa.select(_ENTRIES.c.outcome, _ENTRIES.c.article_id).where(
    _ENTRIES.c.id == sa.bindparam("entry"),
    _ENTRIES.c.outcome.in_([Outcome.STORED, Outcome.DUPLICATE]),
)
_PROVENANCE_OF = sa.select(_ARTICLES.c.published_at, _ARTICLES.c.repost_signals).where(
    _ARTICLES.c.id == sa.bindparam("article")
)
_RULE_TAG_DETAILS = sa.select(_TAGS.c.source, _TAGS.c.detail).where(
    _TAGS.c.article_id == sa.bindparam("article"), _TAGS.c.source == TagSource.RULE
)
_INSERT_ARTICLE = sa.insert(_ARTICLES).returning(_ARTICLES.c.id)
# Both maxima come from an index (the primary key, ix_duplicates_former_article_id).
_NEXT_ARTICLE_ID = sa.text(
    "SELECT max(coalesce((SELECT max(id) FROM articles), 0),"
    " coalesce((SELECT max(former_article_id) FROM duplicates), 0)) + 1"
)
_INSERT_TAGS = sa.insert(_TAGS)
_INSERT_DUPLICATE = sa.insert(_DUPLICATES)
_FINISH_ENTRY = (
    sa.update(_ENTRIES)
    .where(_ENTRIES.c.id == sa.bindparam("entry"))
    .values(
        outcome=sa.bindparam("new_outcome"),
        article_id=sa.bindparam("kept"),
        attempts=_ENTRIES.c.attempts + 1,
        last_attempt_at=sa.bindparam("now"),
        reason=None,
        error=None,
        next_attempt_at=None,
    )
)
_FEED_STATE_COLUMNS = (
    "id",
    "etag",
    "last_modified",
    "last_polled_at",
    "next_poll_at",
    "last_full_fetch_at",
    "enabled",
    "interval_seconds",
    "consecutive_failures",
    "first_new_entry_at",
    "last_new_entry_at",
    "polls_with_new_entries",
)


def _retryable(max_attempts: int, now: datetime) -> sa.ColumnElement[bool]:
    """Entries still to work on: left pending, or failed fewer than `max_attempts` times,
    and not waiting for a later try (a transient failure's backoff, a host's Retry-After)."""
    return sa.and_(
        sa.or_(
            _ENTRIES.c.outcome == Outcome.PENDING,
            sa.and_(_ENTRIES.c.outcome == Outcome.FAILED, _ENTRIES.c.attempts < max_attempts),
        ),
        _not_waiting(now),
    )


def _not_waiting(now: datetime) -> sa.ColumnElement[bool]:
    """Entries not waiting for a later try (a transient failure's backoff, a host's
    Retry-After)."""
    return sa.or_(_ENTRIES.c.next_attempt_at.is_(None), _ENTRIES.c.next_attempt_at <= now)


@dataclass(frozen=True, kw_only=True, slots=True)
class FeedState:
    """A feed's row as a poll needs it: validators, and the history its schedule and
    health are judged on."""

    id: int
    etag: str | None
    last_modified: str | None
    last_full_fetch_at: datetime | None
    history: FeedHistory
    # Whether any entry is pending or failed and still retryable (None: not asked).
    has_retryable_entries: bool | None = None

    @property
    def last_polled_at(self) -> datetime | None:
        return self.history.last_polled_at

    @property
    def next_poll_at(self) -> datetime | None:
        return self.history.next_poll_at


@dataclass(frozen=True, kw_only=True, slots=True)
class EntryClaim:
    """An entry to work on now: new, left pending by a crash, or failed and retryable."""

    id: int
    attempts: int
    # A kept article with the entry's canonical URL when the entry was claimed: its page
    # need not be fetched.
    article_with_url: int | None = None
    # First seen now: recorded by this claim. (One recorded by an earlier poll is not,
    # whether a stop left it pending, its host asked to wait, or `monitor retry` queued
    # it again: that poll counted it.)
    fresh: bool = False


class Store:
    """Reads and writes of the ingestion pipeline, over one SQLAlchemy engine."""

    def __init__(self, engine: sa.Engine, health: HealthSettings | None = None) -> None:
        self.engine = engine
        self.health = health or HealthSettings()
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        # Reads that write nothing (export, search): on SQLite they need not wait for,
        # nor hold, the write lock that the daemon's ingest takes.
        self._reads = sessionmaker(engine.execution_options(read_only=True), expire_on_commit=False)
        self._features = index.FeatureCache()

    def _session(self) -> Session:
        return self._sessions()

    def _read_session(self) -> Session:
        return self._reads()

    # Feeds

    def sync_feeds(self, feeds: Iterable[FeedSettings]) -> dict[str, int]:
        """Make the `feeds` table match the config; feeds no longer configured are disabled.

        Returns the id of every configured feed by URL.
        """
        configured = list(feeds)
        for attempt in range(3):
            try:
                return self._sync_feeds(configured)
            except IntegrityError:
                # Another replica starting at the same moment added the same feed first.
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _sync_feeds(self, feeds: Iterable[FeedSettings]) -> dict[str, int]:
        configured = {feed.url: feed for feed in feeds}
        now = utc_now()
        with self._session() as session, session.begin():
            rows = {row.url: row for row in session.scalars(sa.select(Feed))}
            for url, feed in configured.items():
                row = rows.get(url)
                if row is None:
                    row = rows[url] = Feed(url=url, consecutive_failures=0)
                    session.add(row)
                    row.health = Health.NEVER_POLLED if feed.enabled else Health.DISABLED
                    row.enabled = feed.enabled
                elif row.enabled != feed.enabled:
                    row.enabled = feed.enabled
                    row.health = feed_health(_history(row), self.health, now)
                row.name = feed.name
                row.interval_seconds = feed.interval
            for url, row in rows.items():
                if url not in configured and row.enabled:
                    row.enabled = False
                    row.health = Health.DISABLED
            session.flush()
            return {url: rows[url].id for url in configured}

    def feed_state(self, feed_id: int, *, max_attempts: int | None = None) -> FeedState:
        """The feed's row; with `max_attempts`, also whether it has entries to retry (one
        query: a poll that gets a 304 then needs no other read)."""
        columns: list[Any] = [_FEEDS.c[name] for name in _FEED_STATE_COLUMNS]
        if max_attempts is not None:
            columns.append(
                sa.exists()
                .where(_ENTRIES.c.feed_id == feed_id, _retryable(max_attempts, utc_now()))
                .label("has_retryable_entries")
            )
        with self.engine.connect() as connection:
            row = connection.execute(sa.select(*columns).where(_FEEDS.c.id == feed_id)).one()
        retryable = getattr(row, "has_retryable_entries", None)
        return FeedState(
            id=row.id,
            etag=row.etag,
            last_modified=row.last_modified,
            last_full_fetch_at=row.last_full_fetch_at,
            history=_history(row),
            has_retryable_entries=None if retryable is None else bool(retryable),
        )

    def has_pending_entries(self, feed_id: int) -> bool:
        """Whether the feed has entries left `pending` and not waiting for a later try."""
        now = utc_now()
        with self.engine.connect() as connection:
            found = connection.execute(
                sa.select(
                    sa.exists().where(
                        _ENTRIES.c.feed_id == feed_id,
                        _ENTRIES.c.outcome == Outcome.PENDING,
                        _not_waiting(now),
                    )
                )
            ).scalar_one()
        return bool(found)

    def unfinished_entries(self, feed_id: int | None = None) -> int:
        """How many entries (of the feed, or of every feed) are left `pending` and not
        waiting for a later try: what a stop cut off, which the next poll finishes."""
        unfinished = [_ENTRIES.c.outcome == Outcome.PENDING, _not_waiting(utc_now())]
        if feed_id is not None:
            unfinished.append(_ENTRIES.c.feed_id == feed_id)
        with self._read_session() as session:
            count = session.scalar(
                sa.select(sa.func.count()).select_from(_ENTRIES).where(*unfinished)
            )
        return int(count or 0)

    def record_poll_success(
        self,
        feed_id: int,
        *,
        status: int,
        etag: str | None,
        last_modified: str | None,
        title: str | None,
        entry_count: int | None,
        warning: str | None = None,
        full_fetch: bool = False,
        state: FeedState | None = None,
    ) -> None:
        """A poll that got a readable feed (or 304): failures reset, the next poll on schedule.

        `state` is the row as read at the start of the poll (the poll holds the feed, so
        it is still current): with it, this is one UPDATE.
        """
        now = utc_now()
        if state is None:
            state = self.feed_state(feed_id)
        values: dict[str, Any] = {
            "last_polled_at": now,
            "last_success_at": now,
            "last_status": status,
            "last_error": warning[:MAX_ERROR_LENGTH] if warning else None,
            "consecutive_failures": 0,
            "next_poll_at": None,
            "etag": etag,
            "last_modified": last_modified,
        }
        if full_fetch:
            values["last_full_fetch_at"] = now
        if title is not None:
            values["title"] = title
        if entry_count is not None:
            values["last_entry_count"] = entry_count
        history = replace(
            state.history, last_polled_at=now, consecutive_failures=0, next_poll_at=None
        )
        if entry_count:
            values["polls_with_new_entries"] = (
                sa.func.coalesce(_FEEDS.c.polls_with_new_entries, 0) + 1
            )
            values["first_new_entry_at"] = sa.func.coalesce(_FEEDS.c.first_new_entry_at, now)
            values["last_new_entry_at"] = now
            history = replace(
                history,
                polls_with_new_entries=history.polls_with_new_entries + 1,
                first_new_entry_at=history.first_new_entry_at or now,
                last_new_entry_at=now,
            )
        # Disabled while the poll ran (an edit, another process's configuration): it stays
        # so, not "ok" on the strength of the poll it had started.
        values["health"] = sa.case(
            (_FEEDS.c.enabled, feed_health(history, self.health, now)),
            else_=Health.DISABLED.value,
        )
        with self.engine.begin() as connection:
            connection.execute(sa.update(_FEEDS).where(_FEEDS.c.id == feed_id).values(values))

    def enable_feed(self, feed_id: int) -> None:
        """Mark enabled a feed this process's configuration polls: another process with
        another configuration (a `run-once` with a test file) disabled it, and its
        failures would be hidden from alerting as `disabled` while it is polled."""
        with self.engine.begin() as connection:
            connection.execute(
                sa.update(_FEEDS)
                .where(_FEEDS.c.id == feed_id, _FEEDS.c.enabled.is_(False))
                .values(enabled=True)
            )

    def record_poll_failure(
        self,
        feed_id: int,
        *,
        error: str,
        status: int | None,
        retry_after: float | None = None,
        max_backoff: float = 6 * 3600.0,
    ) -> datetime:
        """A failed poll: count it, and put the next poll off (backoff, or the server's
        Retry-After, whichever is later). Returns when the next poll is due."""
        now = utc_now()
        with self._session() as session, session.begin():
            row = session.get_one(Feed, feed_id)
            row.last_polled_at = now
            row.last_status = status
            row.last_error = error[:MAX_ERROR_LENGTH]
            row.consecutive_failures = (row.consecutive_failures or 0) + 1
            delay = backoff_delay(row.interval_seconds, row.consecutive_failures, max_backoff)
            # A server's Retry-After is honoured, up to a day (or max_backoff if longer):
            # one answering "2099" must not silence a feed for good.
            wait = max(delay, honoured_retry_after(retry_after, max_backoff))
            row.next_poll_at = now + timedelta(seconds=wait)
            row.health = feed_health(_history(row), self.health, now)
            return row.next_poll_at

    def lease_feed(self, feed_id: int, *, owner: str, hold: float, min_gap: float = 0.0) -> bool:
        """Take the feed for one poll, unless another replica holds it or polled it less than
        `min_gap` seconds ago. One UPDATE, so two replicas cannot both win."""
        now = utc_now()
        free = _lease_free(owner, now)
        due = sa.or_(
            Feed.last_polled_at.is_(None), Feed.last_polled_at <= now - timedelta(seconds=min_gap)
        )
        with self._session() as session, session.begin():
            result = session.execute(
                sa.update(Feed)
                .where(Feed.id == feed_id, free, due)
                .values(lease_owner=owner, lease_until=now + timedelta(seconds=hold))
                .execution_options(synchronize_session=False)
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    def lease_feeds(self, feed_ids: Sequence[int], *, owner: str, hold: float) -> set[int]:
        """Take every feed of `feed_ids` that no other process holds, in one UPDATE;
        the ids taken."""
        if not feed_ids:
            return set()
        now = utc_now()
        with self._session() as session, session.begin():
            session.execute(
                sa.update(Feed)
                .where(Feed.id.in_(feed_ids), _lease_free(owner, now))
                .values(lease_owner=owner, lease_until=now + timedelta(seconds=hold))
                .execution_options(synchronize_session=False)
            )
            held = session.execute(
                sa.select(Feed.id).where(Feed.id.in_(feed_ids), Feed.lease_owner == owner)
            )
            return set(held.scalars())

    def lease_holders(self) -> set[str]:
        """Who holds a lease now."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                sa.select(Feed.lease_owner)
                .where(Feed.lease_owner.is_not(None), Feed.lease_until >= utc_now())
                .distinct()
            )
            return {owner for owner in rows.scalars() if owner}

    def release_leases_of(self, owners: Collection[str]) -> int:
        """Give back every lease of `owners` (this process at its end, or processes known
        to be dead); how many."""
        if not owners:
            return 0
        with self._session() as session, session.begin():
            result = session.execute(
                sa.update(Feed)
                .where(Feed.lease_owner.in_(owners))
                .values(lease_owner=None, lease_until=None)
                .execution_options(synchronize_session=False)
            )
            return int(result.rowcount)  # type: ignore[attr-defined]

    def renew_leases(self, *, owner: str, hold: float) -> None:
        """Extend every lease `owner` holds: a process that dies stops renewing, and its
        feeds are free `hold` seconds later."""
        with self._session() as session, session.begin():
            session.execute(
                sa.update(Feed)
                .where(Feed.lease_owner == owner)
                .values(lease_until=utc_now() + timedelta(seconds=hold))
                .execution_options(synchronize_session=False)
            )

    def release_feed(self, feed_id: int, *, owner: str) -> None:
        with self._session() as session, session.begin():
            session.execute(
                sa.update(Feed)
                .where(Feed.id == feed_id, Feed.lease_owner == owner)
                .values(lease_owner=None, lease_until=None)
                .execution_options(synchronize_session=False)
            )

    def feed_health_report(self) -> list[tuple[Feed, Health]]:
        """Every feed with its health now (stale feeds become stale between polls)."""
        now = utc_now()
        with self._session() as session:
            rows = session.scalars(sa.select(Feed).order_by(Feed.enabled.desc(), Feed.name)).all()
            return [(row, feed_health(_history(row), self.health, now)) for row in rows]

    # Entries

    def claim_entry(
        self, feed_id: int, entry: FeedEntry, *, max_attempts: int
    ) -> EntryClaim | None:
        """Record `entry` as seen and return it if it needs work; None if it is done."""
        return self.claim_entries(feed_id, [entry], max_attempts=max_attempts)[0]

    def claim_entries(
        self, feed_id: int, entries: Sequence[FeedEntry], *, max_attempts: int
    ) -> list[EntryClaim | None]:
        """Record each of `entries` as seen, in one transaction; for each, its claim if it
        needs work, None if it is done.

        An entry is the same as one seen before in this feed when its GUID or its
        canonical URL matches, so an entry listed twice gets the same claim twice.
        """
        if not entries:
            return []
        try:
            return self._claim_entries(feed_id, entries, max_attempts=max_attempts)
        except IntegrityError:
            if len(entries) == 1:
                # Another process recorded the same entry a moment ago: it is theirs.
                return [None]
            return [
                self.claim_entry(feed_id, entry, max_attempts=max_attempts) for entry in entries
            ]

    def _claim_entries(
        self, feed_id: int, entries: Sequence[FeedEntry], *, max_attempts: int
    ) -> list[EntryClaim | None]:
        urls = {entry.url for entry in entries}
        guids = {entry.guid for entry in entries if entry.guid}
        match: sa.ColumnElement[bool] = _ENTRIES.c.url.in_(urls)
        if guids:
            match = sa.or_(match, _ENTRIES.c.guid.in_(guids))
        with self.engine.begin() as connection:
            known = connection.execute(
                sa.select(
                    _ENTRIES.c.id,
                    _ENTRIES.c.guid,
                    _ENTRIES.c.url,
                    _ENTRIES.c.outcome,
                    _ENTRIES.c.attempts,
                    _ENTRIES.c.next_attempt_at,
                ).where(_ENTRIES.c.feed_id == feed_id, match)
            ).all()
            now = utc_now()
            # What each GUID and URL stands for: a row seen before (its claim, or None
            # when done) or the index of a row to insert now.
            by_guid: dict[str, EntryClaim | int | None] = {}
            by_url: dict[str, EntryClaim | int | None] = {}
            for row_id, guid, url, outcome, attempts, next_attempt_at in known:
                retryable = (
                    outcome == Outcome.PENDING
                    or (outcome == Outcome.FAILED and attempts < max_attempts)
                ) and (next_attempt_at is None or next_attempt_at <= now)
                claim = EntryClaim(id=row_id, attempts=attempts) if retryable else None
                if guid:
                    by_guid[guid] = claim
                by_url[url] = claim
            found: list[EntryClaim | int | None] = []
            new_rows: list[dict[str, Any]] = []
            for entry in entries:
                if entry.guid and entry.guid in by_guid:
                    found.append(by_guid[entry.guid])
                elif entry.url in by_url:
                    found.append(by_url[entry.url])
                else:
                    found.append(len(new_rows))
                    by_url[entry.url] = len(new_rows)
                    if entry.guid:
                        by_guid[entry.guid] = len(new_rows)
                    new_rows.append(_new_entry_row(feed_id, entry, now))
            new_ids: list[int] = []
            if new_rows:
                new_ids = list(
                    connection.execute(
                        sa.insert(_ENTRIES).returning(_ENTRIES.c.id, sort_by_parameter_order=True),
                        new_rows,
                    ).scalars()
                )
            claims = [
                EntryClaim(id=new_ids[item], attempts=0, fresh=True)
                if isinstance(item, int)
                else item
                for item in found
            ]
            wanted = {entry.url for entry, claim in zip(entries, claims, strict=True) if claim}
            kept = (
                dict(
                    connection.execute(
                        sa.select(_ARTICLES.c.url, _ARTICLES.c.id).where(
                            _ARTICLES.c.url.in_(wanted)
                        )
                    ).all()
                )
                if wanted
                else {}
            )
        return [
            replace(claim, article_with_url=kept.get(entry.url)) if claim else None
            for entry, claim in zip(entries, claims, strict=True)
        ]

    def refilter(
        self, *, since: datetime | None = None, feeds: Sequence[str] = (), dry_run: bool = False
    ) -> int:
        """Entries the topic filter dropped (first seen since `since`, through `feeds`)
        made `pending` again: the next poll of their feed fetches each one and judges it
        by the rules of that moment. Returns how many (counted only, with `dry_run`).

        Only entries of enabled feeds: no poll would take up the others. Their attempts
        stay counted, so that a poll does not count them as new entries (which the
        feed's health reads).
        """
        return self._requeue(
            [_ENTRIES.c.outcome == Outcome.OFF_TOPIC],
            since=since,
            feeds=feeds,
            dry_run=dry_run,
            values={"reason": None, "error": None, "last_attempt_at": None},
        )

    def retry_failed(
        self,
        *,
        since: datetime | None = None,
        feeds: Sequence[str] = (),
        reasons: Sequence[str] = (),
        dry_run: bool = False,
    ) -> int:
        """Failed entries (first seen since `since`, through `feeds`, failed for one of
        `reasons`) made `pending` again with a full budget of attempts: after an outage
        that outlasted their attempts, the next poll of their feed fetches them again.
        Returns how many (counted only, with `dry_run`).

        Only entries of enabled feeds: no poll would take up the others. `reason` and
        `error` stay until the next attempt, to say what happened before; so does
        `last_attempt_at`, so that the poll does not count them as new entries."""
        failed = [_ENTRIES.c.outcome == Outcome.FAILED]
        if reasons:
            failed.append(_ENTRIES.c.reason.in_(reasons))
        return self._requeue(
            failed, since=since, feeds=feeds, dry_run=dry_run, values={"attempts": 0}
        )

    def failed_reasons(self) -> dict[str, int]:
        """The reasons of the failed entries, with how many failed for each."""
        with self._read_session() as session:
            rows = session.execute(
                sa.select(_ENTRIES.c.reason, sa.func.count())
                .where(_ENTRIES.c.outcome == Outcome.FAILED, _ENTRIES.c.reason.is_not(None))
                .group_by(_ENTRIES.c.reason)
                .order_by(_ENTRIES.c.reason)
            ).all()
        return {str(reason): int(count) for reason, count in rows}

    def _requeue(
        self,
        chosen: list[sa.ColumnElement[bool]],
        *,
        since: datetime | None,
        feeds: Sequence[str],
        dry_run: bool,
        values: dict[str, Any],
    ) -> int:
        """The `chosen` entries of enabled feeds (first seen since `since`, through
        `feeds`) made pending again with `values`; how many (only counted, `dry_run`)."""
        polled = sa.select(_FEEDS.c.id).where(_FEEDS.c.enabled.is_(True))
        if feeds:
            polled = polled.where(_FEEDS.c.name.in_(feeds))
        chosen = [*chosen, _ENTRIES.c.feed_id.in_(polled)]
        if since is not None:
            chosen.append(_ENTRIES.c.first_seen_at >= since)
        with self._session() as session, session.begin():
            if dry_run:
                count = session.scalar(sa.select(sa.func.count()).where(*chosen))
                return int(count or 0)
            result = session.execute(
                sa.update(_ENTRIES)
                .where(*chosen)
                .values(outcome=Outcome.PENDING, next_attempt_at=None, **values)
            )
            return int(result.rowcount)  # type: ignore[attr-defined]

    def waiting_entries(self) -> dict[int, tuple[int, datetime]]:
        """By feed id: how many entries wait for a later try, and the soonest one's time."""
        now = utc_now()
        with self._read_session() as session:
            rows = session.execute(
                sa.select(
                    _ENTRIES.c.feed_id, sa.func.count(), sa.func.min(_ENTRIES.c.next_attempt_at)
                )
                .where(
                    _ENTRIES.c.outcome.in_([Outcome.PENDING, Outcome.FAILED]),
                    _ENTRIES.c.next_attempt_at > now,
                )
                .group_by(_ENTRIES.c.feed_id)
            ).all()
        return {feed_id: (count, soonest) for feed_id, count, soonest in rows}

    def retryable_entries(
        self, feed_id: int, *, max_attempts: int, limit: int = 100
    ) -> list[tuple[EntryClaim, FeedEntry]]:
        """Entries of this feed left pending by a crash or failed fewer than `max_attempts` times,
        oldest attempt first: they are retried even when the feed itself is unchanged."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                sa.select(_ENTRIES, _ARTICLES.c.id.label("article_with_url"))
                .outerjoin(_ARTICLES, _ARTICLES.c.url == _ENTRIES.c.url)
                .where(_ENTRIES.c.feed_id == feed_id, _retryable(max_attempts, utc_now()))
                .order_by(
                    _ENTRIES.c.last_attempt_at.is_not(None),
                    _ENTRIES.c.last_attempt_at,
                    _ENTRIES.c.id,
                )
                .limit(limit)
            ).all()
        return [
            (
                EntryClaim(id=row.id, attempts=row.attempts, article_with_url=row.article_with_url),
                _feed_entry(row),
            )
            for row in rows
        ]

    def retag_batches(
        self,
        desired_tags: Callable[[str, str], dict[str, str | None]],
        *,
        batch_size: int,
    ) -> Iterator[TagChanges]:
        """Give every stored article the rule tags `desired_tags(title, text)` names, one
        transaction per batch of articles (by id); yields what each batch changed."""
        last_id = 0
        while True:
            changes = TagChanges()
            with self._session() as session, session.begin():
                connection = session.connection()
                rows = connection.execute(
                    _ARTICLES_AFTER, {"after": last_id, "limit": batch_size}
                ).all()
                if not rows:
                    return
                last_id = rows[-1][0]
                ids = [row[0] for row in rows]
                current: dict[int, dict[str, str | None]] = {article_id: {} for article_id in ids}
                for article_id, tag, detail in connection.execute(_RULE_TAGS_OF, {"ids": ids}):
                    current[article_id][tag] = detail
                inserts, deletes, updates = [], [], []
                for article_id, title, text in rows:
                    wanted = desired_tags(title, text)
                    have = current[article_id]
                    added = wanted.keys() - have.keys()
                    removed = have.keys() - wanted.keys()
                    renewed = {t for t in wanted.keys() & have.keys() if wanted[t] != have[t]}
                    inserts += [{"id": article_id, "tag": t, "detail": wanted[t]} for t in added]
                    deletes += [{"id": article_id, "tag": t} for t in removed]
                    updates += [{"id": article_id, "tag": t, "detail": wanted[t]} for t in renewed]
                    changes.added.update(added)
                    changes.removed.update(removed)
                    changes.explained_anew.update(renewed)
                    changes.articles_changed += bool(added or removed or renewed)
                changes.articles = len(rows)
                for statement, parameters in (
                    (_DELETE_RULE_TAG, deletes),
                    (_INSERT_RULE_TAG, inserts),
                    (_UPDATE_RULE_TAG, updates),
                ):
                    if parameters:
                        connection.execute(statement, parameters)
            yield changes

    def iter_export(
        self,
        *,
        since: datetime | None,
        until: datetime | None,
        tags: Sequence[str] = (),
        feeds: Sequence[str] = (),
        include_duplicates: bool,
        batch_size: int = 500,
    ) -> Iterator[dict[str, Any]]:
        """Kept articles (by id) as plain records with their tags, their number of copies
        (and the copies), read in batches so that memory stays flat. Only articles with
        every one of `tags`, and that arrived through any one of `feeds`, when given.

        Plain column rows through the connection, not ORM objects (building and
        discarding those was most of the cost), and statements compiled once; each
        batch is read in one short transaction, closed before its records are handed
        out.
        """
        query = (
            sa.select(
                Article.id,
                Article.url,
                Article.title,
                Article.author,
                Article.published_at,
                Article.fetched_at,
                Article.language,
                Article.site,
                Feed.name,
                Article.repost_signals,
                Article.text,
            )
            .outerjoin(Feed, Feed.id == Article.feed_id)
            .order_by(Article.id)
        )
        if since is not None:
            query = query.where(sa.func.coalesce(Article.published_at, Article.fetched_at) >= since)
        if until is not None:
            query = query.where(sa.func.coalesce(Article.published_at, Article.fetched_at) < until)
        for tag in dict.fromkeys(tags):
            query = query.where(
                Article.id.in_(sa.select(ArticleTag.article_id).where(ArticleTag.tag == tag))
            )
        if feeds:
            # Through any arrival of the story: its kept text's, or a copy's.
            through = aliased(Feed)
            arrived = (
                sa.select(Entry.article_id)
                .join(through, through.id == Entry.feed_id)
                .where(through.name.in_(feeds))
            )
            query = query.where(sa.or_(Feed.name.in_(feeds), Article.id.in_(arrived)))
        query = query.where(Article.id > sa.bindparam("after")).limit(sa.bindparam("limit"))
        ids_of_batch: sa.BindParameter[int] = sa.bindparam("ids", expanding=True)
        tag_query = sa.select(
            ArticleTag.article_id, ArticleTag.tag, ArticleTag.source, ArticleTag.detail
        ).where(ArticleTag.article_id.in_(ids_of_batch))
        count_query = (
            sa.select(Duplicate.article_id, sa.func.count())
            .where(Duplicate.article_id.in_(ids_of_batch))
            .group_by(Duplicate.article_id)
        )
        copy_query = sa.select(
            Duplicate.article_id,
            Duplicate.url,
            Duplicate.site,
            Duplicate.kind,
            Duplicate.similarity,
            Duplicate.detected_at,
        ).where(Duplicate.article_id.in_(ids_of_batch))
        last_id = 0
        while True:
            with self._read_session() as session:
                connection = session.connection()
                rows = connection.execute(query, {"after": last_id, "limit": batch_size}).all()
                if not rows:
                    return
                ids = [row[0] for row in rows]
                tags_of: dict[int, list[dict[str, Any]]] = {i: [] for i in ids}
                for article_id, tag_name, source, detail in connection.execute(
                    tag_query, {"ids": ids}
                ).all():
                    tags_of[article_id].append(
                        {"tag": tag_name, "source": source, "detail": detail}
                    )
                # Sorted here, by code point: PostgreSQL's ORDER BY follows the database's
                # collation ("Crime" before or after "country:…"), SQLite's does not.
                for listed in tags_of.values():
                    listed.sort(key=_tag_order)
                copies: dict[int, list[dict[str, Any]]] = {i: [] for i in ids}
                counts: dict[int, int] = dict.fromkeys(ids, 0)
                if not include_duplicates:
                    counts.update(connection.execute(count_query, {"ids": ids}).all())
                else:
                    for article_id, url, site, kind, similarity, detected_at in connection.execute(
                        copy_query, {"ids": ids}
                    ).all():
                        copies[article_id].append(
                            {
                                "url": url,
                                "site": site,
                                "kind": kind,
                                "similarity": similarity,
                                "detected_at": detected_at,
                            }
                        )
            for (
                article_id,
                url,
                title,
                author,
                published_at,
                fetched_at,
                language,
                site,
                feed_name,
                repost_signals,
                text,
            ) in rows:
                record: dict[str, Any] = {
                    "id": article_id,
                    "url": url,
                    "title": title,
                    "author": author,
                    "published_at": published_at,
                    "fetched_at": fetched_at,
                    "language": language,
                    "site": site,
                    "feed": feed_name,
                    "tags": tags_of[article_id],
                    "repost_signals": repost_signals,
                    "text": text,
                }
                if include_duplicates:
                    record["copies"] = len(copies[article_id])
                    record["duplicates"] = copies[article_id]
                else:
                    record["copies"] = counts[article_id]
                yield record
            last_id = ids[-1]
            # The batch's rows go before the next batch is read: one batch in memory.
            del rows, tags_of, copies, counts

    def search(self, query: str, *, limit: int = 20) -> list[SearchHit]:
        """Kept articles matching a full-text query (monitor.storage.search)."""
        with self._read_session() as session:
            return search_articles(session.connection(), query, limit=limit)

    def feed_names(self) -> list[str]:
        """The name of every feed the database has seen, removed ones included."""
        with self._session() as session:
            return list(session.scalars(sa.select(Feed.name).order_by(Feed.name)))

    def tag_names(self) -> list[str]:
        """Every tag some stored article has, whatever its source."""
        with self._session() as session:
            names = sa.select(ArticleTag.tag).distinct().order_by(ArticleTag.tag)
            return list(session.scalars(names))

    def article_url(self, article_id: int) -> str | None:
        """A kept article's URL (None when there is no such article)."""
        with self._read_session() as session:
            return session.scalar(sa.select(Article.url).where(Article.id == article_id))

    def article_count(self) -> int:
        with self._session() as session:
            return session.scalar(sa.select(sa.func.count()).select_from(Article)) or 0

    def find_by_url(self, url: str) -> UrlRecord:
        """What the database knows of a canonical URL: a kept article, a copy, an entry."""
        with self._session() as session:
            article = session.scalars(sa.select(Article).where(Article.url == url)).first()
            entry = session.scalars(
                sa.select(Entry).where(Entry.url == url).order_by(Entry.id.desc())
            ).first()
            copy = None
            if article is None:
                # By its own URL, else by the entry that listed it: an AMP or mobile page
                # is kept (or recorded) under the URL it declares.
                copy = session.scalars(
                    sa.select(Duplicate).where(Duplicate.url == url).order_by(Duplicate.id)
                ).first()
                if copy is None and entry is not None:
                    copy = session.scalars(
                        sa.select(Duplicate).where(Duplicate.entry_id == entry.id)
                    ).first()
                if copy is not None:
                    article = session.get(Article, copy.article_id)
                elif entry is not None and entry.article_id is not None:
                    article = session.get(Article, entry.article_id)
            tags = []
            if article is not None:
                tags = [
                    (row.tag, row.source, row.detail)
                    for row in session.scalars(
                        sa.select(ArticleTag).where(ArticleTag.article_id == article.id)
                    )
                ]
            listed: sa.ColumnElement[bool] = Feed.id.in_(
                sa.select(Entry.feed_id).where(Entry.url == url)
            )
            if article is not None:
                listed = listed | (Feed.id == article.feed_id)
            feeds = list(session.scalars(sa.select(Feed.name).where(listed).order_by(Feed.name)))
            return UrlRecord(article=article, copy=copy, entry=entry, tags=tags, feeds=feeds)

    def copies_of(self, article_id: int, *, limit: int = 5) -> tuple[int, list[Duplicate]]:
        """How many copies are recorded for a kept article, and the first `limit` of them."""
        with self._read_session() as session:
            count = session.scalar(
                sa.select(sa.func.count()).where(Duplicate.article_id == article_id)
            )
            first = list(
                session.scalars(
                    sa.select(Duplicate)
                    .where(Duplicate.article_id == article_id)
                    .order_by(Duplicate.id)
                    .limit(limit)
                )
            )
            session.expunge_all()
        return int(count or 0), first

    def nearest_stories(
        self, dedup: DedupInput, *, exclude: int | None = None, limit: int = 3
    ) -> list[NearStory]:
        """The kept stories the duplicate decision would compare `dedup` with (the index's
        candidates and the recent articles citing its numbers), with what it makes of
        each pair: copies first, then the most alike by words."""
        with self._read_session() as session:
            found = index.candidates(session, dedup, self._features)
            found += index.candidates_by_numbers(session, dedup, self._features, found)
            found = [candidate for candidate in found if candidate.article_id != exclude]
            if not found:
                return []
            rows = {
                row.id: row
                for row in session.execute(
                    sa.select(Article.id, Article.url, Article.title).where(
                        Article.id.in_([candidate.article_id for candidate in found])
                    )
                )
            }
        nearest = []
        for candidate in found:
            apart = None
            if dedup.published_at is not None and candidate.published_at is not None:
                apart = abs(dedup.published_at - candidate.published_at)
            comparison = compare(dedup.features, candidate.features)
            row = rows[candidate.article_id]
            report = explain_pair(comparison, apart=apart)
            if candidate.same_fingerprint:
                # As `decide` does: the same text is a copy before any measure is asked.
                report = replace(
                    report,
                    verdict=(DuplicateKind.EXACT_TEXT, 1.0),
                    reason="a copy: the same text, word for word (`exact_text`)",
                )
            nearest.append(
                NearStory(
                    article_id=row.id,
                    url=row.url,
                    title=row.title,
                    report=report,
                    words=comparison.words.of_smaller,
                )
            )
        nearest.sort(key=lambda near: (near.report.verdict is None, -near.words))
        return nearest[:limit]

    def outcomes_of(self, entry_ids: Iterable[int]) -> dict[str, int]:
        """How many of these entries have each outcome now (a copy stored first may have
        become a duplicate since, when its original arrived)."""
        counts: dict[str, int] = {}
        ids = list(entry_ids)
        with self._session() as session:
            for start in range(0, len(ids), 500):
                rows = session.execute(
                    sa.select(Entry.outcome, sa.func.count())
                    .where(Entry.id.in_(ids[start : start + 500]))
                    .group_by(Entry.outcome)
                )
                for outcome, count in rows:
                    counts[outcome] = counts.get(outcome, 0) + count
        return counts

    def record_off_topic(self, entry_id: int, *, reason: str) -> None:
        """Final: an off-topic entry is never fetched again."""
        self._update_entry(entry_id, Outcome.OFF_TOPIC, reason="off_topic", error=reason)

    def record_entry_failure(self, entry_id: int, *, reason: str, error: str) -> None:
        self._update_entry(entry_id, Outcome.FAILED, reason=reason, error=error)

    def record_entry_retry(
        self, entry_id: int, *, reason: str, error: str, delay: float
    ) -> datetime:
        """An attempt that failed for a passing reason, with attempts left: the entry stays
        `pending`, not to be fetched before `delay` seconds from now. Returns when."""
        due = utc_now() + timedelta(seconds=delay)
        self._update_entry(entry_id, Outcome.PENDING, reason=reason, error=error, due=due)
        return due

    def defer_entry(self, entry_id: int, *, until: datetime, reason: str, error: str) -> None:
        """Not fetched: its host asked to wait. No attempt is counted; the entry is `pending`
        until `until`, when the next poll of its feed fetches it."""
        with self._session() as session, session.begin():
            session.execute(
                sa.update(Entry)
                .where(Entry.id == entry_id)
                .values(
                    outcome=Outcome.PENDING,
                    reason=reason[:50],
                    error=error[:MAX_ERROR_LENGTH],
                    next_attempt_at=until,
                )
            )

    def _update_entry(
        self,
        entry_id: int,
        outcome: Outcome,
        *,
        reason: str,
        error: str,
        due: datetime | None = None,
    ) -> None:
        with self._session() as session, session.begin():
            session.execute(
                sa.update(Entry)
                .where(Entry.id == entry_id)
                .values(
                    outcome=outcome,
                    attempts=Entry.attempts + 1,
                    last_attempt_at=utc_now(),
                    reason=reason[:50],
                    error=error[:MAX_ERROR_LENGTH],
                    next_attempt_at=due,
                )
            )

    # Articles and duplicates

    def ingest(
        self, *, entry_id: int, feed_id: int, article: TaggedArticle, dedup: DedupInput
    ) -> IngestResult:
        """Decide whether `article` is a new story or a copy, and record that, in one transaction.

        Decisions are serialised (SQLite: `BEGIN IMMEDIATE`; PostgreSQL: an advisory
        lock), so two workers or replicas never both keep copies of one story.
        """
        extracted = article.article
        with self._session() as session, session.begin():
            connection = session.connection()

            def record_copy(decision: Decision) -> None:
                self._add_duplicate(
                    session,
                    entry_id,
                    feed_id,
                    extracted.url,
                    extracted.title,
                    decision,
                    article.tags,
                )

            index.serialize_decisions(connection)
            finished = connection.execute(_ENTRY_RESULT, {"entry": entry_id}).one_or_none()
            if finished is not None:
                # This very entry was finished by another process meanwhile (a lease that
                # lapsed while this one waited on a stalled database): its result stands;
                # deciding again would record it twice, or its story's entry as a copy.
                return IngestResult(
                    outcome=Outcome(finished.outcome),
                    article_id=finished.article_id,
                    decision=Decision(),
                    finished_elsewhere=True,
                )
            same_url = connection.execute(_ARTICLE_WITH_URL, {"url": extracted.url}).scalar()
            if same_url is not None:
                decision = Decision(duplicate_of=same_url, kind=DuplicateKind.SAME_URL)
                record_copy(decision)
                return IngestResult(
                    outcome=Outcome.DUPLICATE, article_id=same_url, decision=decision
                )
            judgement = self._judge(session, dedup, article.tags)
            decision = judgement.decision
            if decision.duplicate_of is None:
                article_id = self._insert_article(session, feed_id, article, dedup)
                self._finish_entry(session, entry_id, Outcome.STORED, article_id)
                return IngestResult(
                    outcome=Outcome.STORED, article_id=article_id, decision=decision
                )
            kept_id = decision.duplicate_of
            if judgement.original:
                kept = session.get_one(Article, kept_id)
                self._replace_with_original(session, kept, feed_id, article, dedup, decision)
                self._finish_entry(session, entry_id, Outcome.STORED, kept_id)
                outcome = Outcome.STORED
            else:
                record_copy(decision)
                outcome = Outcome.DUPLICATE
            merged = self._merge_other_copies(session, kept_id, judgement.merges)
            return IngestResult(
                outcome=outcome, article_id=kept_id, decision=decision, merged=tuple(merged)
            )

    def _insert_article(
        self, session: Session, feed_id: int, article: TaggedArticle, dedup: DedupInput
    ) -> int:
        connection = session.connection()
        values = {"feed_id": feed_id, **_content(article, dedup)}
        if connection.dialect.name == "sqlite":
            # SQLite gives a new row the highest id plus one, so the id of a story merged
            # away as the newest would come back for another story, and the documented
            # old-id lookup would answer with it. PostgreSQL's sequence never goes back.
            values["id"] = connection.execute(_NEXT_ARTICLE_ID).scalar_one()
        article_id: int = connection.execute(_INSERT_ARTICLE, values).scalar_one()
        _add_tags(connection, article_id, article.tags)
        index.add(connection, article_id, dedup)
        self._features.put(dedup.fingerprint, dedup.features)
        return article_id

    def _replace_with_original(
        self,
        session: Session,
        kept: Article,
        feed_id: int,
        article: TaggedArticle,
        dedup: DedupInput,
        decision: Decision,
    ) -> None:
        """The original arrived after a copy: the kept story keeps its id and takes the
        original's content; the copy it held becomes a duplicate of it.

        Its rule tags become the original's: they say what the stored text matches (as
        `monitor retag` recomputes them), and a spun copy's text matches phrases the
        original never used. Feed and category tags stay: the story came through both
        feeds."""
        assert decision.kind is not None
        copy_entry = _stored_entry(session, kept.id)
        self._add_duplicate_row(
            session,
            article_id=kept.id,
            url=kept.url,
            title=kept.title,
            feed_id=kept.feed_id,
            entry_id=copy_entry.id if copy_entry else None,
            kind=decision.kind,
            similarity=decision.similarity,
        )
        if copy_entry is not None:
            copy_entry.outcome = Outcome.DUPLICATE
        index.remove(session.connection(), kept.id)
        kept.feed_id = feed_id
        for name, value in _content(article, dedup).items():
            setattr(kept, name, value)
        session.flush()
        session.execute(
            sa.delete(_TAGS).where(_TAGS.c.article_id == kept.id, _TAGS.c.source == TagSource.RULE)
        )
        _add_tags(session.connection(), kept.id, article.tags, new=False)
        index.add(session.connection(), kept.id, dedup)
        self._features.put(dedup.fingerprint, dedup.features)

    def judge(self, dedup: DedupInput, tags: Sequence[Tag] = ()) -> Judgement:
        """What `ingest` would decide for this text (with these rule tags), storing
        nothing: `monitor explain` of a page not yet stored."""
        with self._read_session() as session:
            return self._judge(session, dedup, tags)

    def _judge(self, session: Session, dedup: DedupInput, tags: Sequence[Tag]) -> Judgement:
        """The duplicate decision, whether the newcomer is the kept story's original, and
        the other kept articles it shows to be copies of the same story. Writes nothing."""
        connection = session.connection()
        found = index.candidates(session, dedup, self._features)
        decision = decide(dedup, found)
        if decision.duplicate_of is None:
            second = index.candidates_by_numbers(session, dedup, self._features, found)
            if second:
                found = [*found, *second]
                decision = decide(dedup, second)
        if decision.duplicate_of is None:
            return Judgement(decision=decision, original=False, merges=())
        kept_id = decision.duplicate_of
        kept_row = connection.execute(_PROVENANCE_OF, {"article": kept_id}).one()
        kept_known = new_known = 0
        if decision.kind is DuplicateKind.SPUN:  # the only kind the phrase count decides
            kept_tags = connection.execute(_RULE_TAG_DETAILS, {"article": kept_id}).all()
            kept_known = known_phrases(kept_tags)
            new_known = known_phrases((tag.source, tag.detail) for tag in tags)
        kept_provenance = _provenance(kept_row, kept_known)
        newcomer = Provenance(dedup.published_at, dedup.repost_signals, new_known)
        original = newcomer_is_original(newcomer, kept_provenance, decision.kind)
        kept = next((c.features for c in found if c.article_id == kept_id), dedup.features)
        merges = self._mergeable(
            session,
            kept_id,
            # The story's text from now on: the newcomer's when it is the original.
            dedup.features if original else kept,
            None if original else kept,
            dedup,
            found,
        )
        return Judgement(decision=decision, original=original, merges=merges)

    def _mergeable(
        self,
        session: Session,
        kept_id: int,
        story: TextFeatures,
        copy_of: TextFeatures | None,
        dedup: DedupInput,
        found: list[Candidate],
    ) -> tuple[Merge, ...]:
        """Other kept articles this text is also a copy of were one story all along (copies
        of an original that arrived last): those to merge into `kept_id`, whose text
        `story` gives, and those shown apart, with why. `copy_of` is the kept text this
        one was found a copy of, when it is not the original: a later text holding two
        kept ones in parts of its own (a digest, a roundup) is a compilation, and they
        stay two stories. Parts of an original that arrived last are copies of it,
        whichever part each copied."""
        merges = []
        for candidate in found:
            if candidate.article_id == kept_id:
                continue
            verdict = verify(dedup, candidate)
            if verdict is None and not candidate.same_fingerprint:
                continue
            kind, similarity = verdict or (DuplicateKind.EXACT_TEXT, 1.0)
            # The newcomer's likeness to both is no proof they are one story: it may hold
            # both whole (a digest), or they may be two stories it resembles alike.
            apart = None
            if verdict is not None:
                if copy_of is not None and not one_part_of(
                    dedup.features, copy_of, candidate.features
                ):
                    apart = "it covers another part of this text (a page holding several stories)"
                elif two_stories(
                    _with_text(session, kept_id, story),
                    _with_text(session, candidate.article_id, candidate.features),
                ):
                    apart = (
                        "the two kept texts are two stories (told from one template, or over"
                        " shared background paragraphs)"
                    )
            merges.append(
                Merge(
                    article_id=candidate.article_id,
                    kind=kind,
                    similarity=similarity,
                    kept_apart_because=apart,
                )
            )
        return tuple(merges)

    def _merge_other_copies(
        self, session: Session, kept_id: int, merges: Sequence[Merge]
    ) -> list[int]:
        """Merge these kept articles into `kept_id`: their copies and entries move to it,
        and each becomes a copy of it with `former_article_id`."""
        merged = []
        for merge in merges:
            if merge.kept_apart_because is not None:
                continue
            kind, similarity = merge.kind, merge.similarity
            other = session.get(Article, merge.article_id)
            if other is None:
                continue
            copy_entry = _stored_entry(session, other.id)
            session.execute(
                sa.update(Duplicate)
                .where(Duplicate.article_id == other.id)
                .values(article_id=kept_id)
            )
            session.execute(
                sa.update(Entry).where(Entry.article_id == other.id).values(article_id=kept_id)
            )
            if copy_entry is not None:
                copy_entry.outcome = Outcome.DUPLICATE
            self._add_duplicate_row(
                session,
                article_id=kept_id,
                url=other.url,
                title=other.title,
                feed_id=other.feed_id,
                entry_id=copy_entry.id if copy_entry else None,
                kind=kind,
                similarity=similarity,
                former_article_id=other.id,
            )
            # Rule tags say what the kept text matches; the other text's are not its own.
            for tag in session.scalars(
                sa.select(ArticleTag).where(
                    ArticleTag.article_id == other.id, ArticleTag.source != TagSource.RULE
                )
            ):
                if session.get(ArticleTag, (kept_id, tag.tag, tag.source)) is None:
                    session.add(
                        ArticleTag(
                            article_id=kept_id, tag=tag.tag, source=tag.source, detail=tag.detail
                        )
                    )
            index.remove(session.connection(), other.id)
            session.flush()
            session.delete(other)
            merged.append(other.id)
        session.flush()
        return merged

    def store_duplicate(
        self,
        *,
        entry_id: int,
        feed_id: int,
        url: str,
        title: str | None,
        decision: Decision,
        tags: Sequence[Tag] = (),
    ) -> None:
        """Record a copy of a kept article, the tags its arrival brings (its feed's, its
        entry's categories) and the entry's outcome, in one transaction."""
        with self._session() as session, session.begin():
            self._add_duplicate(session, entry_id, feed_id, url, title, decision, tags)

    def _add_duplicate(
        self,
        session: Session,
        entry_id: int,
        feed_id: int,
        url: str,
        title: str | None,
        decision: Decision,
        tags: Sequence[Tag],
    ) -> None:
        assert decision.duplicate_of is not None and decision.kind is not None
        # The story came through this feed too, as when a copy arrives first and its
        # original replaces it: the same tags whatever the order.
        arrival = [tag for tag in tags if tag.source != TagSource.RULE]
        if arrival:
            _add_tags(session.connection(), decision.duplicate_of, arrival, new=False)
        self._add_duplicate_row(
            session,
            article_id=decision.duplicate_of,
            url=url,
            title=title,
            feed_id=feed_id,
            entry_id=entry_id,
            kind=decision.kind,
            similarity=decision.similarity,
        )
        self._finish_entry(session, entry_id, Outcome.DUPLICATE, decision.duplicate_of)

    @staticmethod
    def _add_duplicate_row(
        session: Session,
        *,
        article_id: int,
        url: str,
        title: str | None,
        feed_id: int | None,
        entry_id: int | None,
        kind: DuplicateKind,
        similarity: float,
        former_article_id: int | None = None,
    ) -> None:
        session.connection().execute(
            _INSERT_DUPLICATE,
            {
                "article_id": article_id,
                "url": url,
                "site": site_of(url),
                "title": title,
                "feed_id": feed_id,
                "entry_id": entry_id,
                "kind": kind,
                "similarity": similarity,
                "detected_at": utc_now(),
                "former_article_id": former_article_id,
            },
        )

    @staticmethod
    def _finish_entry(session: Session, entry_id: int, outcome: Outcome, article_id: int) -> None:
        session.connection().execute(
            _FINISH_ENTRY,
            {"entry": entry_id, "new_outcome": outcome, "kept": article_id, "now": utc_now()},
        )


_ARTICLES_AFTER = sa.text(
    "SELECT id, title, text FROM articles WHERE id > :after ORDER BY id LIMIT :limit"
)
_RULE_TAGS_OF = sa.text(
    "SELECT article_id, tag, detail FROM article_tags WHERE source = 'rule' AND article_id IN :ids"
).bindparams(sa.bindparam("ids", expanding=True))
_INSERT_RULE_TAG = sa.text(
    "INSERT INTO article_tags (article_id, tag, source, detail) VALUES (:id, :tag, 'rule', :detail)"
)
_DELETE_RULE_TAG = sa.text(
    "DELETE FROM article_tags WHERE article_id = :id AND tag = :tag AND source = 'rule'"
)
_UPDATE_RULE_TAG = sa.text(
    "UPDATE article_tags SET detail = :detail"
    " WHERE article_id = :id AND tag = :tag AND source = 'rule'"
)


@dataclass(slots=True)
class TagChanges:
    """What re-tagging changed (one batch of `Store.retag_batches`, or a whole run)."""

    articles: int = 0
    articles_changed: int = 0
    added: Counter[str] = field(default_factory=Counter)
    removed: Counter[str] = field(default_factory=Counter)
    # Same tag, other matched phrases (article_tags.detail rewritten).
    explained_anew: Counter[str] = field(default_factory=Counter)

    @property
    def changed(self) -> bool:
        return bool(self.articles_changed)

    def include(self, other: TagChanges) -> None:
        self.articles += other.articles
        self.articles_changed += other.articles_changed
        self.added.update(other.added)
        self.removed.update(other.removed)
        self.explained_anew.update(other.explained_anew)


@dataclass(frozen=True, slots=True)
class UrlRecord:
    """What `Store.find_by_url` found: the kept article (directly or through a copy), the
    copy, the newest entry with that URL, and the article's tags."""

    article: Article | None
    copy: Duplicate | None
    entry: Entry | None
    tags: list[tuple[str, str, str | None]]
    feeds: list[str] = field(default_factory=list)
    """The feeds that listed the URL, and the kept text's."""


@dataclass(frozen=True, kw_only=True, slots=True)
class NearStory:
    """A kept story compared with an article (`Store.nearest_stories`)."""

    article_id: int
    url: str
    title: str
    report: PairReport
    words: float


@dataclass(frozen=True, kw_only=True, slots=True)
class Merge:
    """Another kept article a newcomer is a copy of: one story with the kept one, merged
    into it, unless the two are shown apart."""

    article_id: int
    kind: DuplicateKind
    similarity: float
    # Why it is not merged after all, though the newcomer is a copy of it too.
    kept_apart_because: str | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class Judgement:
    """What `Store.ingest` decides for a text before it writes anything."""

    decision: Decision
    # Whether the newcomer is the kept story's original, and takes its place.
    original: bool
    merges: tuple[Merge, ...]


@dataclass(frozen=True, kw_only=True, slots=True)
class IngestResult:
    """What `Store.ingest` decided: the entry's outcome and the kept story's id."""

    outcome: Outcome
    article_id: int
    decision: Decision
    merged: tuple[int, ...] = ()
    # Decided by another process meanwhile (its lease on the feed lapsed under this one).
    finished_elsewhere: bool = False


def _content(article: TaggedArticle, dedup: DedupInput) -> dict[str, Any]:
    """An `articles` row's content columns."""
    extracted = article.article
    return {
        "url": extracted.url,
        "title": extracted.title,
        "text": article.text,
        "author": extracted.author,
        "published_at": extracted.published_at,
        "fetched_at": extracted.fetched_at,
        "language": extracted.language,
        "site": extracted.site,
        "content_hash": dedup.fingerprint,
        "repost_signals": ",".join(dedup.repost_signals) or None,
    }


def _add_tags(
    connection: sa.Connection, article_id: int, tags: Iterable[Tag], *, new: bool = True
) -> None:
    """The article's tags that it does not have yet (a `new` article has none), in one
    statement."""
    have: set[tuple[str, str]] = set()
    if not new:
        have.update(
            (tag, source)
            for tag, source in connection.execute(
                sa.select(_TAGS.c.tag, _TAGS.c.source).where(_TAGS.c.article_id == article_id)
            )
        )
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for tag in tags:
        key = (tag.name, str(tag.source))
        if key not in have and key not in rows:
            rows[key] = {
                "article_id": article_id,
                "tag": tag.name,
                "source": tag.source,
                "detail": tag.detail,
            }
    if rows:
        connection.execute(_INSERT_TAGS, list(rows.values()))


def _with_text(session: Session, article_id: int, features: TextFeatures) -> TextFeatures:
    """`features` with their text, read back when the cache of kept texts' features,
    which holds none, gave them (a rare question: two kept stories a text resembles)."""
    if features.text:
        return features
    text = session.scalar(sa.select(Article.text).where(Article.id == article_id))
    return replace(features, text=text or "")


def _stored_entry(session: Session, article_id: int) -> Entry | None:
    return session.scalars(
        sa.select(Entry)
        .where(Entry.article_id == article_id, Entry.outcome == Outcome.STORED)
        .order_by(Entry.id)
        .limit(1)
    ).first()


def _provenance(row: Any, known: int = 0) -> Provenance:
    """The provenance of an `articles` row (an ORM object or a Core row of its columns)."""
    signals = tuple(row.repost_signals.split(",")) if row.repost_signals else ()
    return Provenance(row.published_at, signals, known)


def _history(row: Any) -> FeedHistory:
    """The history of a `feeds` row (an ORM object or a Core row of its columns)."""
    return FeedHistory(
        enabled=row.enabled,
        interval=row.interval_seconds,
        last_polled_at=row.last_polled_at,
        consecutive_failures=row.consecutive_failures or 0,
        next_poll_at=row.next_poll_at,
        first_new_entry_at=row.first_new_entry_at,
        last_new_entry_at=row.last_new_entry_at,
        polls_with_new_entries=row.polls_with_new_entries or 0,
    )


def _new_entry_row(feed_id: int, entry: FeedEntry, now: datetime) -> dict[str, Any]:
    return {
        "feed_id": feed_id,
        "guid": entry.guid,
        "url": entry.url,
        "link": entry.link,
        "title": entry.title,
        "published_at": entry.published_at,
        "categories": json.dumps(entry.categories, ensure_ascii=False),
        "first_seen_at": now,
        "attempts": 0,
        "outcome": Outcome.PENDING,
    }


def _feed_entry(row: Any) -> FeedEntry:
    """The entry as the feed listed it, from an `entries` row."""
    categories = json.loads(row.categories) if row.categories else []
    return FeedEntry(
        link=row.link,
        url=row.url,
        guid=row.guid,
        title=row.title,
        published_at=row.published_at,
        categories=tuple(str(category) for category in categories),
    )


def _lease_free(owner: str, now: datetime) -> sa.ColumnElement[bool]:
    """A feed `owner` may take: nobody's, an expired lease, or its own (left over from a
    poll the database cut short)."""
    return sa.or_(Feed.lease_until.is_(None), Feed.lease_until < now, Feed.lease_owner == owner)


def _tag_order(tag: dict[str, Any]) -> tuple[str, str]:
    return tag["tag"], tag["source"]
