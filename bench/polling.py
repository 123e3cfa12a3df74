"""Polling cost: one cycle over 1,000 feeds that answer 304, and over 1,000 feeds of 50
items of which 5 are new.

    .venv/bin/python -m bench.polling [--feeds 1000] [--items 50] [--new 5] [--runs 3]
        [--backends sqlite,postgresql] [--changed-backends sqlite] [--changed-cycles 1]
        [--postgres-url URL] [--profile-dir DIR [--profile-changed]] [--monitor-src DIR]
        [--markdown OUT.md] [--json OUT.json]

A separate server process (bench/benchserver.py) serves two sets of `--feeds` RSS feeds
of `--items` items each on 127.0.0.1:

- **not modified**: the same items on every request; with the ETag monitor saved, the
  server answers 304.
- **changed**: each cycle the window of items moves by `--new`: 5 items never listed
  before, 45 already seen. The new items link to realistic article pages
  (bench/sitegen.py: generated stories with a quarter syndicated and a quarter auto-blog
  copies, the weight of real news pages), so processing them costs what real articles cost.

A cycle is `monitor run-once` over every feed (the installed command: poll each feed,
process each new entry). The database starts as a running daemon's would: the items the
feeds list before the first measured cycle are recorded as done (rows in `entries`,
written here directly), and one unmeasured cycle fetches every feed in full, so that
monitor holds each feed's ETag and the next cycle is a conditional poll.

Measured per cycle, for the whole `monitor run-once` process: wall time and CPU time
(user + system, from the kernel's accounting of the child process). A copy of the same
cycle run by bench/polling_cycle.py splits it into the start (imports, config, database,
feeds table) and the cycle itself (what a running daemon pays each time round). The
server's request counts check that the cycle did what it should (304s, pages fetched).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import tomli_w

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.benchserver import NEW_ITEMS_FILE, ServerProcess, item_guid, old_item_path  # noqa: E402
from bench.dedupcorpus.spinner import SynonymTable  # noqa: E402
from bench.profile_summary import summarise_profile  # noqa: E402
from bench.sitegen import TopicFilter, generated_documents, write_bench_site  # noqa: E402
from bench.throughput import (  # noqa: E402
    FETCH,
    check_monitor_import,
    describe_monitor,
    measured_monitor,
    monitor_environment,
    postgres_schema,
    use_monitor_source,
)

MONITOR = Path(sys.executable).parent / "monitor"
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
TARGET_WALL = 10.0
TARGET_CPU = 5.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--feeds", type=int, default=1000, help="feeds of each kind (1000)")
    parser.add_argument("--items", type=int, default=50, help="items per feed (50)")
    parser.add_argument("--new", type=int, default=5, help="new items per changed feed (5)")
    parser.add_argument("--runs", type=int, default=3, help="measured not-modified cycles (3)")
    parser.add_argument("--changed-cycles", type=int, default=1, help="measured changed cycles (1)")
    parser.add_argument(
        "--backends",
        default="sqlite,postgresql",
        help="databases for the not-modified cycles (sqlite,postgresql)",
    )
    parser.add_argument(
        "--changed-backends",
        default="sqlite",
        help="databases for the changed cycles (sqlite; each cycle takes minutes)",
    )
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("MONITOR_TEST_POSTGRES_URL", DEFAULT_POSTGRES),
        help="PostgreSQL to measure on; a fresh schema per scenario (%(default)s)",
    )
    parser.add_argument(
        "--profile-dir",
        type=Path,
        help="also profile one more not-modified cycle on SQLite; stats written here",
    )
    parser.add_argument(
        "--profile-changed",
        action="store_true",
        help="with --profile-dir, also profile one more changed cycle on SQLite (minutes)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated pages (0)")
    parser.add_argument("--markdown", type=Path, help="also write the report here")
    parser.add_argument("--json", type=Path, help="write the results as JSON here")
    parser.add_argument("--workdir", type=Path, help="build the site here and keep it")
    parser.add_argument(
        "--monitor-src",
        type=Path,
        help="measure the monitor package in this folder instead of the installed one",
    )
    args = parser.parse_args(argv)
    if args.profile_dir:
        args.profile_dir = args.profile_dir.resolve()  # the cycles run in another directory
    args.backends = [b for b in args.backends.split(",") if b]
    args.changed_backends = [b for b in args.changed_backends.split(",") if b]
    for backend in (*args.backends, *args.changed_backends):
        if backend not in ("sqlite", "postgresql"):
            parser.error(f"unknown backend {backend!r} (sqlite, postgresql)")
    if min(args.feeds, args.items, args.new, args.runs) < 1 or args.new > args.items:
        parser.error("--feeds, --items, --new and --runs must be at least 1, --new ≤ --items")
    return args


def log(message: str) -> None:
    print(f"polling: {message}", file=sys.stderr, flush=True)


# The site


def build_site(args: argparse.Namespace, root: Path) -> int:
    """The pages the changed feeds' new items link to; returns how many."""
    changed_cycles = args.changed_cycles + (1 if args.profile_dir and args.profile_changed else 0)
    cycles = changed_cycles * max(1, len(args.changed_backends))
    return write_new_item_pages(root, int(args.feeds * args.new * cycles), seed=args.seed)


