"""Logging set-up for the command line: one line per event on standard error.

Human-readable on a terminal; JSON lines otherwise (a container's log collector),
with `feed`, `url` and `outcome` fields where the event has them.
"""

from __future__ import annotations

import logging
import sys
from typing import Literal

from pythonjsonlogger.json import JsonFormatter

TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
LogFormat = Literal["auto", "json", "text"]
# Libraries that log every request or every parse at INFO.
_QUIET = (
    "httpx",
    "httpcore",
    "trafilatura",
    "htmldate",
    "courlan",
    "apscheduler",
    "charset_normalizer",
    "alembic",
)


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
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in _QUIET:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
