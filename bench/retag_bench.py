"""`monitor retag` throughput on 100,000 stored articles, SQLite.

    python bench/retag_bench.py --articles 100000 --json bench/results/retag.json

Stores N articles (the texts of bench/corpus, repeated), then times, with the
tag rules of the shipped config.toml: the first retag (every tag written), a
retag with nothing to change (three times: the median is reported), and a
retag after one rule was edited. Baseline in the same run: the naive matcher
the issue warns against, one compiled regular expression per phrase per
article, over a sample of the same texts.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from monitor.config import TagRule, load_settings  # noqa: E402
from monitor.retag import RetagReport, retag  # noqa: E402
from monitor.rules import RuleSet, normalize  # noqa: E402
from monitor.storage.database import create_database_engine, upgrade_database  # noqa: E402
from monitor.storage.store import Store  # noqa: E402


def corpus_texts() -> list[tuple[str, str]]:
    texts = []
    for path in sorted((REPO / "bench" / "corpus" / "stories").glob("*.json")):
        story = json.loads(path.read_text(encoding="utf-8"))
        texts.append((story["title"], "\n".join(story["paragraphs"])))
    return texts


def fill(url: str, articles: int) -> None:
    engine = create_database_engine(url)
    upgrade_database(engine)
    texts = corpus_texts()
    rows = (
        (
            i,
            f"https://bench.example/{i}",
            texts[i % len(texts)][0],
            f"{texts[i % len(texts)][1]}\nReference {i}.",
            f"{i:064x}",
        )
        for i in range(1, articles + 1)
    )
    with engine.begin() as connection:
        raw: Any = connection.connection.driver_connection
        raw.cursor().executemany(
            "INSERT INTO articles (id, url, title, text, fetched_at, site, content_hash)"
            " VALUES (?, ?, ?, ?, '2024-01-01 00:00:00', 'bench.example', ?)",
            rows,
        )
    engine.dispose()


def timed_retag(store: Store, rules: RuleSet) -> tuple[float, RetagReport]:
    started = time.perf_counter()
    report = retag(store, rules)
    return time.perf_counter() - started, report


def naive_rate(rules: list[TagRule], sample: list[tuple[str, str]]) -> float:
    """Articles per second with one regex per phrase per article (the baseline)."""
    compiled = [
        [re.compile(rf"(?<!\w){re.escape(normalize(p))}(?!\w)") for p in rule.any + rule.all]
        for rule in rules
    ]
    started = time.perf_counter()
    for title, text in sample:
        haystack = normalize(f"{title}\n{text}")
        for patterns in compiled:
            for pattern in patterns:
                if pattern.search(haystack):
                    break
    return len(sample) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--articles", type=int, default=100_000)
    parser.add_argument("--baseline-sample", type=int, default=2_000)
    parser.add_argument("--json", type=Path)
    arguments = parser.parse_args()

    settings = load_settings(REPO / "config.toml", environ={})
    rules = RuleSet.from_settings(settings)
    with tempfile.TemporaryDirectory() as directory:
        url = f"sqlite:///{Path(directory) / 'retag.db'}"
        fill(url, arguments.articles)
        store = Store(create_database_engine(url))
        first_seconds, first = timed_retag(store, rules)
        idle = [timed_retag(store, rules) for _ in range(3)]
        if any(report.changed for _, report in idle):
            raise SystemExit("a second retag changed tags: not idempotent")
        # The first tag narrowed to one phrase: its first rule keeps one, and any other
        # rule giving the same tag is dropped.
        narrowed = settings.tags[0]
        edited_rules = [narrowed.model_copy(update={"any": narrowed.any[:1]})] + [
            rule for rule in settings.tags if rule.name != narrowed.name
        ]
        edited_seconds, edited = timed_retag(store, RuleSet.compile(settings.topic, edited_rules))
    idle_median = statistics.median(seconds for seconds, _ in idle)
    sample = corpus_texts() * (arguments.baseline_sample // len(corpus_texts()) + 1)
    baseline = naive_rate(list(settings.tags), sample[: arguments.baseline_sample])
    results = {
        "articles": arguments.articles,
        "tag_rules": len(settings.tags),
        "phrases": len(rules.phrases),
        "first_retag_articles_per_s": arguments.articles / first_seconds,
        "first_retag_tags_added": sum(first.added.values()),
        "idle_retag_articles_per_s_median_of_3": arguments.articles / idle_median,
        "edited_rule": edited_rules[0].name,
        "edited_retag_articles_per_s": arguments.articles / edited_seconds,
        "edited_retag_removed": dict(edited.removed),
        "edited_retag_added": dict(edited.added),
        "baseline_regex_per_phrase_articles_per_s": baseline,
        "ratio_idle_to_baseline": arguments.articles / idle_median / baseline,
    }
    text = json.dumps(results, indent=2)
    print(text)
    if arguments.json:
        arguments.json.parent.mkdir(parents=True, exist_ok=True)
        arguments.json.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