def write_new_item_pages(root: Path, count: int, *, seed: int) -> int:
    """`count` generated article pages under `root` (bench/sitegen.py), listed in a shuffled
    order in `root/poll-new-items.json`, which the live feeds of bench/benchserver.py link
    their new items to; returns `count`."""
    if count == 0:
        return 0
    documents, _ = generated_documents(
        count, seed=seed, table=SynonymTable.load(), topic=TopicFilter()
    )
    manifest = write_bench_site(documents, root, feeds=1, order_seed=seed + 1, seed=seed)
    by_id = {entry.doc_id: path for path, entry in manifest.items()}
    items = [
        {
            "path": by_id[document.doc_id],
            "title": document.title,
            "description": document.paragraphs[0][:300],
        }
        for document in documents
    ]
    random.Random(f"poll-order:{seed}").shuffle(items)
    (root / NEW_ITEMS_FILE).write_text(json.dumps(items), encoding="utf-8")
    return count


# Databases and configs


def write_config(
    directory: Path, server: ServerProcess, kind: str, feeds: int, database_url: str
) -> Path:
    document: dict[str, Any] = {
        "database": {"url": database_url},
        "fetch": FETCH,
        "http": {"port": 0},
        # The shipped topic rules would not change the cost of a 304; the changed feeds'
        # pages all match them (bench/sitegen.py) and are tagged by these rules.
        "topic": _shipped()["topic"],
        "tags": _shipped()["tags"],
        "feeds": [
            {
                "name": f"{kind} feed {number}",
                "url": server.url(f"/poll/{kind}/feed-{number}.rss"),
                "interval": "15m",
            }
            for number in range(feeds)
        ],
    }
    path = directory / "config.toml"
    path.write_text(tomli_w.dumps(document), encoding="utf-8")
    return path


def _shipped() -> dict[str, Any]:
    import tomllib

    data: dict[str, Any] = tomllib.loads((REPO / "config.toml").read_text(encoding="utf-8"))
    return data


def preseed(
    config: Path, server: ServerProcess, kind: str, feeds: int, items: int, first: int = 0
) -> float:
    """Record the items `first`… `first + items - 1` of every feed (what the feeds list
    before the first cycle) as done, as a daemon that has been running would have; returns
    the seconds it took. Entries are matched by GUID, so the URL recorded for an item that
    links to an article page is a stand-in."""
    from monitor.config import load_settings
    from monitor.runner import open_store
    from monitor.storage.schema import Entry
    from monitor.urls import canonical_url

    started = time.perf_counter()
    settings = load_settings(config, environ={})
    store = open_store(settings)
    feed_ids = store.sync_feeds(settings.feeds)
    seen = datetime.now(UTC) - timedelta(days=1)
    rows = []
    for number in range(feeds):
        feed_id = feed_ids[server.url(f"/poll/{kind}/feed-{number}.rss")]
        for index in range(first, first + items):
            link = server.url(old_item_path(kind, number, index))
            rows.append(
                {
                    "feed_id": feed_id,
                    "guid": item_guid(kind, number, index),
                    "url": canonical_url(link),
                    "link": link,
                    "title": f"Provincial news {kind} {number}-{index}",
                    "published_at": seen,
                    "categories": '["Cambodia", "News"]',
                    "first_seen_at": seen,
                    "last_attempt_at": seen,
                    "attempts": 1,
                    "outcome": "off_topic",
                    "reason": "off_topic",
                    "error": "seeded by bench/polling.py",
                }
            )
    with store.engine.begin() as connection:
        for start in range(0, len(rows), 5000):
            connection.execute(sa.insert(Entry), rows[start : start + 5000])
    store.engine.dispose()
    return time.perf_counter() - started


