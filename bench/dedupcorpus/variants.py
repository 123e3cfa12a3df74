"""Documents made from the stories: the originals and their copies, deterministically.

Every `Document` is one web page the evaluation site serves. Its `cluster` is the label
scoring compares against: an original's copies carry the original's cluster, a rewrite
its `of`'s cluster, a follow-up its own id.

    documents = build_documents(load_stories(Path("bench/corpus/stories")), seed=0)

Variants of an original (English; Khmer and Chinese originals get `syndicated` and
`wrapped` only, since the synonym table is English):

- `syndicated`: a wire or partner republication under another headline, byline and
  outlet: verbatim, truncated, one paragraph dropped, or with an editor's paragraph.
- `wrapped`: an auto-blog repost: `[ad_1]`, the text verbatim, `- Tags: …`, `[ad_2]`,
  "Source link" (what monitor's cleaner removes).
- `spun15`, `spun30`, `spun50`: spun at that rate, title too, on an auto-blog.
- `spun_wrapped`: spun at 30% and ad-wrapped.

Plus `seed` (the real spun repost, tests/fixtures/seed_repost.txt) in the cluster of
`a-seed-original-ncct-un` when that story is loaded.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

from .spinner import Spinner, SynonymTable
from .stories import Story

Template = Literal["national", "wire", "regional", "autoblog"]
TEMPLATES: tuple[Template, ...] = ("national", "wire", "regional", "autoblog")

VARIANTS = (
    "original",
    "syndicated",
    "wrapped",
    "spun15",
    "spun30",
    "spun50",
    "spun_wrapped",
    "seed",
    "rewrite",
    "follow_up",
)
COPY_VARIANTS = (
    "syndicated",
    "wrapped",
    "spun15",
    "spun30",
    "spun50",
    "spun_wrapped",
    "seed",
    "rewrite",
)
"""Variants that should end in the same story as their cluster's original."""

SPIN_RATES = {"spun15": 0.15, "spun30": 0.30, "spun50": 0.50}
SPUN_WRAPPED_RATE = 0.30

REPO = Path(__file__).resolve().parents[2]
SEED_REPOST = REPO / "tests" / "fixtures" / "seed_repost.txt"
SEED_CLUSTER = "a-seed-original-ncct-un"
SEED_DOC_ID = "seed-repost"
SEED_TITLE = "Cambodia, UN see eye-to-eye on combatting human trafficking"
SEED_PUBLISHED_AT = datetime(2024, 1, 17, 3, 12, 45, tzinfo=UTC)
SEED_OUTLET = "Daily Asia Headlines"

SOURCE_LINK = "Source link"
"""Last paragraph of a wrapped page; the site renders it as a lone link."""


@dataclass(frozen=True, slots=True)
class Outlet:
    name: str
    site: str
    """The folder of the evaluation site the outlet's pages live under."""
    template: Template


