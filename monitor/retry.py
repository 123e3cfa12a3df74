"""When a page that failed is fetched again: what passes waits, growing; the rest as before.

A page that failed for a passing reason (a rate limit, an outage, a timeout, a cut
connection) is tried again after a delay that grows with each attempt, or after the
server's Retry-After when that is longer, so that `fetch.max_attempts` attempts span
hours rather than polls. A page that failed for good (404, 410, too large, not a web
page…) is tried again at the next polls, as before, until `fetch.max_attempts`.
"""

from __future__ import annotations

from dataclasses import dataclass

from monitor.errors import StageError

# Reasons that say nothing of the page itself: the server or the network was unwell.
TRANSIENT_REASONS = frozenset({"timeout", "network_error", "dns_error", "http_408", "http_429"})
# Answers that ask the whole host to wait, not only the page (RFC 9110, 15.5.21 and 15.6.4).
BUSY_STATUSES = frozenset({429, 503})
# Each wait is this many times the one before: 15 minutes, an hour, four hours…
GROWTH = 4
# A server's Retry-After is honoured up to a day (or `max_backoff`, if longer): one that
# answers "2099" must not silence a page or a host for good.
RETRY_AFTER_LIMIT = 86400.0


def is_transient(error: StageError) -> bool:
    """Whether `error` may pass by itself: a 429, a 5xx, a timeout, a connection error."""
    # The status is in the reason (`http_503`), also for an error from a worker process.
    return error.reason in TRANSIENT_REASONS or error.reason.startswith("http_5")


def honoured_retry_after(retry_after: float | None, longest: float) -> float:
    """The part of a server's Retry-After that is obeyed (seconds; 0 when none)."""
    return min(retry_after or 0.0, max(longest, RETRY_AFTER_LIMIT))


@dataclass(frozen=True, kw_only=True, slots=True)
class RetryPolicy:
    """How long a page that failed for a passing reason waits before its next try.

    policy = RetryPolicy(first=900, longest=6 * 3600)
    policy.delay(attempts=1)                    # 900: after the first attempt
    policy.delay(attempts=2)                    # 3600
    policy.delay(attempts=1, retry_after=7200)  # 7200: the server asked for more
    """

    first: float
    longest: float

    def delay(self, *, attempts: int, retry_after: float | None = None) -> float:
        """Seconds to wait after the `attempts`-th attempt failed."""
        backoff = min(self.longest, self.first * float(GROWTH ** max(0, attempts - 1)))
        return max(backoff, honoured_retry_after(retry_after, self.longest))

    def host_wait(self, retry_after: float | None) -> float:
        """Seconds a host that answered 429 or 503 is left alone: its Retry-After, or
        without one, as long as the page that got that answer waits."""
        if retry_after is None:
            return self.first
        return honoured_retry_after(retry_after, self.longest)
