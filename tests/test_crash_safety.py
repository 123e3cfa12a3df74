"""Crash safety: `monitor run-once` killed with SIGKILL at random moments, then run to
completion, on SQLite and on PostgreSQL.

The workload is the labelled corpus of bench/corpus (originals, syndicated, wrapped
and spun copies, rewrites) in three shuffled feeds, so kills land while stories and
their copies are being decided. After every kill the database must be consistent
as it stands; after a run to completion every entry has its one final outcome,
nothing is doubled, the clusters are right and the near-duplicate index is exactly
what rebuilding it from the stored texts gives.
"""

from __future__ import annotations

import json
import random
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa

from bench.dedupcorpus.score import score_database
from bench.dedupcorpus.site import Manifest, write_feeds, write_site
from bench.dedupcorpus.stories import load_stories
from bench.dedupcorpus.variants import build_documents
from monitor.storage import index
from monitor.storage.database import create_database_engine
from tests.commands import MONITOR, environment, run_monitor
from tests.databases import postgres_schema
from tests.localsite import LocalSite

pytestmark = pytest.mark.slow
STORIES = Path(__file__).resolve().parent.parent / "bench" / "corpus" / "stories"
KILLS = 20
ORIGINALS = 30  # of the corpus's 72 stories, with all their copies: about 180 pages
OUTCOMES = {"pending", "stored", "duplicate", "off_topic", "failed"}


@contextmanager
def fresh_database(kind: str, directory: Path, number: int) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{directory / f'monitor-{number}.db'}"
    else:
        with postgres_schema() as url:
            yield url


def check_consistent(engine: sa.Engine) -> dict[str, int]:
    """What must hold at any moment, even right after a SIGKILL; the outcome counts."""
    with engine.connect() as connection:

        def one(sql: str) -> int:
            return int(connection.execute(sa.text(sql)).scalar() or 0)

        outcomes = {
            str(outcome): int(count)
            for outcome, count in connection.execute(
                sa.text("SELECT outcome, count(*) FROM entries GROUP BY outcome")
            )
        }
        assert set(outcomes) <= OUTCOMES, outcomes
        # Nothing doubled: one article per URL and per text, one copy row per entry.
        assert one("SELECT count(*) - count(DISTINCT url) FROM articles") == 0
        assert one("SELECT count(*) - count(DISTINCT content_hash) FROM articles") == 0
        assert one("SELECT count(*) - count(DISTINCT entry_id) FROM duplicates") == 0
        # Every finished entry points at a kept article; every copy row at its entry.
        assert (
            one(
                "SELECT count(*) FROM entries WHERE outcome IN ('stored', 'duplicate')"
                " AND (article_id IS NULL OR article_id NOT IN (SELECT id FROM articles))"
            )
            == 0
        )
        assert (
            one(
                "SELECT count(*) FROM duplicates d JOIN entries e ON e.id = d.entry_id"
                " WHERE e.outcome <> 'duplicate' OR e.article_id <> d.article_id"
            )
            == 0
        )
        assert (
            one(
                "SELECT count(*) FROM entries e WHERE e.outcome = 'duplicate'"
                " AND NOT EXISTS (SELECT 1 FROM duplicates d WHERE d.entry_id = e.id)"
            )
            == 0
        )
        # The index covers exactly the kept articles.
        assert one("SELECT count(*) FROM articles") == one(
            "SELECT count(*) FROM article_signatures"
        )
        assert (
            one(
                "SELECT count(*) FROM article_signatures WHERE article_id NOT IN (SELECT id FROM articles)"
            )
            == 0
        )
        assert (
            one(
                "SELECT count(*) FROM lsh_buckets WHERE article_id NOT IN (SELECT id FROM articles)"
            )
            == 0
        )
        assert one("SELECT count(DISTINCT article_id) FROM lsh_buckets") == one(
            "SELECT count(*) FROM articles"
        )
    return outcomes


def index_snapshot(engine: sa.Engine) -> tuple[set[tuple[int, bytes, bytes]], set[tuple[int, int]]]:
    with engine.connect() as connection:
        signatures = {
            (int(article), bytes(skeleton), bytes(entities))
            for article, skeleton, entities in connection.execute(
                sa.text("SELECT article_id, skeleton, entities FROM article_signatures")
            )
        }
        buckets = {
            (int(bucket), int(article))
            for bucket, article in connection.execute(
                sa.text("SELECT bucket, article_id FROM lsh_buckets")
            )
        }
    return signatures, buckets


def check_complete(engine: sa.Engine, database_url: str, manifest: Manifest) -> None:
    outcomes = check_consistent(engine)
    assert set(outcomes) == {"stored", "duplicate"}, outcomes  # every entry finished
    score = score_database(database_url, manifest)
    assert score.false_merges == () and score.failures == ()
    # Every machine copy found; a human rewrite that leads with a figure its story never
    # gives is kept apart on purpose (docs/dedup.md), crash or no crash.
    missed = {v.variant: v.total - v.merged for v in score.per_variant if v.merged < v.total}
    assert set(missed) <= {"rewrite"}, missed
    assert missed.get("rewrite", 0) <= 1
    # The index is exactly what the stored texts give.
    before = index_snapshot(engine)
    index.rebuild(engine, from_text=True)
    assert index_snapshot(engine) == before


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_sigkill_at_random_moments_loses_and_doubles_nothing(tmp_path: Path, kind: str) -> None:
    stories = load_stories(STORIES)
    chosen = sorted(story_id for story_id, story in stories.items() if story.of is None)
    chosen = chosen[:: len(chosen) // ORIGINALS][:ORIGINALS]
    documents = build_documents(
        {i: story for i, story in stories.items() if i in chosen or story.of in chosen}
    )
    root = tmp_path / "site"
    manifest = write_site(documents, root, feeds=3, order_seed="chronological")
    feeds = write_feeds(documents, manifest, root, count=3, order_seed=11, directory="shuffled")
    chooser = random.Random(f"kill-{kind}")
    kills = completed = number = 0
    with LocalSite(root) as site:
        while kills < KILLS:
            number += 1
            with fresh_database(kind, tmp_path, number) as database_url:
                config = tmp_path / f"config-{number}.toml"
                config.write_text(
                    f"[database]\nurl = {json.dumps(database_url)}\n"
                    "[fetch]\nallow_private_addresses = true\nper_host_delay = 0\n"
                    + "".join(
                        f'[[feeds]]\nname = "feed {n}"\nurl = "{site.url(feed)}"\n'
                        for n, feed in enumerate(feeds)
                    ),
                    encoding="utf-8",
                )
                run_monitor(config, "db", "upgrade")
                engine = create_database_engine(database_url)
                try:
                    # Kill runs until one finishes before its kill lands, then finish it.
                    while kills < KILLS:
                        process = subprocess.Popen(
                            [MONITOR, "--config", str(config), "run-once"],
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL,
                            env=environment(),
                        )
                        time.sleep(chooser.uniform(0.3, 3.0))
                        if process.poll() is not None:
                            assert process.returncode == 0
                            break
                        process.kill()
                        process.wait()
                        kills += 1
                        check_consistent(engine)
                    run_monitor(config, "--log-level", "WARNING", "run-once")
                    check_complete(engine, database_url, manifest)
                    completed += 1
                finally:
                    engine.dispose()
    print(f"{kills} kills, {completed} completed runs, {number} databases")
    assert kills == KILLS and completed >= 1
