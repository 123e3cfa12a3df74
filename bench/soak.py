"""Soak: `monitor run` for hours of simulated schedule over a database of 100,000 articles,
its resident memory sampled all along.

    .venv/bin/python -m bench.soak [--minutes 25] [--articles 100000] [--database-dir DIR]
        [--feeds 40] [--static-feeds 10] [--interval 15] [--new-every 20] [--new 2]
        [--items 20] [--sample-every 5] [--warmup SECONDS] [--results DIR]
        [--prepare-only] [--rebuild]

**The database.** A SQLite file already holding `--articles` kept articles, with their
near-duplicate index: bench/export_bench.py builds (or reuses, from the same cache) the
articles (texts of bench/corpus, tags of the three sources, copies in `duplicates`);
then the real `monitor index rebuild --from-text` signs every article from its text and
fills `article_signatures` and `lsh_buckets` (66 band keys an article). The result is
kept in `--database-dir` (reused while the parameters, the schema revision and the
index scheme match) and each soak runs on a fresh copy of it.

**The site.** A separate server process (bench/benchserver.py) serves `--feeds` RSS feeds
of `--items` items on 127.0.0.1. `--static-feeds` of them never change (after the first
poll monitor holds their ETag and gets 304). The others are the polling benchmark's
"live" feeds: every `--new-every` seconds each lists `--new` items it never listed
before, which link to realistic article pages (bench/sitegen.py: generated stories, a
quarter with a syndicated copy, a quarter with an auto-blog copy, wrapped in ads or spun
at 15/30/50%; 45-110 KB pages), and a live feed polled before it changed answers 304.
The items the feeds list at the start are recorded as done beforehand, as a daemon that
had been running would have them (bench/polling.py's `preseed`).

**The daemon.** The installed `monitor run` (a subprocess, its log in a file) with the
shipped topic and tag rules, every feed polled every `--interval` seconds, which stands
for the 15 minutes of a production feed: the clock runs 60 times faster by default, so
each real minute is an hour of schedule. `[processing] workers` stays at its default
("auto": one worker process per core, forked from a fork server) unless `--workers`
says otherwise; no politeness delay (one local host); the HTTP endpoint off.

**The samples.** Every `--sample-every` seconds: resident memory (Rss) and proportional
set size (Pss, shared pages divided among the processes sharing them) from
/proc/PID/smaps_rollup of the daemon's main process and of each of its descendants
(found through the parent pid in /proc/*/stat: the fork server, the workers, the
multiprocessing resource tracker); the tree's total with each page counted once (its
anonymous Pss, since anonymous pages are shared only within the fork tree, plus its
resident file pages counted once, from /proc/PID/smaps): Pss also divides file pages
with unrelated processes that map the same files (other Python processes of the same
virtualenv), so on a shared machine it is lower than on a host of the daemon's own, and
it moves when they come and go; CPU time; the articles stored (read-only query); the
load average. Written to `soak-samples.csv`, the summary to `soak.json` and `soak.md`,
in `--results`.

**The figures.** Warm-up ends at the first sample where every feed has been polled,
every live feed has had a poll that found new entries (the first full cycle), and the
daemon has kept as many articles as its cache of recently kept articles' features holds
(`FEATURE_CACHE_ARTICLES` of monitor/storage/index.py: about 6 MB, the largest thing a
fresh daemon fills); `--warmup` overrides it. The band from the first full cycle is
reported too. After warm-up: min, median and max of the main process's Rss, the
tree's Pss and the tree's total, the band as ±% around the median (target: within
±10%), a linear trend per 1,000 articles, the same for the second half of the run, and
the peak over the whole run of the tree's total against 300 MB.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import hashlib
import json
import math
import os
import re
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import tomli_w

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench import export_bench  # noqa: E402
from bench.benchserver import ServerProcess  # noqa: E402
from bench.polling import preseed, write_new_item_pages  # noqa: E402
from bench.throughput import FETCH, monitor_environment  # noqa: E402
from monitor.storage import index  # noqa: E402
from monitor.storage.database import create_database_engine, schema_revisions  # noqa: E402

MONITOR = Path(sys.executable).parent / "monitor"
# Bump when the soak database's content changes, so that a cached copy is rebuilt.
SOAK_DATABASE_VERSION = 1
PRODUCTION_INTERVAL_MINUTES = 15.0
TARGET_BAND = 10.0  # ±% around the median after warm-up
TARGET_BYTES = 300 * 10**6  # "≤ 300 MB": read as 10^6 bytes, the stricter reading (286 MiB)
MIB = 2**20
SEEDED = "seeded by bench/polling.py"
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def log(message: str) -> None:
    print(f"soak: {message}", file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--minutes", type=float, default=25.0, help="real minutes of soak (%(default)s)"
    )
    parser.add_argument(
        "--articles", type=int, default=100_000, help="articles in the database (%(default)s)"
    )
    parser.add_argument(
        "--database-dir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "monitor-bench",
        help="where the generated databases are cached between runs (%(default)s)",
    )
    parser.add_argument("--feeds", type=int, default=40, help="feeds in all (%(default)s)")
    parser.add_argument(
        "--static-feeds", type=int, default=10, help="of them, never changing (%(default)s)"
    )
    parser.add_argument(
        "--interval",
        type=float,
        default=15.0,
        help="seconds between two polls of a feed, standing for 15 minutes (%(default)s)",
    )
    parser.add_argument(
        "--new-every",
        type=float,
        default=20.0,
        help="seconds between two changes of the live feeds (%(default)s)",
    )
    parser.add_argument(
        "--new", type=int, default=2, help="new items per live feed per change (%(default)s)"
    )
    parser.add_argument("--items", type=int, default=20, help="items per feed (%(default)s)")
    parser.add_argument(
        "--sample-every", type=float, default=5.0, help="seconds between samples (%(default)s)"
    )
    parser.add_argument(
        "--workers",
        type=int,
        help="[processing] workers (default: monitor's own default, one per core)",
    )
    parser.add_argument(
        "--warmup",
        type=float,
        help="seconds of warm-up (default: the first full cycle, and the feature cache full)",
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of the articles (%(default)s)")
    parser.add_argument(
        "--results",
        type=Path,
        default=REPO / "bench" / "results",
        help="where soak.json, soak.md and soak-samples.csv go (%(default)s)",
    )
    parser.add_argument(
        "--prepare-only", action="store_true", help="build the cached database and stop"
    )
    parser.add_argument("--rebuild", action="store_true", help="build the databases afresh")
    args = parser.parse_args(argv)
    if not 0 <= args.static_feeds < args.feeds:
        parser.error("--static-feeds must be at least 0 and less than --feeds")
    if min(args.minutes, args.interval, args.new_every, args.sample_every) <= 0:
        parser.error("--minutes, --interval, --new-every and --sample-every must be positive")
    if min(args.new, args.items, args.articles) < 1 or args.new > args.items:
        parser.error("--new, --items and --articles must be at least 1, --new ≤ --items")
    return args


# The database


def soak_database(
    directory: Path, articles: int, seed: int, *, rebuild: bool
) -> tuple[Path, dict[str, Any]]:
    """The cached database of `articles` articles with their near-duplicate index, built
    when missing or out of date: bench/export_bench.py's articles, then the real
    `monitor index rebuild --from-text`."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"soak-{articles}-{seed}.db"
    meta_path = path.with_suffix(".json")
    wanted = {
        "articles": articles,
        "seed": seed,
        "export_generator": export_bench.GENERATOR_VERSION,
        "soak_version": SOAK_DATABASE_VERSION,
        "index_scheme": index.SCHEME,
    }
    if not rebuild and path.exists() and meta_path.exists():
        meta: dict[str, Any] = json.loads(meta_path.read_text(encoding="utf-8"))
        engine = create_database_engine(f"sqlite:///{path}")
        current, head = schema_revisions(engine)
        engine.dispose()
        if all(meta.get(key) == value for key, value in wanted.items()) and current == head:
            log(f"reusing {path}")
            return path, meta
    meta_path.unlink(missing_ok=True)
    started = time.perf_counter()
    source, source_meta = export_bench.database(directory, articles, seed, rebuild)
    partial = path.with_suffix(".partial")
    for stale in (partial, Path(f"{partial}-wal"), Path(f"{partial}-shm")):
        stale.unlink(missing_ok=True)
    log(f"copying {source} (a consistent snapshot through SQLite's backup API) …")
    reader = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    writer = sqlite3.connect(partial)
    try:
        reader.backup(writer)
    finally:
        writer.close()
        reader.close()
    log(f"indexing {articles:,} articles with `monitor index rebuild --from-text` …")
    indexed = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="monitor-soak-index-") as scratch:
        config = Path(scratch, "config.toml")
        config.write_text(f'[database]\nurl = "sqlite:///{partial}"\n', encoding="utf-8")
        result = subprocess.run(
            [str(MONITOR), "--config", str(config), "index", "rebuild", "--from-text"],
            capture_output=True,
            text=True,
            env=monitor_environment(),
            check=False,
        )
    if result.returncode != 0:
        raise SystemExit(f"monitor index rebuild failed:\n{result.stderr[-4000:]}")
    index_seconds = time.perf_counter() - indexed
    connection = sqlite3.connect(partial)
    try:
        rows = {
            table: int(connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
            for table in ("articles", "article_signatures", "lsh_buckets", "duplicates")
        }
    finally:
        connection.close()
    partial.replace(path)
    meta = {
        **wanted,
        "rows": rows,
        "export_database": {"path": str(source), **source_meta},
        "index_seconds": round(index_seconds, 1),
        "build_seconds": round(time.perf_counter() - started, 1),
        "file_mib": round(path.stat().st_size / MIB, 1),
    }
    meta_path.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    log(f"built {path}: {rows} in {meta['build_seconds']} s")
    return path, meta


# The site and the configuration


@dataclass(frozen=True, slots=True)
class Plan:
    """What the soak serves and how often."""

    live_feeds: int
    static_feeds: int
    poll_feeds: int  # the server's --poll-feeds: the larger of the two kinds
    generations: int  # changes of the live feeds the pages suffice for
    pages: int

    @classmethod
    def of(cls, args: argparse.Namespace) -> Plan:
        live = args.feeds - args.static_feeds
        poll_feeds = max(live, args.static_feeds)
        generations = math.ceil(args.minutes * 60 / args.new_every) + 1
        return cls(
            live_feeds=live,
            static_feeds=args.static_feeds,
            poll_feeds=poll_feeds,
            generations=generations,
            pages=generations * poll_feeds * args.new,
        )


def feed_urls(server: ServerProcess, plan: Plan) -> list[tuple[str, str]]:
    """(name, URL) of every feed, live ones first."""
    return [
        (f"live feed {number}", server.url(f"/poll/live/feed-{number}.rss"))
        for number in range(plan.live_feeds)
    ] + [
        (f"static feed {number}", server.url(f"/poll/static/feed-{number}.rss"))
        for number in range(plan.static_feeds)
    ]


def write_config(
    path: Path,
    server: ServerProcess,
    plan: Plan,
    database: Path,
    interval: float,
    workers: int | None = None,
) -> None:
    shipped = tomllib.loads((REPO / "config.toml").read_text(encoding="utf-8"))
    document: dict[str, Any] = {
        "database": {"url": f"sqlite:///{database}"},
        "fetch": {**FETCH, "user_agent": "monitor-soak-bench (+http://127.0.0.1/)"},
        "http": {"port": 0},
        **({"processing": {"workers": workers}} if workers is not None else {}),
        "topic": shipped["topic"],
        "tags": shipped["tags"],
        "feeds": [
            {"name": name, "url": url, "interval": interval}
            for name, url in feed_urls(server, plan)
        ],
    }
    path.write_text(tomli_w.dumps(document), encoding="utf-8")


# Sampling


@dataclass(frozen=True, slots=True)
class Memory:
    rss: int  # bytes
    pss: int
    pss_anon: int  # the anonymous part of pss: shared only within the fork tree


def memory_of(pid: int) -> Memory | None:
    """Rss and Pss of one process (/proc/PID/smaps_rollup), None when it is gone."""
    values = {"Rss": 0, "Pss": 0, "Pss_Anon": 0}
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text(encoding="ascii")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        if name in values:
            values[name] = int(rest.split()[0]) * 1024
    return Memory(rss=values["Rss"], pss=values["Pss"], pss_anon=values["Pss_Anon"])


FileKey = tuple[str, str, str]  # device, inode, offset of a file-backed mapping


def file_pages(pid: int) -> dict[FileKey, int]:
    """Resident bytes of each file-backed mapping of one process (its Rss less the
    anonymous pages copied on write into it), from /proc/PID/smaps."""
    try:
        text = Path(f"/proc/{pid}/smaps").read_text(encoding="utf-8", errors="replace")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return {}
    pages: dict[FileKey, int] = {}
    key: FileKey | None = None
    rss = 0
    for line in text.splitlines():
        head = line.split(maxsplit=5)
        if len(head) >= 5 and "-" in head[0] and not head[0].endswith(":"):
            key = (head[3], head[4], head[2]) if head[4] != "0" else None
        elif head and head[0] == "Rss:":
            rss = int(head[1]) * 1024
        elif head and head[0] == "Anonymous:" and key is not None:
            pages[key] = max(pages.get(key, 0), rss - int(head[1]) * 1024)
    return pages


def stat_of(pid: int) -> tuple[int, float] | None:
    """(parent pid, CPU seconds: user + system) of one process, None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields_ = text.rsplit(")", 1)[1].split()
    return int(fields_[1]), (int(fields_[11]) + int(fields_[12])) / CLOCK_TICKS


def descendants(root: int) -> list[tuple[int, int]]:
    """(pid, parent pid) of every process below `root`, parents before their children,
    found through the parent pids in /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = stat_of(int(entry.name))
            if stat is not None:
                children.setdefault(stat[0], []).append(int(entry.name))
    found: list[tuple[int, int]] = []
    queue = [(child, root) for child in sorted(children.get(root, ()))]
    while queue:
        pid, parent = queue.pop(0)
        found.append((pid, parent))
        queue.extend((child, pid) for child in sorted(children.get(pid, ())))
    return found


def role_of(pid: int, parent_role: str) -> str:
    """forkserver, resource_tracker, worker (forked by the fork server: its command line is
    the fork server's) or other, for a descendant of the main process."""
    if parent_role == "forkserver":
        return "worker"
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return "other"
    if "multiprocessing.forkserver" in command:
        return "forkserver"
    if "multiprocessing.resource_tracker" in command:
        return "resource_tracker"
    return "other"


@dataclass(frozen=True, slots=True)
class ProcessMemory:
    """One process of the tree, for the breakdown at the end."""

    pid: int
    role: str
    rss_mib: float
    pss_mib: float
    private_mib: float  # Private_Clean + Private_Dirty (USS)
    anonymous_mib: float


def process_memory(pid: int, role: str) -> ProcessMemory | None:
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text(encoding="ascii")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    values: dict[str, int] = {}
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        if rest.strip().endswith("kB"):
            values[name] = int(rest.split()[0]) * 1024
    return ProcessMemory(
        pid=pid,
        role=role,
        rss_mib=round(values.get("Rss", 0) / MIB, 1),
        pss_mib=round(values.get("Pss", 0) / MIB, 1),
        private_mib=round(
            (values.get("Private_Clean", 0) + values.get("Private_Dirty", 0)) / MIB, 1
        ),
        anonymous_mib=round(values.get("Anonymous", 0) / MIB, 1),
    )


@dataclass(frozen=True, slots=True)
class Sample:
    seconds: float  # since the daemon started
    generation: int
    articles: int  # articles stored in the database
    articles_added: int  # since the start
    entries_done: int  # entries processed since the start (any outcome but pending)
    processes: int  # main and its descendants
    workers: int
    main_rss_mib: float
    main_pss_mib: float
    forkserver_pss_mib: float
    workers_rss_mib: float  # summed over the workers
    workers_pss_mib: float
    worker_max_rss_mib: float
    tree_rss_mib: float  # summed over main and its descendants (shared pages counted again)
    tree_pss_mib: float  # summed: shared pages divided among their sharers
    # Pss divides a file's pages among every process on the machine that maps them (other
    # Python processes of the same virtualenv too), so it moves with what else runs. What
    # the tree would hold on a host of its own: its anonymous Pss (anonymous pages are
    # shared only within the fork tree) and its resident file pages counted once.
    tree_pss_anon_mib: float
    tree_files_once_mib: float
    tree_total_mib: float
    main_cpu_seconds: float
    tree_cpu_seconds: float
    load1: float


class Sampler:
    def __init__(self, main: int, database: Path, articles_before: int) -> None:
        self.main = main
        self.database = database
        self.articles_before = articles_before
        self.roles: dict[int, str] = {}

    def tree(self) -> list[tuple[int, str]]:
        """(pid, role) of the main process and of every process below it."""
        self.roles[self.main] = "main"
        found = [(self.main, "main")]
        for pid, parent in descendants(self.main):
            if pid not in self.roles:
                self.roles[pid] = role_of(pid, self.roles.get(parent, "other"))
            found.append((pid, self.roles[pid]))
        return found

    def breakdown(self) -> list[ProcessMemory]:
        return [
            measured
            for pid, role in self.tree()
            if (measured := process_memory(pid, role)) is not None
        ]

    def sample(self, seconds: float, generation: int) -> Sample:
        memory: dict[str, list[Memory]] = {}
        cpu = {"main": 0.0, "tree": 0.0}
        files: dict[FileKey, int] = {}
        for pid, role in self.tree():
            measured = memory_of(pid)
            stat = stat_of(pid)
            if measured is None or stat is None:
                continue
            memory.setdefault(role, []).append(measured)
            for key, size in file_pages(pid).items():
                files[key] = max(files.get(key, 0), size)
            cpu["tree"] += stat[1]
            if role == "main":
                cpu["main"] = stat[1]
        articles, done = self.counts()
        everything = [m for group in memory.values() for m in group]
        workers = memory.get("worker", [])
        main = memory.get("main", [Memory(0, 0, 0)])[0]
        anonymous = sum(m.pss_anon for m in everything)
        file_once = sum(files.values())
        return Sample(
            seconds=round(seconds, 1),
            generation=generation,
            articles=articles,
            articles_added=articles - self.articles_before,
            entries_done=done,
            processes=len(everything),
            workers=len(workers),
            main_rss_mib=main.rss / MIB,
            main_pss_mib=main.pss / MIB,
            forkserver_pss_mib=sum(m.pss for m in memory.get("forkserver", [])) / MIB,
            workers_rss_mib=sum(m.rss for m in workers) / MIB,
            workers_pss_mib=sum(m.pss for m in workers) / MIB,
            worker_max_rss_mib=max((m.rss for m in workers), default=0) / MIB,
            tree_rss_mib=sum(m.rss for m in everything) / MIB,
            tree_pss_mib=sum(m.pss for m in everything) / MIB,
            tree_pss_anon_mib=anonymous / MIB,
            tree_files_once_mib=file_once / MIB,
            tree_total_mib=(anonymous + file_once) / MIB,
            main_cpu_seconds=round(cpu["main"], 2),
            tree_cpu_seconds=round(cpu["tree"], 2),
            load1=os.getloadavg()[0],
        )

    def counts(self) -> tuple[int, int]:
        """(articles stored, entries processed since the start)."""
        with contextlib.closing(read_only(self.database)) as connection:
            articles = int(connection.execute("SELECT count(*) FROM articles").fetchone()[0])
            done = int(
                connection.execute(
                    "SELECT count(*) FROM entries WHERE outcome != 'pending'"
                    " AND (error IS NULL OR error != ?)",
                    (SEEDED,),
                ).fetchone()[0]
            )
        return articles, done


def read_only(database: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30)


def warmed_up(database: Path) -> bool:
    """Every feed polled, and every live feed has had a poll that found new entries."""
    with contextlib.closing(read_only(database)) as connection:
        unpolled, without_new = connection.execute(
            "SELECT coalesce(sum(last_polled_at IS NULL), 0),"
            " coalesce(sum(url LIKE '%/poll/live/%' AND last_new_entry_at IS NULL), 0)"
            " FROM feeds WHERE enabled"
        ).fetchone()
    return int(unpolled) == 0 and int(without_new) == 0


# Running


@dataclass(slots=True)
class Run:
    samples: list[Sample]
    warmup_seconds: float | None
    exit_code: int | None
    stop_seconds: float
    server: dict[str, Any]
    outcomes: dict[str, int]
    duplicate_kinds: dict[str, int]
    polls: dict[str, int]  # per feed name, from the daemon's log
    not_modified: int
    log_problems: list[str]
    roles: dict[str, int]
    generations: int
    breakdown_after_warmup: list[dict[str, Any]]
    first_cycle_seconds: float | None
    breakdown_end: list[dict[str, Any]]


@dataclass(slots=True)
class Watched:
    samples: list[Sample] = field(default_factory=list)
    first_cycle: float | None = None  # seconds
    warmup: float | None = None  # seconds
    generation: int = 0  # the last one served
    breakdown_after_warmup: list[ProcessMemory] = field(default_factory=list)
    breakdown_end: list[ProcessMemory] = field(default_factory=list)


def daemon_log_summary(text: str) -> tuple[dict[str, int], int, list[str]]:
    """Polls per feed, polls answered 304, and the log's errors and tracebacks."""
    polls: Counter[str] = Counter()
    not_modified = 0
    problems: list[str] = []
    for line in text.splitlines():
        match = re.search(r"feed polled: (.+?): (not modified, )?\d+ entries", line)
        if match:
            polls[match.group(1)] += 1
            not_modified += bool(match.group(2))
        elif " ERROR " in line or "Traceback" in line or " CRITICAL " in line:
            problems.append(line.strip())
    return dict(polls), not_modified, problems


def outcomes_since_start(database: Path) -> tuple[dict[str, int], dict[str, int]]:
    with contextlib.closing(read_only(database)) as connection:
        outcomes = {
            str(outcome): int(count)
            for outcome, count in connection.execute(
                "SELECT outcome, count(*) FROM entries WHERE error IS NULL OR error != ?"
                " GROUP BY outcome",
                (SEEDED,),
            )
        }
        kinds = {
            str(kind): int(count)
            for kind, count in connection.execute(
                "SELECT d.kind, count(*) FROM duplicates d JOIN entries e ON e.id = d.entry_id"
                " GROUP BY d.kind"
            )
        }
    return outcomes, kinds


@contextlib.contextmanager
def daemon_process(config: Path, log_path: Path, cwd: Path) -> Iterator[subprocess.Popen[str]]:
    with log_path.open("w", encoding="utf-8") as handle:
        process = subprocess.Popen(
            [str(MONITOR), "--config", str(config), "--log-format", "text", "run"],
            stdout=subprocess.DEVNULL,
            stderr=handle,
            text=True,
            env=monitor_environment(),
            cwd=cwd,
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def soak(args: argparse.Namespace, work: Path, database_path: Path) -> Run:
    plan = Plan.of(args)
    root = work / "site"
    root.mkdir()
    began = time.perf_counter()
    write_new_item_pages(root, plan.pages, seed=args.seed)
    log(f"{plan.pages} article pages written in {time.perf_counter() - began:.0f} s")
    database = work / "monitor.db"
    shutil.copyfile(database_path, database)
    with contextlib.closing(sqlite3.connect(database)) as connection:
        articles_before = int(connection.execute("SELECT count(*) FROM articles").fetchone()[0])
    extra = (
        *("--poll-feeds", str(plan.poll_feeds)),
        *("--poll-items", str(args.items)),
        *("--poll-new", str(args.new)),
    )
    with ServerProcess(root, extra=extra) as server:
        log(f"site served at {server.base_url} ({server.startup_seconds:.1f} s to load)")
        config = work / "config.toml"
        write_config(config, server, plan, database, args.interval, args.workers)
        preseed(config, server, "live", plan.live_feeds, args.items)
        if plan.static_feeds:
            preseed(config, server, "static", plan.static_feeds, args.items)
        log_path = work / "daemon.log"
        with daemon_process(config, log_path, work) as daemon:
            sampler = Sampler(daemon.pid, database, articles_before)
            watched = watch(args, plan, server, daemon, sampler, log_path)
            stopping = time.monotonic()
            daemon.send_signal(signal.SIGTERM)
            try:
                exit_code: int | None = daemon.wait(timeout=60)
            except subprocess.TimeoutExpired:
                exit_code = None
            stop_seconds = time.monotonic() - stopping
        server_stats = server.stats()
    outcomes, kinds = outcomes_since_start(database)
    polls, not_modified, problems = daemon_log_summary(log_path.read_text(encoding="utf-8"))
    return Run(
        samples=watched.samples,
        warmup_seconds=watched.warmup if args.warmup is None else args.warmup,
        exit_code=exit_code,
        stop_seconds=stop_seconds,
        server=server_stats,
        outcomes=outcomes,
        duplicate_kinds=kinds,
        polls=polls,
        not_modified=not_modified,
        log_problems=problems,
        roles=dict(Counter(sampler.roles.values())),
        generations=watched.generation,
        breakdown_after_warmup=[asdict(p) for p in watched.breakdown_after_warmup],
        first_cycle_seconds=watched.first_cycle,
        breakdown_end=[asdict(p) for p in watched.breakdown_end],
    )


def watch(
    args: argparse.Namespace,
    plan: Plan,
    server: ServerProcess,
    daemon: subprocess.Popen[str],
    sampler: Sampler,
    log_path: Path,
) -> Watched:
    """Move the live feeds on and sample until the time is up."""
    started = time.monotonic()
    deadline = started + args.minutes * 60
    next_sample, next_change, next_report = started, started + args.new_every, started + 60
    watched = Watched()
    samples = watched.samples
    while True:
        now = time.monotonic()
        if daemon.poll() is not None:
            tail = log_path.read_text(encoding="utf-8")[-4000:]
            raise SystemExit(f"soak: the daemon exited ({daemon.returncode}):\n{tail}")
        if now >= deadline:
            samples.append(sampler.sample(now - started, watched.generation))
            watched.breakdown_end = sampler.breakdown()
            return watched
        if now >= next_change:
            if watched.generation < plan.generations:
                watched.generation += 1
                server.set_generation(watched.generation)
            next_change += args.new_every
        if now >= next_sample:
            samples.append(sampler.sample(now - started, watched.generation))
            next_sample += args.sample_every
            if watched.first_cycle is None and warmed_up(sampler.database):
                watched.first_cycle = samples[-1].seconds
                log(f"first full cycle over at {watched.first_cycle:.0f} s")
            if (
                watched.warmup is None
                and watched.first_cycle is not None
                and samples[-1].articles_added >= index.FEATURE_CACHE_ARTICLES
            ):
                watched.warmup = samples[-1].seconds
                watched.breakdown_after_warmup = sampler.breakdown()
                log(f"warm-up over at {watched.warmup:.0f} s")
        if now >= next_report:
            last = samples[-1]
            log(
                f"{last.seconds / 60:4.1f} min: {last.articles_added} articles added,"
                f" main Rss {last.main_rss_mib:.0f} MiB, tree Pss {last.tree_pss_mib:.0f} MiB"
                f" (Rss summed {last.tree_rss_mib:.0f}), {last.workers} workers,"
                f" load {last.load1:.1f}"
            )
            next_report += 60
        time.sleep(max(0.0, min(next_sample, next_change, deadline) - time.monotonic()))


# Figures


def spread(values: Sequence[float]) -> dict[str, float]:
    """min, median, max and the band as ±% around the median."""
    low, middle, high = min(values), statistics.median(values), max(values)
    base = middle or 1.0
    return {
        "min": round(low, 1),
        "median": round(middle, 1),
        "max": round(high, 1),
        "band_pct": round(max(high - middle, middle - low) / base * 100, 1),
        "below_pct": round((low - middle) / base * 100, 1),
        "above_pct": round((high - middle) / base * 100, 1),
    }


def slope(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Least-squares slope of ys over xs (0 when xs do not vary)."""
    mean_x, mean_y = statistics.fmean(xs), statistics.fmean(ys)
    spread_x = sum((x - mean_x) ** 2 for x in xs)
    if spread_x == 0:
        return 0.0
    return sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / spread_x


# The series whose band around the median is judged.
BANDED = ("main_rss_mib", "tree_pss_mib", "tree_total_mib")
SERIES = (
    ("main_rss_mib", "main process Rss"),
    ("tree_pss_mib", "whole tree Pss (main, fork server, workers, tracker)"),
    ("tree_total_mib", "whole tree, each page once (anonymous Pss + file pages once)"),
    ("tree_rss_mib", "whole tree Rss summed (shared pages counted in each process)"),
    ("workers_pss_mib", "workers Pss"),
)


def flat_from(samples: Sequence[Sample]) -> dict[str, float] | None:
    """The earliest sample from which every banded series stays within the target band
    around its own median until the end (None if only the last dozen samples do)."""
    for start in range(len(samples) - 12):
        rest = samples[start:]
        if all(
            spread([float(getattr(s, name)) for s in rest])["band_pct"] <= TARGET_BAND
            for name in BANDED
        ):
            return {
                "seconds": samples[start].seconds,
                "articles_added": samples[start].articles_added,
            }
    return None


def figures(args: argparse.Namespace, run: Run) -> dict[str, Any]:
    samples = run.samples
    warmup = run.warmup_seconds
    if warmup is None:  # never reached: take the first quarter as the warm-up
        warmup = samples[-1].seconds / 4
    after = [s for s in samples if s.seconds >= warmup] or samples
    result: dict[str, Any] = {
        "warmup_seconds": warmup,
        "warmup_reached": run.warmup_seconds is not None,
        "samples_after_warmup": len(after),
    }
    first_cycle = run.first_cycle_seconds
    result["first_cycle_seconds"] = first_cycle
    if first_cycle is not None:
        since_first_cycle = [s for s in samples if s.seconds >= first_cycle] or samples
        result["band_from_first_cycle"] = {
            name: spread([float(getattr(s, name)) for s in since_first_cycle]) for name in BANDED
        }
    hours = [s.seconds / 3600 for s in after]
    thousands = [s.articles_added / 1000 for s in after]
    third = max(1, len(after) // 3)
    # The second half of the run: what is left once every one-time load has happened
    # (some happen long after the first cycle: see bench/README.md).
    half = [s for s in samples if s.seconds >= samples[-1].seconds / 2]
    for name, _ in SERIES:
        values = [float(getattr(s, name)) for s in after]
        late = [float(getattr(s, name)) for s in half]
        result[name] = {
            **spread(values),
            "trend_mib_per_real_hour": round(slope(hours, values), 1),
            "trend_mib_per_1000_articles": round(slope(thousands, values), 2),
            "first_third_median": round(statistics.median(values[:third]), 1),
            "last_third_median": round(statistics.median(values[-third:]), 1),
            "peak_whole_run": round(max(float(getattr(s, name)) for s in samples), 1),
            "second_half_band_pct": spread(late)["band_pct"],
            "second_half_trend_mib_per_1000_articles": round(
                slope([s.articles_added / 1000 for s in half], late), 2
            ),
        }
    result["within_band"] = {name: result[name]["band_pct"] <= TARGET_BAND for name in BANDED}
    result["flat_from"] = flat_from(samples)
    target_mib = TARGET_BYTES / MIB
    result["target_mib"] = round(target_mib, 1)
    result["peak_mib"] = {name: result[name]["peak_whole_run"] for name, _ in SERIES}
    # Compared with the target: the tree's total, each page counted once, which is what the
    # daemon holds on a host of its own (its Pss here is lower by the share of its files'
    # pages that other processes of the same virtualenv take).
    result["peak_within_target"] = result["peak_mib"]["tree_total_mib"] <= target_mib
    polls = sorted(run.polls.values())
    result["polls"] = {
        "total": sum(polls),
        "not_modified": run.not_modified,
        "per_feed_min": polls[0] if polls else 0,
        "per_feed_median": statistics.median(polls) if polls else 0,
        "simulated_hours": round(
            (statistics.median(polls) if polls else 0) * PRODUCTION_INTERVAL_MINUTES / 60, 1
        ),
    }
    last = samples[-1]
    result["articles"] = {
        "at_start": last.articles - last.articles_added,
        "at_end": last.articles,
        "added": last.articles_added,
    }
    result["load1"] = {
        "median": round(statistics.median(s.load1 for s in samples), 1),
        "max": round(max(s.load1 for s in samples), 1),
    }
    result["cpu_seconds"] = {"main": last.main_cpu_seconds, "tree": last.tree_cpu_seconds}
    return result


def _seconds(value: float | None) -> str:
    return "never" if value is None else f"{value:.0f} s"


def text_plot(
    samples: Sequence[Sample], warmup: float, *, width: int = 64, height: int = 14
) -> str:
    """The tree's total (#), its Pss (p) and the main process's Rss (o) over time, on a
    scale from 0 that shows the target (-)."""
    target = TARGET_BYTES / MIB
    peak = max(max(s.tree_total_mib, s.tree_pss_mib, s.main_rss_mib) for s in samples)
    top = math.ceil(max(target, peak) * 1.05 / 50) * 50
    span = samples[-1].seconds or 1.0
    columns: list[list[Sample]] = [[] for _ in range(width)]
    for sample in samples:
        columns[min(width - 1, int(sample.seconds / span * width))].append(sample)
    grid = [[" "] * width for _ in range(height)]

    def row(value: float) -> int:
        return min(height - 1, max(0, height - 1 - int(value / top * height)))

    for column in range(width):
        grid[row(target)][column] = "-"
    for column, group in enumerate(columns):
        if group:
            grid[row(max(s.main_rss_mib for s in group))][column] = "o"
            grid[row(max(s.tree_pss_mib for s in group))][column] = "p"
            grid[row(max(s.tree_total_mib for s in group))][column] = "#"
    warm_column = min(width - 1, int(warmup / span * width))
    lines = []
    for number, cells in enumerate(grid):
        label = top * (height - number) / height
        lines.append(f"{label:5.0f} |" + "".join(cells))
    lines.append("  MiB +" + "-" * width)
    axis = [" "] * width
    axis[warm_column] = "^"
    lines.append("       " + "".join(axis) + f"  {span / 60:.0f} min")
    lines.append("# tree, each page once   p tree Pss   o main Rss   - 300 MB   ^ end of warm-up")
    lines.append("(each column: the largest of its samples; a mark hides another on the same row)")
    return "\n".join(lines)


def minute_table(samples: Sequence[Sample], every: float = 60.0) -> str:
    lines = [
        "| t (min) | articles added | main Rss | workers Pss | tree Pss |"
        " tree, each page once | tree Rss summed | load |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    mark = 0.0
    for sample in samples:
        if sample.seconds >= mark or sample is samples[-1]:
            lines.append(
                f"| {sample.seconds / 60:.1f} | {sample.articles_added} |"
                f" {sample.main_rss_mib:.0f} | {sample.workers_pss_mib:.0f} |"
                f" {sample.tree_pss_mib:.0f} | {sample.tree_total_mib:.0f} |"
                f" {sample.tree_rss_mib:.0f} | {sample.load1:.1f} |"
            )
            while mark <= sample.seconds:
                mark += every
    return "\n".join(lines)


def render(args: argparse.Namespace, run: Run, data: dict[str, Any], meta: dict[str, Any]) -> str:
    polls = data["polls"]
    band_verdict = "met" if all(data["within_band"].values()) else "NOT met"
    peak_verdict = "met" if data["peak_within_target"] else "NOT met"
    peaks = data["peak_mib"]

    def row(name: str, label: str) -> str:
        figures_ = data[name]
        return (
            f"| {label} | {figures_['min']:.0f} | {figures_['median']:.0f} |"
            f" {figures_['max']:.0f} |"
            f" {figures_['below_pct']:+.1f}% / {figures_['above_pct']:+.1f}%"
            f" | {figures_['trend_mib_per_1000_articles']:+.2f} |"
            f" {figures_['first_third_median']:.0f} → {figures_['last_third_median']:.0f} |"
            f" ±{figures_['second_half_band_pct']:.1f}%,"
            f" {figures_['second_half_trend_mib_per_1000_articles']:+.2f} |"
            f" {figures_['peak_whole_run']:.0f} |"
        )

    rows = meta.get("rows", {})
    flat = data["flat_from"]
    lines = [
        "# Soak",
        "",
        f"- {args.minutes:g} min real: {args.feeds} feeds ({args.static_feeds} never change)"
        f" polled every {args.interval:g} s (standing for {PRODUCTION_INTERVAL_MINUTES:g} min);"
        f" live feeds gain {args.new} items every {args.new_every:g} s; {run.generations}"
        " changes served; `[processing] workers`:"
        f" {'auto' if args.workers is None else args.workers}",
        f"- polls: {polls['total']} ({polls['not_modified']} answered 304), per feed"
        f" {polls['per_feed_min']}–{polls['per_feed_median']:g} (median): the schedule of"
        f" **{polls['simulated_hours']:g} h** at 15 min a poll",
        f"- database: {data['articles']['at_start']:,} articles at the start"
        f" ({rows.get('lsh_buckets', 0):,} `lsh_buckets` rows), {data['articles']['at_end']:,}"
        f" at the end; entries processed: {run.outcomes}; copies by kind: {run.duplicate_kinds}",
        f"- warm-up (every feed polled, every live feed once with new entries, and"
        f" {index.FEATURE_CACHE_ARTICLES:,} articles kept: the feature cache full) over at"
        f" {data['warmup_seconds']:.0f} s"
        + ("" if data["warmup_reached"] else " (not reached: the run's first quarter instead)")
        + f"; {data['samples_after_warmup']} samples after it,"
        f" one every {args.sample_every:g} s; the first full cycle over at"
        f" {_seconds(data['first_cycle_seconds'])}",
        f"- processes seen: {run.roles}; load average median {data['load1']['median']},"
        f" max {data['load1']['max']} (2 cores, shared); CPU: main"
        f" {data['cpu_seconds']['main']:.0f} s, whole tree {data['cpu_seconds']['tree']:.0f} s",
        f"- stop: exit {run.exit_code} after {run.stop_seconds:.1f} s; log errors:"
        f" {len(run.log_problems)}",
        "",
        "| after warm-up, MiB | min | median | max | band around the median |"
        " trend per 1,000 articles | first third → last third (medians) |"
        " second half: band, trend | peak, whole run |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        *(row(name, label) for name, label in SERIES),
        "",
        f"- flat within ±{TARGET_BAND:g}% after warm-up: "
        + ", ".join(
            f"{label.split(' (')[0]} ±{data[name]['band_pct']}%"
            for name, label in SERIES
            if name in BANDED
        )
        + f": **{band_verdict}**",
        "- from the first full cycle instead: "
        + (
            ", ".join(
                f"{label.split(' (')[0]} {band['below_pct']:+.1f}% / {band['above_pct']:+.1f}%"
                for name, label in SERIES
                if (band := data["band_from_first_cycle"].get(name)) is not None
            )
            if "band_from_first_cycle" in data
            else "never reached"
        ),
        (
            f"- every one of them within ±{TARGET_BAND:g}% from {flat['seconds'] / 60:.1f} min"
            f" ({flat['articles_added']:,} articles added) to the end"
            if flat
            else f"- never all within ±{TARGET_BAND:g}% to the end"
        ),
        f"- ≤ 300 MB ({data['target_mib']} MiB) with {data['articles']['at_start']:,}+ articles:"
        f" peak of the whole tree, each page once, {peaks['tree_total_mib']} MiB:"
        f" **{peak_verdict}** (tree Pss peak {peaks['tree_pss_mib']} MiB, summed Rss peak"
        f" {peaks['tree_rss_mib']} MiB, main process Rss peak {peaks['main_rss_mib']} MiB)",
        "",
        "```",
        text_plot(run.samples, data["warmup_seconds"]),
        "```",
        "",
        minute_table(run.samples),
    ]
    for title, breakdown in (
        ("after warm-up", run.breakdown_after_warmup),
        ("at the end", run.breakdown_end),
    ):
        lines += [
            "",
            f"Processes {title}, MiB:",
            "",
            "| process | pid | Rss | Pss | private (USS) | anonymous |",
            "|---|---:|---:|---:|---:|---:|",
            *(
                f"| {p['role']} | {p['pid']} | {p['rss_mib']:.0f} | {p['pss_mib']:.0f} |"
                f" {p['private_mib']:.0f} | {p['anonymous_mib']:.0f} |"
                for p in breakdown
            ),
        ]
    if run.log_problems:
        lines += ["", "Log errors (first 5):", "", *(f"    {p}" for p in run.log_problems[:5])]
    return "\n".join(lines) + "\n"


def write_samples(path: Path, samples: Sequence[Sample]) -> None:
    names = [column.name for column in fields(Sample)]
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(names)
        for sample in samples:
            writer.writerow(
                [
                    f"{value:.2f}" if isinstance(value, float) else value
                    for value in asdict(sample).values()
                ]
            )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    database_path, meta = soak_database(
        args.database_dir, args.articles, args.seed, rebuild=args.rebuild
    )
    if args.prepare_only:
        return 0
    log(f"load average before: {os.getloadavg()}")
    with tempfile.TemporaryDirectory(prefix="monitor-soak-") as directory:
        run = soak(args, Path(directory), database_path)
    data = figures(args, run)
    report = render(args, run, data, meta)
    print(report)
    args.results.mkdir(parents=True, exist_ok=True)
    write_samples(args.results / "soak-samples.csv", run.samples)
    (args.results / "soak.md").write_text(report, encoding="utf-8")
    results = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "args": {key: str(value) for key, value in vars(args).items()},
        "database": {**meta, "path": str(database_path)},
        "monitor_source": source_fingerprint(),
        "figures": data,
        "run": {k: v for k, v in asdict(run).items() if k != "samples"},
    }
    write_json(args.results / "soak.json", results)
    log(f"results in {args.results}/soak.json, soak.md and soak-samples.csv")
    return 0 if run.exit_code == 0 else 1


def source_fingerprint() -> dict[str, str]:
    """The commit and a hash of monitor/ as it was run (the tree may hold uncommitted work)."""
    digest = hashlib.sha256()
    for path in sorted((REPO / "monitor").rglob("*.py")):
        digest.update(path.relative_to(REPO).as_posix().encode() + b"\0" + path.read_bytes())
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=REPO, check=False
    ).stdout.strip()
    return {"commit": commit, "monitor_py_sha256": digest.hexdigest()[:16]}


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
