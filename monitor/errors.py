"""The exceptions monitor raises on purpose.

MonitorError
 ├── ConfigError          the configuration file or environment is unusable
 ├── DatabaseError        the database cannot be reached or migrated
 └── StageError           one stage of the pipeline failed for one feed or entry
      ├── FetchError      the network said no (refused address, HTTP status, size, timeout)
      │    └── HostWaiting  not asked: the page's host said to wait (429, 503)
      ├── FeedParseError  the bytes are not a feed we can read
      └── ExtractionError the page holds no article text we can extract

Stages raise; the job that runs the chain catches a StageError, records its
`reason` on the feed or entry row and goes on with the next one.
"""

from __future__ import annotations

from datetime import datetime


class MonitorError(Exception):
    """Something monitor reports to the operator with a message, not a traceback."""


class ConfigError(MonitorError):
    """The configuration is invalid."""


class DatabaseError(MonitorError):
    """The database is unusable."""


class StageError(MonitorError):
    """A pipeline stage failed; `reason` is a short machine-readable cause."""

    reason = "error"

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        if reason is not None:
            self.reason = reason

    def __reduce__(self) -> tuple[object, ...]:
        # Raised in an extraction worker and re-raised here: keep the keyword fields.
        return (_rebuild, (type(self), str(self), self.__dict__))


def _rebuild(kind: type[StageError], message: str, fields: dict[str, object]) -> StageError:
    error = kind.__new__(kind)
    Exception.__init__(error, message)
    error.__dict__.update(fields)
    return error


class FetchError(StageError):
    """Fetching a URL failed; `status` is the HTTP status when there was one, and
    `retry_after` the seconds a 429 or 503 answer asked us to wait."""

    reason = "fetch_error"

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, reason=reason)
        self.status = status
        self.retry_after = retry_after


class HostWaiting(FetchError):
    """A page not asked for: its host answered another page 429 or 503 and asked to be
    left alone until `until` (`cause` says how: "HTTP 429, Retry-After 3600 s")."""

    reason = "host_waiting"

    def __init__(self, message: str, *, until: datetime, cause: str) -> None:
        super().__init__(message)
        self.until = until
        self.cause = cause


class FeedParseError(StageError):
    """The response is not a readable feed."""

    reason = "feed_unreadable"


class ExtractionError(StageError):
    """The page holds no article text."""

    reason = "no_article_text"
