"""`monitor export` of 100,000 stored articles on SQLite: throughput and peak memory.

    python bench/export_bench.py --articles 100000 --repeats 5 --json bench/results/export.json

Builds (once; reused from --cache while the parameters match) a migrated SQLite
database of N kept articles: the texts of bench/corpus (about 3 KB each),
several feeds, tags from the three sources (the shipped config.toml's rule
names with their matched phrases, feed tags, entry categories) and copies in
`duplicates`. The rows go through SQLAlchemy core into the tables the
migrations created, so the FTS5 triggers fire as they do for the daemon's own
inserts.

Then runs the installed command, `monitor --config CFG export --format jsonl|csv
--output FILE` (and jsonl with `--include-duplicates`, and an export selecting
nothing: the start-up alone), each run a fresh process started by a small
wrapper that reports its wall time, CPU time and peak resident memory (the
child's own `ru_maxrss`, from `os.wait4`). Baseline in the same run, also a
fresh process: the simplest exporter there is, Python's sqlite3 selecting the
same article columns (and the feed's name) with `json.dumps` per row, without
tags or copies. The variants run interleaved; medians are reported. Each output
is checked once: as many records (and copies) as the database holds.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from monitor.config import load_settings  # noqa: E402
from monitor.storage.database import (  # noqa: E402
    create_database_engine,
    schema_revisions,
    upgrade_database,
)
from monitor.storage.schema import Article, ArticleTag, Duplicate, Feed  # noqa: E402

MONITOR = Path(sys.executable).parent / "monitor"
# Bump when the generated data changes, so that a cached database is rebuilt.
GENERATOR_VERSION = 1
CHUNK = 5_000
STARTUP = "start-up: export selecting nothing"
BASELINE = "baseline: sqlite3 + json.dumps"
# The acceptance point: at least this rate, and under 150 MB (10^6 bytes) resident.
TARGET_ARTICLES_PER_S = 10_000
TARGET_PEAK_RSS_MIB = 150e6 / 2**20

FEEDS = (
    ("Khmer Times", "https://www.khmertimeskh.com/feed/", ("kh", "press")),
    ("Phnom Penh Post", "https://www.phnompenhpost.com/rss", ("kh", "press")),
    ("CamboJA News", "https://cambojanews.com/feed/", ("kh", "independent")),
    ("VOD English", "https://vodenglish.news/feed/", ("kh",)),
    ("RFA Khmer", "https://www.rfa.org/khmer/rss2.xml", ("kh", "km")),
    ("Nikkei Asia SEA", "https://asia.nikkei.com/rss/sea", ("region",)),
    ("Google News: scam compounds", "https://news.google.com/rss/search?q=scam", ("search",)),
    ("Xinhua Cambodia", "http://www.news.cn/world/cambodia/rss.xml", ("zh",)),
)
CATEGORIES = (
    "Cambodia",
    "National",
    "Crime",
    "Human Rights",
    "NCCT",
    "Business",
    "Asia",
    "Scams",
    "Labour",
    "Politics",
)
COPY_SITES = (
    "autoblog.example",
    "newsaggregator.example",
    "asianews.example",
    "wire-mirror.example",
    "kh-daily.example",
    "reposter.example",
)
COPY_KINDS = (
    ("same_url", 1.0),
    ("exact_text", 1.0),
    ("near_duplicate", 0.0),
    ("spun", 0.0),
    ("rewrite", 0.0),
)
BASELINE_SCRIPT = """\
import json, sqlite3, sys
database, output = sys.argv[1], sys.argv[2]
connection = sqlite3.connect(database)
query = (
    "SELECT a.id, a.url, a.title, a.author, a.published_at, a.fetched_at, a.language,"
    " a.site, f.name, a.repost_signals, a.text"
    " FROM articles a LEFT JOIN feeds f ON f.id = a.feed_id ORDER BY a.id"
)
names = ("id", "url", "title", "author", "published_at", "fetched_at", "language",
         "site", "feed", "repost_signals", "text")
