"""The pipeline: one poll of one feed, stage by stage, every outcome recorded.

poll feed → parse → claim each new entry → fetch page → extract → clean → tag →
decide → store. Stages raise StageError; this is the one place that catches it,
records it on the feed or entry row and goes on with the next entry.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import partial

import sqlalchemy as sa

from monitor import heap
from monitor.analysis import Analyser, Analysis
from monitor.config import FeedSettings, FetchSettings
from monitor.errors import HostWaiting, StageError
from monitor.feeds import parse_feed
from monitor.http import Fetcher
from monitor.observability import Metrics
from monitor.records import (
    CleanedArticle,
    Decision,
    DuplicateKind,
    FeedDocument,
    FeedEntry,
    FeedResponse,
    Outcome,
    TaggedArticle,
)
from monitor.retry import RetryPolicy, is_transient
from monitor.rules import RuleSet, TopicVerdict
from monitor.storage.store import EntryClaim, Store
from monitor.tagging import arrival_tags, tag_article

log = logging.getLogger(__name__)


@dataclass(kw_only=True, slots=True)
class PollReport:
    """What one poll of one feed did."""

    feed: str
    entries_seen: int = 0
    new_entries: int = 0
    stored: int = 0
    duplicates: int = 0
    failed: int = 0
    off_topic: int = 0
    # Entries left pending for a later try: a transient failure, or a host that asked
    # to wait.
    waiting: int = 0
    not_modified: bool = False
    interrupted: bool = False
    error: str | None = None
    processed: set[int] = field(default_factory=set)

    def count(self, outcome: Outcome) -> None:
        if outcome is Outcome.STORED:
            self.stored += 1
        elif outcome is Outcome.DUPLICATE:
            self.duplicates += 1
        elif outcome is Outcome.FAILED:
            self.failed += 1
        elif outcome is Outcome.OFF_TOPIC:
            self.off_topic += 1


def judge_article(
    cleaned: CleanedArticle, entry: FeedEntry, feed: FeedSettings, rules: RuleSet
) -> tuple[TaggedArticle, TopicVerdict]:
    """Relevance and tags of a cleaned article (cheap: one pass of the rules' automaton)."""
    matches = rules.match(cleaned.article.title, cleaned.text)
    verdict = rules.topic(matches) if feed.filter else UNFILTERED
    tagged = tag_article(
        cleaned, feed_tags=feed.tags, categories=entry.categories, rule_tags=rules.tags(matches)
    )
    return tagged, verdict


@dataclass(slots=True)
class _InHand:
    """An entry whose page is being fetched, then analysed in a worker."""

    claim: EntryClaim
    entry: FeedEntry
    # Fetching ends in the analysis's future, or in the fetch's StageError.
    started: Future[Future[Analysis]]


UNFILTERED = TopicVerdict(True, "the feed is not filtered (filter = false)")
# Entries recorded per transaction: a feed's worth, yet a backfill of thousands is not
# all claimed before its first page is fetched.
CLAIM_BATCH = 100
# Threads of a poll that fetch the next pages while one is stored (the per-host limits
# apply to them as to every fetch).
FETCH_THREADS = 2


class Pipeline:
    """Runs polls; safe to call from several threads for different feeds."""

    def __init__(
        self,
        store: Store,
        fetcher: Fetcher,
        *,
        rules: RuleSet | None = None,
        stop: threading.Event | None = None,
        metrics: Metrics | None = None,
        analyser: Analyser | None = None,
    ) -> None:
        self.store = store
        self.fetcher = fetcher
        self.analyser = analyser or Analyser(workers=0)
        self.metrics = metrics or Metrics()
        self._active = 0
        self._active_lock = threading.Lock()
        self.rules = rules or RuleSet()
        self.stop = stop or threading.Event()
        # Feeds (by URL) disabled or removed by an edit while their poll may run.
        self._withdrawn: set[str] = set()

    def withdraw(self, url: str) -> None:
        """The feed is no longer to be polled: a poll of it in progress stops after the
        pages in hand, its other entries left for a later poll."""
        self._withdrawn.add(url)

    def restore(self, url: str) -> None:
        self._withdrawn.discard(url)

    @property
    def settings(self) -> FetchSettings:
        return self.fetcher.settings

    @property
    def active(self) -> int:
        """Polls in progress."""
        return self._active

    def poll(self, feed: FeedSettings, feed_id: int) -> PollReport:
        """Poll `feed` once, process every new entry in it, and retry its unfinished ones."""
        with self._active_lock:
            self._active += 1
        try:
            return self._poll(feed, feed_id)
        finally:
            with self._active_lock:
                self._active -= 1

    def _poll(self, feed: FeedSettings, feed_id: int) -> PollReport:
        report = PollReport(feed=feed.name)
        if feed.url in self._withdrawn:  # disabled by an edit as its poll was starting
            report.interrupted = True
            return report
        state = self.store.feed_state(feed_id, max_attempts=self.settings.max_attempts)
        if not state.history.enabled:
            self.store.enable_feed(feed_id)
            state = replace(state, history=replace(state.history, enabled=True))
        # Now and then fetch in full: some servers answer 304 to a stale ETag for ever.
        # A poll with no validator to send (none kept: none given, or too long to keep)
        # is a full fetch too.
        full_fetch = (
            state.last_full_fetch_at is None
            or (datetime.now(UTC) - state.last_full_fetch_at).total_seconds()
            > self.settings.revalidate_after
            or (state.etag is None and state.last_modified is None)
        )
        response: FeedResponse | None = None
        try:
            with self.metrics.fetch_seconds.labels(kind="feed").time():
                response = self.fetcher.feed(
                    feed.url,
                    etag=None if full_fetch else state.etag,
                    last_modified=None if full_fetch else state.last_modified,
                )
            document = (
                None
                if response.not_modified
                else parse_feed(response.body, url=response.url, headers=response.headers)
            )
        except Exception as caught:  # noqa: BLE001 - logged with its traceback by _unexpected
            # A parser's own bug on a hostile feed fails this poll, as a stage's error
            # does, rather than every poll of the feed and (in run-once) the run.
            error = caught if isinstance(caught, StageError) else _unexpected(feed, caught)
            report.error = str(error)
            if self.stop.is_set():
                log.info(
                    "feed poll abandoned on stop: %s",
                    feed.name,
                    extra=_event(feed, feed.url, "abandoned"),
                )
                return report
            self.metrics.polls.labels(result="failed").inc()
            self.metrics.poll_failures.labels(reason=error.reason).inc()
            due = self.store.record_poll_failure(
                feed_id,
                error=f"{error.reason}: {error}",
                # A feed that answered 200 with what is not a feed: its status is 200.
                status=getattr(error, "status", None) or (response.status if response else None),
                retry_after=getattr(error, "retry_after", None),
                max_backoff=self.settings.max_backoff,
            )
            log.warning(
                "feed failed: %s: %s; next poll at %s",
                feed.name,
                error,
                due.isoformat(timespec="seconds"),
                extra=_event(feed, feed.url, f"poll_failed:{error.reason}"),
            )
            return report

        self.metrics.polls.labels(result="not_modified" if document is None else "ok").inc()
        if response.moved_to:
            log.warning(
                "feed moved permanently: %s: %s now redirects to %s; put the new address"
                " in the config file",
                feed.name,
                feed.url,
                response.moved_to,
                extra=_event(feed, feed.url, "moved"),
            )
        if document is None:
            report.not_modified = True
        else:
            if document.malformed:
                log.warning(
                    "feed malformed, using what parsed: %s: %s", feed.name, document.malformed
                )
            if document.skipped:
                log.warning(
                    "feed items skipped: %s: %d with %s",
                    feed.name,
                    document.skipped,
                    _SKIPPED,
                    extra=_event(feed, feed.url, "items_skipped"),
                )
            report.entries_seen = len(document.entries)
            self._process_new_entries(feed, feed_id, document.entries, report)
        if state.has_retryable_entries:
            self._retry_unfinished_entries(feed, feed_id, report)

        # Validators are saved only after every entry is done: a stop in the middle
        # must not turn the next poll into a 304 that hides the entries not yet seen.
        complete = not report.interrupted
        self.store.record_poll_success(
            feed_id,
            status=response.status,
            etag=response.etag if complete else state.etag,
            last_modified=response.last_modified if complete else state.last_modified,
            title=document.title if document else None,
            entry_count=report.new_entries,
            warning=_poll_warning(document, response.moved_to),
            full_fetch=full_fetch and response.status == 200,
            state=state,
        )
        # The counts add up to what the poll took in hand: a stop leaves the rest pending.
        cut_off = (
            f"; stopped: {self.store.unfinished_entries(feed_id)} left pending for the next poll"
            if report.interrupted
            else ""
        )
        log.info(
            "feed polled: %s: %s%d entries, %d new, %d stored, %d duplicates, %d off-topic,"
            " %d failed, %d to be tried later%s",
            feed.name,
            "not modified, " if report.not_modified else "",
            report.entries_seen,
            report.new_entries,
            report.stored,
            report.duplicates,
            report.off_topic,
            report.failed,
            report.waiting,
            cut_off,
            extra=_event(feed, feed.url, "not_modified" if report.not_modified else "polled"),
        )
        return report

    def _process_new_entries(
        self, feed: FeedSettings, feed_id: int, entries: Sequence[FeedEntry], report: PollReport
    ) -> None:
        def claimed() -> Iterable[tuple[EntryClaim, FeedEntry]]:
            for start in range(0, len(entries), CLAIM_BATCH):
                if self.stop.is_set():  # not even recorded: the next poll sees them as new
                    report.interrupted = True
                    return
                batch = entries[start : start + CLAIM_BATCH]
                claims = self.store.claim_entries(
                    feed_id, batch, max_attempts=self.settings.max_attempts
                )
                # Counted as recorded: a stop before their turn leaves them pending, and
                # the next poll, which finishes them, does not count them again.
                report.new_entries += len({claim.id for claim in claims if claim and claim.fresh})
                for claim, entry in zip(claims, batch, strict=True):
                    # A feed that lists one entry twice: the first may still be in hand.
                    if claim is not None and claim.id not in report.processed:
                        yield claim, entry

        self._process_claims(feed, feed_id, claimed(), report)

    def _retry_unfinished_entries(
        self, feed: FeedSettings, feed_id: int, report: PollReport
    ) -> None:
        """Failed entries (and any a crash left pending) that dropped out of the poll above:
        the feed answered 304, or no longer lists them."""
        retries = self.store.retryable_entries(feed_id, max_attempts=self.settings.max_attempts)
        self._process_claims(
            feed,
            feed_id,
            ((claim, entry) for claim, entry in retries if claim.id not in report.processed),
            report,
        )

    def _process_claims(
        self,
        feed: FeedSettings,
        feed_id: int,
        claims: Iterable[tuple[EntryClaim, FeedEntry]],
        report: PollReport,
    ) -> None:
        """Fetch entries' pages and hand them to the analyser in threads of their own;
        store the results in feed order, keeping up to `analyser.window` pages in hand.

        The poll's own thread claims and stores; fetching (waiting on the network) and
        analysis (in the worker processes) go on meanwhile, so that the workers are not
        left waiting for the next page while an article is being stored.
        """
        in_hand: deque[_InHand] = deque()
        fetching: ThreadPoolExecutor | None = None
        try:
            for claim, entry in claims:
                if self.stop.is_set():
                    report.interrupted = True
                    break
                if feed.url in self._withdrawn:
                    log.info(
                        "poll of %s stopped: the feed was disabled or removed",
                        feed.name,
                        extra=_event(feed, feed.url, "withdrawn"),
                    )
                    report.interrupted = True
                    break
                report.processed.add(claim.id)
                if claim.article_with_url is not None:
                    kept = claim.article_with_url
                    same_url = partial(self._store_same_url, feed, feed_id, claim, entry, kept)
                    self._count(self._settle(feed, claim, entry, same_url, report), report)
                    continue
                if fetching is None:  # not for a poll with nothing to fetch (a 304)
                    fetching = ThreadPoolExecutor(FETCH_THREADS, thread_name_prefix="fetch")
                started = fetching.submit(self._fetch_and_analyse, entry)
                in_hand.append(_InHand(claim, entry, started))
                while len(in_hand) >= self.analyser.window:
                    self._finish_counted(feed, feed_id, in_hand.popleft(), report)
            if self.stop.is_set() or feed.url in self._withdrawn:
                # The window holds more pages than the threads fetch at once: those not
                # asked for yet are left for the next poll (pending), all at once, before
                # a thread takes up the next while the first are finished.
                in_hand = deque(work for work in in_hand if not work.started.cancel())
                report.interrupted = True
            # Pages already in hand are finished even on a stop: it takes a moment.
            while in_hand:
                self._finish_counted(feed, feed_id, in_hand.popleft(), report)
        finally:
            if fetching is not None:
                fetching.shutdown(wait=True, cancel_futures=True)
                # The poll's pages and feed document are garbage now: hand the free
                # pages back, or the heap stays at the largest poll's high-water mark.
                heap.trim()

    def _fetch_and_analyse(self, entry: FeedEntry) -> Future[Analysis]:
        with self.metrics.fetch_seconds.labels(kind="page").time():
            page = self.fetcher.page(entry.link)
        return self.analyser.submit(page, entry)

    def _finish_counted(
        self, feed: FeedSettings, feed_id: int, work: _InHand, report: PollReport
    ) -> None:
        outcome = self._settle(
            feed, work.claim, work.entry, partial(self._finish, feed, feed_id, work), report
        )
        self._count(outcome, report)

    def _count(self, outcome: Outcome, report: PollReport) -> None:
        self.metrics.entries.labels(outcome=outcome).inc()
        report.count(outcome)

    def _settle(
        self,
        feed: FeedSettings,
        claim: EntryClaim,
        entry: FeedEntry,
        step: Callable[[], Outcome],
        report: PollReport,
    ) -> Outcome:
        """Run one step of an entry's chain; a stage's failure becomes its recorded outcome."""
        try:
            return step()
        except StageError as error:
            if self.stop.is_set():
                # Cut off by a stop: not the page's fault; the next run takes it up again.
                log.info("entry abandoned on stop: %s", entry.link)
                return Outcome.PENDING
            if self._put_off(feed, claim, entry, error):
                report.waiting += 1
                return Outcome.PENDING
            self.store.record_entry_failure(claim.id, reason=error.reason, error=str(error))
            log.warning(
                "entry failed: %s: %s", entry.link, error, extra=_event(feed, entry.link, "failed")
            )
            return Outcome.FAILED
        except sa.exc.SQLAlchemyError:
            raise
        except Exception as error:
            if self.stop.is_set():
                log.info("entry abandoned on stop: %s (%s)", entry.link, type(error).__name__)
                return Outcome.PENDING
            self.store.record_entry_failure(
                claim.id, reason="unexpected_error", error=f"{type(error).__name__}: {error}"
            )
            log.error(
                "entry failed unexpectedly: %s",
                entry.link,
                exc_info=error,
                extra=_event(feed, entry.link, "failed"),
            )
            return Outcome.FAILED

    def _put_off(
        self, feed: FeedSettings, claim: EntryClaim, entry: FeedEntry, error: StageError
    ) -> bool:
        """Leave the entry pending for a later try when its failure may pass by itself
        and it has attempts left, or when its host asked to wait (no attempt spent)."""
        if isinstance(error, HostWaiting):
            self.store.defer_entry(
                claim.id, until=error.until, reason=error.reason, error=str(error)
            )
            self.metrics.entry_retries.labels(reason=error.reason).inc()
            log.info(
                "entry put off: %s: its host asked to wait until %s (%s)",
                entry.link,
                error.until.isoformat(timespec="seconds"),
                error.cause,
                extra=_event(feed, entry.link, "put_off"),
            )
            return True
        attempts = claim.attempts + 1
        if not is_transient(error) or attempts >= self.settings.max_attempts:
            return False
        policy = RetryPolicy(first=self.settings.retry_delay, longest=self.settings.max_backoff)
        delay = policy.delay(attempts=attempts, retry_after=getattr(error, "retry_after", None))
        due = self.store.record_entry_retry(
            claim.id, reason=error.reason, error=str(error), delay=delay
        )
        self.metrics.entry_retries.labels(reason=error.reason).inc()
        log.warning(
            "entry to be tried again: %s: %s; attempt %d of %d failed, next at %s",
            entry.link,
            error,
            attempts,
            self.settings.max_attempts,
            due.isoformat(timespec="seconds"),
            extra=_event(feed, entry.link, f"retry_later:{error.reason}"),
        )
        return True

    def _finish(self, feed: FeedSettings, feed_id: int, work: _InHand) -> Outcome:
        claim, entry = work.claim, work.entry
        analysis = self.analyser.result(work.started.result())
        article, verdict = judge_article(analysis.cleaned, entry, feed, self.rules)
        if not verdict.on_topic:
            self.store.record_off_topic(claim.id, reason=verdict.reason)
            log.info(
                "off topic: %s: %s",
                entry.link,
                verdict.reason,
                extra=_event(feed, entry.link, "off_topic"),
            )
            return Outcome.OFF_TOPIC
        url = article.article.url
        # A page that redirected to a URL kept already is a same_url duplicate: ingest
        # checks that in its transaction.
        result = self.store.ingest(
            entry_id=claim.id, feed_id=feed_id, article=article, dedup=analysis.dedup
        )
        decision = result.decision
        if result.finished_elsewhere:
            log.info(
                "%s meanwhile by another process: %s",
                result.outcome,
                url,
                extra=_event(feed, url, "finished_elsewhere"),
            )
            return result.outcome
        if decision.kind is not None and result.outcome is Outcome.DUPLICATE:
            self.metrics.duplicates.labels(kind=decision.kind).inc()
        if result.outcome is Outcome.DUPLICATE:
            log.info(
                "duplicate (%s %.2f): %s",
                decision.kind,
                decision.similarity,
                url,
                extra=_event(feed, url, "duplicate"),
            )
        elif decision.duplicate_of is not None:
            log.info(
                "stored as the original of a copy (%s): %s",
                decision.kind,
                url,
                extra=_event(feed, url, "stored"),
            )
        else:
            log.info("stored: %s", url, extra=_event(feed, url, "stored"))
        if result.merged:
            log.info(
                "merged %d earlier %s into article %d",
                len(result.merged),
                "copy" if len(result.merged) == 1 else "copies",
                result.article_id,
            )
        return result.outcome

    def _store_same_url(
        self, feed: FeedSettings, feed_id: int, claim: EntryClaim, entry: FeedEntry, kept: int
    ) -> Outcome:
        decision = Decision(duplicate_of=kept, kind=DuplicateKind.SAME_URL, similarity=1.0)
        self.metrics.duplicates.labels(kind=DuplicateKind.SAME_URL).inc()
        self.store.store_duplicate(
            entry_id=claim.id,
            feed_id=feed_id,
            url=entry.url,
            title=entry.title,
            decision=decision,
            tags=arrival_tags(feed.tags, entry.categories),
        )
        log.info("duplicate (same_url): %s", entry.url, extra=_event(feed, entry.url, "duplicate"))
        return Outcome.DUPLICATE


def _unexpected(feed: FeedSettings, error: Exception) -> StageError:
    """An exception no stage expected, logged with its traceback (a bug to report) and
    recorded as the poll's failure."""
    log.error(
        "feed failed unexpectedly: %s",
        feed.name,
        exc_info=error,
        extra=_event(feed, feed.url, "poll_failed:unexpected_error"),
    )
    return StageError(f"{type(error).__name__}: {error}", reason="unexpected_error")


def _poll_warning(document: FeedDocument | None, moved_to: str | None) -> str | None:
    """What a poll that succeeded leaves in the feed's `last_error` for the operator:
    the feed's new address, what of it was malformed."""
    warnings = []
    if moved_to:
        warnings.append(f"moved permanently to {moved_to}: put the new address in the config file")
    if document and document.malformed:
        warnings.append(f"malformed feed: {document.malformed}")
    if document and document.skipped:
        # Else a feed whose every item is skipped looks healthy, its reason in the log only.
        warnings.append(f"{document.skipped} items skipped: {_SKIPPED}")
    return "; ".join(warnings) or None


_SKIPPED = "no usable link to an article (none, not http(s), or longer than 2,048 characters)"


def _event(feed: FeedSettings, url: str, outcome: str) -> dict[str, str]:
    """The fields a JSON log line carries for one feed or entry event."""
    return {"feed": feed.name, "url": url, "outcome": outcome}
