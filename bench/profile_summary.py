"""Where a profiled monitor run spends its time: pipeline stages and libraries.

    summary = summarise_profile(Path("run.prof"))   # from python -m cProfile -o run.prof …
    print(summary["markdown"])

Two views of one cProfile file:

- **stages**: the cumulative time of the functions that are monitor's stages (fetch a
  feed, parse it, claim entries, fetch a page, extract, clean, match the rules, sign for
  dedup, the ingest transaction…), as a share of the whole process;
- **libraries**: every function's own time (tottime) summed by the library its code is
  in (trafilatura and lxml, SQLAlchemy and the database driver, httpx, feedparser…),
  so the shares add up to 100%.

cProfile slows Python code more than C code (lxml, sqlite3), so shares are indicative;
the unprofiled runs give the real totals.
"""

from __future__ import annotations

import pstats
from pathlib import Path
from typing import Any

# (path suffix of the file, function name, label); nested stages are indented in the label.
STAGES: tuple[tuple[str, str, str], ...] = (
    ("monitor/cli.py", "main", "whole command (after imports)"),
    ("monitor/runner.py", "open_store", "start: connect, check migrations, sync feeds"),
    ("monitor/runner.py", "run_once", "the cycle: every feed polled, every entry processed"),
    ("monitor/http.py", "feed", "  fetch feeds (HTTP)"),
    ("monitor/feeds.py", "parse_feed", "  parse feeds (feedparser)"),
    ("monitor/storage/store.py", "claim_entries", "  claim entries (DB)"),
    # Pages are fetched in other threads and analysed in worker processes, which this
    # profile (of the poll's own thread) does not see; with workers = 0 it sees analysis.
    ("monitor/pipeline.py", "_process_claims", "  process entries (claim, store, wait)"),
    ("monitor/analysis.py", "result", "    waiting for a page's analysis"),
    ("monitor/analysis.py", "analyse", "    analyse: extract, clean, dedup features"),
    ("monitor/http.py", "page", "    fetch pages (HTTP, robots.txt)"),
    ("monitor/extract.py", "extract_article", "    extract (trafilatura and the rest)"),
    ("trafilatura/core.py", "bare_extraction", "      trafilatura.bare_extraction"),
    ("trafilatura/utils.py", "load_html", "      trafilatura.load_html (lxml parse)"),
    ("monitor/extract.py", "published_time_in_metadata", "      publication time from metadata"),
    ("monitor/extract.py", "detect_language", "      language (py3langid)"),
    ("monitor/clean.py", "clean_article", "    clean"),
    ("monitor/rules.py", "match", "    topic and tag rules"),
    ("monitor/tagging.py", "tag_article", "    tags"),
    ("monitor/dedup.py", "prepare", "    dedup signature (tokens, shingles, MinHash)"),
    ("monitor/storage/store.py", "ingest", "    ingest transaction (dedup query, verify, write)"),
    ("monitor/storage/index.py", "candidates", "      candidate query and verification"),
    ("monitor/storage/store.py", "_insert_article", "      insert article, tags, index rows"),
    ("monitor/storage/store.py", "_merge_other_copies", "      merge other copies"),
    ("monitor/storage/store.py", "store_duplicate", "    store same-URL duplicates (DB)"),
    ("monitor/storage/store.py", "record_off_topic", "    record off-topic entries (DB)"),
    ("monitor/storage/store.py", "retryable_entries", "  retryable entries query (DB)"),
    ("monitor/storage/store.py", "feed_state", "  feed state (DB)"),
    ("monitor/storage/store.py", "record_poll_success", "  record poll (DB)"),
    ("monitor/storage/store.py", "outcomes_of", "  outcome summary (DB)"),
    ("sqlalchemy/engine/base.py", "commit", "commits, all (DB)"),
    ("monitor/urls.py", "canonical_url", "canonical URLs, all (courlan)"),
)

