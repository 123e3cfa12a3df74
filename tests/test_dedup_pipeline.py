"""Near-duplicates through the real pipeline: local site → `monitor run-once` → database.

A small labelled corpus from bench/corpus (the tooling in bench/dedupcorpus makes
the syndicated, ad-wrapped and spun copies): the seed and its reconstructed
original, a Khmer story and its copies, two close Sihanoukville raids, a story
with its follow-up and one with a human rewrite. Copies arrive before their
originals in a shuffled order. On SQLite and on PostgreSQL.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from bench.dedupcorpus.score import Score, score_database
from bench.dedupcorpus.site import Manifest, write_feeds, write_site
from bench.dedupcorpus.stories import Story, load_stories
from bench.dedupcorpus.variants import build_documents
from monitor.storage.database import create_database_engine
from tests.commands import MONITOR, environment, run_monitor
from tests.localsite import LocalSite

REPO = Path(__file__).resolve().parent.parent
STORIES = REPO / "bench" / "corpus" / "stories"
pytestmark = pytest.mark.slow

CHOSEN = {
    "a-seed-original-ncct-un",  # the real seed repost is its spun, wrapped copy
    "b-km-sihanoukville-raid-2024-08",  # Khmer: copies, and a Khmer rewrite
    "b-km-kampot-raid-2024-10",  # another Khmer raid: must stay apart
    "a-raid-sihanoukville-heng-fu-2022-08",  # two Sihanoukville raids, one rewritten
    "a-raid-sihanoukville-bay-sun-2023-03",
    "a-raid-prey-nob-golden-lotus-2024-05",  # and its follow-up
    "a-ncct-iom-meeting-2024-09",  # two NCCT meetings
    "a-ncct-eu-meeting-2025-03",
}


def chosen_stories() -> dict[str, Story]:
    stories = load_stories(STORIES)
    return {
        story_id: story
        for story_id, story in stories.items()
        if story_id in CHOSEN or story.of in CHOSEN
    }


@pytest.fixture(scope="module")
def ingested(module_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Any:
    database_url = module_database_url
    tmp_path = tmp_path_factory.mktemp("dedup")
    documents = build_documents(chosen_stories())
    root = tmp_path / "site"
    manifest: Manifest = write_site(documents, root, feeds=3, order_seed="chronological")
    # Shuffled: copies often arrive before their originals.
    feeds = write_feeds(documents, manifest, root, count=3, order_seed=7, directory="shuffled")
    with LocalSite(root) as site:
        config = tmp_path / "config.toml"
        config.write_text(
            f"[database]\nurl = {json.dumps(database_url)}\n"
            "[fetch]\nallow_private_addresses = true\nper_host_delay = 0\n"
            + "".join(
                f'[[feeds]]\nname = "feed {number}"\nurl = "{site.url(feed)}"\n'
                for number, feed in enumerate(feeds)
            ),
            encoding="utf-8",
        )
        first = run_monitor(config, "--log-level", "WARNING", "run-once")
        score = score_database(database_url, manifest)
        second = run_monitor(config, "--log-level", "WARNING", "run-once")
        yield {
            "score": score,
            "config": config,
            "first": first,
            "second": second,
            "url": database_url,
            "manifest": manifest,
            "documents": documents,
        }


def recall(score: Score, variant: str) -> float | None:
    (found,) = [row for row in score.per_variant if row.variant == variant]
    return found.recall


def test_copies_are_found_and_stories_never_merged(ingested: Any) -> None:
    score: Score = ingested["score"]
    assert score.failures == ()
    assert score.false_merges == (), score.false_merges
    assert score.follow_ups_merged == ()
    assert score.precision == 1.0
    for variant in ("syndicated", "wrapped", "spun15", "spun30", "spun50", "spun_wrapped", "seed"):
        assert recall(score, variant) == 1.0, variant
    assert (recall(score, "rewrite") or 0) >= 0.5


def test_the_original_is_kept(ingested: Any) -> None:
    score: Score = ingested["score"]
    assert score.not_kept == (), score.not_kept
    assert score.original_kept == score.clusters_with_copies


def test_duplicate_kinds_and_repost_signals(ingested: Any) -> None:
    engine = create_database_engine(ingested["url"])
    with engine.connect() as connection:
        kinds: dict[str, int] = dict(
            connection.execute(sa.text("SELECT kind, count(*) FROM duplicates GROUP BY kind")).all()
        )
        kept_reposts = connection.execute(
            sa.text("SELECT count(*) FROM articles WHERE repost_signals IS NOT NULL")
        ).scalar()
        seed = connection.execute(
            sa.text(
                "SELECT d.kind, d.similarity, a.url FROM duplicates d JOIN articles a"
                " ON a.id = d.article_id WHERE d.title LIKE '%eye-to-eye%' AND d.kind = 'spun'"
            )
        ).all()
    engine.dispose()
    assert {"near_duplicate", "spun"} <= set(kinds)
    assert kept_reposts == 0  # every repost's original arrived and replaced it
    assert seed and all(0.3 <= similarity <= 1 for _, similarity, _ in seed)


def test_index_agrees_with_the_database_and_survives_a_rebuild(ingested: Any) -> None:
    engine = create_database_engine(ingested["url"])

    def state() -> tuple[int, int, int]:
        with engine.connect() as connection:
            return (
                connection.execute(sa.text("SELECT count(*) FROM articles")).scalar() or 0,
                connection.execute(sa.text("SELECT count(*) FROM article_signatures")).scalar()
                or 0,
                connection.execute(sa.text("SELECT count(*) FROM lsh_buckets")).scalar() or 0,
            )

    articles, signatures, buckets = state()
    assert articles == signatures
    assert buckets > 0
    with engine.connect() as connection:
        orphans = connection.execute(
            sa.text(
                "SELECT count(*) FROM lsh_buckets WHERE article_id NOT IN (SELECT id FROM articles)"
            )
        ).scalar()
    assert orphans == 0
    rebuilt = run_monitor(ingested["config"], "index", "rebuild")
    assert f"index rebuilt: {articles} articles" in rebuilt
    assert state() == (articles, signatures, buckets)
    engine.dispose()


def test_a_second_run_adds_nothing(ingested: Any) -> None:
    assert "stored: 0" in ingested["second"] and "duplicates: 0" in ingested["second"]


def test_two_processes_share_one_index(postgres_url: str, tmp_path: Path) -> None:
    """Two replicas on one PostgreSQL, polling different feeds that carry copies of the
    same stories at the same moment, keep each story once."""
    documents = build_documents(chosen_stories())
    root = tmp_path / "site"
    manifest = write_site(documents, root, feeds=4, order_seed="chronological")
    feeds = write_feeds(documents, manifest, root, count=4, order_seed=11, directory="split")
    with LocalSite(root) as site:
        processes = []
        for replica, share in enumerate((feeds[0::2], feeds[1::2])):
            config = tmp_path / f"replica{replica}.toml"
            config.write_text(
                f"[database]\nurl = {json.dumps(postgres_url)}\n"
                "[fetch]\nallow_private_addresses = true\nper_host_delay = 0\n"
                + "".join(
                    f'[[feeds]]\nname = "{feed}"\nurl = "{site.url(feed)}"\n' for feed in share
                ),
                encoding="utf-8",
            )
            if replica == 0:  # create the schema once, before both start
                run_monitor(config, "db", "upgrade")
            processes.append(
                subprocess.Popen(
                    [MONITOR, "--config", str(config), "--log-level", "WARNING", "run-once"],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                    env=environment(),
                )
            )
        for process in processes:
            _, stderr = process.communicate(timeout=600)
            assert process.returncode == 0, stderr[-3000:]
    score = score_database(postgres_url, manifest)
    assert score.false_merges == ()
    assert score.precision == 1.0
    assert score.recall == 1.0
    assert score.predicted_stories == score.clusters


def test_the_khmer_pair_and_the_seed_pair_are_one_story_each(ingested: Any) -> None:
    score: Score = ingested["score"]
    groups = [set(group) for group in score.partition]

    def story_of(doc_id: str) -> set[str]:
        (group,) = [group for group in groups if doc_id in group]
        return group

    khmer = story_of("b-km-sihanoukville-raid-2024-08")
    assert {
        "b-km-sihanoukville-raid-2024-08--syndicated",
        "b-km-sihanoukville-raid-2024-08--wrapped",
    } <= khmer
    assert "b-km-kampot-raid-2024-10" not in khmer
    seed = story_of("a-seed-original-ncct-un")
    assert "seed-repost" in seed  # the real spun, ad-wrapped repost
    assert "a-followup-ncct-un-joint-report-2024-03" not in seed
