"""Scoring a dedup result against the labels of the evaluation site.

A document's *predicted story* is, for monitor, the `entries.article_id` of the entry
whose link is the document's URL, when that entry ended `stored` or `duplicate`
(docs/schema.md). A document whose entry failed, is still pending or is missing has no
predicted story: it counts as a story of its own in the pairwise metrics, as a miss in
the recall per variant, and is listed under failures.

    score = score_database("sqlite:///run/monitor.db", manifest, name="monitor")
    print(score.to_markdown())

The baselines (`baselines.py`) score a plain document -> predicted-story mapping with
`score_predictions`, the same code.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from itertools import combinations
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa

from .site import Manifest, ManifestEntry
from .variants import COPY_VARIANTS

RESOLVED = ("stored", "duplicate")
LIST_LIMIT = 25
"""Rows of a list shown in Markdown (JSON has them all)."""


@dataclass(frozen=True, slots=True)
class Prediction:
    """What became of one document."""

    story: str | None
    """The predicted story (e.g. `article:12`), None when the document was not resolved."""
    outcome: str
    """`stored`, `duplicate`, `failed`, `pending`, or `missing` (no entry has its URL)."""
    reason: str | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class VariantRecall:
    variant: str
    merged: int
    """Copies that ended in the same predicted story as their cluster's original."""
    total: int

    @property
    def recall(self) -> float | None:
        return self.merged / self.total if self.total else None


@dataclass(frozen=True, slots=True)
class FalseMerge:
    doc_a: str
    cluster_a: str
    doc_b: str
    cluster_b: str
    story: str


@dataclass(frozen=True, slots=True)
class NotKept:
    """A cluster whose kept article is not its original."""

    cluster: str
    kept_doc: str | None
    kept_variant: str | None


@dataclass(frozen=True, slots=True)
class Failure:
    doc_id: str
    variant: str
    outcome: str
    reason: str | None
    error: str | None