# (substring of the file or function description, library); first match wins.
LIBRARIES: tuple[tuple[str, str], ...] = (
    ("trafilatura", "trafilatura"),
    ("htmldate", "htmldate (dates)"),
    ("justext", "trafilatura (justext fallback)"),
    ("lxml", "lxml (HTML parsing, XPath, cleaning)"),
    ("py3langid", "py3langid (language)"),
    ("numpy", "numpy (language, MinHash)"),
    ("courlan", "courlan (URLs)"),
    ("feedparser", "feedparser"),
    ("sgmllib", "feedparser"),
    ("xml.sax", "feedparser"),
    ("expat", "feedparser"),
    ("pyexpat", "feedparser"),
    ("monitor/similarity", "monitor dedup (tokens, shingles, MinHash, compare)"),
    ("monitor/tokens", "monitor dedup (tokens, shingles, MinHash, compare)"),
    ("monitor/dedup", "monitor dedup (tokens, shingles, MinHash, compare)"),
    ("monitor/repost", "monitor dedup (tokens, shingles, MinHash, compare)"),
    ("datasketch", "monitor dedup (tokens, shingles, MinHash, compare)"),
    ("monitor/storage", "SQLAlchemy, driver, database"),
    ("sqlalchemy", "SQLAlchemy, driver, database"),
    ("sqlite3", "SQLAlchemy, driver, database"),
    ("psycopg", "SQLAlchemy, driver, database"),
    ("alembic", "Alembic (migration check at start)"),
    ("mako", "Alembic (migration check at start)"),
    ("httpx", "httpx, sockets"),
    ("httpcore", "httpx, sockets"),
    ("h11", "httpx, sockets"),
    ("socket", "httpx, sockets"),
    ("select", "httpx, sockets"),
    ("ssl", "httpx, sockets"),
    ("monitor/http", "httpx, sockets"),
    ("monitor/rules", "monitor rules (topic, tags)"),
    ("ahocorasick", "monitor rules (topic, tags)"),
    ("monitor/tagging", "monitor rules (topic, tags)"),
    ("monitor/extract", "monitor extract (metadata, glue)"),
    ("monitor/clean", "monitor clean"),
    ("unicodedata", "monitor clean"),
    ("re.py", "regular expressions"),
    ("re/", "regular expressions"),
    ("regex", "regular expressions"),
    ("_sre", "regular expressions"),
    ("'compile'", "regular expressions"),
    ("pydantic", "pydantic (config)"),
    ("<frozen importlib", "imports"),
    ("builtins.exec", "imports"),
    ("marshal", "imports"),
    ("posix", "imports"),
    ("monitor/pipeline", "monitor pipeline, runner"),
    ("monitor/runner", "monitor pipeline, runner"),
)


def _function_key(path: str, function: str) -> str:
    return f"{path}:{function}"


def summarise_profile(path: Path) -> dict[str, Any]:
    """The two views (see the module doc) as data and as Markdown."""
    stats = pstats.Stats(str(path))
    raw: dict[tuple[str, int, str], tuple[int, int, float, float, Any]] = stats.stats  # type: ignore[attr-defined]
    total = float(stats.total_tt)  # type: ignore[attr-defined]
    stages: list[dict[str, Any]] = []
    for suffix, function, label in STAGES:
        matching = [
            value
            for (filename, _, name), value in raw.items()
            if name == function and filename.replace("\\", "/").endswith(suffix)
        ]
        if not matching:
            continue
        calls = sum(value[1] for value in matching)
        cumulative = max(value[3] for value in matching)
        stages.append(
            {"stage": label, "calls": calls, "seconds": cumulative, "share": cumulative / total}
        )
    libraries: dict[str, float] = {}
    for (filename, _, name), value in raw.items():
        description = f"{filename}:{name}"
        library = next(
            (label for needle, label in LIBRARIES if needle in description), "other (Python)"
        )
        libraries[library] = libraries.get(library, 0.0) + value[2]
    by_library = sorted(libraries.items(), key=lambda item: -item[1])
    lines = [
        f"Profiled process: {total:.1f} s of own time (cProfile's overhead included).",
        "",
        "| stage (cumulative time) | calls | s | share |",
        "|---|---:|---:|---:|",
    ]
    for stage in stages:
        label = stage["stage"]
        indent = (len(label) - len(label.lstrip())) // 2
        lines.append(
            f"| {'· ' * indent}{label.strip()} | {stage['calls']} | {stage['seconds']:.1f} |"
            f" {stage['share']:.0%} |"
        )
    lines += ["", "| library (own time) | s | share |", "|---|---:|---:|"]
    for library, seconds in by_library:
        lines.append(f"| {library} | {seconds:.1f} | {seconds / total:.0%} |")
    return {
        "total_seconds": total,
        "stages": stages,
        "libraries": [{"library": k, "seconds": v, "share": v / total} for k, v in by_library],
        "markdown": "\n".join(lines),
    }


def main(argv: list[str] | None = None) -> int:
    import sys

    arguments = sys.argv[1:] if argv is None else argv
    if len(arguments) != 1:
        print("usage: python -m bench.profile_summary RUN.prof", file=sys.stderr)
        return 2
    print(summarise_profile(Path(arguments[0]))["markdown"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
