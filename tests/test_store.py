"""The store on real databases: entry claims, atomic article writes, feed sync."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from bench.dedupcorpus.baselines import cleaned_text
from bench.dedupcorpus.spinner import Spinner, SynonymTable
from bench.dedupcorpus.stories import load_stories
from bench.dedupcorpus.variants import build_documents
from monitor.config import FeedSettings, load_settings
from monitor.dedup import prepare, prepare_text
from monitor.records import (
    CleanedArticle,
    Decision,
    DuplicateKind,
    ExtractedArticle,
    FeedEntry,
    Outcome,
    Tag,
    TaggedArticle,
    TagSource,
)
from monitor.rules import RuleSet
from monitor.similarity import Signer
from monitor.storage.schema import (
    Article,
    ArticleSignature,
    ArticleTag,
    Duplicate,
    Entry,
    Feed,
    LshBucket,
)
from monitor.storage.store import EntryClaim, IngestResult, Store

SIGNER = Signer()
REPO = Path(__file__).resolve().parent.parent
SYNONYMS_INDEPENDENT = REPO / "bench" / "dedupcorpus" / "synonyms-independent.tsv"


def ingest(
    store: Store, feed_id: int, claim: EntryClaim | None, tagged: TaggedArticle
) -> IngestResult:
    assert claim is not None
    return store.ingest(
        entry_id=claim.id, feed_id=feed_id, article=tagged, dedup=prepare(tagged, SIGNER)
    )


FEED = FeedSettings(name="Local", url="http://127.0.0.1:1/feed.rss", interval=60, tags=("kh",))


def entry(url: str = "http://127.0.0.1:1/a.html", guid: str | None = "g1") -> FeedEntry:
    return FeedEntry(
        link=url,
        url=url,
        guid=guid,
        title="A title",
        published_at=datetime(2024, 3, 14, 3, 0, tzinfo=UTC),
    )


def article(url: str = "http://127.0.0.1:1/a.html", text: str = "Body text.") -> TaggedArticle:
    extracted = ExtractedArticle(
        url=url,
        title="Title",
        text=text,
        author="Reporter",
        published_at=datetime(2024, 3, 14, 3, 0, tzinfo=UTC),
        language="en",
        site="127.0.0.1",
        fetched_at=datetime(2024, 3, 14, 4, 0, tzinfo=UTC),
    )
    return TaggedArticle(
        cleaned=CleanedArticle(article=extracted, text=text),
        tags=(Tag(name="kh", source=TagSource.FEED), Tag(name="Crime", source=TagSource.CATEGORY)),
    )


def test_sync_feeds_adds_updates_and_disables(store: Store) -> None:
    other = FeedSettings(name="Other", url="http://127.0.0.1:1/other.rss")
    ids = store.sync_feeds([FEED, other])
    assert set(ids) == {FEED.url, other.url}
    renamed = FEED.model_copy(update={"name": "Renamed", "interval": 120.0})
    assert store.sync_feeds([renamed]) == {FEED.url: ids[FEED.url]}
    with store.engine.connect() as connection:
        rows = {row.url: row for row in connection.execute(sa.select(Feed))}
    assert rows[FEED.url].name == "Renamed"
    assert rows[FEED.url].interval_seconds == 120
    assert rows[other.url].enabled is False
    # feeds.health (and the feed_health view) says so too, and comes back with the feed.
    assert (rows[FEED.url].health, rows[other.url].health) == ("never_polled", "disabled")
    store.sync_feeds([renamed, other.model_copy(update={"enabled": False})])
    with store.engine.connect() as connection:
        assert connection.execute(sa.select(Feed.health).where(Feed.url == other.url)).scalar() == (
            "disabled"
        )
    store.sync_feeds([renamed, other])
    with store.engine.connect() as connection:
        assert connection.execute(sa.select(Feed.health).where(Feed.url == other.url)).scalar() == (
            "never_polled"
        )


def test_claim_entry_once_per_guid_or_url(store: Store) -> None:
    feed_id = store.sync_feeds([FEED])[FEED.url]
    claim = store.claim_entry(feed_id, entry(), max_attempts=3)
    assert claim is not None
    # Still pending (a crash would leave it so): claimed again, same row, no longer new.
    assert store.claim_entry(feed_id, entry(), max_attempts=3) == replace(claim, fresh=False)
    ingest(store, feed_id, claim, article())
    assert store.claim_entry(feed_id, entry(), max_attempts=3) is None
    # Same GUID with another link, or same URL with another GUID: the same entry.
    assert (
        store.claim_entry(feed_id, entry(url="http://127.0.0.1:1/moved.html"), max_attempts=3)
        is None
    )
    assert store.claim_entry(feed_id, entry(guid="g2"), max_attempts=3) is None


def test_claim_entries_records_a_batch_and_matches_repeats_within_it(store: Store) -> None:
    feed_id = store.sync_feeds([FEED])[FEED.url]
    done_entry = entry(url="http://127.0.0.1:1/kept.html", guid="k")
    kept = store.claim_entry(feed_id, done_entry, max_attempts=3)
    assert kept is not None
    ingest(store, feed_id, kept, article(url="http://127.0.0.1:1/kept.html"))
    batch = [
        entry(url="http://127.0.0.1:1/a.html", guid="a"),
        entry(url="http://127.0.0.1:1/b.html", guid="b"),
        entry(url="http://127.0.0.1:1/a.html", guid="a-again"),  # same URL as the first
        entry(url="http://127.0.0.1:1/moved.html", guid="b"),  # same GUID as the second
        entry(url="http://127.0.0.1:1/kept.html", guid="k"),  # done already
        entry(url="http://127.0.0.1:1/kept.html", guid="other"),  # same URL as a done one
    ]
    claims = store.claim_entries(feed_id, batch, max_attempts=3)
    first, second, first_again, second_again, done, known_url = claims
    assert first is not None and second is not None and first.id != second.id
    assert (first_again, second_again, done, known_url) == (first, second, None, None)
    with store.engine.connect() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(Entry)).scalar() == 3
    # Claimed again (still pending): the same rows, nothing new recorded.
    assert first.fresh and second.fresh
    assert store.claim_entries(feed_id, batch[:2], max_attempts=3) == [
        replace(first, fresh=False),
        replace(second, fresh=False),
    ]
    # A kept article with the entry's URL comes with the claim: no need to fetch it.
    elsewhere = FeedSettings(name="Other", url="http://127.0.0.1:1/other.xml")
    other_feed = store.sync_feeds([FEED, elsewhere])[elsewhere.url]
    (copy,) = store.claim_entries(other_feed, [done_entry], max_attempts=3)
    assert copy is not None and copy.article_with_url is not None


def test_failed_entries_are_retried_up_to_the_limit(store: Store) -> None:
    feed_id = store.sync_feeds([FEED])[FEED.url]
    for _ in range(2):
        claim = store.claim_entry(feed_id, entry(), max_attempts=2)
        assert claim is not None
        store.record_entry_failure(claim.id, reason="http_500", error="HTTP 500")
    assert store.claim_entry(feed_id, entry(), max_attempts=2) is None
    with store.engine.connect() as connection:
        row = connection.execute(sa.select(Entry)).one()
    assert (row.outcome, row.attempts, row.reason) == (Outcome.FAILED, 2, "http_500")


def test_store_article_writes_article_tags_and_outcome_together(store: Store) -> None:
    feed_id = store.sync_feeds([FEED])[FEED.url]
    claim = store.claim_entry(feed_id, entry(), max_attempts=3)
    assert claim is not None
    article_id = ingest(store, feed_id, claim, article()).article_id
    with store.engine.connect() as connection:
        stored = connection.execute(sa.select(Article)).one()
        tags = connection.execute(sa.select(ArticleTag.tag, ArticleTag.source)).all()
        outcome = connection.execute(sa.select(Entry.outcome, Entry.article_id)).one()
    assert stored.url == "http://127.0.0.1:1/a.html"
    assert stored.site == "127.0.0.1"
    assert sorted(tags) == [("Crime", "category"), ("kh", "feed")]
    assert tuple(outcome) == (Outcome.STORED, article_id)
    kept = store.find_by_url("http://127.0.0.1:1/a.html").article
    assert kept is not None and kept.id == article_id
    with store.engine.connect() as connection:
        signatures = connection.execute(
            sa.select(sa.func.count()).select_from(ArticleSignature)
        ).scalar()
        buckets = connection.execute(sa.select(sa.func.count()).select_from(LshBucket)).scalar()
    assert signatures == 1 and buckets and buckets > 0


def test_times_come_back_as_utc(store: Store) -> None:
    feed_id = store.sync_feeds([FEED])[FEED.url]
    claim = store.claim_entry(feed_id, entry(), max_attempts=3)
    assert claim is not None
    ingest(store, feed_id, claim, article())
    from sqlalchemy.orm import Session

    with Session(store.engine) as session:
        stored = session.scalars(sa.select(Article)).one()
    assert stored.published_at == datetime(2024, 3, 14, 3, 0, tzinfo=UTC)
    assert stored.published_at is not None and stored.published_at.utcoffset() is not None


def test_second_article_with_a_kept_url_is_a_same_url_duplicate(store: Store) -> None:
    feed_id = store.sync_feeds([FEED])[FEED.url]
    first = store.claim_entry(feed_id, entry(guid="a"), max_attempts=3)
    second = store.claim_entry(
        feed_id, entry(url="http://127.0.0.1:1/b.html", guid="b"), max_attempts=3
    )
    assert first is not None and second is not None
    kept = ingest(store, feed_id, first, article())
    # A racing writer whose page redirected to a URL kept meanwhile.
    copy = ingest(store, feed_id, second, article(text="Other text entirely."))
    assert (copy.outcome, copy.article_id) == (Outcome.DUPLICATE, kept.article_id)
    assert copy.decision.kind is DuplicateKind.SAME_URL
    with store.engine.connect() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(Article)).scalar() == 1
        assert connection.execute(sa.select(sa.func.count()).select_from(ArticleTag)).scalar() == 2
        outcome = connection.execute(sa.select(Entry.outcome).where(Entry.id == second.id)).scalar()
    assert outcome == Outcome.DUPLICATE


def test_store_duplicate_links_the_copy(store: Store) -> None:
    feed_id = store.sync_feeds([FEED])[FEED.url]
    first = store.claim_entry(feed_id, entry(guid="a"), max_attempts=3)
    copy = store.claim_entry(
        feed_id, entry(url="http://127.0.0.1:1/copy.html", guid="b"), max_attempts=3
    )
    assert first is not None and copy is not None
    kept = ingest(store, feed_id, first, article()).article_id
    assert kept is not None
    store.store_duplicate(
        entry_id=copy.id,
        feed_id=feed_id,
        url="http://www.copy.example/copy.html",
        title="Copy",
        decision=Decision(duplicate_of=kept, kind=DuplicateKind.EXACT_TEXT, similarity=1.0),
    )
    with store.engine.connect() as connection:
        duplicate = connection.execute(sa.select(Duplicate)).one()
        outcome = connection.execute(
            sa.select(Entry.outcome, Entry.article_id).where(Entry.id == copy.id)
        ).one()
    assert (duplicate.article_id, duplicate.kind, duplicate.site) == (
        kept,
        "exact_text",
        "copy.example",
    )
    assert duplicate.detected_at is not None
    assert tuple(outcome) == (Outcome.DUPLICATE, kept)


def test_poll_failures_count_up_and_success_resets(store: Store) -> None:
    feed_id = store.sync_feeds([FEED])[FEED.url]
    store.record_poll_failure(feed_id, error="timeout: slow", status=None)
    store.record_poll_failure(feed_id, error="http_503: busy", status=503)
    with store.engine.connect() as connection:
        row = connection.execute(sa.select(Feed)).one()
    assert (row.consecutive_failures, row.last_status, row.last_error) == (2, 503, "http_503: busy")
    assert row.last_success_at is None and row.last_polled_at is not None
    store.record_poll_success(
        feed_id, status=200, etag='"v1"', last_modified=None, title="T", entry_count=4
    )
    state = store.feed_state(feed_id)
    assert state.etag == '"v1"'
    with store.engine.connect() as connection:
        row = connection.execute(sa.select(Feed)).one()
    assert (row.consecutive_failures, row.last_error, row.last_entry_count, row.title) == (
        0,
        None,
        4,
        "T",
    )


def test_retry_after_is_honoured_up_to_a_day(store: Store) -> None:
    feed_id = store.sync_feeds([FEED])[FEED.url]
    before = datetime.now(UTC)
    # Honoured beyond max_backoff: the server asked.
    two_hours = store.record_poll_failure(
        feed_id, error="http_429: slow down", status=429, retry_after=7200.0, max_backoff=3600.0
    )
    assert 7199 <= (two_hours - before).total_seconds() <= 7210
    # "Retry-After: Wed, 21 Oct 2099 07:28:00 GMT": the feed is tried again within a day.
    far = store.record_poll_failure(
        feed_id, error="http_429: go away", status=429, retry_after=2.3e9, max_backoff=3600.0
    )
    assert 86399 <= (far - before).total_seconds() <= 86410


ORIGINAL_TEXT = "\n".join(
    [
        "Police in Preah Sihanouk province freed 318 foreign workers from the Heng Fu compound on 14 August 2022, officials said.",
        "The raid followed a tip-off from the Indonesian embassy about 41 of its citizens held at the site in Otres village.",
        "Provincial police chief Chuon Narin said 12 suspects, including 9 Chinese nationals, were detained for questioning.",
        "The National Committee for Counter Trafficking said the victims would be screened at a shelter in Phnom Penh.",
    ]
)


def article_at(
    url: str,
    text: str,
    hour: int,
    removed: tuple[str, ...] = (),
    rules: dict[str, str] | None = None,
) -> TaggedArticle:
    """An article with its URL's last segment as a feed tag and `rules` (tag → the
    phrase that matched) as rule tags."""
    extracted = ExtractedArticle(
        url=url,
        title=f"Title of {url}",
        text=text,
        author=None,
        published_at=datetime(2024, 3, 14, hour, 0, tzinfo=UTC),
        language="en",
        site="127.0.0.1",
        fetched_at=datetime(2024, 3, 15, tzinfo=UTC),
    )
    return TaggedArticle(
        cleaned=CleanedArticle(article=extracted, text=text, removed=removed),
        tags=(
            Tag(name=url.rstrip("/").rsplit("/", 1)[-1], source=TagSource.FEED),
            *(
                Tag(name=name, source=TagSource.RULE, detail=f'["{phrase}"]')
                for name, phrase in (rules or {}).items()
            ),
        ),
    )


def tags_by_source(store: Store) -> dict[str, dict[str, str | None]]:
    """Every stored tag as {source: {tag: detail}}."""
    found: dict[str, dict[str, str | None]] = {}
    with store.engine.connect() as connection:
        for tag, source, detail in connection.execute(
            sa.select(ArticleTag.tag, ArticleTag.source, ArticleTag.detail)
        ):
            found.setdefault(source, {})[tag] = detail
    return found


def follow_ups(*names: str) -> list[str]:
    """The texts of tests/fixtures/follow_ups/NAME.txt, written for audits."""
    folder = Path(__file__).parent / "fixtures" / "follow_ups"
    return [(folder / f"{name}.txt").read_text(encoding="utf-8") for name in names]


def claim_for(store: Store, feed_id: int, url: str) -> EntryClaim:
    claim = store.claim_entry(feed_id, entry(url=url, guid=url), max_attempts=3)
    assert claim is not None
    return claim


def test_an_entry_is_new_only_to_the_claim_that_records_it(store: Store) -> None:
    # Two audits: entries put off because their host asked to wait (no attempt counted),
    # and entries a stop left pending, were counted new again by the poll that fetched
    # them, feeding the feed's health figures; a run-once cut short counted 13 new
    # entries for 12.
    feed_id = store.sync_feeds([FEED])[FEED.url]
    waiting, stopped = entry("http://127.0.0.1:1/w", "w"), entry("http://127.0.0.1:1/c", "c")
    first = store.claim_entries(feed_id, [waiting, stopped], max_attempts=3)
    assert [claim is not None and claim.fresh for claim in first] == [True, True]
    assert first[0] is not None
    store.defer_entry(
        first[0].id,
        until=datetime.now(UTC) - timedelta(seconds=1),
        reason="host_waiting",
        error="e",
    )
    again = store.claim_entries(feed_id, [waiting, stopped], max_attempts=3)
    assert [claim is not None and claim.fresh for claim in again] == [False, False]


def test_an_entry_finished_by_another_process_is_not_recorded_again(store: Store) -> None:
    """Two processes working on one entry (a lease lapsed in a database outage): the
    second ingest must not record the entry as a copy of its own article."""
    feed_id = store.sync_feeds([FEED])[FEED.url]
    url = "http://127.0.0.1:1/news/once"
    claim = claim_for(store, feed_id, url)
    first = ingest(store, feed_id, claim, article_at(url, ORIGINAL_TEXT, 9))
    again = ingest(store, feed_id, claim, article_at(url, ORIGINAL_TEXT, 9))
    assert (again.outcome, again.article_id) == (Outcome.STORED, first.article_id)
    with store.engine.connect() as connection:
        outcomes = connection.execute(sa.text("SELECT outcome, article_id FROM entries")).all()
        copies = connection.execute(sa.text("SELECT count(*) FROM duplicates")).scalar()
    assert [tuple(row) for row in outcomes] == [("stored", first.article_id)]
    assert copies == 0
    assert again.finished_elsewhere and not first.finished_elsewhere


def test_a_copy_finished_by_another_process_is_not_decided_again(store: Store) -> None:
    # A faults audit: a replica stalled past its lease took up its poll again and
    # recorded entries the other replica had finished: a unique-key error on the
    # duplicates row, and "duplicate (None 1.00)" in the log.
    feed_id = store.sync_feeds([FEED])[FEED.url]
    original = "http://127.0.0.1:1/news/original"
    ingest(
        store, feed_id, claim_for(store, feed_id, original), article_at(original, ORIGINAL_TEXT, 9)
    )
    copy_url = "http://127.0.0.1:2/news/copy"
    claim = claim_for(store, feed_id, copy_url)
    first = ingest(store, feed_id, claim, article_at(copy_url, ORIGINAL_TEXT + " Source link", 9))
    again = ingest(store, feed_id, claim, article_at(copy_url, ORIGINAL_TEXT + " Source link", 9))
    assert first.outcome is Outcome.DUPLICATE and not first.finished_elsewhere
    assert again.finished_elsewhere
    assert (again.outcome, again.article_id) == (Outcome.DUPLICATE, first.article_id)
    with store.engine.connect() as connection:
        copies = connection.execute(sa.text("SELECT count(*) FROM duplicates")).scalar()
    assert copies == 1


def test_the_original_replaces_an_earlier_wrapped_copy_and_keeps_its_id(store: Store) -> None:
    feed_id = store.sync_feeds([FEED])[FEED.url]
    copy_url, original_url = "http://127.0.0.1:1/autoblog/copy/", "http://127.0.0.1:1/news/original"
    wrapped = article_at(
        copy_url,
        ORIGINAL_TEXT + "\nA closing line from the auto-blog itself.",
        9,
        removed=("ad_markers", "source_link"),
        rules={"theme:blogging": "auto-blog", "place:sihanoukville": "sihanouk"},
    )
    first = ingest(store, feed_id, claim_for(store, feed_id, copy_url), wrapped)
    second = ingest(
        store,
        feed_id,
        claim_for(store, feed_id, original_url),
        article_at(
            original_url, ORIGINAL_TEXT, 10, rules={"place:sihanoukville": "preah sihanouk"}
        ),
    )
    assert first.outcome == Outcome.STORED
    assert (second.outcome, second.article_id) == (Outcome.STORED, first.article_id)
    assert second.decision.kind is DuplicateKind.NEAR_DUPLICATE
    with store.engine.connect() as connection:
        (kept,) = connection.execute(sa.select(Article)).all()
        (duplicate,) = connection.execute(sa.select(Duplicate)).all()
        outcomes = dict(connection.execute(sa.select(Entry.url, Entry.outcome)).all())
        tags = {tag for (tag,) in connection.execute(sa.select(ArticleTag.tag)).all()}
    assert (kept.id, kept.url, kept.text, kept.repost_signals) == (
        first.article_id,
        original_url,
        ORIGINAL_TEXT,
        None,
    )
    # The copy is now a duplicate of the story, and its old URL resolves to it.
    assert (duplicate.url, duplicate.article_id, duplicate.former_article_id) == (
        copy_url,
        first.article_id,
        None,
    )
    assert outcomes == {copy_url: Outcome.DUPLICATE, original_url: Outcome.STORED}
    assert tags == {"copy", "original", "place:sihanoukville"}
    # Rule tags are what the stored text matches (as `monitor retag` would find them);
    # the story came through both feeds.
    assert tags_by_source(store) == {
        "feed": {"copy": None, "original": None},
        "rule": {"place:sihanoukville": '["preah sihanouk"]'},
    }


def test_a_later_copy_stays_a_duplicate(store: Store) -> None:
    feed_id = store.sync_feeds([FEED])[FEED.url]
    original_url, copy_url = "http://127.0.0.1:1/news/original", "http://127.0.0.1:1/wire/copy"
    kept = ingest(
        store,
        feed_id,
        claim_for(store, feed_id, original_url),
        article_at(original_url, ORIGINAL_TEXT, 9),
    )
    copy = ingest(
        store,
        feed_id,
        claim_for(store, feed_id, copy_url),
        article_at(copy_url, "Wire service.\n" + ORIGINAL_TEXT, 11, rules={"theme:w": "wire"}),
    )
    assert (copy.outcome, copy.article_id) == (Outcome.DUPLICATE, kept.article_id)
    # The story came through the copy's feed too (as when the copy arrives first and the
    # original replaces it): its feed tag joins the story, its rule tags do not.
    assert tags_by_source(store) == {"feed": {"original": None, "copy": None}}


def test_a_republished_copy_crediting_its_source_gives_way_to_the_original(
    store: Store,
) -> None:
    # An audit: a syndicated copy ending "originally published by Coastal News", stored
    # first, stayed the kept article when the original arrived with the same time.
    feed_id = store.sync_feeds([FEED])[FEED.url]
    copy_url, original_url = "http://127.0.0.1:1/partner/raid", "http://127.0.0.1:1/coastal/raid"
    credited = ORIGINAL_TEXT + "\nThis article was originally published by Coastal News."
    copy = article_at(copy_url, credited, 9)
    assert prepare(copy, SIGNER).repost_signals == ("credits_another_outlet",)
    first = ingest(store, feed_id, claim_for(store, feed_id, copy_url), copy)
    second = ingest(
        store,
        feed_id,
        claim_for(store, feed_id, original_url),
        article_at(original_url, ORIGINAL_TEXT, 9),
    )
    assert (second.outcome, second.article_id) == (Outcome.STORED, first.article_id)
    with store.engine.connect() as connection:
        (kept,) = connection.execute(sa.select(Article.url, Article.repost_signals)).all()
    assert tuple(kept) == (original_url, None)
    # A story saying where something first appeared is no republished copy (a second
    # audit: the original, closing with the Telegram sentence, lost to its later copy).
    for sentence in (
        "The report, first published in Nature, found the same.",
        "The report was first published in March by the Global Initiative.",
        "The post first appeared on Telegram channels used by recruiters, police said.",
        "Reprinted by Cambodian media, the claim spread quickly.",
    ):
        cited = f"{ORIGINAL_TEXT}\n{sentence}"
        assert not prepare(article_at(copy_url, cited, 9), SIGNER).repost_signals, sentence


def test_an_original_merges_copies_kept_apart(store: Store) -> None:
    feed_id = store.sync_feeds([FEED])[FEED.url]
    paragraphs = ORIGINAL_TEXT.split("\n")
    # Two partial copies that share too little with each other to be matched …
    first_half = "\n".join(paragraphs[:2])
    second_half = "\n".join(paragraphs[2:])
    a = ingest(
        store,
        feed_id,
        claim_for(store, feed_id, "http://127.0.0.1:1/a"),
        article_at("http://127.0.0.1:1/a", first_half, 11, rules={"theme:a": "a"}),
    )
    b = ingest(
        store,
        feed_id,
        claim_for(store, feed_id, "http://127.0.0.1:1/b"),
        article_at("http://127.0.0.1:1/b", second_half, 12, rules={"theme:b": "b"}),
    )
    assert a.article_id != b.article_id
    # … are both copies of the original, which arrives last and was published first.
    tagged = article_at("http://127.0.0.1:1/o", ORIGINAL_TEXT, 8, rules={"theme:o": "o"})
    judged = store.judge(prepare(tagged, SIGNER), tagged.tags)
    assert judged.original and [merge.kept_apart_because for merge in judged.merges] == [None]
    original = ingest(store, feed_id, claim_for(store, feed_id, "http://127.0.0.1:1/o"), tagged)
    assert original.outcome == Outcome.STORED
    assert len(original.merged) == 1
    with store.engine.connect() as connection:
        (kept,) = connection.execute(sa.select(Article.id, Article.url)).all()
        rows = connection.execute(
            sa.select(Duplicate.url, Duplicate.article_id, Duplicate.former_article_id)
        ).all()
        signatures = connection.execute(
            sa.select(sa.func.count()).select_from(ArticleSignature)
        ).scalar()
        orphans = connection.execute(
            sa.select(sa.func.count()).select_from(LshBucket).where(LshBucket.article_id != kept.id)
        ).scalar()
    assert kept.url == "http://127.0.0.1:1/o"
    assert {url for url, _, _ in rows} == {"http://127.0.0.1:1/a", "http://127.0.0.1:1/b"}
    assert all(article_id == kept.id for _, article_id, _ in rows)
    merged_away = {a.article_id, b.article_id} - {kept.id}
    assert {former for _, _, former in rows if former is not None} == merged_away
    assert (signatures, orphans) == (1, 0)
    assert tags_by_source(store) == {
        "feed": {"a": None, "b": None, "o": None},
        "rule": {"theme:o": '["o"]'},
    }
    # An id merged away is never given to another story (SQLite would reuse the highest).
    other = ingest(
        store,
        feed_id,
        claim_for(store, feed_id, "http://127.0.0.1:1/other"),
        article_at("http://127.0.0.1:1/other", "Another story: 77 fishermen in Kampot.", 13),
    )
    assert other.outcome == Outcome.STORED
    assert other.article_id is not None and other.article_id > max(
        a.article_id or 0, b.article_id or 0
    )


def test_feed_leases_let_one_replica_poll(store: Store) -> None:
    feed_id = store.sync_feeds([FEED])[FEED.url]
    assert store.lease_feed(feed_id, owner="a", hold=60)
    assert not store.lease_feed(feed_id, owner="b", hold=60)  # held by a
    store.record_poll_success(
        feed_id, status=200, etag=None, last_modified=None, title=None, entry_count=0
    )
    store.release_feed(feed_id, owner="a")
    # Free, but polled a moment ago: not again before most of the interval.
    assert not store.lease_feed(feed_id, owner="b", hold=60, min_gap=50)
    assert store.lease_feed(feed_id, owner="b", hold=60, min_gap=0)
    store.release_feed(feed_id, owner="a")  # not a's to release
    assert not store.lease_feed(feed_id, owner="c", hold=60)
    # An expired lease (a crashed replica) is taken over.
    store.release_feed(feed_id, owner="b")
    assert store.lease_feed(feed_id, owner="d", hold=-1)
    assert store.lease_feed(feed_id, owner="e", hold=60)


def test_leases_taken_together_renewed_and_given_back(store: Store) -> None:
    other = FEED.model_copy(update={"url": "http://news.test/other.rss", "name": "other"})
    ids = store.sync_feeds([FEED, other])
    assert store.lease_feed(ids[other.url], owner="daemon", hold=60)
    # run-once takes what is free, in one statement; the daemon's feed stays the daemon's.
    assert store.lease_feeds(list(ids.values()), owner="once", hold=60) == {ids[FEED.url]}
    # Renewing keeps a short lease alive; a holder that stops renewing loses it.
    store.renew_leases(owner="once", hold=60)
    store.renew_leases(owner="daemon", hold=-1)  # as if its last renewal had run out
    assert store.lease_feeds(list(ids.values()), owner="next", hold=60) == {ids[other.url]}
    store.release_leases_of(["once"])
    assert store.lease_feeds([ids[FEED.url]], owner="next", hold=60) == {ids[FEED.url]}


def test_a_start_frees_the_leases_of_this_hosts_dead_processes(store: Store) -> None:
    import os
    import socket

    from monitor.leases import free_leases_of_the_dead, process_identity

    host = socket.gethostname()
    owners = {
        "killed": f"{host}:{2**22 + 17}:aaaa",  # above any pid Linux hands out
        "predecessor": f"{host}:{os.getpid()}:bbbb",  # a restarted container's pid 1
        "running": f"{host}:1:cccc",  # init: alive
        "elsewhere": "another-host:4242:dddd",  # not ours to judge: it expires
    }
    feeds = [FEED.model_copy(update={"url": f"http://news.test/{n}", "name": n}) for n in owners]
    ids = store.sync_feeds(feeds)
    for feed in feeds:
        assert store.lease_feed(ids[feed.url], owner=owners[feed.name], hold=60)
    free_leases_of_the_dead(store, process_identity())
    assert store.lease_holders() == {owners["running"], owners["elsewhere"]}


def test_the_lease_keeper_renews_while_in_use_and_gives_back_on_exit(store: Store) -> None:
    from monitor.leases import LeaseKeeper

    feed_id = store.sync_feeds([FEED])[FEED.url]
    with LeaseKeeper(store, "keeper", every=0.05):
        assert store.lease_feed(feed_id, owner="keeper", hold=0.3)
        time.sleep(0.6)  # past the 0.3 s it was taken for: only renewal holds it
        assert not store.lease_feed(feed_id, owner="other", hold=60)
    assert store.lease_feed(feed_id, owner="other", hold=60)


def test_a_spin_sharing_no_lsh_band_is_found_by_its_numbers(store: Store) -> None:
    story_id = "a-online-scam-commission-created-2025-01"
    stories = load_stories(Path(__file__).resolve().parent.parent / "bench" / "corpus" / "stories")
    documents = {d.variant: d for d in build_documents({story_id: stories[story_id]}, seed=3)}
    original_text, spun_text = (cleaned_text(documents[v]) for v in ("original", "spun50"))
    original_url, spun_url = "http://127.0.0.1:1/news/commission", "http://127.0.0.1:1/blog/cons"
    original = article_at(original_url, original_text, 9)
    copy = article_at(spun_url, spun_text, 11)
    # The chance this benchmark's bands leave to a heavy spin (docs/dedup.md): none shared.
    assert not set(prepare(original, SIGNER).buckets) & set(prepare(copy, SIGNER).buckets)
    feed_id = store.sync_feeds([FEED])[FEED.url]
    kept = ingest(store, feed_id, claim_for(store, feed_id, original_url), original)
    found = ingest(store, feed_id, claim_for(store, feed_id, spun_url), copy)
    assert (found.outcome, found.article_id) == (Outcome.DUPLICATE, kept.article_id)
    assert found.decision is not None and found.decision.kind is DuplicateKind.SPUN


def test_of_a_spun_pair_the_text_keeping_the_taxonomy_is_the_original(store: Store) -> None:
    # A spin with no artefact monitor knows (a spinner it was not tuned on), dated three
    # hours before its original (a content farm's clock): the dates say the spin came
    # first, the names it mangled say it did not.
    stories = load_stories(Path(__file__).resolve().parent.parent / "bench" / "corpus" / "stories")
    story = stories["a-raid-sihanoukville-heng-fu-2022-08"]
    documents = {d.variant: d for d in build_documents({story.id: story}, seed=0)}
    original_text = cleaned_text(documents["original"])
    table = SynonymTable.load(SYNONYMS_INDEPENDENT)
    spun_text = Spinner(table, 0.5, seed="farm").spin(original_text)
    rules = RuleSet.from_settings(load_settings(REPO / "config.toml", environ={}))

    def tagged(url: str, text: str, hour: int) -> TaggedArticle:
        plain = article_at(url, text, hour)
        tags = rules.tags(rules.match(plain.article.title, text))
        return TaggedArticle(cleaned=plain.cleaned, tags=(*plain.tags, *tags))

    original_url, spun_url = "http://127.0.0.1:1/news/heng-fu", "http://127.0.0.1:1/farm/heng-fu"
    original, spun = tagged(original_url, original_text, 11), tagged(spun_url, spun_text, 8)
    assert not prepare(spun, SIGNER).repost_signals
    feed_id = store.sync_feeds([FEED])[FEED.url]
    first = ingest(store, feed_id, claim_for(store, feed_id, spun_url), spun)
    second = ingest(store, feed_id, claim_for(store, feed_id, original_url), original)
    assert second.decision is not None and second.decision.kind is DuplicateKind.SPUN
    assert (second.outcome, second.article_id) == (Outcome.STORED, first.article_id)
    with store.engine.connect() as connection:
        assert connection.execute(sa.select(Article.url)).scalars().all() == [original_url]
        assert connection.execute(sa.select(Duplicate.url)).scalars().all() == [spun_url]


@pytest.mark.parametrize(("days_later", "outcome"), [(114, Outcome.STORED), (1, Outcome.DUPLICATE)])
def test_a_recap_published_months_after_its_story_is_kept_apart(
    store: Store, days_later: int, outcome: Outcome
) -> None:
    # Written for an audit: an appeal ruling that repeats its trial story's names and
    # numbers passes every text measure of a rewrite; the publication dates, the
    # candidate's read back from the database, keep it apart. Dated the next day, the
    # same text is a rewrite.
    trial_text, appeal_text = follow_ups(
        "trial-verdict-compound-bosses", "appeal-upholds-verdict-compound-bosses"
    )
    trial_url, appeal_url = "http://127.0.0.1:1/news/trial", "http://127.0.0.1:1/news/appeal"
    feed_id = store.sync_feeds([FEED])[FEED.url]
    trial = article_at(trial_url, trial_text, 9)
    kept = ingest(store, feed_id, claim_for(store, feed_id, trial_url), trial)
    appeal = article_at(appeal_url, appeal_text, 9)
    published = appeal.article.published_at
    assert published is not None
    moved = replace(appeal.article, published_at=published + timedelta(days=days_later))
    appeal = replace(appeal, cleaned=replace(appeal.cleaned, article=moved))
    result = ingest(store, feed_id, claim_for(store, feed_id, appeal_url), appeal)
    assert result.outcome is outcome
    if outcome is Outcome.DUPLICATE:
        assert result.decision is not None and result.decision.kind is DuplicateKind.REWRITE
        assert result.article_id == kept.article_id


def test_a_spun_brief_like_two_briefs_of_its_template_merges_neither_into_the_other(
    store: Store,
) -> None:
    # An audit: a spun copy of one police brief verifies against the template's other
    # briefs as well (the spinner's changes hide the template's), and the store then
    # merged every brief it resembled into one story: seven raids became one.
    folder = Path(__file__).parent / "fixtures" / "templates"
    feed_id = store.sync_feeds([FEED])[FEED.url]
    kept = {}
    for name in ("A1", "A2", "A1s"):
        url = f"http://127.0.0.1:1/news/{name}"
        article = article_at(url, (folder / f"{name}.txt").read_text(encoding="utf-8"), 9)
        kept[name] = ingest(store, feed_id, claim_for(store, feed_id, url), article)
    assert kept["A1"].article_id != kept["A2"].article_id
    assert kept["A1s"].outcome is Outcome.DUPLICATE
    with store.engine.connect() as connection:
        articles = connection.execute(sa.text("SELECT count(*) FROM articles")).scalar_one()
    assert articles == 2  # both briefs kept: the spun copy merged nothing


def test_the_feature_cache_finds_texts_by_their_numbers_until_they_leave_it() -> None:
    from monitor.similarity import text_features
    from monitor.storage.index import FeatureCache

    cache = FeatureCache(size=2)
    raid = text_features("Police freed 187 workers and seized 412 phones and 96 computers.")
    other = text_features("A court jailed 3 men for 15 years over 96 victims.")
    third = text_features("The committee met 12 partners in 2025.")
    cache.put("raid", raid)
    cache.put("other", other)
    copy = frozenset({"187", "412", "96"})
    assert cache.citing_numbers(copy, limit=12) == ["raid"]  # "other" shares one number only
    assert cache.citing_numbers(frozenset({"187", "412"}), limit=12) == ["raid"]
    cache.put("third", third)  # "raid" leaves, and with it its numbers
    assert cache.citing_numbers(copy, limit=12) == []
    cache.put("raid", raid)
    cache.put("raid", raid)  # a second put of the same text changes nothing
    assert cache.citing_numbers(copy, limit=12) == ["raid"]
    assert cache.get("other") is None and cache.get("third") is not None


def test_the_feature_cache_gives_back_the_features_it_was_given() -> None:
    import dataclasses

    import numpy as np

    from monitor.similarity import text_features
    from monitor.storage.index import FeatureCache

    text = (
        "Police in Preah Sihanouk freed 187 workers from the Golden Lotus compound on "
        "Monday, officials said.\n\nTwelve suspects were held; 412 phones were seized."
    )
    features = text_features(text)
    cache = FeatureCache(size=4)
    cache.put("raid", features)
    held = cache.get("raid")
    assert held is not None
    # All but the text, which the cache does not hold (the newcomer's is enough).
    assert held.text == ""
    for field in dataclasses.fields(features):
        given, back = getattr(features, field.name), getattr(held, field.name)
        if field.name == "text":
            continue
        if isinstance(given, np.ndarray):
            assert np.array_equal(given, back), field.name
        elif not dataclasses.is_dataclass(given):
            assert given == back and type(given) is type(back), field.name
    assert features.entity_words and features.lead_entities  # the test holds some


def test_two_reports_sharing_background_paragraphs_stay_two_stories(store: Store) -> None:
    # An audit's false merge: two meetings' reports over one outlet's background
    # paragraphs. The kept report's features come from the daemon's cache, which keeps no
    # text: the newcomer's must be enough, and a spun copy must still be found.
    thai, indonesian = follow_ups("ncct-meets-thai-delegation", "ncct-meets-indonesian-delegation")
    feed_id = store.sync_feeds([FEED])[FEED.url]
    urls = [f"http://127.0.0.1:1/news/{name}" for name in ("thai", "indonesian", "spun")]
    first = ingest(store, feed_id, claim_for(store, feed_id, urls[0]), article_at(urls[0], thai, 9))
    second = ingest(
        store, feed_id, claim_for(store, feed_id, urls[1]), article_at(urls[1], indonesian, 10)
    )
    assert (first.outcome, second.outcome) == (Outcome.STORED, Outcome.STORED)
    spun = Spinner(SynonymTable.load(), 0.3, seed=5).spin(indonesian)
    copy = ingest(store, feed_id, claim_for(store, feed_id, urls[2]), article_at(urls[2], spun, 11))
    assert copy.outcome is Outcome.DUPLICATE and copy.article_id == second.article_id


@pytest.mark.parametrize("rate", [15, 30])
def test_a_copy_of_one_report_over_shared_background_does_not_merge_the_other(
    store: Store, rate: int
) -> None:
    # A second audit: a spun copy of one of two reports over an outlet's background
    # paragraphs verified against both (its spinner had changed the shared paragraphs),
    # and the store merged the other report into the first as its copy.
    vietnamese, malaysian = follow_ups(
        "ncct-meets-vietnamese-delegation", "ncct-meets-malaysian-delegation"
    )
    feed_id = store.sync_feeds([FEED])[FEED.url]
    urls = [f"http://127.0.0.1:1/news/{name}" for name in ("vn", "my", "copy")]
    stored = [
        ingest(store, feed_id, claim_for(store, feed_id, url), article_at(url, text, 9))
        for url, text in zip(urls, (vietnamese, malaysian), strict=False)
    ]
    assert [result.outcome for result in stored] == [Outcome.STORED, Outcome.STORED]
    # The audit's spinner (which leaves names and function words, and changes the
    # shared paragraphs too), at 15% and 30% of the words it could change.
    spins = Path(__file__).parent / "fixtures" / "spins"
    spun = (spins / f"ncct-meets-vietnamese-delegation-spun{rate}.txt").read_text(encoding="utf-8")
    copy = ingest(store, feed_id, claim_for(store, feed_id, urls[2]), article_at(urls[2], spun, 11))
    assert copy.outcome is Outcome.DUPLICATE and copy.article_id == stored[0].article_id
    assert copy.merged == ()
    with store.engine.connect() as connection:
        assert connection.execute(sa.text("SELECT count(*) FROM articles")).scalar_one() == 2


@pytest.mark.parametrize(
    ("compilation", "stories"),
    [
        pytest.param(
            "digest-us-report-and-kampot-verdict",
            ("us-ranks-cambodia-tier-3", "kampot-court-jails-compound-boss"),
            id="newsletter",
        ),
        pytest.param(
            "roundup-tip-report-and-trial",
            ("tip-report-2025", "kampot-compound-boss-trial"),
            id="quarterly-roundup",
        ),
    ],
)
def test_a_later_page_holding_two_stories_whole_merges_neither_into_the_other(
    store: Store, compilation: str, stories: tuple[str, str]
) -> None:
    # An audit: a newsletter the morning after two unrelated stories, holding both whole
    # under a greeting, verified as a copy of each (words 1.00 of the shorter), and the
    # store merged the second story into the first as its copy.
    folder = Path(__file__).parent / "fixtures" / "compilations"
    texts = [(folder / f"{name}.txt").read_text(encoding="utf-8") for name in stories]
    feed_id = store.sync_feeds([FEED])[FEED.url]
    urls = [f"http://127.0.0.1:1/news/{name}" for name in stories]
    kept = [
        ingest(store, feed_id, claim_for(store, feed_id, url), article_at(url, text, hour))
        for url, text, hour in zip(urls, texts, (9, 10), strict=True)
    ]
    assert [result.outcome for result in kept] == [Outcome.STORED, Outcome.STORED]
    url = "http://127.0.0.1:1/digest"
    page = (folder / f"{compilation}.txt").read_text(encoding="utf-8")
    digest = article_at(url, page, 20)
    # What `monitor explain` shows before it is stored: the other story stays apart.
    judged = store.judge(prepare(digest, SIGNER), digest.tags)
    assert not judged.original and len(judged.merges) == 1
    (other,) = judged.merges
    assert {judged.decision.duplicate_of, other.article_id} == {s.article_id for s in kept}
    assert other.kept_apart_because is not None and "another part" in other.kept_apart_because
    result = ingest(store, feed_id, claim_for(store, feed_id, url), digest)
    assert result.outcome is Outcome.DUPLICATE
    assert result.article_id in {stored.article_id for stored in kept}
    assert result.merged == ()
    with store.engine.connect() as connection:
        assert set(connection.execute(sa.select(Article.url)).scalars()) == set(urls)
        assert connection.execute(sa.select(Duplicate.url)).scalars().all() == [url]


def test_the_nearest_stories_say_why_they_are_or_are_not_the_same_story(store: Store) -> None:
    # An audit: `monitor explain` gave a copy's kind and score, and for a kept article
    # nothing on the stories it was compared with.
    myawaddy, laos = follow_ups(
        "ministry-statement-myawaddy-twelve", "ministry-statement-laos-nineteen"
    )
    feed_id = store.sync_feeds([FEED])[FEED.url]
    urls = ["http://127.0.0.1:1/news/myawaddy", "http://127.0.0.1:1/news/laos"]
    kept = ingest(
        store, feed_id, claim_for(store, feed_id, urls[0]), article_at(urls[0], myawaddy, 9)
    )
    other = ingest(
        store, feed_id, claim_for(store, feed_id, urls[1]), article_at(urls[1], laos, 10)
    )
    assert other.outcome is Outcome.STORED

    (near,) = store.nearest_stories(prepare_text(laos, SIGNER), exclude=other.article_id)
    assert (near.article_id, near.url, near.report.verdict) == (kept.article_id, urls[0], None)
    assert "other figures: numbers shared 0.00" in near.report.reason
    assert "words 0.6" in near.report.measures and "leads differ: no" in near.report.measures
    copy = "PHNOM PENH (Mekong Wire) - " + laos
    nearest = store.nearest_stories(prepare_text(copy, SIGNER))
    verdict = nearest[0].report.verdict
    assert nearest[0].article_id == other.article_id and verdict is not None
    assert verdict[0] is DuplicateKind.NEAR_DUPLICATE
    assert "the `near_duplicate` rule fits" in nearest[0].report.reason


def test_a_page_kept_under_the_url_it_declares_is_found_by_its_own(store: Store) -> None:
    # An analyst audit: `monitor explain` on an AMP address, whose page declares the
    # article's URL, fetched it again and called it a copy of its own article.
    feed_id = store.sync_feeds([FEED])[FEED.url]
    amp, declared = "http://127.0.0.1:1/amp/news/raid", "http://127.0.0.1:1/news/raid"
    kept = ingest(
        store, feed_id, claim_for(store, feed_id, amp), article_at(declared, ORIGINAL_TEXT, 9)
    )
    found = store.find_by_url(amp)
    assert found.article is not None and found.article.id == kept.article_id
    assert found.copy is None and found.article.url == declared
    # A copy recorded under the URL its page declares is found by the listed one too.
    copy_amp, copy_declared = "http://127.0.0.1:2/amp/copy", "http://127.0.0.1:2/copy"
    ingest(
        store,
        feed_id,
        claim_for(store, feed_id, copy_amp),
        article_at(copy_declared, ORIGINAL_TEXT + " Source link", 9),
    )
    found = store.find_by_url(copy_amp)
    assert found.copy is not None and found.copy.url == copy_declared
    count, copies = store.copies_of(kept.article_id)
    assert count == 1 and [copy.url for copy in copies] == [copy_declared]


def test_the_database_probe_does_not_wait_for_another_processs_writes(tmp_path: Path) -> None:
    # An operator audit: /healthz said "database unreachable" while a `sqlite3` shell held
    # the write lock; its probe began a writer's transaction (BEGIN IMMEDIATE) and waited.
    import sqlite3

    from monitor.storage.database import check_reachable, create_database_engine, within

    engine = create_database_engine(f"sqlite:///{tmp_path / 'busy.db'}")
    check_reachable(engine)  # creates the file, in WAL mode
    writer = sqlite3.connect(tmp_path / "busy.db", isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("CREATE TABLE held (x)")
        within(2, lambda: check_reachable(engine))
    finally:
        writer.close()
        engine.dispose()