@dataclass(frozen=True, slots=True)
class Score:
    name: str
    documents: int
    clusters: int
    predicted_stories: int
    true_positives: int
    predicted_pairs: int
    true_pairs: int
    per_variant: tuple[VariantRecall, ...]
    false_merges: tuple[FalseMerge, ...]
    merged_cluster_pairs: tuple[tuple[str, str], ...]
    follow_ups: int
    follow_ups_merged: tuple[str, ...]
    """Follow-ups that ended in the same story as the story they follow."""
    original_kept: int
    clusters_with_copies: int
    not_kept: tuple[NotKept, ...]
    failures: tuple[Failure, ...]
    unmatched_entries: tuple[str, ...] = ()
    """Entry links that are no document of the manifest."""
    partition: tuple[tuple[str, ...], ...] = field(default=(), repr=False)
    """The predicted stories as sorted groups of doc ids (unresolved documents alone)."""

    @property
    def false_positives(self) -> int:
        return self.predicted_pairs - self.true_positives

    @property
    def false_negatives(self) -> int:
        return self.true_pairs - self.true_positives

    @property
    def precision(self) -> float | None:
        """Of the document pairs put in one story, the share that are one cluster."""
        return self.true_positives / self.predicted_pairs if self.predicted_pairs else None

    @property
    def recall(self) -> float | None:
        """Of the document pairs of one cluster, the share put in one story."""
        return self.true_positives / self.true_pairs if self.true_pairs else None

    @property
    def f1(self) -> float | None:
        p, r = self.precision, self.recall
        if p is None or r is None or p + r == 0:
            return None
        return 2 * p * r / (p + r)

    @property
    def original_kept_rate(self) -> float | None:
        return self.original_kept / self.clusters_with_copies if self.clusters_with_copies else None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(
            precision=self.precision,
            recall=self.recall,
            f1=self.f1,
            false_positives=self.false_positives,
            false_negatives=self.false_negatives,
            original_kept_rate=self.original_kept_rate,
        )
        data["per_variant"] = [{**asdict(item), "recall": item.recall} for item in self.per_variant]
        data["merged_cluster_pairs"] = [list(pair) for pair in self.merged_cluster_pairs]
        data["partition"] = [list(group) for group in self.partition]
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False)

    def to_markdown(self) -> str:
        lines = [f"### {self.name}", "", compare_markdown([self]), ""]
        lines += ["Recall per variant (copy in the same story as its original):", ""]
        lines += ["| variant | merged | copies | recall |", "|---|---:|---:|---:|"]
        for item in self.per_variant:
            lines.append(f"| {item.variant} | {item.merged} | {item.total} | {_pct(item.recall)} |")
        lines.append("")
        if self.false_merges:
            lines += [
                f"False merges: {len(self.false_merges)} document pairs,"
                f" {len(self.merged_cluster_pairs)} cluster pairs:",
                "",
                "| document | cluster | merged with | cluster |",
                "|---|---|---|---|",
            ]
            for merge in self.false_merges[:LIST_LIMIT]:
                lines.append(
                    f"| {merge.doc_a} | {merge.cluster_a} | {merge.doc_b} | {merge.cluster_b} |"
                )
            lines += [*_more(len(self.false_merges)), ""]
        if self.follow_ups_merged:
            lines += [
                "Follow-ups merged with the story they follow: "
                + ", ".join(self.follow_ups_merged),
                "",
            ]
        if self.not_kept:
            kinds = Counter(item.kept_variant or "none" for item in self.not_kept)
            shown = ", ".join(
                f"{item.cluster} → {item.kept_doc or 'nothing'}"
                for item in self.not_kept[:LIST_LIMIT]
            )
            more = (
                f", … {len(self.not_kept) - LIST_LIMIT} more"
                if len(self.not_kept) > LIST_LIMIT
                else ""
            )
            lines += [
                "Clusters whose kept article is not the original, by the variant kept: "
                + ", ".join(f"{kind} {count}" for kind, count in kinds.most_common())
                + f" ({shown}{more})",
                "",
            ]
        if self.failures:
            lines += [
                f"Failures ({len(self.failures)}):",
                "",
                "| document | variant | outcome | reason | error |",
                "|---|---|---|---|---|",
            ]
            for failure in self.failures[:LIST_LIMIT]:
                error = (failure.error or "").replace("|", "/").replace("\n", " ")[:120]
                lines.append(
                    f"| {failure.doc_id} | {failure.variant} | {failure.outcome} |"
                    f" {failure.reason or ''} | {error} |"
                )
            lines += [*_more(len(self.failures)), ""]
        if self.unmatched_entries:
            lines += [
                f"Entries that are no document of the site: {len(self.unmatched_entries)}",
                "",
            ]
        return "\n".join(lines).rstrip() + "\n"


def _more(total: int) -> list[str]:
    return [f"| … {total - LIST_LIMIT} more (see the JSON) | | | |"] if total > LIST_LIMIT else []


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def compare_markdown(scores: Sequence[Score]) -> str:
    """One table, one column per score: the headline metrics side by side."""
    variants = list(dict.fromkeys(v.variant for s in scores for v in s.per_variant))
    header = "| metric | " + " | ".join(s.name for s in scores) + " |"
    rows = [header, "|---|" + "---:|" * len(scores)]

    def row(label: str, values: Iterable[str]) -> None:
        rows.append(f"| {label} | " + " | ".join(values) + " |")

    row("documents / clusters", (f"{s.documents} / {s.clusters}" for s in scores))
    row("predicted stories", (str(s.predicted_stories) for s in scores))
    row("pairwise precision", (_pct(s.precision) for s in scores))
    row("pairwise recall", (_pct(s.recall) for s in scores))
    row("pairwise F1", (_pct(s.f1) for s in scores))
    row(
        "pairs TP / FP / FN",
        (f"{s.true_positives} / {s.false_positives} / {s.false_negatives}" for s in scores),
    )
    for variant in variants:
        cells = []
        for s in scores:
            item = next((v for v in s.per_variant if v.variant == variant), None)
            cells.append(
                "–" if item is None else f"{_pct(item.recall)} ({item.merged}/{item.total})"
            )
        row(f"recall: {variant}", cells)
    row(
        "false merges: doc pairs / cluster pairs",
        (f"{len(s.false_merges)} / {len(s.merged_cluster_pairs)}" for s in scores),
    )
    row(
        "follow-ups merged with their story",
        (f"{len(s.follow_ups_merged)}/{s.follow_ups}" for s in scores),
    )
    row(
        "original kept",
        (
            f"{_pct(s.original_kept_rate)} ({s.original_kept}/{s.clusters_with_copies})"
            for s in scores
        ),
    )
    row("failures", (str(len(s.failures)) for s in scores))
    return "\n".join(rows)


