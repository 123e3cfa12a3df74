"""Ingestion throughput: `monitor run-once` end to end against trafilatura alone, same run.

    .venv/bin/python -m bench.throughput [--pages 2000] [--feeds 40] [--runs 3]
        [--postgres-url URL | --no-postgres] [--extract-defaults] [--profile OUT.prof]
        [--without-storing] [--monitor-src DIR] [--markdown OUT.md] [--json OUT.json]
        [--workdir DIR]

Builds `--pages` realistic news pages (bench/sitegen.py: the dedup corpus with its
syndicated, ad-wrapped and spun copies, padded with generated stories and their copies;
every page with the navigation, scripts, menus and footers of a real news site) listed
in `--feeds` RSS/Atom feeds in a shuffled order, and serves them from a separate process
on 127.0.0.1 (bench/benchserver.py). Then, `--runs` times, in this order:

- (a1) trafilatura over every page body in this process, asked for what monitor needs
  from a page with its own API: the text and the metadata (`load_html` +
  `bare_extraction(with_metadata=True)`, with monitor's options: no comments, tables,
  dates without extensive search). monitor itself reads only the title, author and date
  of the metadata (monitor/extract.py, `page_metadata`), which costs less;
- (a2) the same over a pool of two processes (the ceiling of this 2-core machine);
- with `--extract-defaults`, `trafilatura.extract(body)` with its defaults (plain text,
  no metadata), one process and two;
- (b) `monitor run-once` (the installed command, a subprocess) into a fresh SQLite file,
- (b') and into a fresh schema of the PostgreSQL at `--postgres-url`;
- with `--without-storing`, a what-if: the same `run-once` into SQLite with
  `Store.ingest` replaced by a function that stores nothing (bench/nostore.py), which
  bounds what any work on the database layer could win.

After each monitor run the database is checked: every page has an entry, every entry
is stored or a duplicate (none failed, off topic or pending), and the articles kept are
exactly the distinct stories (scored against the labels by bench/dedupcorpus/score.py,
no false merge, no machine copy missed; a human rewrite the `rewrite` rule keeps apart
on purpose counts as a story of its own) — speed bought by dropping work would show
here (the what-if run stores nothing, so it is not checked).

Reports the median of the runs for each (wall and CPU seconds: for monitor, of its whole
process tree, the worker processes included), pages per second, and
the ratios of (b) to (a2), by wall time and by CPU time (the machine is shared: CPU time
is what other processes disturb least). `--profile OUT.prof` adds one `python -m
cProfile` run of `monitor run-once` into SQLite and summarises where its time goes
(bench/profile_summary.py); `--runs 0 --profile OUT.prof` does only that.
`--monitor-src DIR` measures the monitor package in DIR (e.g. a commit exported with
`git archive COMMIT monitor migrations | tar -x -C DIR`) instead of the installed one.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pstats
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import tomli_w

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.benchserver import ServerProcess  # noqa: E402
from bench.dedupcorpus.score import score_database  # noqa: E402
from bench.dedupcorpus.site import Manifest, check_extraction, file_for  # noqa: E402
from bench.profile_summary import summarise_profile  # noqa: E402
from bench.sitegen import feed_paths, stories_in, throughput_documents, write_bench_site  # noqa: E402

MONITOR = Path(sys.executable).parent / "monitor"
NOSTORE = REPO / "bench" / "nostore.py"
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
DATE_FORMAT = "%Y-%m-%dT%H:%M:%S%z"

# Politeness that does not throttle one local host: run-once polls feeds one after the
# other and fetches one page at a time, so only the delay matters; the rest is set to
# what a daemon on one host would need not to queue either.
FETCH = {
    "allow_private_addresses": True,
    "per_host_delay": 0,
    "per_host_concurrency": 16,
    "max_concurrent_polls": 4,
    "timeout": "30s",
    "user_agent": "monitor-throughput-bench (+http://127.0.0.1/)",
}


# trafilatura alone


def extract_with_metadata(page: tuple[str, bytes]) -> str:
    """trafilatura's text and metadata of one page, with the options monitor/extract.py uses."""
    import trafilatura

    url, body = page
    tree = trafilatura.load_html(body)
    document = trafilatura.bare_extraction(
        tree,
        url=url,
        with_metadata=True,
        include_comments=False,
        include_tables=True,
        date_extraction_params={
            "extensive_search": False,
            "original_date": True,
            "outputformat": DATE_FORMAT,
        },
    )
    return str(getattr(document, "text", None) or "")