@contextlib.contextmanager
def database(backend: str, directory: Path, postgres_url: str) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{directory / 'monitor.db'}"
    else:
        with postgres_schema(postgres_url) as url:
            yield url


# Cycles


@dataclass(frozen=True, slots=True)
class Cycle:
    seconds: float
    cpu_seconds: float
    requests: int
    not_modified: int
    server_cpu_seconds: float
    inside: dict[str, Any] | None = None
    """bench/polling_cycle.py's own figures (start and cycle), when it ran the cycle."""
    summary: str = ""


def run_cycle(
    config: Path,
    server: ServerProcess,
    *,
    inside: bool,
    profile: Path | None = None,
    timeout: float = 3600,
) -> Cycle:
    """One `monitor run-once` (or bench/polling_cycle.py when `inside`), measured."""
    if inside:
        command = [sys.executable, "-m", "bench.polling_cycle", str(config)]
        if profile is not None:
            command += ["--profile", str(profile)]
    else:
        command = [str(MONITOR), "--config", str(config), "--log-level", "WARNING", "run-once"]
    environment = monitor_environment(str(REPO))
    before_server = server.stats()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        env=environment,
        timeout=timeout,
        check=False,
        cwd=config.parent,
    )
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    after_server = server.stats()
    if result.returncode != 0:
        raise SystemExit(
            f"polling: {' '.join(command[:3])}… failed (exit {result.returncode}):\n"
            f"{result.stderr[-4000:]}"
        )
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    data = json.loads(result.stdout.strip().splitlines()[-1]) if inside else None
    if data is not None and Path(data["monitor"]).resolve().parent != measured_monitor():
        raise SystemExit(f"polling: the cycle ran {data['monitor']}, not {measured_monitor()}")
    return Cycle(
        seconds=seconds,
        cpu_seconds=cpu,
        # Two of the stats requests are ours.
        requests=after_server["requests"] - before_server["requests"] - 1,
        not_modified=after_server["not_modified"] - before_server["not_modified"],
        server_cpu_seconds=after_server["cpu_seconds"] - before_server["cpu_seconds"],
        inside=data,
        summary="" if inside else result.stdout.strip(),
    )


def entry_outcomes(database_url: str) -> dict[str, int]:
    from monitor.storage.database import create_database_engine

    engine = create_database_engine(database_url)
    try:
        with engine.connect() as connection:
            return {
                str(outcome): int(count)
                for outcome, count in connection.execute(
                    sa.text("SELECT outcome, count(*) FROM entries GROUP BY outcome")
                )
            }
    finally:
        engine.dispose()


@dataclass(slots=True)
class Scenario:
    name: str
    backend: str
    feeds: int
    preseed_seconds: float = 0.0
    first_cycle: dict[str, Any] = field(default_factory=dict)
    command: list[dict[str, Any]] = field(default_factory=list)
    """`monitor run-once` cycles."""
    inside: list[dict[str, Any]] = field(default_factory=list)
    """bench/polling_cycle.py cycles."""
    problems: list[str] = field(default_factory=list)
    profile: dict[str, Any] | None = None