def score_predictions(
    manifest: Manifest | Iterable[ManifestEntry],
    predictions: Mapping[str, Prediction],
    kept: Mapping[str, str],
    *,
    name: str,
    unmatched_entries: Sequence[str] = (),
) -> Score:
    """Score `predictions` (doc_id -> Prediction) against the manifest's labels.

    `kept` maps a predicted story to the doc_id of its kept article (the one stored).
    A document absent from `predictions` is a `missing` failure.
    """
    entries = list(manifest.values() if isinstance(manifest, Mapping) else manifest)
    docs = {entry.doc_id: entry for entry in entries}
    predicted: dict[str, str] = {}
    failures: list[Failure] = []
    for doc_id, entry in sorted(docs.items()):
        prediction = predictions.get(doc_id, Prediction(story=None, outcome="missing"))
        if prediction.story is not None and prediction.outcome in RESOLVED:
            predicted[doc_id] = prediction.story
        else:
            failures.append(
                Failure(
                    doc_id,
                    entry.variant,
                    prediction.outcome,
                    prediction.reason,
                    prediction.error,
                )
            )

    def story_of(doc_id: str) -> str:
        return predicted.get(doc_id) or f"unresolved:{doc_id}"

    groups: dict[str, list[str]] = defaultdict(list)
    for doc_id in sorted(docs):
        groups[story_of(doc_id)].append(doc_id)
    cells = Counter((story_of(doc_id), entry.cluster) for doc_id, entry in docs.items())
    cluster_sizes = Counter(entry.cluster for entry in docs.values())
    true_positives = sum(_pairs(n) for n in cells.values())
    predicted_pairs = sum(_pairs(len(group)) for group in groups.values())
    true_pairs = sum(_pairs(n) for n in cluster_sizes.values())

    false_merges: list[FalseMerge] = []
    cluster_pairs: set[tuple[str, str]] = set()
    for story, members in sorted(groups.items()):
        for a, b in combinations(members, 2):
            cluster_a, cluster_b = docs[a].cluster, docs[b].cluster
            if cluster_a != cluster_b:
                false_merges.append(FalseMerge(a, cluster_a, b, cluster_b, story))
                cluster_pairs.add((min(cluster_a, cluster_b), max(cluster_a, cluster_b)))

    per_variant: list[VariantRecall] = []
    for variant in COPY_VARIANTS:
        copies = [
            doc_id
            for doc_id, entry in docs.items()
            if entry.variant == variant and entry.cluster in docs
        ]
        if not copies:
            continue
        merged = sum(
            1
            for doc_id in copies
            if doc_id in predicted and predicted[doc_id] == predicted.get(docs[doc_id].cluster)
        )
        per_variant.append(VariantRecall(variant, merged, len(copies)))

    follow_ups = [entry for entry in docs.values() if entry.variant == "follow_up"]
    follow_ups_merged = tuple(
        sorted(
            entry.doc_id
            for entry in follow_ups
            if entry.follows is not None
            and entry.doc_id in predicted
            and predicted[entry.doc_id] == predicted.get(entry.follows)
        )
    )

    kept_ok = 0
    with_copies = 0
    not_kept: list[NotKept] = []
    for cluster, size in sorted(cluster_sizes.items()):
        if size < 2 or cluster not in docs:
            continue
        with_copies += 1
        cluster_story = predicted.get(cluster)
        kept_doc = kept.get(cluster_story) if cluster_story is not None else None
        if kept_doc == cluster:
            kept_ok += 1
        else:
            kept_entry = docs.get(kept_doc) if kept_doc is not None else None
            not_kept.append(NotKept(cluster, kept_doc, kept_entry.variant if kept_entry else None))

    return Score(
        name=name,
        documents=len(docs),
        clusters=len(cluster_sizes),
        predicted_stories=len(groups),
        true_positives=true_positives,
        predicted_pairs=predicted_pairs,
        true_pairs=true_pairs,
        per_variant=tuple(per_variant),
        false_merges=tuple(false_merges),
        merged_cluster_pairs=tuple(sorted(cluster_pairs)),
        follow_ups=len(follow_ups),
        follow_ups_merged=follow_ups_merged,
        original_kept=kept_ok,
        clusters_with_copies=with_copies,
        not_kept=tuple(not_kept),
        failures=tuple(failures),
        unmatched_entries=tuple(unmatched_entries),
        partition=tuple(sorted(tuple(group) for group in groups.values())),
    )