PARTNERS = (
    Outlet("Asia Pacific Newswire", "apn", "wire"),
    Outlet("Mekong Wire Service", "mekongwire", "wire"),
    Outlet("The Mekong Herald", "herald", "national"),
    Outlet("Cambodia Morning Star", "morningstar", "national"),
    Outlet("The Angkor Observer", "observer", "regional"),
    Outlet("Battambang Daily", "battambangdaily", "regional"),
)
AUTOBLOGS = (
    Outlet(SEED_OUTLET, "dailyasiaheadlines", "autoblog"),
    Outlet("Asia News Today 24", "asianewstoday24", "autoblog"),
    Outlet("Cambodia Breaking News Hub", "cambodiabreaking", "autoblog"),
    Outlet("World Viral News Now", "worldviralnews", "autoblog"),
)
WIRE_OUTLETS = frozenset(
    {
        "afp",
        "reuters",
        "associated press",
        "agence kampuchea presse",
        "philippine news agency",
        "xinhua",
        "bernama",
        "antara",
    }
)
AUTOBLOG_AUTHORS = ("admin", "admin", "editor", "newsdesk", "autopost")
TAG_LINES = (
    "human trafficking, Cambodia",
    "Cambodia, scam compounds, crime",
    "human trafficking, NCCT",
    "Asia, Cambodia, news",
    "crime, human trafficking, online scams",
)
EDITOR_NOTES = (
    "This article first appeared on {outlet} and is republished here with permission.",
    "This story was originally published by {outlet}. It has been edited for length.",
    "A version of this report was first published by {outlet}.",
)
LOCAL_CONTEXT = (
    "In Battambang, provincial officials said they had received no new complaints of this"
    " kind in recent weeks, but urged families to check job offers with the provincial labour"
    " department before letting relatives travel.",
    "Families in Prey Veng and Svay Rieng have told local reporters of relatives recruited"
    " through social media who have not been heard from for months, and village chiefs say"
    " they now warn young people about offers of easy work abroad at every commune meeting.",
    "Readers who have information about suspected trafficking can call the Interior"
    " Ministry's anti-trafficking hotline, which operates around the clock and takes reports in"
    " Khmer, English and Chinese.",
    "Local rights workers in Siem Reap said the case was typical of what they see each month:"
    " young people with little education, promised office jobs, who end up in debt to brokers"
    " before they reach the border.",
)


@dataclass(frozen=True, slots=True)
class Document:
    """One page of the evaluation site, and its label."""

    doc_id: str
    cluster: str
    variant: str
    story_id: str
    """The story it was made from (for `seed`: the seed's original)."""
    title: str
    author: str | None
    outlet: str
    site: str
    published_at: datetime
    paragraphs: tuple[str, ...]
    template: Template
    language: str
    follows: str | None = None
    """For a follow-up: the story it follows (it must not be merged with it)."""
    note: str | None = None
    """How a copy was made, e.g. `truncated 5/8` or `rate 0.30, fraction 0.301`."""
    categories: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        return "\n".join(self.paragraphs)

    @property
    def body_paragraphs(self) -> tuple[str, ...]:
        """The paragraphs a text extractor should return: all but a trailing Source link."""
        if self.paragraphs and self.paragraphs[-1] == SOURCE_LINK:
            return self.paragraphs[:-1]
        return self.paragraphs


def slugify(text: str, *, limit: int = 80) -> str:
    """Lower-case ASCII words joined by hyphens (empty for non-Latin text)."""
    words = re.findall(r"[a-z0-9]+", text.lower().replace("’", "").replace("'", ""))
    slug = ""
    for word in words:
        candidate = f"{slug}-{word}" if slug else word
        if len(candidate) > limit:
            break
        slug = candidate
    return slug


def _digest(*parts: object) -> int:
    return int(hashlib.sha256(":".join(map(str, parts)).encode("utf-8")).hexdigest()[:12], 16)


def outlet_for_story(story: Story) -> Outlet:
    """The template an outlet's own story is shown in: wire agencies get the wire template,
    others the national or regional one (fixed per outlet)."""
    name = story.outlet
    site = slugify(name) or f"outlet-{_digest(name) % 10_000:04d}"
    if name.casefold() in WIRE_OUTLETS:
        template: Template = "wire"
    else:
        template = "national" if _digest("template", name) % 3 else "regional"
    return Outlet(name, site, template)


def _minutes(rng: random.Random, low_hours: float, high_hours: float) -> timedelta:
    return timedelta(minutes=rng.randint(round(low_hours * 60), round(high_hours * 60)))


def _document_for_story(story: Story) -> Document:
    outlet = outlet_for_story(story)
    variant = "original" if story.kind == "original" else story.kind
    return Document(
        doc_id=story.id,
        cluster=story.cluster,
        variant=variant,
        story_id=story.id,
        title=story.title,
        author=story.author,
        outlet=outlet.name,
        site=outlet.site,
        published_at=story.published_at,
        paragraphs=story.paragraphs,
        template=outlet.template,
        language=story.language,
        follows=story.of if story.kind == "follow_up" else None,
        categories=("Cambodia", "Human trafficking"),
    )