def extract_default(page: tuple[str, bytes]) -> str:
    """`trafilatura.extract` with its defaults (plain text, no metadata)."""
    import trafilatura

    return str(trafilatura.extract(page[1], url=page[0]) or "")


Extractor = Callable[[tuple[str, bytes]], str]


def time_serial(extractor: Extractor, pages: Sequence[tuple[str, bytes]]) -> tuple[float, float]:
    """Wall and CPU seconds to extract every page in this process."""
    for page in pages[:3]:
        extractor(page)  # warm up caches, as the pool's workers are warmed up
    started, started_cpu = time.perf_counter(), time.process_time()
    empty = sum(1 for page in pages if not extractor(page))
    seconds, cpu = time.perf_counter() - started, time.process_time() - started_cpu
    if empty:
        raise SystemExit(f"throughput: trafilatura found no text in {empty} pages")
    return seconds, cpu


PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> None:
    """Have monitor's orphans (its workers' fork server, the resource tracker, which
    outlive it by a moment) reparented to this process, so that reaping them adds their
    CPU, and that of the workers the fork server reaped, to RUSAGE_CHILDREN: without
    this, the CPU of monitor's worker processes would go uncounted."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise SystemExit("throughput: cannot become a child subreaper (Linux only)")


def reap_orphans(keep: set[int], timeout: float = 30.0) -> None:
    """Wait for every child of this process but `keep` (the site server) to exit."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        orphans = [pid for pid in _children() if pid not in keep]
        if not orphans:
            return
        for pid in orphans:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
        time.sleep(0.05)
    raise SystemExit("throughput: monitor's child processes did not exit")


