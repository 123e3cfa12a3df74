"""Evaluate monitor's duplicate detection end to end on the story corpus.

    .venv/bin/python bench/dedup_eval.py [--stories bench/corpus/stories] [--orders 3]
        [--database-url URL] [--markdown OUT.md] [--json OUT.json] [--subset N]

Builds every document from the stories (originals, their syndicated, wrapped and spun
copies, the real seed repost, rewrites and follow-ups), writes them as a static site
with feeds into a temporary folder, serves it on 127.0.0.1 with tests/localsite.py, and
runs `monitor --config … run-once` once per arrival order (a shuffled order of the feed
entries, so that copies often arrive before their originals), each into a fresh
database. Each run is scored against the labels (bench/dedupcorpus/score.py); the runs
must give the same clusters whatever the order; the in-memory baselines (exact hash,
plain MinHash LSH) are scored on the same documents for comparison.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.dedupcorpus.baselines import run_baselines  # noqa: E402
from bench.dedupcorpus.score import (  # noqa: E402
    Score,
    compare_markdown,
    partitions_differ,
    score_database,
)
from bench.dedupcorpus.site import (  # noqa: E402
    ExtractionProblem,
    Manifest,
    Order,
    check_extraction,
    write_feeds,
    write_site,
)
from bench.dedupcorpus.spinner import SynonymTable, SynonymTableError  # noqa: E402
from bench.dedupcorpus.stories import Story, StoryError, length_warnings, load_stories  # noqa: E402
from bench.dedupcorpus.variants import Document, build_documents, select_subset  # noqa: E402
from tests.localsite import LocalSite  # noqa: E402

MONITOR = Path(sys.executable).parent / "monitor"
DEFAULT_STORIES = REPO / "bench" / "corpus" / "stories"


@dataclass(frozen=True, slots=True)
class Run:
    order: Order
    seconds: float
    summary: str
    score: Score


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--stories", type=Path, default=DEFAULT_STORIES, help="story folder")
    parser.add_argument(
        "--orders", type=int, default=3, help="shuffled arrival orders, one run each (3)"
    )
    parser.add_argument(
        "--chronological",
        action="store_true",
        help="also run once with the feeds in publication order",
    )
    parser.add_argument(
        "--database-url",
        help="run monitor on this database instead of a fresh SQLite file per order;"
        " WARNING: its monitor tables are dropped (`monitor db downgrade base`) before each run",
    )
    parser.add_argument("--markdown", type=Path, help="also write the report here")
    parser.add_argument("--json", type=Path, help="write the full results as JSON here")
    parser.add_argument(
        "--subset",
        type=int,
        metavar="N",
        help="only N originals, with all their copies, follow-ups and rewrites",
    )
    parser.add_argument("--feeds", type=int, default=4, help="feeds the documents are split into")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated copies (0)")
    parser.add_argument(
        "--synonyms",
        type=Path,
        help="the spinner's synonym table (default: bench/dedupcorpus/synonyms.tsv); another"
        " table measures recall against a spinner monitor was not tuned on",
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        help="write the site, configs and databases here and keep them (default: a temp dir)",
    )
    parser.add_argument(
        "--no-site-check",
        action="store_true",
        help="skip checking that trafilatura extracts each page's paragraphs",
    )
    parser.add_argument(
        "--timeout", type=float, default=3600, help="seconds allowed per monitor run (3600)"
    )
    args = parser.parse_args(argv)
    if args.orders < 0 or (args.orders == 0 and not args.chronological):
        parser.error("--orders must be at least 1 (or 0 with --chronological)")
    if args.subset is not None and args.subset < 1:
        parser.error("--subset must be at least 1")
    return args


def corpus_summary(stories: dict[str, Story], documents: list[Document]) -> list[str]:
    kinds = Counter(story.kind for story in stories.values())
    languages = Counter(story.language for story in stories.values())
    variants = Counter(document.variant for document in documents)
    templates = Counter(document.template for document in documents)
    return [
        f"- stories: {len(stories)} ("
        + ", ".join(f"{kind} {count}" for kind, count in sorted(kinds.items()))
        + "; languages "
        + ", ".join(f"{lang} {count}" for lang, count in sorted(languages.items()))
        + ")",
        f"- documents: {len(documents)} ("
        + ", ".join(f"{variant} {count}" for variant, count in variants.items())
        + ")",
        "- page templates: "
        + ", ".join(f"{template} {count}" for template, count in sorted(templates.items())),
    ]


def write_config(directory: Path, site: LocalSite, feeds: list[str], database_url: str) -> Path:
    lines = [
        "[database]",
        f"url = {json.dumps(database_url)}",
        "",
        "[fetch]",
        "allow_private_addresses = true",
        "per_host_delay = 0",
        'timeout = "30s"',
        'user_agent = "monitor-dedup-eval (+http://127.0.0.1/)"',
        "",
    ]
    for number, feed in enumerate(feeds, start=1):
        lines += [
            "[[feeds]]",
            f'name = "eval feed {number}"',
            f"url = {json.dumps(site.url(feed))}",
            'interval = "1h"',
            "",
        ]
    path = directory / "config.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def monitor(config: Path, *arguments: str, timeout: float) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MONITOR_")}
    return subprocess.run(
        [str(MONITOR), "--config", str(config), *arguments],
        capture_output=True,
        text=True,
        env=environment,
        timeout=timeout,
        check=False,
    )


def order_name(order: Order) -> str:
    return "chronological" if order == "chronological" else f"shuffle-{order}"


def run_order(
    order: Order,
    *,
    documents: list[Document],
    manifest: Manifest,
    root: Path,
    work: Path,
    site: LocalSite,
    args: argparse.Namespace,
) -> Run:
    name = order_name(order)
    directory = work / name
    directory.mkdir(parents=True, exist_ok=True)
    feeds = write_feeds(
        documents, manifest, root, count=args.feeds, order_seed=order, directory=f"feeds/{name}"
    )
    database_url = args.database_url or f"sqlite:///{directory / 'monitor.db'}"
    config = write_config(directory, site, feeds, database_url)
    if args.database_url:
        reset = monitor(config, "db", "downgrade", "base", timeout=args.timeout)
        if reset.returncode != 0:
            raise SystemExit(f"cannot empty {args.database_url}:\n{reset.stderr}")
    started = time.monotonic()
    result = monitor(config, "--log-level", "WARNING", "run-once", timeout=args.timeout)
    seconds = time.monotonic() - started
    (directory / "monitor.log").write_text(result.stderr, encoding="utf-8")
    if result.returncode != 0:
        raise SystemExit(
            f"monitor run-once failed ({name}, exit {result.returncode}):\n{result.stderr[-4000:]}"
        )
    score = score_database(database_url, manifest, name=f"monitor ({name})")
    return Run(order, seconds, result.stdout.strip(), score)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    began = time.monotonic()
    try:
        stories = load_stories(args.stories)
    except StoryError as error:
        print(f"dedup_eval: {error}", file=sys.stderr)
        return 2
    if not stories:
        print(f"dedup_eval: no story files in {args.stories}", file=sys.stderr)
        return 2
    warnings = length_warnings(stories.values())
    if args.subset:
        stories = select_subset(stories, args.subset)
    try:
        table = SynonymTable.load(args.synonyms) if args.synonyms else SynonymTable.load()
    except (OSError, SynonymTableError) as error:
        print(f"dedup_eval: {error}", file=sys.stderr)
        return 2
    documents = build_documents(stories, seed=args.seed, table=table)
    orders: list[Order] = ["chronological"] if args.chronological else []
    orders.extend(range(1, args.orders + 1))

    temporary = None
    if args.workdir:
        work = args.workdir.resolve()
        if work.exists() and any(work.iterdir()):
            if not (work / "manifest.json").is_file():
                print(
                    f"dedup_eval: {work} is not empty and not a previous work dir", file=sys.stderr
                )
                return 2
            shutil.rmtree(work)
        work.mkdir(parents=True, exist_ok=True)
    else:
        temporary = tempfile.TemporaryDirectory(prefix="dedup-eval-")
        work = Path(temporary.name)
    try:
        root = work / "site"
        manifest = write_site(documents, root, feeds=args.feeds, order_seed="chronological")
        (work / "manifest.json").write_text(manifest.to_json(), encoding="utf-8")
        problems: list[ExtractionProblem] = []
        if not args.no_site_check:
            problems = check_extraction(documents, manifest, root)
        runs: list[Run] = []
        with LocalSite(root) as site:
            for order in orders:
                run = run_order(
                    order,
                    documents=documents,
                    manifest=manifest,
                    root=root,
                    work=work,
                    site=site,
                    args=args,
                )
                print(
                    f"dedup_eval: {order_name(order)}: monitor run-once took {run.seconds:.1f}s",
                    file=sys.stderr,
                )
                runs.append(run)
        baselines = run_baselines(documents, manifest, orders[0], label=order_name(orders[0]))
    finally:
        if temporary is not None:
            temporary.cleanup()

    monitor_scores = [run.score for run in runs]
    differing = partitions_differ(monitor_scores)
    elapsed = time.monotonic() - began
    report = render_report(
        args, stories, documents, warnings, problems, runs, baselines, differing, elapsed
    )
    print(report)
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(report, encoding="utf-8")
    if args.json:
        data: dict[str, Any] = {
            "stories": len(stories),
            "documents": len(documents),
            "subset": args.subset,
            "seed": args.seed,
            "orders": [order_name(run.order) for run in runs],
            "seconds": {order_name(run.order): round(run.seconds, 2) for run in runs},
            "total_seconds": round(elapsed, 2),
            "monitor_summaries": {order_name(run.order): run.summary for run in runs},
            "orders_agree": not differing,
            "documents_differing_between_orders": differing,
            "extraction_problems": [str(problem) for problem in problems],
            "story_warnings": warnings,
            "monitor": [score.to_dict() for score in monitor_scores],
            "baselines": [score.to_dict() for score in baselines],
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")
    return 0


def render_report(
    args: argparse.Namespace,
    stories: dict[str, Story],
    documents: list[Document],
    warnings: list[str],
    problems: list[ExtractionProblem],
    runs: list[Run],
    baselines: list[Score],
    differing: list[str],
    elapsed: float,
) -> str:
    lines = ["# Dedup evaluation", ""]
    if args.subset:
        lines.append(f"Subset: {args.subset} originals with all their documents.")
        lines.append("")
    lines += corpus_summary(stories, documents)
    if args.no_site_check:
        lines.append("- site check: skipped")
    elif problems:
        lines.append(f"- site check: {len(problems)} pages do not extract to their paragraphs:")
        lines += [f"  - {problem}" for problem in problems[:10]]
    else:
        lines.append("- site check: trafilatura extracts every page's paragraphs exactly")
    for run in runs:
        summary = "; ".join(line.strip() for line in run.summary.splitlines() if line.strip())
        lines.append(f"- monitor {order_name(run.order)}: {run.seconds:.1f}s ({summary})")
    lines.append(f"- total time: {elapsed:.1f}s")
    if warnings:
        lines.append(f"- story warnings (whole corpus): {len(warnings)}, e.g. {warnings[0]}")
    lines += ["", "## Summary", "", compare_markdown([run.score for run in runs] + baselines), ""]
    lines += ["## Order independence", ""]
    if len(runs) < 2:
        lines.append("Only one order was run.")
    elif differing:
        lines.append(
            f"The orders do NOT give the same clusters: {len(differing)} documents are grouped"
            " differently, e.g. " + ", ".join(differing[:10]) + "."
        )
    else:
        lines.append(f"All {len(runs)} orders give the same clusters.")
    lines += ["", "## Details", ""]
    for score in [run.score for run in runs] + baselines:
        lines.append(score.to_markdown())
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    sys.exit(main())
