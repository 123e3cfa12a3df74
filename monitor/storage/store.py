"""The store: every read and write the pipeline makes, each its own short transaction.

An entry is recorded (outcome `pending`) before any work on it starts and gets its
final outcome in the same transaction that stores its article or duplicate, so a
crash at any point leaves either nothing or a `pending` row that the next poll resumes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from monitor.config import FeedSettings
from monitor.records import Decision, FeedEntry, Outcome, TaggedArticle
from monitor.storage.schema import Article, ArticleTag, Duplicate, Entry, Feed, utc_now
from monitor.urls import site_of

MAX_ERROR_LENGTH = 2000


@dataclass(frozen=True, kw_only=True, slots=True)
class FeedState:
    id: int
    etag: str | None
    last_modified: str | None
    last_polled_at: datetime | None


@dataclass(frozen=True, kw_only=True, slots=True)
class EntryClaim:
    """An entry to work on now: new, left pending by a crash, or failed and retryable."""

    id: int
    attempts: int


class Store:
    """Reads and writes of the ingestion pipeline, over one SQLAlchemy engine."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    def _session(self) -> Session:
        return self._sessions()

    # Feeds

    def sync_feeds(self, feeds: Iterable[FeedSettings]) -> dict[str, int]:
        """Make the `feeds` table match the config; feeds no longer configured are disabled.

        Returns the id of every configured feed by URL.
        """
        configured = {feed.url: feed for feed in feeds}
        with self._session() as session, session.begin():
            rows = {row.url: row for row in session.scalars(sa.select(Feed))}
            for url, feed in configured.items():
                row = rows.get(url)
                if row is None:
                    row = rows[url] = Feed(url=url, consecutive_failures=0)
                    session.add(row)
                row.name = feed.name
                row.enabled = feed.enabled
                row.interval_seconds = feed.interval
            for url, row in rows.items():
                if url not in configured:
                    row.enabled = False
            session.flush()
            return {url: rows[url].id for url in configured}

    def feed_state(self, feed_id: int) -> FeedState:
        with self._session() as session:
            row = session.get_one(Feed, feed_id)
            return FeedState(
                id=row.id,
                etag=row.etag,
                last_modified=row.last_modified,
                last_polled_at=row.last_polled_at,
            )

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
    ) -> None:
        now = utc_now()
        values: dict[str, object] = {
            "last_polled_at": now,
            "last_success_at": now,
            "last_status": status,
            "last_error": warning[:MAX_ERROR_LENGTH] if warning else None,
            "consecutive_failures": 0,
            "etag": etag,
            "last_modified": last_modified,
        }
        if title is not None:
            values["title"] = title
        if entry_count is not None:
            values["last_entry_count"] = entry_count
        self._update_feed(feed_id, values)

    def record_poll_failure(self, feed_id: int, *, error: str, status: int | None) -> None:
        self._update_feed(
            feed_id,
            {
                "last_polled_at": utc_now(),
                "last_status": status,
                "last_error": error[:MAX_ERROR_LENGTH],
                "consecutive_failures": Feed.consecutive_failures + 1,
            },
        )

    def _update_feed(self, feed_id: int, values: dict[str, object]) -> None:
        with self._session() as session, session.begin():
            session.execute(sa.update(Feed).where(Feed.id == feed_id).values(values))

    # Entries

    def claim_entry(
        self, feed_id: int, entry: FeedEntry, *, max_attempts: int
    ) -> EntryClaim | None:
        """Record `entry` as seen and return it if it needs work; None if it is done.

        An entry is the same as one seen before in this feed when its GUID or its
        canonical URL matches.
        """
        with self._session() as session, session.begin():
            match = [Entry.url == entry.url]
            if entry.guid:
                match.append(Entry.guid == entry.guid)
            row = session.scalars(
                sa.select(Entry).where(Entry.feed_id == feed_id, sa.or_(*match)).limit(1)
            ).first()
            if row is None:
                row = Entry(
                    feed_id=feed_id,
                    guid=entry.guid,
                    url=entry.url,
                    link=entry.link,
                    title=entry.title,
                    published_at=entry.published_at,
                    categories=json.dumps(entry.categories, ensure_ascii=False),
                    first_seen_at=utc_now(),
                    attempts=0,
                    outcome=Outcome.PENDING,
                )
                session.add(row)
                session.flush()
                return EntryClaim(id=row.id, attempts=0)
            retryable = row.outcome == Outcome.PENDING or (
                row.outcome == Outcome.FAILED and row.attempts < max_attempts
            )
            return EntryClaim(id=row.id, attempts=row.attempts) if retryable else None

    def retryable_entries(
        self, feed_id: int, *, max_attempts: int, limit: int = 100
    ) -> list[tuple[EntryClaim, FeedEntry]]:
        """Entries of this feed left pending by a crash or failed fewer than `max_attempts` times,
        oldest attempt first: they are retried even when the feed itself is unchanged."""
        retryable = sa.or_(
            Entry.outcome == Outcome.PENDING,
            sa.and_(Entry.outcome == Outcome.FAILED, Entry.attempts < max_attempts),
        )
        with self._session() as session:
            rows = session.scalars(
                sa.select(Entry)
                .where(Entry.feed_id == feed_id, retryable)
                .order_by(Entry.last_attempt_at.is_not(None), Entry.last_attempt_at, Entry.id)
                .limit(limit)
            ).all()
            return [
                (EntryClaim(id=row.id, attempts=row.attempts), _feed_entry(row)) for row in rows
            ]

    def record_entry_failure(self, entry_id: int, *, reason: str, error: str) -> None:
        with self._session() as session, session.begin():
            session.execute(
                sa.update(Entry)
                .where(Entry.id == entry_id)
                .values(
                    outcome=Outcome.FAILED,
                    attempts=Entry.attempts + 1,
                    last_attempt_at=utc_now(),
                    reason=reason[:50],
                    error=error[:MAX_ERROR_LENGTH],
                )
            )

    # Articles and duplicates

    def article_id_for_url(self, url: str) -> int | None:
        with self._session() as session:
            return session.scalar(sa.select(Article.id).where(Article.url == url))

    def article_id_for_fingerprint(self, fingerprint: str) -> int | None:
        with self._session() as session:
            return session.scalar(
                sa.select(Article.id)
                .where(Article.content_hash == fingerprint)
                .order_by(Article.id)
                .limit(1)
            )

    def store_article(
        self, *, entry_id: int, feed_id: int, article: TaggedArticle, decision: Decision
    ) -> int | None:
        """Insert the article, its tags and the entry's outcome in one transaction.

        Returns the new article id, or None when another writer stored the same URL
        first (the caller then records this entry as a duplicate of that one).
        """
        extracted = article.article
        try:
            with self._session() as session, session.begin():
                row = Article(
                    url=extracted.url,
                    title=extracted.title,
                    text=article.text,
                    author=extracted.author,
                    published_at=extracted.published_at,
                    fetched_at=extracted.fetched_at,
                    language=extracted.language,
                    feed_id=feed_id,
                    site=extracted.site,
                    content_hash=decision.fingerprint,
                )
                session.add(row)
                session.flush()
                session.add_all(
                    ArticleTag(
                        article_id=row.id, tag=tag.name, source=tag.source, detail=tag.detail
                    )
                    for tag in article.tags
                )
                self._finish_entry(session, entry_id, Outcome.STORED, row.id)
                return row.id
        except IntegrityError:
            return None

    def store_duplicate(
        self,
        *,
        entry_id: int,
        feed_id: int,
        url: str,
        title: str | None,
        decision: Decision,
    ) -> None:
        """Record a copy of a kept article and the entry's outcome in one transaction."""
        assert decision.duplicate_of is not None and decision.kind is not None
        with self._session() as session, session.begin():
            session.add(
                Duplicate(
                    article_id=decision.duplicate_of,
                    url=url,
                    site=site_of(url),
                    title=title,
                    feed_id=feed_id,
                    entry_id=entry_id,
                    kind=decision.kind,
                    similarity=decision.similarity,
                    detected_at=utc_now(),
                )
            )
            self._finish_entry(session, entry_id, Outcome.DUPLICATE, decision.duplicate_of)

    @staticmethod
    def _finish_entry(session: Session, entry_id: int, outcome: Outcome, article_id: int) -> None:
        session.execute(
            sa.update(Entry)
            .where(Entry.id == entry_id)
            .values(
                outcome=outcome,
                article_id=article_id,
                attempts=Entry.attempts + 1,
                last_attempt_at=utc_now(),
                reason=None,
                error=None,
            )
        )

    # Reading, for the command line

    def outcome_counts(self) -> dict[str, int]:
        with self._session() as session:
            rows = session.execute(
                sa.select(Entry.outcome, sa.func.count()).group_by(Entry.outcome)
            )
            return dict(rows.tuples())


def _feed_entry(row: Entry) -> FeedEntry:
    categories = json.loads(row.categories) if row.categories else []
    return FeedEntry(
        link=row.link,
        url=row.url,
        guid=row.guid,
        title=row.title,
        published_at=row.published_at,
        categories=tuple(str(category) for category in categories),
    )
