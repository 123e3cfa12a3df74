"""Story files (bench/corpus/FORMAT.md) loaded into frozen, validated `Story` objects.

    stories = load_stories(Path("bench/corpus/stories"))
    stories["ncct-un-meeting-2024-01"].cluster

A file that breaks the format raises `StoryError` naming the file, the key and what is
wrong. Lengths outside the format's 250-700 words are not errors: `length_warnings`
lists them so a run can say so.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, cast

Kind = Literal["original", "follow_up", "rewrite"]
KINDS: tuple[Kind, ...] = ("original", "follow_up", "rewrite")
LANGUAGES = ("en", "km", "zh")
MIN_WORDS, MAX_WORDS = 250, 700
_ID = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_HTML_TAG = re.compile(r"</?(?:p|a|b|i|em|strong|br|div|span|h[1-6])\b[^>]*>", re.IGNORECASE)
_KEYS = ("id", "kind", "of", "language", "outlet", "title", "author", "published_at", "paragraphs")


class StoryError(ValueError):
    """A story file that does not follow bench/corpus/FORMAT.md."""


@dataclass(frozen=True, slots=True)
class Story:
    """One written story. `cluster` is the label: the story it is the same story as."""

    id: str
    kind: Kind
    of: str | None
    language: str
    outlet: str
    title: str
    author: str | None
    published_at: datetime
    paragraphs: tuple[str, ...]
    cluster: str

    @property
    def text(self) -> str:
        return "\n".join(self.paragraphs)

    @property
    def word_count(self) -> int:
        """Words separated by white space; Khmer and Chinese count in characters / 2."""
        if self.language in ("km", "zh"):
            return sum(len("".join(p.split())) for p in self.paragraphs) // 2
        return sum(len(p.split()) for p in self.paragraphs)


def parse_story(data: Mapping[str, Any], *, source: str) -> Story:
    """A Story from a decoded story file; `source` names the file in errors.

    The cluster of a rewrite is provisionally its `of`; `resolve_clusters` follows chains.
    """

    def fail(key: str, problem: str) -> StoryError:
        return StoryError(f"{source}: {key}: {problem}")

    if not isinstance(data, Mapping):
        raise StoryError(f"{source}: expected a JSON object, got {type(data).__name__}")
    missing = [key for key in _KEYS if key not in data]
    if missing:
        raise fail(missing[0], f"missing (required keys: {', '.join(_KEYS)})")
    unknown = sorted(set(data) - set(_KEYS))
    if unknown:
        raise fail(unknown[0], f"unknown key (expected only: {', '.join(_KEYS)})")

    def text(key: str, *, optional: bool = False) -> str | None:
        value = data[key]
        if value is None and optional:
            return None
        if not isinstance(value, str) or not value.strip():
            raise fail(key, f"expected a non-empty string, got {value!r}")
        return value.strip()

    story_id = cast(str, text("id"))
    if not _ID.match(story_id):
        raise fail("id", f"{story_id!r} is not a slug (lower-case letters, digits, hyphens)")
    kind = text("kind")
    if kind not in KINDS:
        raise fail("kind", f"{kind!r} is not one of {', '.join(KINDS)}")
    of = text("of", optional=True)
    if kind == "original" and of is not None:
        raise fail("of", f"an original must have of = null, got {of!r}")
    if kind != "original" and of is None:
        raise fail("of", f"a {kind} must name the story it follows or rewrites")
    if of == story_id:
        raise fail("of", "a story cannot refer to itself")
    language = text("language")
    if language not in LANGUAGES:
        raise fail("language", f"{language!r} is not one of {', '.join(LANGUAGES)}")
    published_raw = cast(str, text("published_at"))
    try:
        published_at = datetime.fromisoformat(published_raw)
    except ValueError:
        raise fail("published_at", f"{published_raw!r} is not an ISO 8601 time") from None
    if published_at.tzinfo is None or published_at.utcoffset() is None:
        raise fail("published_at", f"{published_raw!r} has no UTC offset")
    paragraphs = data["paragraphs"]
    if not isinstance(paragraphs, list) or not paragraphs:
        raise fail("paragraphs", "expected a non-empty list of strings")
    cleaned: list[str] = []
    for index, paragraph in enumerate(paragraphs):
        if not isinstance(paragraph, str) or not paragraph.strip():
            raise fail(f"paragraphs[{index}]", f"expected a non-empty string, got {paragraph!r}")
        if "\n" in paragraph.strip() or _HTML_TAG.search(paragraph):
            raise fail(f"paragraphs[{index}]", "one paragraph per string, no line breaks or HTML")
        cleaned.append(" ".join(paragraph.split()))
    return Story(
        id=story_id,
        kind=kind,
        of=of,
        language=language,
        outlet=cast(str, text("outlet")),
        title=" ".join(cast(str, text("title")).split()),
        author=text("author", optional=True),
        published_at=published_at,
        paragraphs=tuple(cleaned),
        cluster=of if kind == "rewrite" and of else story_id,
    )


def load_story(path: Path) -> Story:
    """One story file; its `id` must be its file name without `.json`."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise StoryError(f"{path}: not valid JSON: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise StoryError(f"{path}: cannot read: {exc}") from None
    story = parse_story(data, source=str(path))
    if story.id != path.stem:
        raise StoryError(f"{path}: id: {story.id!r} differs from the file name {path.stem!r}")
    return story