def _syndicated(story: Story, seed: int | str) -> Document:
    rng = random.Random(f"{seed}:{story.id}:syndicated")
    own = outlet_for_story(story)
    partner = rng.choice([p for p in PARTNERS if p.template != own.template])
    paragraphs = list(story.paragraphs)
    count = len(paragraphs)
    modes = ["verbatim", "truncated", "dropped"]
    if story.language == "en":
        modes += ["editor_note", "local_context"]
    mode = rng.choice(modes)
    note = mode
    if mode == "truncated" and count >= 3:
        keep = min(count - 1, max(2, round(rng.uniform(0.6, 0.9) * count)))
        paragraphs = paragraphs[:keep]
        note = f"truncated {keep}/{count}"
    elif mode == "dropped" and count >= 3:
        index = rng.randrange(1, count)
        del paragraphs[index]
        note = f"dropped paragraph {index + 1}/{count}"
    elif mode == "editor_note":
        paragraphs.append(rng.choice(EDITOR_NOTES).format(outlet=story.outlet))
    elif mode == "local_context":
        paragraphs.insert(max(1, count - 1), rng.choice(LOCAL_CONTEXT))
    elif mode in ("truncated", "dropped"):
        note = f"verbatim ({count} paragraphs, too short to {mode[:-2]})"
    short = partner.name.removeprefix("The ")
    if story.language == "en":
        title = rng.choice(
            (
                f"UPDATE 1-{story.title}",
                f"{story.title}, officials say",
                f"{story.title} ({short})",
                f"Cambodia: {story.title}" if "Cambod" not in story.title else story.title,
            )
        )
        if title == story.title:
            title = f"{story.title} - report"
    else:
        title = f"{story.title} ({short})"
    author = rng.choice(
        (
            f"{short} Staff",
            "Staff Reporter",
            f"{short} Correspondent",
            f"{short} Newsdesk",
            "Our Correspondent",
        )
    )
    return Document(
        doc_id=f"{story.id}--syndicated",
        cluster=story.cluster,
        variant="syndicated",
        story_id=story.id,
        title=title,
        author=author,
        outlet=partner.name,
        site=partner.site,
        published_at=story.published_at + _minutes(rng, 1, 30),
        paragraphs=tuple(paragraphs),
        template=partner.template,
        language=story.language,
        note=note,
        categories=("Asia", "Cambodia"),
    )


def wrap(paragraphs: Iterable[str], tags: str) -> tuple[str, ...]:
    """An auto-blog's wrapping around a scraped text."""
    return ("[ad_1]", *paragraphs, f"- Tags: {tags}", "[ad_2]", SOURCE_LINK)


def _autoblog_copy(
    story: Story,
    variant: str,
    seed: int | str,
    table: SynonymTable,
) -> Document:
    rng = random.Random(f"{seed}:{story.id}:{variant}")
    blog = rng.choice(AUTOBLOGS)
    title, paragraphs = story.title, story.paragraphs
    note = None
    rate = SPIN_RATES.get(variant, SPUN_WRAPPED_RATE if variant == "spun_wrapped" else None)
    if rate is not None:
        spinner = Spinner(table, rate, seed=f"{seed}:{story.id}:{variant}")
        result = spinner.spin_detailed("\n".join(paragraphs))
        paragraphs = tuple(result.text.split("\n"))
        title = spinner.spin(title)
        note = f"rate {rate:.2f}, replaced {result.fraction:.3f} of content words"
    if variant in ("wrapped", "spun_wrapped"):
        paragraphs = wrap(paragraphs, rng.choice(TAG_LINES))
    return Document(
        doc_id=f"{story.id}--{variant}",
        cluster=story.cluster,
        variant=variant,
        story_id=story.id,
        title=title,
        author=rng.choice(AUTOBLOG_AUTHORS),
        outlet=blog.name,
        site=blog.site,
        published_at=story.published_at + _minutes(rng, 0.25, 24),
        paragraphs=paragraphs,
        template="autoblog",
        language=story.language,
        note=note,
        categories=("Cambodia", "News"),
    )


