"""Exporting stored articles as JSON Lines or CSV, streamed: constant memory whatever
the size of the database."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any, Literal

from monitor.storage.store import Store

ExportFormat = Literal["jsonl", "csv"]
CSV_FIELDS = (
    "id",
    "url",
    "title",
    "author",
    "published_at",
    "fetched_at",
    "language",
    "site",
    "feed",
    "tags",
    "repost_signals",
    "copies",
    "text",
)


@dataclass(frozen=True, kw_only=True, slots=True)
class ExportFilter:
    since: datetime | None = None
    until: datetime | None = None
    tag: str | None = None
    feed: str | None = None
    include_duplicates: bool = False


def export(store: Store, output: IO[str], *, fmt: ExportFormat, selection: ExportFilter) -> int:
    """Write every selected article to `output`; returns how many."""
    records = store.iter_export(
        since=selection.since,
        until=selection.until,
        tag=selection.tag,
        feed=selection.feed,
        include_duplicates=selection.include_duplicates,
    )
    if fmt == "jsonl":
        return _jsonl(records, output)
    return _csv(records, output)


def _jsonl(records: Iterator[dict[str, Any]], output: IO[str]) -> int:
    count = 0
    for record in records:
        output.write(json.dumps(record, ensure_ascii=False, default=_iso) + "\n")
        count += 1
    return count


def _csv(records: Iterator[dict[str, Any]], output: IO[str]) -> int:
    writer = csv.DictWriter(output, fieldnames=CSV_FIELDS, extrasaction="ignore")
    writer.writeheader()
    count = 0
    for record in records:
        row = {**record}
        row["tags"] = "; ".join(f"{tag['tag']} ({tag['source']})" for tag in record["tags"])
        row["copies"] = len(record.get("duplicates", [])) if "duplicates" in record else ""
        for key in ("published_at", "fetched_at"):
            row[key] = _iso(record[key]) if record[key] else ""
        writer.writerow(row)
        count += 1
    return count


def _iso(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"not serialisable: {type(value).__name__}")