def not_modified_scenario(
    args: argparse.Namespace, backend: str, server: ServerProcess, work: Path
) -> Scenario:
    scenario = Scenario("not modified (304)", backend, args.feeds)
    directory = work / f"static-{backend}"
    directory.mkdir()
    with database(backend, directory, args.postgres_url) as url:
        config = write_config(directory, server, "static", args.feeds, url)
        scenario.preseed_seconds = preseed(config, server, "static", args.feeds, args.items)
        first = run_cycle(config, server, inside=False)
        scenario.first_cycle = asdict(first)
        log(f"{backend}: first (full) cycle of {args.feeds} feeds: {first.seconds:.1f}s")
        for number in range(1, args.runs + 1):
            for inside in (False, True):
                cycle = run_cycle(config, server, inside=inside)
                (scenario.inside if inside else scenario.command).append(asdict(cycle))
                if cycle.not_modified != args.feeds:
                    scenario.problems.append(
                        f"run {number}: {cycle.not_modified} answers 304 for {args.feeds} feeds"
                    )
                if cycle.requests != args.feeds:
                    scenario.problems.append(
                        f"run {number}: {cycle.requests} requests for {args.feeds} feeds"
                    )
                what = "polling_cycle" if inside else "monitor run-once"
                split = (
                    f" (start {cycle.inside['start_seconds']:.1f}s, cycle"
                    f" {cycle.inside['cycle_seconds']:.1f}s wall /"
                    f" {cycle.inside['cycle_cpu_seconds']:.1f}s CPU)"
                    if cycle.inside
                    else ""
                )
                log(
                    f"{backend}: 304 cycle {number} ({what}): {cycle.seconds:.1f}s wall,"
                    f" {cycle.cpu_seconds:.1f}s CPU{split}"
                )
        if args.profile_dir and backend == "sqlite":
            path = args.profile_dir / "polling-304.prof"
            run_cycle(config, server, inside=True, profile=path)
            scenario.profile = summarise_profile(path)
    return scenario


