"""Re-applying the tag rules to every stored article after the operator edits them.

Idempotent: an article whose rule tags already match the rules is not written.
Each batch of articles is read and rewritten in one transaction.
"""

from __future__ import annotations

from collections.abc import Callable

from monitor.rules import RuleSet
from monitor.storage.store import Store, TagChanges

BATCH_SIZE = 500


RetagReport = TagChanges


def retag(
    store: Store,
    rules: RuleSet,
    *,
    batch_size: int = BATCH_SIZE,
    progress: Callable[[int], None] | None = None,
) -> RetagReport:
    report = RetagReport()

    def desired_tags(title: str, text: str) -> dict[str, str | None]:
        return {tag.name: tag.detail for tag in rules.tags(rules.match(title, text))}

    for change in store.retag_batches(desired_tags, batch_size=batch_size):
        report.include(change)
        if progress:
            progress(change.articles)
    return report
