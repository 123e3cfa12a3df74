"""Tagging: the tags an article carries, each with where it came from.

From the feed's configured `tags`, the entry's own categories, and the tag rules
of the configuration (found by monitor/rules.py).
"""

from __future__ import annotations

from collections.abc import Iterable

from monitor.records import MAX_TAG_LENGTH, CleanedArticle, Tag, TaggedArticle, TagSource


def tag_article(
    cleaned: CleanedArticle,
    *,
    feed_tags: Iterable[str],
    categories: Iterable[str],
    rule_tags: Iterable[Tag] = (),
) -> TaggedArticle:
    tags: dict[tuple[str, TagSource], Tag] = {(tag.name, tag.source): tag for tag in rule_tags}
    for tag in arrival_tags(feed_tags, categories):
        tags.setdefault((tag.name, tag.source), tag)
    return TaggedArticle(cleaned=cleaned, tags=tuple(tags.values()))


def arrival_tags(feed_tags: Iterable[str], categories: Iterable[str]) -> tuple[Tag, ...]:
    """The tags an arrival brings, whatever its text: its feed's and its entry's categories.
    A story carries those of every arrival, the kept text's and its copies'."""
    tags: dict[tuple[str, TagSource], Tag] = {}
    # A feed that lists its categories in one element ("Labour; Asia") means several; and
    # "; " separates tags in a CSV export, so no tag may hold one.
    split = (part for category in categories for part in category.split(";"))
    for source, names in ((TagSource.FEED, feed_tags), (TagSource.CATEGORY, split)):
        for name in names:
            normalized = " ".join(name.split())[:MAX_TAG_LENGTH]
            if normalized:
                tags.setdefault((normalized, source), Tag(name=normalized, source=source))
    return tuple(tags.values())