def seed_document(path: Path = SEED_REPOST) -> Document:
    """The real spun and wrapped repost: one paragraph per line of the file."""
    lines = [" ".join(line.split()) for line in path.read_text(encoding="utf-8").splitlines()]
    return Document(
        doc_id=SEED_DOC_ID,
        cluster=SEED_CLUSTER,
        variant="seed",
        story_id=SEED_CLUSTER,
        title=SEED_TITLE,
        author="admin",
        outlet=SEED_OUTLET,
        site="dailyasiaheadlines",
        published_at=SEED_PUBLISHED_AT,
        paragraphs=tuple(line for line in lines if line),
        template="autoblog",
        language="en",
        note="real spun repost (tests/fixtures/seed_repost.txt)",
        categories=("Cambodia", "human trafficking", "NCCT"),
    )


def variants_of(
    story: Story, *, seed: int | str = 0, table: SynonymTable | None = None
) -> list[Document]:
    """The copies made of one original."""
    if story.kind != "original":
        return []
    copies = [_syndicated(story, seed)]
    kinds = ["wrapped"]
    if story.language == "en":
        kinds += ["spun15", "spun30", "spun50", "spun_wrapped"]
    if table is None and len(kinds) > 1:
        table = SynonymTable.load()
    for kind in kinds:
        copies.append(_autoblog_copy(story, kind, seed, table or SynonymTable(entries={})))
    return copies


def build_documents(
    stories: Mapping[str, Story],
    *,
    seed: int | str = 0,
    table: SynonymTable | None = None,
    seed_repost: Path | None = SEED_REPOST,
) -> list[Document]:
    """Every document: each story as it is, each original's copies, and the real seed
    repost when its original is among `stories` (and `seed_repost` is not None).

    The same stories and seed always give the same documents, in the same order.
    """
    if table is None:
        table = SynonymTable.load()
    documents: list[Document] = []
    for story_id in sorted(stories):
        story = stories[story_id]
        documents.append(_document_for_story(story))
        documents.extend(variants_of(story, seed=seed, table=table))
        if story_id == SEED_CLUSTER and seed_repost is not None:
            documents.append(seed_document(seed_repost))
    ids = [document.doc_id for document in documents]
    if len(set(ids)) != len(ids):
        raise ValueError("two documents have the same id")
    return documents


def select_subset(stories: Mapping[str, Story], originals: int) -> dict[str, Story]:
    """`originals` originals with every follow-up and rewrite of them (and of those).

    Chosen deterministically to cover the kinds: the seed's original first, then in turn
    an original with a rewrite, one with a follow-up, one not in English, any other.
    """
    candidates = sorted(
        (s.id for s in stories.values() if s.kind == "original"),
        key=lambda story_id: (_digest("subset", story_id), story_id),
    )
    referenced: dict[str, set[str]] = {}
    for story in stories.values():
        if story.of is not None:
            referenced.setdefault(story.of, set()).add(story.kind)
    groups: list[list[str]] = [
        [i for i in candidates if "rewrite" in referenced.get(i, set())],
        [i for i in candidates if "follow_up" in referenced.get(i, set())],
        [i for i in candidates if stories[i].language != "en"],
        candidates,
    ]
    chosen: list[str] = [SEED_CLUSTER] if SEED_CLUSTER in candidates else []
    while len(chosen) < min(originals, len(candidates)):
        for group in groups:
            pick = next((i for i in group if i not in chosen), None)
            if pick is not None and len(chosen) < originals:
                chosen.append(pick)
    included = set(chosen[:originals])
    grown = True
    while grown:
        grown = False
        for story in stories.values():
            if story.of in included and story.id not in included:
                included.add(story.id)
                grown = True
    return {story_id: stories[story_id] for story_id in sorted(included)}