count = 0
with open(output, "w", encoding="utf-8") as file:
    for row in connection.execute(query):
        file.write(json.dumps(dict(zip(names, row)), ensure_ascii=False) + "\\n")
        count += 1
print(f"exported {count} articles", file=sys.stderr)
"""


# Runs COMMAND in a child and prints its wall time and peak RSS, as JSON on stdout.
WRAPPER_SCRIPT = """\
import json, os, sys, time
command = sys.argv[1:]
# What the child starts from: a forked copy of this process, resident now.
with open("/proc/self/statm") as statm:
    resident_kib = int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024
started = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
        os.execv(command[0], command)
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
seconds = time.perf_counter() - started
print(json.dumps({
    "seconds": seconds,
    "cpu_seconds": usage.ru_utime + usage.ru_stime,
    "child_maxrss_kib": usage.ru_maxrss,
    "floor_kib": resident_kib,
}))
sys.exit(os.waitstatus_to_exitcode(status))
"""


@dataclass(frozen=True, kw_only=True, slots=True)
class Variant:
    name: str
    command: list[str]
    kind: str  # how to count its output: jsonl, csv
    records: int  # expected in the output
    copies: int = 0  # copies listed in it


@dataclass(frozen=True, kw_only=True, slots=True)
class Run:
    seconds: float
    cpu_seconds: float  # user and system: less sensitive than wall time to other load
    peak_rss_mib: float
    floor_mib: float  # the wrapper's resident size when it forks: the lowest peak that shows


# Building the database


def corpus() -> list[dict[str, Any]]:
    return [
        json.loads(path.read_text(encoding="utf-8"))
        for path in sorted((REPO / "bench" / "corpus" / "stories").glob("*.json"))
    ]


def rule_tags() -> list[tuple[str, list[str]]]:
    """The shipped taxonomy: each tag's name and a few of its phrases. Several rules may
    give one tag (config.toml's `theme:scam-compounds` has two): one entry per tag, as
    an article holds each tag once per source."""
    settings = load_settings(REPO / "config.toml", environ={})
    tags: dict[str, list[str]] = {}
    for rule in settings.tags:
        tags.setdefault(rule.name, list(rule.any[:4]) or list(rule.all[:2]))
    return list(tags.items())


def generate(
    articles: int, seed: int, feed_ids: list[int]
) -> Iterator[tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]]:
    """Chunks of (article rows, tag rows, duplicate rows)."""
    rng = random.Random(seed)
    stories = corpus()
    rules = rule_tags()
    start = datetime(2022, 1, 1, tzinfo=UTC)
    span = int(timedelta(days=3 * 365).total_seconds())
    for first in range(1, articles + 1, CHUNK):
        article_rows: list[dict[str, Any]] = []
        tag_rows: list[dict[str, Any]] = []
        copy_rows: list[dict[str, Any]] = []
        for i in range(first, min(first + CHUNK, articles + 1)):
            story = stories[i % len(stories)]
            paragraphs = list(story["paragraphs"])
            rng.shuffle(paragraphs)  # every article its own text
            if rng.random() < 0.3:
                paragraphs += stories[(i * 7) % len(stories)]["paragraphs"][:3]
            text = "\n".join([*paragraphs, f"Reference {i}."])
            feed_index = rng.randrange(len(FEEDS))
            _, feed_url, feed_tags = FEEDS[feed_index]
            site = feed_url.split("/")[2].removeprefix("www.")
            published = start + timedelta(seconds=rng.randrange(span))
            article_rows.append(
                {
                    "id": i,
                    "url": f"https://{site}/{published:%Y/%m}/{story['id']}-{i}",
                    "title": f"{story['title']} ({i})",
                    "text": text,
                    "author": story["author"] if rng.random() < 0.8 else None,
                    "published_at": published if rng.random() < 0.95 else None,
                    "fetched_at": published + timedelta(minutes=rng.randrange(5, 600)),
                    "language": story["language"],
                    "feed_id": feed_ids[feed_index] if rng.random() < 0.98 else None,
                    "site": site,
                    "content_hash": hashlib.sha256(text.casefold().encode()).hexdigest(),
                    "repost_signals": (
                        rng.choice(("ad_markers", "ad_markers,source_link", "spinner_artefacts"))
                        if rng.random() < 0.05
                        else None
                    ),
                }
            )
            tag_rows += [
                {"article_id": i, "tag": tag, "source": "feed", "detail": None} for tag in feed_tags
            ]
            tag_rows += [
                {"article_id": i, "tag": category, "source": "category", "detail": None}
                for category in rng.sample(CATEGORIES, rng.randint(0, 3))
            ]
            tag_rows += [
                {
                    "article_id": i,
                    "tag": name,
                    "source": "rule",
                    "detail": json.dumps(phrases[: rng.randint(1, len(phrases))]),
                }
                for name, phrases in rng.sample(rules, rng.randint(2, 6))
            ]
            if rng.random() < 0.35:
                for copy in range(rng.randint(1, 3)):
                    kind, similarity = rng.choice(COPY_KINDS)
                    copy_site = rng.choice(COPY_SITES)
                    copy_rows.append(
                        {
                            "article_id": i,
                            "url": f"https://{copy_site}/{story['id']}-{i}-{copy}",
                            "site": copy_site,
                            "title": story["title"],
                            "feed_id": feed_ids[rng.randrange(len(feed_ids))],
                            "entry_id": None,
                            "kind": kind,
                            "similarity": similarity or round(rng.uniform(0.5, 0.99), 3),
                            "detected_at": published + timedelta(hours=rng.randrange(1, 72)),
                            "former_article_id": None,
                        }
                    )
        yield article_rows, tag_rows, copy_rows


def build(path: Path, articles: int, seed: int) -> dict[str, int]:
    """A migrated SQLite database at `path` with the articles; returns row counts."""
    partial = path.with_suffix(".partial")
    for stale in (partial, Path(f"{partial}-wal"), Path(f"{partial}-shm")):
        stale.unlink(missing_ok=True)
    engine = create_database_engine(f"sqlite:///{partial}")
    upgrade_database(engine)
    now = datetime.now(UTC)
    counts = {"articles": 0, "article_tags": 0, "duplicates": 0}
    with engine.begin() as connection:
        feed_ids = [
            connection.execute(
                sa.insert(Feed).returning(Feed.id),
                {
                    "url": url,
                    "name": name,
                    "enabled": True,
                    "interval_seconds": 900.0,
                    "consecutive_failures": 0,
                    "polls_with_new_entries": 0,
                    "created_at": now,
                },
            ).scalar_one()
            for name, url, _ in FEEDS
        ]
        for article_rows, tag_rows, copy_rows in generate(articles, seed, feed_ids):
            connection.execute(sa.insert(Article), article_rows)
            connection.execute(sa.insert(ArticleTag), tag_rows)
            if copy_rows:
                connection.execute(sa.insert(Duplicate), copy_rows)
            counts["articles"] += len(article_rows)
            counts["article_tags"] += len(tag_rows)
            counts["duplicates"] += len(copy_rows)
            print(f"  {counts['articles']:,} articles", file=sys.stderr, end="\r")
    print(file=sys.stderr)
    engine.dispose()  # the last connection's close checkpoints the WAL into the file
    partial.replace(path)
    return counts


def database(cache: Path, articles: int, seed: int, rebuild: bool) -> tuple[Path, dict[str, Any]]:
    """The cached database for these parameters, built when missing or out of date."""
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / f"export-{articles}-{seed}.db"
    meta_path = path.with_suffix(".json")
    wanted = {"articles": articles, "seed": seed, "generator": GENERATOR_VERSION}
    if not rebuild and path.exists() and meta_path.exists():
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        current, head = schema_revisions(create_database_engine(f"sqlite:///{path}"))
        if all(meta.get(key) == value for key, value in wanted.items()) and current == head:
            print(f"reusing {path}", file=sys.stderr)
            return path, meta
    meta_path.unlink(missing_ok=True)
    print(f"building {path} with {articles:,} articles …", file=sys.stderr)
    started = time.perf_counter()
    counts = build(path, articles, seed)
    meta = {
        **wanted,
        "rows": counts,
        "build_seconds": round(time.perf_counter() - started, 1),
        "file_mib": round(path.stat().st_size / 2**20, 1),
    }
    meta_path.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return path, meta


# Measuring


def measure(command: list[str]) -> tuple[Run, str]:
    """Wall time and peak RSS of one fresh child process; its standard error.

    The child is started by a small wrapper process: a child's `ru_maxrss` also
    counts the memory of the process it was forked from (Python's subprocess
    forks with vfork, which carries over this benchmark's own high-water mark),
    so the wrapper keeps that floor to its own few MiB.
    """
    result = subprocess.run(
        [sys.executable, "-c", WRAPPER_SCRIPT, *command],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({result.returncode}):\n{result.stderr}")
    report = json.loads(result.stdout.strip().splitlines()[-1])
    return (
        Run(
            seconds=report["seconds"],
            cpu_seconds=report["cpu_seconds"],
            peak_rss_mib=report["child_maxrss_kib"] / 1024,
            floor_mib=report["floor_kib"] / 1024,
        ),
        result.stderr,
    )


def count_records(path: Path, kind: str) -> tuple[int, int]:
    """(records, copies listed) in an export file; raises on a malformed record."""
    records = copies = 0
    with path.open(encoding="utf-8", newline="") as file:
        if kind == "csv":
            reader = csv.DictReader(file)
            for row in reader:
                records += 1
                copies += int(row["copies"] or 0)
        else:
            for line in file:
                record = json.loads(line)
                records += 1
                copies += len(record.get("duplicates", ()))
    return records, copies


def check(variant: Variant, output: Path, errors: str) -> None:
    """The output holds the records expected, and the command says how many."""
    records, copies = count_records(output, variant.kind)
    if (records, copies) != (variant.records, variant.copies):
        raise SystemExit(
            f"{variant.name}: {records} records and {copies} copies in the output,"
            f" expected {variant.records} and {variant.copies}"
        )
    if f"exported {records} articles" not in errors:
        raise SystemExit(f"{variant.name}: {records} records written, but it said: {errors}")


def warm_page_cache(path: Path) -> None:
    with path.open("rb") as file:
        while file.read(16 * 2**20):
            pass


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--articles", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--cache",
        type=Path,
        default=Path(tempfile.gettempdir()) / "monitor-bench",
        help="where the generated database is kept between runs (default: %(default)s)",
    )
    parser.add_argument("--rebuild", action="store_true", help="build the database afresh")
    parser.add_argument("--json", type=Path, help="write the results here")
    arguments = parser.parse_args()

    path, meta = database(arguments.cache, arguments.articles, arguments.seed, arguments.rebuild)
    rows = meta["rows"]
    with tempfile.TemporaryDirectory(prefix="monitor-export-") as directory:
        config = Path(directory, "config.toml")
        config.write_text(f'[database]\nurl = "sqlite:///{path}"\n', encoding="utf-8")
        output = Path(directory, "out")
        monitor = [str(MONITOR), "--config", str(config), "export", "--output", str(output)]
        articles, copies = rows["articles"], rows["duplicates"]
        variants = [
            Variant(
                name="jsonl",
                command=[*monitor, "--format", "jsonl"],
                kind="jsonl",
                records=articles,
            ),
            # CSV gives each story's number of copies in its `copies` column.
            Variant(
                name="csv",
                command=[*monitor, "--format", "csv"],
                kind="csv",
                records=articles,
                copies=copies,
            ),
            Variant(
                name="jsonl --include-duplicates",
                command=[*monitor, "--format", "jsonl", "--include-duplicates"],
                kind="jsonl",
                records=articles,
                copies=copies,
            ),
            Variant(
                name=STARTUP,
                command=[*monitor, "--format", "jsonl", "--since", "2100-01-01"],
                kind="jsonl",
                records=0,
            ),
            Variant(
                name=BASELINE,
                command=[sys.executable, "-c", BASELINE_SCRIPT, str(path), str(output)],
                kind="jsonl",
                records=articles,
            ),
        ]
        warm_page_cache(path)
        load_before = os.getloadavg()
        runs: dict[str, list[Run]] = {variant.name: [] for variant in variants}
        outputs: dict[str, int] = {}
        # Interleaved, so that drift in the machine's load touches every variant alike.
        for repeat in range(arguments.repeats):
            for variant in variants:
                run, errors = measure(variant.command)
                runs[variant.name].append(run)
                print(
                    f"{repeat + 1}/{arguments.repeats} {variant.name}: {run.seconds:.2f} s,"
                    f" {run.cpu_seconds:.2f} s CPU, {run.peak_rss_mib:.0f} MiB",
                    file=sys.stderr,
                )
                if repeat == 0:
                    check(variant, output, errors)
                    outputs[variant.name] = output.stat().st_size
    load_after = os.getloadavg()
    medians = {
        name: statistics.median(run.seconds for run in measured) for name, measured in runs.items()
    }
    startup = medians[STARTUP]
    baseline_cpu = statistics.median(run.cpu_seconds for run in runs[BASELINE])
    results: dict[str, Any] = {
        "database": {**meta, "path": str(path)},
        "repeats": arguments.repeats,
        "cpus": os.cpu_count(),
        "load_average_1_5_15_min": {"before": load_before, "after": load_after},
        "rss_floor_mib": round(max(r.floor_mib for measured in runs.values() for r in measured), 1),
        "variants": {},
    }
    for variant in variants:
        seconds = medians[variant.name]
        cpu = statistics.median(run.cpu_seconds for run in runs[variant.name])
        results["variants"][variant.name] = {
            "records": variant.records,
            "output_mib": round(outputs[variant.name] / 2**20, 1),
            "median_seconds": round(seconds, 2),
            "articles_per_s": round(variant.records / seconds),
            "articles_per_s_after_startup": (
                round(variant.records / (seconds - startup))
                if variant.command[0] == str(MONITOR) and variant.records
                else None
            ),
            "time_to_baseline": round(seconds / medians[BASELINE], 2),
            "median_cpu_seconds": round(cpu, 2),
            "articles_per_cpu_s": round(variant.records / cpu),
            "cpu_time_to_baseline": round(cpu / baseline_cpu, 2),
            "median_peak_rss_mib": round(
                statistics.median(run.peak_rss_mib for run in runs[variant.name]), 1
            ),
            "max_peak_rss_mib": round(max(run.peak_rss_mib for run in runs[variant.name]), 1),
            "seconds": [round(run.seconds, 2) for run in runs[variant.name]],
        }
    exports = [v for v in variants if v.command[0] == str(MONITOR) and v.records]
    slowest = min(results["variants"][v.name]["articles_per_s"] for v in exports)
    highest = max(results["variants"][v.name]["max_peak_rss_mib"] for v in variants[:-1])
    results["targets"] = {
        "slowest_export_articles_per_s": slowest,
        "rate_met": slowest >= TARGET_ARTICLES_PER_S,
        "highest_peak_rss_mib": highest,
        "memory_met": highest < TARGET_PEAK_RSS_MIB,
    }
    text = json.dumps(results, indent=2)
    print(text)
    if arguments.json:
        arguments.json.parent.mkdir(parents=True, exist_ok=True)
        arguments.json.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
