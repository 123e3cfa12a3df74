"""The plain, immutable data passed between pipeline stages.

feed → FeedDocument(FeedEntry…) → FetchedPage → ExtractedArticle → CleanedArticle
→ TaggedArticle → Decision → stored. Each stage is a function from one of these
to the next; none of them knows about the database or the scheduler.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

# The database keeps URLs (entries, articles, duplicates) of at most this many characters.
MAX_URL_LENGTH = 2048
# …a feed's name and a tag's (from the configuration, or a feed's categories) and a feed
# server's cache validators, of at most these.
MAX_FEED_NAME_LENGTH = 200
MAX_TAG_LENGTH = 200
MAX_ETAG_LENGTH = 1024
MAX_LAST_MODIFIED_LENGTH = 200


@dataclass(frozen=True, kw_only=True, slots=True)
class FeedEntry:
    """One item of a feed, with its link already canonicalised."""

    link: str
    url: str
    guid: str | None = None
    title: str | None = None
    published_at: datetime | None = None
    categories: tuple[str, ...] = ()
    # The item's author (RSS dc:creator or author, Atom's, JSON Feed's): the byline when
    # the page gives none.
    author: str | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class FeedDocument:
    """What a feed said: its entries, and why it was malformed if it was."""

    title: str | None
    language: str | None
    entries: tuple[FeedEntry, ...]
    malformed: str | None = None
    skipped: int = 0


@dataclass(frozen=True, kw_only=True, slots=True)
class FeedResponse:
    """The HTTP answer to a feed poll. `body` is empty when `not_modified`."""

    url: str
    status: int
    body: bytes
    headers: dict[str, str]
    etag: str | None
    last_modified: str | None
    # The feed's new address when every redirect to it was permanent (301, 308).
    moved_to: str | None = None

    @property
    def not_modified(self) -> bool:
        return self.status == 304


@dataclass(frozen=True, kw_only=True, slots=True)
class FetchedPage:
    """An article page as fetched: raw bytes, so the extractor can detect the encoding."""

    url: str
    final_url: str
    status: int
    content_type: str | None
    body: bytes
    fetched_at: datetime


@dataclass(frozen=True, kw_only=True, slots=True)
class ExtractedArticle:
    """The article in a page, with the feed's title and date filled in where the page had none."""

    url: str
    title: str
    text: str
    author: str | None
    published_at: datetime | None
    language: str | None
    site: str
    fetched_at: datetime


@dataclass(frozen=True, kw_only=True, slots=True)
class CleanedArticle:
    """The article with repost boilerplate removed; `removed` names what was taken out."""

    article: ExtractedArticle
    text: str
    removed: tuple[str, ...] = ()


class TagSource(StrEnum):
    FEED = "feed"
    CATEGORY = "category"
    RULE = "rule"


@dataclass(frozen=True, kw_only=True, slots=True)
class Tag:
    name: str
    source: TagSource
    detail: str | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class TaggedArticle:
    cleaned: CleanedArticle
    tags: tuple[Tag, ...] = ()

    @property
    def article(self) -> ExtractedArticle:
        return self.cleaned.article

    @property
    def text(self) -> str:
        return self.cleaned.text


class DuplicateKind(StrEnum):
    """Why a copy was not stored as its own article (`duplicates.kind`)."""

    SAME_URL = "same_url"
    EXACT_TEXT = "exact_text"
    NEAR_DUPLICATE = "near_duplicate"
    SPUN = "spun"
    REWRITE = "rewrite"


@dataclass(frozen=True, kw_only=True, slots=True)
class Decision:
    """New story, or a copy of the kept article `article_id`."""

    duplicate_of: int | None = None
    kind: DuplicateKind | None = None
    similarity: float = 1.0
    fingerprint: str = field(default="")

    @property
    def is_duplicate(self) -> bool:
        return self.duplicate_of is not None


class Outcome(StrEnum):
    """What became of an entry (`entries.outcome`)."""

    PENDING = "pending"
    STORED = "stored"
    DUPLICATE = "duplicate"
    OFF_TOPIC = "off_topic"
    FAILED = "failed"
