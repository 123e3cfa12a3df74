"""Logging set-up for the command line: one line per event on standard error.

Human-readable on a terminal; JSON lines otherwise (a container's log collector),
with `feed`, `url` and `outcome` fields where the event has them.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Literal

from pythonjsonlogger.json import JsonFormatter

TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
LogFormat = Literal["auto", "json", "text"]
# Libraries that log every request or every parse at INFO.
_QUIET = ("httpx", "httpcore", "apscheduler", "alembic")
# Libraries that log a document they cannot read at ERROR, without saying which
# ("lxml parsing failed: Document is empty"): monitor records and logs that failure
# itself, with the feed and the URL, so theirs only trip alerts on ERROR lines.
_PER_DOCUMENT = ("trafilatura", "htmldate", "courlan", "charset_normalizer", "justext")
# The workers' fork server is a new interpreter, not a fork of the daemon: it learns
# the daemon's level and format from its environment, so that what it and the workers
# log is one more line of the daemon's log (JSON lines stay JSON lines).
_FOR_WORKERS = "_MONITOR_WORKER_LOGGING"


_json_output = False


def json_output() -> bool:
    """Whether the log is JSON lines (`configure_logging` decided so)."""
    return _json_output


def configure_logging(level: str = "INFO", log_format: LogFormat = "auto") -> None:
    handler = logging.StreamHandler(sys.stderr)
    use_json = log_format == "json" or (log_format == "auto" and not sys.stderr.isatty())
    if use_json:
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
                datefmt="%Y-%m-%dT%H:%M:%S%z",
            )
        )
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT, datefmt="%Y-%m-%dT%H:%M:%S%z"))
    global _json_output
    _json_output = use_json
    os.environ[_FOR_WORKERS] = f"{level.upper()}:{'json' if use_json else 'text'}"
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in _QUIET:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
    for name in _PER_DOCUMENT:
        logging.getLogger(name).setLevel(
            root.level if root.level <= logging.DEBUG else logging.CRITICAL
        )


def configure_worker_logging() -> None:
    """In the workers' fork server: log as the daemon that started it does."""
    inherited = os.environ.get(_FOR_WORKERS)
    if inherited:
        level, _, log_format = inherited.partition(":")
        configure_logging(level, "json" if log_format == "json" else "text")
