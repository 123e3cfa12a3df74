"""The database contract: typed SQLAlchemy models of the tables downstream tools read.

docs/schema.md documents every table and column here; Alembic migrations in
migrations/ evolve them. Change both together.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from monitor.records import (
    MAX_ETAG_LENGTH,
    MAX_FEED_NAME_LENGTH,
    MAX_LAST_MODIFIED_LENGTH,
    MAX_TAG_LENGTH,
    MAX_URL_LENGTH,
)

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets 64-bit ids.
Id = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """A point in time, always timezone-aware UTC in Python.

    PostgreSQL stores `timestamptz`. SQLite has no time zones: it stores the UTC
    wall time as text ("2024-05-01 03:00:00.000000"), which SQLite's own date
    functions read as UTC.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"refusing to store a naive datetime: {value!r}")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utc_now() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Feed(Base):
    """A configured feed and its health. Rows are kept when a feed leaves the config."""

    __tablename__ = "feeds"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    url: Mapped[str] = mapped_column(String(MAX_URL_LENGTH), unique=True)
    name: Mapped[str] = mapped_column(String(MAX_FEED_NAME_LENGTH))
    enabled: Mapped[bool] = mapped_column(default=True)
    interval_seconds: Mapped[float] = mapped_column(Float)
    title: Mapped[str | None] = mapped_column(Text)
    etag: Mapped[str | None] = mapped_column(String(MAX_ETAG_LENGTH))
    last_modified: Mapped[str | None] = mapped_column(String(MAX_LAST_MODIFIED_LENGTH))
    last_polled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    last_entry_count: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    next_poll_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_full_fetch_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    first_new_entry_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_new_entry_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    polls_with_new_entries: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    health: Mapped[str | None] = mapped_column(String(20))
    lease_owner: Mapped[str | None] = mapped_column(String(200))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Article(Base):
    """One kept story."""

    __tablename__ = "articles"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    url: Mapped[str] = mapped_column(String(MAX_URL_LENGTH), unique=True)
    title: Mapped[str] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text)
    author: Mapped[str | None] = mapped_column(Text)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    fetched_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    language: Mapped[str | None] = mapped_column(String(16))
    feed_id: Mapped[int | None] = mapped_column(
        Id, ForeignKey("feeds.id", ondelete="SET NULL"), index=True
    )
    site: Mapped[str] = mapped_column(String(255), index=True)
    content_hash: Mapped[str] = mapped_column(String(64), index=True)
    repost_signals: Mapped[str | None] = mapped_column(String(200))


class ArticleTag(Base):
    """A tag on an article and where it came from: `feed`, `category` or `rule`."""

    __tablename__ = "article_tags"

    article_id: Mapped[int] = mapped_column(
        Id, ForeignKey("articles.id", ondelete="CASCADE"), primary_key=True
    )
    tag: Mapped[str] = mapped_column(String(MAX_TAG_LENGTH), primary_key=True)
    source: Mapped[str] = mapped_column(String(20), primary_key=True)
    detail: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_article_tags_tag", "tag"),)


class Entry(Base):
    """Every feed entry the daemon saw, and what became of it."""

    __tablename__ = "entries"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    feed_id: Mapped[int] = mapped_column(Id, ForeignKey("feeds.id", ondelete="CASCADE"))
    guid: Mapped[str | None] = mapped_column(String(MAX_URL_LENGTH))
    url: Mapped[str] = mapped_column(String(MAX_URL_LENGTH), index=True)
    link: Mapped[str] = mapped_column(String(MAX_URL_LENGTH))
    title: Mapped[str | None] = mapped_column(Text)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    categories: Mapped[str | None] = mapped_column(Text)
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    outcome: Mapped[str] = mapped_column(String(20), default="pending", index=True)
    reason: Mapped[str | None] = mapped_column(String(50))
    error: Mapped[str | None] = mapped_column(Text)
    article_id: Mapped[int | None] = mapped_column(
        Id, ForeignKey("articles.id", ondelete="SET NULL"), index=True
    )
    # Not fetched again before this: a transient failure's backoff, or its host's
    # Retry-After. Null: at the next poll of its feed.
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint("feed_id", "url"),
        UniqueConstraint("feed_id", "guid"),
    )


class Duplicate(Base):
    """A copy that was not stored as an article, linked to the kept story it copies."""

    __tablename__ = "duplicates"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    article_id: Mapped[int] = mapped_column(
        Id, ForeignKey("articles.id", ondelete="CASCADE"), index=True
    )
    url: Mapped[str] = mapped_column(String(MAX_URL_LENGTH), index=True)
    site: Mapped[str] = mapped_column(String(255))
    title: Mapped[str | None] = mapped_column(Text)
    feed_id: Mapped[int | None] = mapped_column(Id, ForeignKey("feeds.id", ondelete="SET NULL"))
    entry_id: Mapped[int | None] = mapped_column(
        Id, ForeignKey("entries.id", ondelete="SET NULL"), unique=True
    )
    kind: Mapped[str] = mapped_column(String(20))
    similarity: Mapped[float] = mapped_column(Float)
    detected_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    former_article_id: Mapped[int | None] = mapped_column(BigInteger, index=True)


class ArticleSignature(Base):
    """The MinHash signatures of a kept article: what the near-duplicate index is built from."""

    __tablename__ = "article_signatures"

    article_id: Mapped[int] = mapped_column(
        Id, ForeignKey("articles.id", ondelete="CASCADE"), primary_key=True
    )
    scheme: Mapped[str] = mapped_column(String(100))
    skeleton: Mapped[bytes] = mapped_column(LargeBinary)
    entities: Mapped[bytes] = mapped_column(LargeBinary)


class LshBucket(Base):
    """One LSH band of one kept article's signatures: articles sharing a bucket are candidates.

    Internal to monitor (rebuilt by `monitor index rebuild`), not part of the reading contract.
    """

    __tablename__ = "lsh_buckets"

    bucket: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    article_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)

    __table_args__ = ({"sqlite_with_rowid": False},)