def changed_scenario(
    args: argparse.Namespace, backend: str, server: ServerProcess, work: Path, generation: int
) -> tuple[Scenario, int]:
    """Starts at `generation` of the live feeds; returns the scenario and the last
    generation it used."""
    scenario = Scenario(f"{args.new} new of {args.items}", backend, args.feeds)
    directory = work / f"live-{backend}"
    directory.mkdir()
    new_per_cycle = args.feeds * args.new
    with database(backend, directory, args.postgres_url) as url:
        config = write_config(directory, server, "live", args.feeds, url)
        # The window of generation g starts at item g * new: seed what it lists.
        server.set_generation(generation)
        scenario.preseed_seconds = preseed(
            config, server, "live", args.feeds, args.items, first=generation * args.new
        )
        first = run_cycle(config, server, inside=False)
        scenario.first_cycle = asdict(first)
        log(f"{backend}: first (full, nothing new) cycle: {first.seconds:.1f}s")
        profiled = 1 if args.profile_dir and args.profile_changed and backend == "sqlite" else 0
        for number in range(1, args.changed_cycles + 1 + profiled):
            generation += 1
            server.set_generation(generation)
            before = entry_outcomes(url)
            profile = (
                args.profile_dir / "polling-changed.prof"
                if args.profile_dir and number > args.changed_cycles
                else None
            )
            cycle = run_cycle(config, server, inside=True, profile=profile)
            after = entry_outcomes(url)
            added = {k: after.get(k, 0) - before.get(k, 0) for k in after}
            unexpected = {k: v for k, v in added.items() if v and k not in ("stored", "duplicate")}
            if sum(added.values()) != new_per_cycle or unexpected:
                scenario.problems.append(
                    f"cycle {number}: new entries {added} for {new_per_cycle} new items"
                )
            if cycle.requests < args.feeds + new_per_cycle:
                scenario.problems.append(
                    f"cycle {number}: {cycle.requests} requests for {args.feeds} feeds and"
                    f" {new_per_cycle} pages"
                )
            assert cycle.inside is not None
            log(
                f"{backend}: changed cycle {number}{' (profiled)' if profile else ''}:"
                f" {cycle.seconds:.1f}s wall, {cycle.cpu_seconds:.1f}s CPU (cycle"
                f" {cycle.inside['cycle_seconds']:.1f}s); outcomes of the new entries {added}"
            )
            if profile is not None:
                scenario.profile = summarise_profile(profile)
            else:
                scenario.inside.append({**asdict(cycle), "new_outcomes": added})
    return scenario, generation


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def render(args: argparse.Namespace, scenarios: list[Scenario], pages: int, setup: float) -> str:
    lines = [
        "# Polling",
        "",
        f"- {args.feeds} feeds per scenario, {args.items} items each; changed feeds: {args.new}"
        f" new items per cycle ({pages} article pages generated); set-up {setup:.0f}s",
        f"- measured: {describe_monitor()}",
        "- load average at the end: " + ", ".join(f"{a:.1f}" for a in os.getloadavg()),
        f"- not-modified cycles: {args.runs} of `monitor run-once` and {args.runs} of"
        " bench/polling_cycle.py per backend, medians",
        "",
        "| scenario | database | whole run-once: wall s | CPU s | start: wall s | CPU s |"
        " cycle: wall s | CPU s | first (full) cycle s | server CPU s |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for scenario in scenarios:
        whole = scenario.command or scenario.inside
        inside = [c["inside"] for c in scenario.inside if c.get("inside")]
        lines.append(
            f"| {scenario.name} | {scenario.backend} |"
            f" {median([c['seconds'] for c in whole]):.1f} |"
            f" {median([c['cpu_seconds'] for c in whole]):.1f} |"
            f" {median([c['start_seconds'] for c in inside]):.1f} |"
            f" {median([c['start_cpu_seconds'] for c in inside]):.1f} |"
            f" {median([c['cycle_seconds'] for c in inside]):.1f} |"
            f" {median([c['cycle_cpu_seconds'] for c in inside]):.1f} |"
            f" {scenario.first_cycle.get('seconds', float('nan')):.1f} |"
            f" {median([c['server_cpu_seconds'] for c in whole]):.1f} |"
        )
    lines.append("")
    for scenario in scenarios:
        if scenario.name.startswith("not modified"):
            whole = scenario.command
            wall = median([c["seconds"] for c in whole])
            cpu = median([c["cpu_seconds"] for c in whole])
            verdict = "met" if wall <= TARGET_WALL and cpu <= TARGET_CPU else "NOT met"
            lines.append(
                f"- target, {scenario.backend}: {scenario.feeds:,} polls answered 304 in"
                f" ≤ {TARGET_WALL:.0f}s"
                f" wall and ≤ {TARGET_CPU:.0f}s CPU: whole process {wall:.1f}s / {cpu:.1f}s:"
                f" **{verdict}**"
            )
        for problem in scenario.problems:
            lines.append(f"- PROBLEM ({scenario.name}, {scenario.backend}): {problem}")
    for scenario in scenarios:
        if scenario.profile:
            lines += [
                "",
                f"## Profile: {scenario.name}, {scenario.backend} (cycle only, cProfile)",
                "",
                scenario.profile["markdown"],
            ]
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    use_monitor_source(args.monitor_src)
    began = time.perf_counter()
    temporary = None
    if args.workdir:
        work = args.workdir.resolve()
        if work.exists():
            shutil.rmtree(work)
        work.mkdir(parents=True)
    else:
        temporary = tempfile.TemporaryDirectory(prefix="bench-polling-")
        work = Path(temporary.name)
    if args.profile_dir:
        args.profile_dir.mkdir(parents=True, exist_ok=True)
    scenarios: list[Scenario] = []
    try:
        root = work / "site"
        root.mkdir()
        pages = build_site(args, root)
        log(f"{pages} article pages for the new items written")
        extra = (
            "--poll-feeds",
            str(args.feeds),
            "--poll-items",
            str(args.items),
            "--poll-new",
            str(args.new),
        )
        check_monitor_import(work)
        check_monitor_import(work, str(REPO))
        with ServerProcess(root, extra=extra) as server:
            setup = time.perf_counter() - began
            for backend in args.backends:
                scenarios.append(not_modified_scenario(args, backend, server, work))
            generation = 0
            for backend in args.changed_backends:
                scenario, generation = changed_scenario(args, backend, server, work, generation)
                scenarios.append(scenario)
    finally:
        if temporary is not None:
            temporary.cleanup()
    report = render(args, scenarios, pages, setup)
    print(report)
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(report, encoding="utf-8")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        data = {"args": {k: str(v) for k, v in vars(args).items()}, "setup_seconds": setup}
        data["scenarios"] = [asdict(s) for s in scenarios]
        args.json.write_text(json.dumps(data, indent=2), encoding="utf-8")
    return 1 if any(s.problems for s in scenarios) else 0


if __name__ == "__main__":
    sys.exit(main())
