"""A what-if for bench.throughput (`--without-storing`): the `monitor` command with
`Store.ingest` replaced by a function that stores nothing and answers "stored".

How fast would `run-once` be if storing an article (the duplicate query, the article,
its tags and index rows, the commit) cost nothing? That bounds what any work on the
database layer could win. This is not a mode of monitor: only the benchmark runs it, as
a script (`python bench/nostore.py --config … run-once`), so that the worker processes
skip it as they skip the `monitor` script (monitor/analysis.py).
"""

from __future__ import annotations

from monitor.records import Decision, Outcome, TaggedArticle
from monitor.storage.store import IngestResult, Store


def ingest_nothing(
    self: Store, *, entry_id: int, feed_id: int, article: TaggedArticle, dedup: object
) -> IngestResult:
    """Stands in for `Store.ingest`: no query, no write, every article a new story."""
    return IngestResult(outcome=Outcome.STORED, article_id=0, decision=Decision())


if __name__ == "__main__":
    Store.ingest = ingest_nothing  # type: ignore[method-assign]
    from monitor.cli import main

    main()
