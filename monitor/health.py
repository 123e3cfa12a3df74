"""Feed health and politeness arithmetic: backoff, Retry-After, the "stale" state.

Pure functions over a feed's recorded history; the store records, the scheduler
obeys, `monitor status` and `/metrics` report.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from enum import StrEnum

from monitor.config import HealthSettings


class Health(StrEnum):
    """`feeds.health`, most urgent first."""

    DISABLED = "disabled"
    NEVER_POLLED = "never_polled"
    BACKING_OFF = "backing_off"  # failing, and its next poll is put off
    FAILING = "failing"
    STALE = "stale"  # polls succeed but bring nothing new for several usual gaps
    OK = "ok"


# From this many failures in a row, the delay before the next poll grows.
BACKOFF_FROM = 2


@dataclass(frozen=True, kw_only=True, slots=True)
class FeedHistory:
    enabled: bool
    interval: float
    last_polled_at: datetime | None
    consecutive_failures: int
    next_poll_at: datetime | None
    first_new_entry_at: datetime | None
    last_new_entry_at: datetime | None
    polls_with_new_entries: int


def feed_health(feed: FeedHistory, settings: HealthSettings, now: datetime) -> Health:
    if not feed.enabled:
        return Health.DISABLED
    if feed.last_polled_at is None:
        return Health.NEVER_POLLED
    if feed.consecutive_failures:
        regular = feed.last_polled_at + timedelta(seconds=feed.interval * 1.01)
        if feed.next_poll_at is not None and feed.next_poll_at > max(now, regular):
            return Health.BACKING_OFF  # put off beyond its interval
        return Health.FAILING
    if is_stale(feed, settings, now):
        return Health.STALE
    return Health.OK


def usual_gap(feed: FeedHistory) -> timedelta | None:
    """Mean time between polls that found new entries; None before two such polls."""
    if feed.polls_with_new_entries < 2 or not feed.first_new_entry_at or not feed.last_new_entry_at:
        return None
    return (feed.last_new_entry_at - feed.first_new_entry_at) / (feed.polls_with_new_entries - 1)


def is_stale(feed: FeedHistory, settings: HealthSettings, now: datetime) -> bool:
    """A feed that used to produce and has produced nothing new for `stale_after_gaps`
    of its usual gaps (and at least `stale_minimum`)."""
    gap = usual_gap(feed)
    if gap is None or feed.last_new_entry_at is None:
        return False
    quiet_for = now - feed.last_new_entry_at
    limit = max(gap * settings.stale_after_gaps, timedelta(seconds=settings.stale_minimum))
    return quiet_for > limit


def backoff_delay(interval: float, failures: int, max_backoff: float) -> float:
    """Seconds until the next poll after `failures` failures in a row: the interval, then
    doubling from the second failure, capped at `max_backoff` (never disabled for good)."""
    if failures < BACKOFF_FROM:
        return interval
    # Never sooner than the interval: a `max_backoff` shorter than a feed's interval
    # must not poll a failing feed more often than a healthy one.
    return float(max(interval, min(max_backoff, interval * 2 ** (failures - BACKOFF_FROM + 1))))


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - now).total_seconds())
