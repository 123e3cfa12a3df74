"""The near-duplicate index at scale: cost per article, restart time and memory.

    python bench/index_scale.py --articles 1000000 --json bench/results/index_scale.json

Fills a fresh database with N kept articles whose signatures are random (what
matters at scale is the number of index rows, not their content), then ingests
real articles from bench/corpus through `Store.ingest` and times each dedup
decision end to end: features, signatures, candidate query, verification and
the index insert. In the same run it measures the baseline the issue names:
datasketch's in-memory `MinHashLSH` (memory per article, insert and query time,
pickle size and reload time), at a smaller size and extrapolated linearly.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import pickle
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa
from datasketch import MinHash, MinHashLSH
from sqlalchemy.orm import Session

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from monitor.clean import clean_text  # noqa: E402
from monitor.config import FeedSettings  # noqa: E402
from monitor.dedup import ENTITY_BANDS, SKELETON_BANDS, decide, prepare  # noqa: E402
from monitor.records import (  # noqa: E402
    CleanedArticle,
    ExtractedArticle,
    FeedEntry,
    TaggedArticle,
)
from monitor.similarity import NUM_PERM, Signer  # noqa: E402
from monitor.storage import index  # noqa: E402
from monitor.storage.database import create_database_engine, upgrade_database  # noqa: E402
from monitor.storage.schema import Article  # noqa: E402
from monitor.storage.store import Store  # noqa: E402

BUCKETS_PER_ARTICLE = SKELETON_BANDS[0] + ENTITY_BANDS[0]
FILL_CHUNK = 200_000


def rss_bytes() -> int:
    resident_pages = int(Path("/proc/self/statm").read_text().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE")


def fill(engine: sa.Engine, articles: int, seed: int = 1) -> float:
    """N kept articles with random signatures; returns seconds taken."""
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    now = datetime(2024, 1, 1).isoformat(sep=" ")
    with engine.begin() as connection:
        raw = connection.connection.driver_connection
        assert raw is not None
        cursor = raw.cursor()
        for start in range(0, articles, FILL_CHUNK):
            ids = range(start + 1, min(start + FILL_CHUNK, articles) + 1)
            cursor.executemany(
                "INSERT INTO articles (id, url, title, text, fetched_at, site, content_hash)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    (
                        i,
                        f"https://synthetic.example/{i}",
                        f"Story {i}",
                        f"Synthetic story {i}.",
                        now,
                        "synthetic.example",
                        f"{i:064x}",
                    )
                    for i in ids
                ),
            )
            blob = bytes(4 * NUM_PERM)
            cursor.executemany(
                "INSERT INTO article_signatures (article_id, scheme, skeleton, entities)"
                " VALUES (?, 'synthetic', ?, ?)",
                ((i, blob, blob) for i in ids),
            )
        # Random band keys, inserted in key order (a B-tree built from sorted input).
        keys = rng.integers(
            -(2**63), 2**63 - 1, size=articles * BUCKETS_PER_ARTICLE, dtype=np.int64
        )
        owners = np.repeat(np.arange(1, articles + 1, dtype=np.int64), BUCKETS_PER_ARTICLE)
        order = np.argsort(keys, kind="stable")
        keys, owners = keys[order], owners[order]
        for start in range(0, len(keys), 1_000_000):
            cursor.executemany(
                "INSERT INTO lsh_buckets (bucket, article_id) VALUES (?, ?)",
                zip(
                    keys[start : start + 1_000_000].tolist(),
                    owners[start : start + 1_000_000].tolist(),
                    strict=True,
                ),
            )
        del keys, owners, order
    gc.collect()
    return time.perf_counter() - started


def corpus_articles(rate: float, label: str) -> Iterator[TaggedArticle]:
    """Every story of bench/corpus, then a spun copy (at `rate`) of each English original."""
    from bench.dedupcorpus.spinner import Spinner, SynonymTable

    table = SynonymTable.load()
    stories = [
        json.loads(path.read_text(encoding="utf-8"))
        for path in sorted((REPO / "bench" / "corpus" / "stories").glob("*.json"))
    ]
    texts = [(story, "\n".join(story["paragraphs"])) for story in stories]
    texts += [
        (story, Spinner(table, rate, seed=index).spin(text))
        for index, (story, text) in enumerate(texts)
        if story["language"] == "en" and story["kind"] == "original"
    ]
    for number, (story, text) in enumerate(texts):
        cleaned, removed = clean_text(text)
        extracted = ExtractedArticle(
            url=f"https://bench.example/{label}/{number}",
            title=story["title"],
            text=cleaned,
            author=story["author"],
            published_at=datetime.fromisoformat(story["published_at"]).astimezone(UTC),
            language=story["language"],
            site="bench.example",
            fetched_at=datetime.now(UTC),
        )
        yield TaggedArticle(
            cleaned=CleanedArticle(article=extracted, text=cleaned, removed=removed)
        )


def measure_dedup_cost(engine: sa.Engine) -> dict[str, Any]:
    """The issue's "dedup cost": signature, candidate query, verification, index insert.

    The article row itself (needed for the index's foreign key) is inserted and
    committed outside the timed part.
    """
    signer = Signer()
    cache = index.FeatureCache()
    prepare_times, query_times, insert_times, totals = [], [], [], []
    duplicates = 0
    for article in corpus_articles(0.3, "cost"):
        insert_time = 0.0
        with Session(engine) as session, session.begin():
            began = time.perf_counter()
            dedup = prepare(article, signer)
            prepared = time.perf_counter()
            decision = decide(dedup, index.candidates(session, dedup, cache))
            decided = time.perf_counter()
            if decision.duplicate_of is not None:
                duplicates += 1
            else:
                row = Article(
                    url=article.article.url,
                    title=article.article.title,
                    text=article.text,
                    fetched_at=article.article.fetched_at,
                    site="bench.example",
                    content_hash=dedup.fingerprint,
                )
                session.add(row)
                session.flush()
                before_insert = time.perf_counter()
                index.add(session.connection(), row.id, dedup)
                session.flush()
                cache.put(dedup.fingerprint, dedup.features)
                insert_time = time.perf_counter() - before_insert
        prepare_times.append(prepared - began)
        query_times.append(decided - prepared)
        if insert_time:
            insert_times.append(insert_time)
        totals.append(prepare_times[-1] + query_times[-1] + insert_time)
    return {
        "articles": len(totals),
        "duplicates_found": duplicates,
        "median_ms": statistics.median(totals) * 1000,
        "p95_ms": statistics.quantiles(totals, n=20)[-1] * 1000,
        "median_signature_ms": statistics.median(prepare_times) * 1000,
        "median_query_and_verify_ms": statistics.median(query_times) * 1000,
        "median_index_insert_ms": statistics.median(insert_times) * 1000,
    }


def measure_ingest(store: Store) -> dict[str, Any]:
    """`Store.ingest` end to end: the whole decision transaction, commit included."""
    feed = FeedSettings(name="bench", url="https://bench.example/feed")
    feed_id = store.sync_feeds([feed])[feed.url]
    articles = list(corpus_articles(0.5, "ingest"))
    claims = []
    for article in articles:
        entry = FeedEntry(link=article.article.url, url=article.article.url)
        claim = store.claim_entry(feed_id, entry, max_attempts=3)
        assert claim is not None
        claims.append(claim)
    signer = Signer()
    totals = []
    outcomes: dict[str, int] = {}
    for article, claim in zip(articles, claims, strict=True):
        began = time.perf_counter()
        dedup = prepare(article, signer)
        result = store.ingest(entry_id=claim.id, feed_id=feed_id, article=article, dedup=dedup)
        totals.append(time.perf_counter() - began)
        outcomes[result.outcome] = outcomes.get(result.outcome, 0) + 1
    return {
        "articles": len(articles),
        "outcomes": outcomes,
        "median_ms": statistics.median(totals) * 1000,
        "p95_ms": statistics.quantiles(totals, n=20)[-1] * 1000,
    }


def measure_restart(url: str) -> float:
    """Seconds for a new process to open the database and be ready to ingest."""
    script = (
        "import time; t = time.perf_counter()\n"
        "from monitor.storage.database import create_database_engine, upgrade_database\n"
        "from monitor.storage.store import Store\n"
        "from monitor.similarity import Signer\n"
        f"engine = create_database_engine({url!r}); upgrade_database(engine); Store(engine)\n"
        "import numpy; Signer().signature(numpy.array([1, 2, 3], dtype=numpy.uint32))\n"
        "with engine.connect() as c:\n"
        "    c.exec_driver_sql('SELECT count(*) FROM lsh_buckets WHERE bucket = 1').all()\n"
        "print(time.perf_counter() - t)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=REPO
    )
    return float(result.stdout.strip().splitlines()[-1])


def datasketch_baseline(articles: int, queries: int = 1000) -> dict[str, Any]:
    """datasketch's in-memory MinHashLSH (threshold 0.5, 128 permutations)."""
    rng = np.random.default_rng(2)
    gc.collect()
    before = rss_bytes()
    lsh = MinHashLSH(threshold=0.5, num_perm=NUM_PERM)
    template = MinHash(num_perm=NUM_PERM)
    started = time.perf_counter()
    for i in range(articles):
        values = rng.integers(0, 2**32 - 1, size=NUM_PERM, dtype=np.uint64).astype(np.uint32)
        lsh.insert(
            i,
            MinHash(
                num_perm=NUM_PERM,
                hashvalues=values,
                permutations=template.permutations,
                scheme="affine32",
            ),
        )
    insert_seconds = time.perf_counter() - started
    gc.collect()
    memory = rss_bytes() - before
    query_times = []
    for _ in range(queries):
        values = rng.integers(0, 2**32 - 1, size=NUM_PERM, dtype=np.uint64).astype(np.uint32)
        probe = MinHash(
            num_perm=NUM_PERM,
            hashvalues=values,
            permutations=template.permutations,
            scheme="affine32",
        )
        began = time.perf_counter()
        lsh.query(probe)
        query_times.append(time.perf_counter() - began)
    blob = pickle.dumps(lsh)
    started = time.perf_counter()
    pickle.loads(blob)
    load_seconds = time.perf_counter() - started
    return {
        "articles": articles,
        "bytes_per_article": memory / articles,
        "memory_at_1m_gib": memory / articles * 1_000_000 / 2**30,
        "insert_ms_per_article": insert_seconds / articles * 1000,
        "median_query_ms": statistics.median(query_times) * 1000,
        "pickle_mib": len(blob) / 2**20,
        "reload_seconds": load_seconds,
        "reload_at_1m_seconds": load_seconds * 1_000_000 / articles,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--articles", type=int, default=1_000_000)
    parser.add_argument("--baseline-articles", type=int, default=100_000)
    parser.add_argument("--database-url", help="default: a SQLite file in a temporary folder")
    parser.add_argument("--json", type=Path, help="write the results here")
    arguments = parser.parse_args()

    with tempfile.TemporaryDirectory() as directory:
        url = arguments.database_url or f"sqlite:///{Path(directory) / 'scale.db'}"
        engine = create_database_engine(url)
        upgrade_database(engine)
        print(f"filling {arguments.articles:,} articles …", file=sys.stderr)
        fill_seconds = fill(engine, arguments.articles)
        store = Store(engine)
        rss_before = rss_bytes()
        cost = measure_dedup_cost(engine)
        ingest = measure_ingest(store)
        rss_after = rss_bytes()
        restart = statistics.median(measure_restart(url) for _ in range(3))
        database_bytes = (
            Path(directory, "scale.db").stat().st_size if not arguments.database_url else None
        )
        results = {
            "articles_indexed": arguments.articles,
            "index_rows": arguments.articles * BUCKETS_PER_ARTICLE,
            "fill_seconds": fill_seconds,
            "dedup_cost": cost,
            "ingest_end_to_end": ingest,
            "restart_seconds_median_of_3": restart,
            "process_rss_mib": rss_after / 2**20,
            "process_rss_growth_during_ingest_mib": (rss_after - rss_before) / 2**20,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "database_file_gib": database_bytes / 2**30 if database_bytes else None,
        }
        engine.dispose()
    print(
        f"baseline: datasketch MinHashLSH with {arguments.baseline_articles:,} …", file=sys.stderr
    )
    results["datasketch_baseline"] = datasketch_baseline(arguments.baseline_articles)
    text = json.dumps(results, indent=2)
    print(text)
    if arguments.json:
        arguments.json.parent.mkdir(parents=True, exist_ok=True)
        arguments.json.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