def _children() -> list[int]:
    me = os.getpid()
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[1]) == me:
            found.append(int(stat.parent.name))
    return found


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def time_pool(
    extractor: Extractor, pages: Sequence[tuple[str, bytes]], workers: int
) -> tuple[float, float]:
    """Wall seconds to extract every page over `workers` processes (started and warmed up
    before the clock starts; pages and texts cross the process boundary, as they would
    in a pipeline that extracts in a pool), and the CPU seconds of the workers and of this
    process (start and warm-up included)."""
    chunk = max(1, len(pages) // (workers * 16))
    cpu_before, own_before = _children_cpu(), time.process_time()
    with ProcessPoolExecutor(max_workers=workers) as pool:
        list(pool.map(extractor, list(pages[: workers * 2]), chunksize=1))
        started = time.perf_counter()
        texts = list(pool.map(extractor, pages, chunksize=chunk))
        seconds = time.perf_counter() - started
    cpu = _children_cpu() - cpu_before + time.process_time() - own_before
    if not all(texts):
        raise SystemExit("throughput: trafilatura found no text in some pages (pool)")
    return seconds, cpu


# monitor


def write_config(directory: Path, feed_urls: Sequence[str], database_url: str) -> Path:
    """A config with the shipped topic and tag rules, the benchmark's feeds and database."""
    shipped = tomllib.loads((REPO / "config.toml").read_text(encoding="utf-8"))
    document: dict[str, Any] = {
        "database": {"url": database_url},
        "fetch": FETCH,
        "http": {"port": 0},
        "topic": shipped["topic"],
        "tags": shipped["tags"],
        "feeds": [
            {"name": f"bench feed {number}", "url": url, "interval": "1h"}
            for number, url in enumerate(feed_urls, start=1)
        ],
    }
    path = directory / "config.toml"
    path.write_text(tomli_w.dumps(document), encoding="utf-8")
    return path


_SOURCE: list[Path] = []
"""The monitor source tree measured instead of the installed one (`--monitor-src`)."""


def use_monitor_source(source: Path | None) -> None:
    """Measure the monitor package in `source` (e.g. a `git archive` of a commit) instead of
    the installed one: monitor subprocesses get it first on PYTHONPATH, and this process
    imports it too (the checks and the seeding of databases use its schema)."""
    if source is None:
        return
    source = source.resolve()
    if not (source / "monitor" / "__init__.py").is_file():
        raise SystemExit(f"--monitor-src {source}: no monitor/__init__.py there")
    if "monitor" in sys.modules:
        raise RuntimeError("monitor was imported before --monitor-src was applied")
    sys.path.insert(0, str(source))
    _SOURCE[:] = [source]


def monitor_environment(*paths: str) -> dict[str, str]:
    """The environment of a monitor subprocess: no MONITOR_* overrides, the measured
    source tree (and `paths`) first on PYTHONPATH.

    The measured tree is the one this process imports: run from a checkout, the
    checkout's, even when the virtual environment holds a copy installed with
    `pip install .` (the README's quick start), which the `monitor` script would
    otherwise import.
    """
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MONITOR_")}
    source = _SOURCE or [measured_monitor().parent]
    entries = [str(path) for path in source] + list(paths)
    if environment.get("PYTHONPATH"):
        entries.append(environment["PYTHONPATH"])
    if entries:
        environment["PYTHONPATH"] = os.pathsep.join(entries)
    return environment


def measured_monitor() -> Path:
    """The folder of the monitor package being measured."""
    import monitor

    return Path(monitor.__file__).resolve().parent


def check_monitor_import(cwd: Path, *paths: str) -> None:
    """Make sure a monitor subprocess started in `cwd` imports the measured package (a
    `python -m` puts its working directory first on sys.path: a checkout there wins)."""
    result = subprocess.run(
        [sys.executable, "-c", "import monitor; print(monitor.__file__)"],
        capture_output=True,
        text=True,
        env=monitor_environment(*paths),
        cwd=cwd,
        check=True,
    )
    imported = Path(result.stdout.strip()).resolve().parent
    if imported != measured_monitor():
        raise SystemExit(
            f"throughput: a monitor subprocess imports {imported}, not {measured_monitor()}"
            " (PYTHONPATH or a .pth file puts another copy first)"
        )


def describe_monitor() -> str:
    """Which monitor is measured: its folder and, in a git checkout, the commit."""
    import monitor

    folder = Path(monitor.__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(folder), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        changed = subprocess.run(
            ["git", "-C", str(folder), "status", "--porcelain", "--", "monitor", "migrations"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return f"monitor from {folder} (not a git checkout)"
    state = "with uncommitted changes in monitor/" if changed else "clean"
    return f"monitor from {folder}, commit {commit} ({state})"


@dataclass(frozen=True, slots=True)
class MonitorRun:
    seconds: float
    cpu_seconds: float
    server_cpu_seconds: float
    summary: str


def run_monitor(
    config: Path,
    server: ServerProcess,
    *,
    profile: Path | None = None,
    store_nothing: bool = False,
    timeout: float = 3600,
) -> MonitorRun:
    program = [sys.executable, str(NOSTORE)] if store_nothing else [str(MONITOR)]
    command = [*program, "--config", str(config), "--log-level", "WARNING", "run-once"]
    if profile is not None:
        command = [sys.executable, "-m", "cProfile", "-o", str(profile), *command]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    server_before = server.stats()["cpu_seconds"]
    started = time.perf_counter()
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        env=monitor_environment(),
        timeout=timeout,
        check=False,
        cwd=config.parent,
    )
    seconds = time.perf_counter() - started
    reap_orphans(keep={server.process.pid} if server.process else set())
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    server_cpu = server.stats()["cpu_seconds"] - server_before
    if result.returncode != 0:
        raise SystemExit(
            f"throughput: monitor run-once failed (exit {result.returncode}):\n"
            f"{result.stderr[-4000:]}"
        )
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return MonitorRun(seconds, cpu, server_cpu, result.stdout.strip())


@dataclass(frozen=True, slots=True)
class Check:
    entries: int
    outcomes: dict[str, int]
    articles: int
    expected_articles: int
    false_merges: int
    missed_copies: int
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


def check_database(database_url: str, manifest: Manifest, expected_articles: int) -> Check:
    """Did monitor do all the work: every page an entry, resolved, the stories kept?"""
    from monitor.storage.database import create_database_engine

    engine = create_database_engine(database_url)
    try:
        with engine.connect() as connection:
            entries = connection.execute(sa.text("SELECT count(*) FROM entries")).scalar_one()
            outcomes = {
                str(outcome): int(count)
                for outcome, count in connection.execute(
                    sa.text("SELECT outcome, count(*) FROM entries GROUP BY outcome")
                )
            }
            articles = connection.execute(sa.text("SELECT count(*) FROM articles")).scalar_one()
    finally:
        engine.dispose()
    score = score_database(database_url, manifest)
    problems = []
    if entries != len(manifest):
        problems.append(f"{entries} entries for {len(manifest)} pages")
    unresolved = {k: v for k, v in outcomes.items() if k not in ("stored", "duplicate")}
    if unresolved:
        problems.append(f"entries not stored nor duplicate: {unresolved}")
    missed = {v.variant: v.total - v.merged for v in score.per_variant if v.merged < v.total}
    # A human rewrite leading with a figure its story never gives stays apart on purpose
    # (docs/dedup.md): one story more, not a copy the machine missed.
    rewrites_apart = missed.pop("rewrite", 0)
    if missed:
        problems.append(f"copies missed: {missed}")
    if articles != expected_articles + rewrites_apart:
        problems.append(
            f"{articles} articles kept for {expected_articles} distinct stories"
            f" ({rewrites_apart} rewrites kept apart)"
        )
    if score.false_merges:
        problems.append(f"{len(score.false_merges)} falsely merged document pairs")
    return Check(
        entries=int(entries),
        outcomes=outcomes,
        articles=int(articles),
        expected_articles=expected_articles,
        false_merges=len(score.false_merges),
        missed_copies=score.false_negatives,
        problems=tuple(problems),
    )


@contextlib.contextmanager
def postgres_schema(base_url: str) -> Iterator[str]:
    """A URL whose connections use a fresh schema, dropped afterwards (tests/databases.py)."""
    from monitor.storage.database import create_database_engine

    schema = f"bench_{uuid.uuid4().hex[:12]}"
    admin = create_database_engine(base_url)
    with admin.begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in base_url else "?"
    try:
        yield f"{base_url}{separator}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


# The run


@dataclass(slots=True)
class Results:
    pages: int
    feeds: int
    stories: int
    page_bytes: dict[str, int]
    setup_seconds: float
    extraction_check: str
    monitor: str
    seconds: dict[str, list[float]] = field(default_factory=dict)
    cpu_seconds: dict[str, list[float]] = field(default_factory=dict)
    server_cpu_seconds: dict[str, list[float]] = field(default_factory=dict)
    checks: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    summaries: dict[str, list[str]] = field(default_factory=dict)
    profile: dict[str, Any] | None = None
    load_average: list[tuple[float, float, float]] = field(default_factory=list)

    def add(self, name: str, seconds: float) -> None:
        self.seconds.setdefault(name, []).append(seconds)

    def add_monitor_run(self, name: str, run: MonitorRun) -> None:
        """A monitor run's wall time, its tree's CPU and the site server's CPU."""
        self.add(name, run.seconds)
        self.cpu_seconds.setdefault(name, []).append(run.cpu_seconds)
        self.server_cpu_seconds.setdefault(name, []).append(run.server_cpu_seconds)

    def median(self, name: str) -> float:
        return statistics.median(self.seconds[name])

    def rate(self, name: str) -> float:
        return self.pages / self.median(name)

    def cpu(self, name: str) -> float:
        return statistics.median(self.cpu_seconds[name])


LABELS = {
    "a1": "(a1) trafilatura, text and metadata, 1 process",
    "a2": "(a2) trafilatura, text and metadata, pool of 2",
    "d1": "trafilatura.extract() defaults, 1 process",
    "d2": "trafilatura.extract() defaults, pool of 2",
    "sqlite": "(b) monitor run-once → SQLite",
    "postgresql": "(b) monitor run-once → PostgreSQL",
    "nostore": "what-if: run-once → SQLite, storing nothing",
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--pages", type=int, default=2000, help="pages (2000)")
    parser.add_argument("--feeds", type=int, default=40, help="feeds (40)")
    parser.add_argument("--runs", type=int, default=3, help="runs of each measurement (3)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated site (0)")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("MONITOR_TEST_POSTGRES_URL", DEFAULT_POSTGRES),
        help="PostgreSQL to measure on; a fresh schema per run (%(default)s)",
    )
    parser.add_argument("--no-postgres", action="store_true", help="skip PostgreSQL")
    parser.add_argument(
        "--extract-defaults",
        action="store_true",
        help="also measure trafilatura.extract() with its defaults (no metadata), 1 and 2"
        " processes",
    )
    parser.add_argument(
        "--without-storing",
        action="store_true",
        help="also measure run-once with Store.ingest storing nothing (bench/nostore.py):"
        " the bound on what the database layer could win",
    )
    parser.add_argument(
        "--profile", type=Path, help="also profile one run-once into SQLite, stats written here"
    )
    parser.add_argument(
        "--check-pages",
        type=int,
        default=200,
        help="pages checked to extract to exactly their paragraphs before measuring (200)",
    )
    parser.add_argument("--markdown", type=Path, help="also write the report here")
    parser.add_argument("--json", type=Path, help="write the results as JSON here")
    parser.add_argument("--workdir", type=Path, help="build the site here and keep it")
    parser.add_argument(
        "--monitor-src",
        type=Path,
        help="measure the monitor package in this folder (e.g. `git archive HEAD monitor"
        " migrations | tar -x -C DIR`) instead of the installed one",
    )
    args = parser.parse_args(argv)
    if args.pages < 1 or args.feeds < 1 or args.runs < 0:
        parser.error("--pages and --feeds must be at least 1, --runs at least 0")
    if args.runs == 0 and not args.profile:
        parser.error("--runs 0 measures nothing without --profile")
    if args.profile:
        args.profile = args.profile.resolve()  # monitor runs in another directory
        args.profile.parent.mkdir(parents=True, exist_ok=True)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    become_subreaper()
    use_monitor_source(args.monitor_src)
    temporary = None
    if args.workdir:
        work = args.workdir.resolve()
        if work.exists():
            shutil.rmtree(work)
        work.mkdir(parents=True)
    else:
        temporary = tempfile.TemporaryDirectory(prefix="bench-throughput-")
        work = Path(temporary.name)
    try:
        results = run(args, work)
    finally:
        if temporary is not None:
            temporary.cleanup()
    report = render(results, args)
    print(report)
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(report, encoding="utf-8")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(asdict(results), indent=2), encoding="utf-8")
    failed = [c for checks in results.checks.values() for c in checks if c["problems"]]
    return 1 if failed else 0


def log(message: str) -> None:
    print(f"throughput: {message}", file=sys.stderr, flush=True)


def run(args: argparse.Namespace, work: Path) -> Results:
    began = time.perf_counter()
    documents = throughput_documents(args.pages, seed=args.seed)
    root = work / "site"
    manifest = write_bench_site(
        documents, root, feeds=args.feeds, order_seed=args.seed + 1, seed=args.seed
    )
    stories = stories_in(documents)
    sample = documents[:: max(1, len(documents) // args.check_pages)] if args.check_pages else []
    problems = check_extraction(sample, manifest, root) if sample else []
    extraction_check = (
        f"{len(sample)} pages checked: trafilatura extracts exactly their paragraphs,"
        " title, author and time"
        if sample and not problems
        else f"{len(problems)} problems in {len(sample)} pages checked: {problems[:3]}"
        if sample
        else "not checked"
    )
    log(f"{len(documents)} pages, {stories} stories, {args.feeds} feeds; {extraction_check}")
    check_monitor_import(work)
    with ServerProcess(root) as server:
        base = server.base_url
        pages = [
            (base + path, file_for(root, path).read_bytes().replace(b"{{BASE}}", base.encode()))
            for path in manifest
        ]
        sizes = sorted(len(body) for _, body in pages)
        results = Results(
            pages=len(pages),
            feeds=args.feeds,
            stories=stories,
            page_bytes={
                "min": sizes[0],
                "p10": sizes[len(sizes) // 10],
                "median": sizes[len(sizes) // 2],
                "p90": sizes[len(sizes) * 9 // 10],
                "max": sizes[-1],
            },
            setup_seconds=time.perf_counter() - began,
            extraction_check=extraction_check,
            monitor=describe_monitor(),
        )
        feed_urls = [server.url(path) for path in feed_paths(root)]
        for number in range(1, args.runs + 1):
            results.load_average.append(os.getloadavg())
            measure_trafilatura(results, pages, args, number)
            measure_monitor(results, "sqlite", work, feed_urls, manifest, server, number, args)
            if args.without_storing:
                measure_without_storing(results, work, feed_urls, server, number)
            if not args.no_postgres:
                measure_monitor(
                    results, "postgresql", work, feed_urls, manifest, server, number, args
                )
        if args.profile:
            directory = work / "profile"
            directory.mkdir()
            config = write_config(directory, feed_urls, f"sqlite:///{directory / 'monitor.db'}")
            log("profiling one run-once into SQLite")
            profiled = run_monitor(config, server, profile=args.profile)
            profiled_files = {key[0] for key in pstats.Stats(str(args.profile)).stats}  # type: ignore[attr-defined]
            if str(measured_monitor() / "cli.py") not in profiled_files:
                raise SystemExit(f"throughput: the profiled run did not run {measured_monitor()}")
            check = check_database(f"sqlite:///{directory / 'monitor.db'}", manifest, stories)
            results.profile = {
                "seconds": profiled.seconds,
                "check": asdict(check),
                **summarise_profile(args.profile),
            }
    return results


def measure_trafilatura(
    results: Results, pages: Sequence[tuple[str, bytes]], args: argparse.Namespace, number: int
) -> None:
    variants: list[tuple[str, Extractor]] = [("a", extract_with_metadata)]
    if args.extract_defaults:
        variants.append(("d", extract_default))
    for prefix, extractor in variants:
        for workers in (1, 2):
            name = f"{prefix}{workers}"
            if workers == 1:
                seconds, cpu = time_serial(extractor, pages)
            else:
                seconds, cpu = time_pool(extractor, pages, workers)
            results.add(name, seconds)
            results.cpu_seconds.setdefault(name, []).append(cpu)
            log(f"run {number}: {LABELS[name]}: {seconds:.1f}s (CPU {cpu:.1f}s)")


def measure_monitor(
    results: Results,
    backend: str,
    work: Path,
    feed_urls: Sequence[str],
    manifest: Manifest,
    server: ServerProcess,
    number: int,
    args: argparse.Namespace,
) -> None:
    directory = work / f"{backend}-{number}"
    directory.mkdir()
    with contextlib.ExitStack() as stack:
        if backend == "sqlite":
            url = f"sqlite:///{directory / 'monitor.db'}"
        else:
            url = stack.enter_context(postgres_schema(args.postgres_url))
        config = write_config(directory, feed_urls, url)
        outcome = run_monitor(config, server)
        check = check_database(url, manifest, results.stories)
    results.add_monitor_run(backend, outcome)
    results.checks.setdefault(backend, []).append(asdict(check))
    results.summaries.setdefault(backend, []).append(outcome.summary)
    verdict = "ok" if check.ok else "PROBLEMS: " + "; ".join(check.problems)
    log(
        f"run {number}: {LABELS[backend]}: {outcome.seconds:.1f}s (CPU {outcome.cpu_seconds:.1f}s,"
        f" server CPU {outcome.server_cpu_seconds:.1f}s); {check.articles} articles for"
        f" {check.expected_articles} stories, outcomes {check.outcomes}: {verdict}"
    )
    if backend == "sqlite":
        shutil.rmtree(directory)


def measure_without_storing(
    results: Results, work: Path, feed_urls: Sequence[str], server: ServerProcess, number: int
) -> None:
    """The what-if of `--without-storing`: run-once into SQLite, storing nothing."""
    directory = work / f"nostore-{number}"
    directory.mkdir()
    config = write_config(directory, feed_urls, f"sqlite:///{directory / 'monitor.db'}")
    outcome = run_monitor(config, server, store_nothing=True)
    engine = sa.create_engine(f"sqlite:///{directory / 'monitor.db'}")
    with engine.connect() as connection:
        stored = connection.execute(sa.text("SELECT count(*) FROM articles")).scalar_one()
    engine.dispose()
    if stored:
        raise SystemExit(f"throughput: the what-if run stored {stored} articles: not {NOSTORE}")
    results.add_monitor_run("nostore", outcome)
    log(
        f"run {number}: {LABELS['nostore']}: {outcome.seconds:.1f}s"
        f" (CPU {outcome.cpu_seconds:.1f}s, server CPU {outcome.server_cpu_seconds:.1f}s)"
    )
    shutil.rmtree(directory)


def render(results: Results, args: argparse.Namespace) -> str:
    lines = [
        "# Ingestion throughput",
        "",
        f"- {results.pages} pages ({results.stories} distinct stories, the rest copies) in"
        f" {results.feeds} feeds; page size median {results.page_bytes['median'] / 1000:.0f} KB"
        f" (p10 {results.page_bytes['p10'] / 1000:.0f}, p90"
        f" {results.page_bytes['p90'] / 1000:.0f} KB)",
        f"- {results.extraction_check}",
        f"- measured: {results.monitor}",
        f"- runs: {args.runs}; load average at the start of each run: "
        + (", ".join(f"{a[0]:.1f}" for a in results.load_average) or "-"),
        "",
        "| measurement | wall s (median) | pages/s | wall s, each run | CPU s (median) |"
        " CPU ms/page |",
        "|---|---:|---:|---|---:|---:|",
    ]
    if not results.seconds:
        lines = lines[:-3]
    for name, label in LABELS.items():
        if name not in results.seconds:
            continue
        runs = ", ".join(f"{s:.1f}" for s in results.seconds[name])
        cpu = results.cpu(name)
        lines.append(
            f"| {label} | {results.median(name):.1f} | {results.rate(name):.1f} | {runs} |"
            f" {cpu:.1f} | {cpu / results.pages * 1000:.0f} |"
        )
    lines.append("")
    if "a1" in results.seconds and "a2" in results.seconds:
        speedup = results.rate("a2") / results.rate("a1")
        if speedup < 1.5:
            # Two processes ought to nearly double one: else the cores were not both
            # free (other work on the machine), and the ratios below measure that.
            lines.append(
                f"- WARNING: the pool of two ran only {speedup:.2f} times as fast as one"
                " process: both cores were not free for the ceiling, so the ratios to"
                " (a2) below say little; measure again on an idle machine"
            )
    for backend in ("sqlite", "postgresql", "nostore"):
        if backend not in results.seconds or "a2" not in results.seconds:
            continue
        ratio = results.rate(backend) / results.rate("a2")
        defaults = (
            f"; / extract() defaults, pool of 2: {results.rate(backend) / results.rate('d2'):.2f}"
            if "d2" in results.seconds
            else ""
        )
        target = "a bound, not a result" if backend == "nostore" else "target ≥ 0.8"
        lines.append(
            f"- {LABELS[backend]} / (a2), wall: **{ratio:.2f}** ({target});"
            f" / (a1): {results.rate(backend) / results.rate('a1'):.2f}{defaults}"
        )
        # CPU of monitor's whole process tree (its workers too, see become_subreaper):
        # on an idle machine both use the two cores, so that is the wall ratio if
        # monitor never left a core idle.
        cpu_ratio = results.cpu("a2") / results.cpu(backend)
        overhead = (results.cpu(backend) - results.cpu("a1")) / results.pages * 1000
        lines.append(
            f"- {LABELS[backend]} / (a2), CPU time of the whole process tree: {cpu_ratio:.2f}"
            f" (the wall ratio if monitor kept both cores busy); monitor's CPU beyond (a1):"
            f" {overhead:.0f}"
            " ms/page"
        )
    lines.append("")
    for backend, checks in results.checks.items():
        for number, check in enumerate(checks, start=1):
            verdict = "ok" if not check["problems"] else "; ".join(check["problems"])
            lines.append(
                f"- check {backend} run {number}: {check['entries']} entries,"
                f" {check['outcomes']}, {check['articles']} articles for"
                f" {check['expected_articles']} stories, false merges {check['false_merges']},"
                f" missed copy pairs {check['missed_copies']}: {verdict}"
            )
    if results.profile:
        lines += ["", "## Profile of one run-once into SQLite (cProfile)", ""]
        lines.append(results.profile["markdown"])
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    sys.exit(main())