def _pairs(n: int) -> int:
    return n * (n - 1) // 2


def read_predictions(
    database_url: str, manifest: Manifest
) -> tuple[dict[str, Prediction], dict[str, str], list[str]]:
    """From a monitor database: doc_id -> Prediction, predicted story -> kept doc_id,
    and the links of entries that are no document of the manifest.

    Entries are matched to documents by the path of `entries.link` (else `entries.url`);
    kept articles by the path of `articles.url`.
    """
    from monitor.storage.database import create_database_engine

    by_path = dict(manifest)
    engine = create_database_engine(database_url)
    try:
        with engine.connect() as connection:
            entry_rows = connection.execute(
                sa.text(
                    "SELECT id, url, link, outcome, reason, error, article_id"
                    " FROM entries ORDER BY id"
                )
            ).all()
            article_rows = connection.execute(sa.text("SELECT id, url FROM articles")).all()
    finally:
        engine.dispose()
    predictions: dict[str, Prediction] = {}
    unmatched: list[str] = []
    for row in entry_rows:
        entry = by_path.get(urlsplit(row.link).path) or by_path.get(urlsplit(row.url).path)
        if entry is None:
            unmatched.append(str(row.link))
            continue
        story = f"article:{row.article_id}" if row.article_id is not None else None
        prediction = Prediction(story, str(row.outcome), row.reason, row.error)
        previous = predictions.get(entry.doc_id)
        if previous is None or (previous.outcome not in RESOLVED and row.outcome in RESOLVED):
            predictions[entry.doc_id] = prediction
    kept: dict[str, str] = {}
    for row in article_rows:
        entry = by_path.get(urlsplit(row.url).path)
        if entry is not None:
            kept[f"article:{row.id}"] = entry.doc_id
    return predictions, kept, unmatched


def score_database(database_url: str, manifest: Manifest, *, name: str = "monitor") -> Score:
    """Score the monitor database at `database_url` against the manifest."""
    predictions, kept, unmatched = read_predictions(database_url, manifest)
    return score_predictions(manifest, predictions, kept, name=name, unmatched_entries=unmatched)


def partitions_differ(scores: Sequence[Score]) -> list[str]:
    """Documents whose predicted story (as a set of documents) differs between scores."""
    if len(scores) < 2:
        return []
    groups = []
    for score in scores:
        of: dict[str, tuple[str, ...]] = {}
        for group in score.partition:
            for doc_id in group:
                of[doc_id] = group
        groups.append(of)
    first, *rest = groups
    return sorted(
        doc_id for doc_id in first if any(other.get(doc_id) != first[doc_id] for other in rest)
    )
