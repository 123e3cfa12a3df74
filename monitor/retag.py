"""Re-applying the tag rules to every stored article after the operator edits them.

Idempotent: an article whose rule tags already match the rules is not written.
Each batch of articles is read and rewritten in one transaction.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from monitor.rules import RuleSet
from monitor.storage.store import Store

BATCH_SIZE = 500


@dataclass(slots=True)
class RetagReport:
    """What `retag` changed."""

    articles: int = 0
    articles_changed: int = 0
    added: Counter[str] = field(default_factory=Counter)
    removed: Counter[str] = field(default_factory=Counter)
    # Same tag, other matched phrases (article_tags.detail rewritten).
    explained_anew: Counter[str] = field(default_factory=Counter)

    @property
    def changed(self) -> bool:
        return bool(self.articles_changed)


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
        report.articles += change.articles
        report.articles_changed += change.articles_changed
        report.added.update(change.added)
        report.removed.update(change.removed)
        report.explained_anew.update(change.explained_anew)
        if progress:
            progress(change.articles)
    return report