def resolve_clusters(stories: Iterable[Story], *, source: str = "stories") -> dict[str, Story]:
    """Stories by id with their clusters resolved and their references checked:
    `of` exists, a rewrite or follow-up is published after `of`, no rewrite cycles."""
    by_id: dict[str, Story] = {}
    for story in stories:
        if story.id in by_id:
            raise StoryError(f"{source}: id: {story.id!r} appears twice")
        by_id[story.id] = story
    for story in by_id.values():
        if story.of is None:
            continue
        target = by_id.get(story.of)
        if target is None:
            raise StoryError(f"{source}/{story.id}.json: of: no story has id {story.of!r}")
        if story.published_at <= target.published_at:
            raise StoryError(
                f"{source}/{story.id}.json: published_at: a {story.kind} must be published after"
                f" {story.of!r} ({story.published_at.isoformat()} <="
                f" {target.published_at.isoformat()})"
            )
    resolved: dict[str, Story] = {}
    for story in sorted(by_id.values(), key=lambda s: s.id):
        cluster, seen = story.id, [story.id]
        current = story
        while current.kind == "rewrite" and current.of is not None:
            current = by_id[current.of]
            if current.id in seen:
                raise StoryError(f"{source}: rewrites form a cycle: {' -> '.join(seen)}")
            seen.append(current.id)
            cluster = current.id
        resolved[story.id] = replace(story, cluster=cluster)
    return resolved


def load_stories(directory: Path) -> dict[str, Story]:
    """Every `*.json` story file in `directory`, by id, sorted by id, clusters resolved."""
    if not directory.is_dir():
        raise StoryError(f"{directory}: not a directory")
    stories = [load_story(path) for path in sorted(directory.glob("*.json"))]
    return resolve_clusters(stories, source=str(directory))


def length_warnings(stories: Iterable[Story]) -> list[str]:
    """Originals outside the format's 250-700 words (not an error: the run still works)."""
    warnings = []
    for story in stories:
        if story.kind == "original" and not MIN_WORDS <= story.word_count <= MAX_WORDS:
            warnings.append(
                f"{story.id}: {story.word_count} words (originals should have"
                f" {MIN_WORDS} to {MAX_WORDS})"
            )
    return warnings


def story_to_json(story: Story) -> str:
    """The story file for `story`, as FORMAT.md writes it (2-space indent)."""
    data = {
        "id": story.id,
        "kind": story.kind,
        "of": story.of,
        "language": story.language,
        "outlet": story.outlet,
        "title": story.title,
        "author": story.author,
        "published_at": story.published_at.isoformat(),
        "paragraphs": list(story.paragraphs),
    }
    return json.dumps(data, ensure_ascii=False, indent=2) + "\n"
