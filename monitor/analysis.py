"""The CPU-heavy middle of the chain, run in worker processes: extract → clean →
near-duplicate features and signatures.

Extraction is most of the work an article costs and holds the GIL, so threads
cannot spread it over cores; processes can. A poll fetches pages and stores
results in its own thread, in feed order, while up to `window` pages are being
analysed in the pool. `workers = 0` analyses in the calling thread instead.

Workers start from a fork server that has imported this module (trafilatura,
the language model, the MinHash permutations) once, so a new worker costs a
fork, and the memory those imports take is shared between the workers.
"""

from __future__ import annotations

import importlib.machinery
import itertools
import logging
import multiprocessing
import os
import select
import signal
import sys
import threading
import time
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache

from monitor import heap
from monitor.clean import clean_article
from monitor.dedup import DedupInput
from monitor.dedup import prepare as prepare_dedup
from monitor.errors import StageError
from monitor.processes import process_alive
from monitor.records import CleanedArticle, FeedEntry, FetchedPage
from monitor.similarity import Signer

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Analysis:
    """A page's article, cleaned, with what the duplicate decision needs."""

    cleaned: CleanedArticle
    dedup: DedupInput


def analyse(page: FetchedPage, entry: FeedEntry) -> Analysis:
    """Pure: the same page always gives the same analysis. Raises StageError."""
    # Imported here: with workers, the daemon's own process never extracts and need
    # not hold trafilatura and the language model (about 100 MB).
    from monitor.extract import extract_article

    cleaned = clean_article(extract_article(page, entry))
    return Analysis(cleaned=cleaned, dedup=prepare_dedup(cleaned, _signer()))


def warm_up() -> None:
    """Load everything analysis loads on first use (trafilatura and the modules it
    imports lazily, the language model, datasketch's MinHash, the MinHash
    permutations) by analysing a sample page: run in the workers' fork server, so
    that the workers share it rather than each loading its own."""
    paragraph = (
        "<p>Police in Sihanoukville said on Tuesday that 312 workers from several countries"
        " were freed from a compound where they had been forced to run online scams.</p>"
    )
    sample = FetchedPage(
        url="https://example.org/warm-up",
        final_url="https://example.org/warm-up",
        status=200,
        content_type="text/html; charset=utf-8",
        body=(
            '<html lang="en"><head><title>Warm-up</title>'
            '<meta property="article:published_time" content="2024-03-14T08:00:00+07:00">'
            f"</head><body><article><h1>Warm-up</h1>{paragraph * 6}</article></body></html>"
        ).encode(),
        fetched_at=datetime(2024, 3, 14, tzinfo=UTC),
    )
    analysis = analyse(sample, FeedEntry(link=sample.url, url=sample.url))
    # The page declares its language; the model is loaded when a text is classified.
    from monitor.extract import detect_language

    detect_language(analysis.cleaned.text, None)
    _build_justext_stoplist()


def _build_justext_stoplist() -> None:
    """trafilatura's last resort for a page where it finds little (jusText) builds, on
    first use, one stop-word list of every language, and jusText a lower-cased set of
    it: 35 MiB, which each worker built for itself on its first such page (the 403rd
    of the throughput site). Built in the fork server, the workers share it: lookups
    in a set do not write to the words, so their pages are never copied."""
    try:
        from justext.core import define_stoplist
        from trafilatura.external import jt_stoplist_init

        define_stoplist(jt_stoplist_init())
    except Exception:  # internals of trafilatura 2 and jusText 3
        # Not worth failing the workers' start for: each builds its own list again.
        log.warning("jusText's stop words not prepared for the workers", exc_info=True)


@cache
def _signer() -> Signer:
    return Signer()


class WorkerCrashed(StageError):
    """The worker analysing a page died (out of memory, a crash in a parser)."""

    reason = "worker_crashed"


def available_cores() -> int:
    """The cores this process may run on (a container's CPU set, not the host's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def workers_for(setting: int | str) -> int:
    """`processing.workers` as a number: "auto" is one per core when there are several
    (with one core a worker would only add a process to feed)."""
    if isinstance(setting, int):
        return setting
    cores = available_cores()
    return cores if cores >= 2 else 0


class Analyser:
    """Analyses pages in `workers` processes (0: in the calling thread)."""

    def __init__(self, workers: int | str) -> None:
        self.workers = workers_for(workers)
        self._lock = threading.Lock()
        self._pool: Executor | None = None

    @property
    def window(self) -> int:
        """Pages a poll keeps in hand (being fetched, waiting for a worker, analysed and
        waiting to be stored): enough that a worker finishing a page finds the next
        one queued while the poll's thread stores the last. Pages still being fetched
        count too, so two a worker left the workers waiting; four a worker made the
        throughput benchmark 5–9% faster (bench/README.md), eight no faster again."""
        return 1 if self.workers == 0 else 4 * self.workers

    def submit(self, page: FetchedPage, entry: FeedEntry) -> Future[Analysis]:
        if self.workers == 0:
            done: Future[Analysis] = Future()
            try:
                done.set_result(_analyse_and_trim(page, entry))
            except Exception as error:  # noqa: BLE001 - handed to the caller through the future
                done.set_exception(error)
            return done
        try:
            return self._executor().submit(_analyse_and_trim, page, entry)
        except BrokenProcessPool:
            self._replace_broken_pool()
            return self._executor().submit(_analyse_and_trim, page, entry)

    def result(self, future: Future[Analysis]) -> Analysis:
        """The analysis, or the StageError that stopped it; a dead worker is one too."""
        try:
            return future.result()
        except BrokenProcessPool:
            self._replace_broken_pool()
            raise WorkerCrashed("the worker analysing this page died") from None

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    def _executor(self) -> Executor:
        with self._lock:
            if self._pool is None:
                _keep_workers_from_rerunning_main()
                context = multiprocessing.get_context("forkserver")
                context.set_forkserver_preload(["monitor.workerinit"])
                self._pool = ProcessPoolExecutor(
                    self.workers,
                    mp_context=context,
                    initializer=_start_worker,
                    initargs=(os.getpid(),),
                )
            return self._pool

    def _replace_broken_pool(self) -> None:
        with self._lock:
            pool = self._pool
            if pool is not None and getattr(pool, "_broken", False):
                log.error("an extraction worker died; starting new workers")
                self._pool = None
                pool.shutdown(wait=False, cancel_futures=True)

    def __enter__(self) -> Analyser:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _keep_workers_from_rerunning_main() -> None:
    """A process started by multiprocessing first runs the parent's main script again
    (as `__mp_main__`), unless that is a package's `__main__` module. The `monitor`
    command is a script whose first line imports monitor.cli: each worker would load
    everything the daemon's process uses (SQLAlchemy, Alembic, httpx, feedparser,
    APScheduler, pydantic: 46 MiB), though it only runs this module's functions.
    Naming the script `monitor.__main__`, as `python -m monitor` does, has
    multiprocessing skip it. A main module that has a name already is left alone."""
    main = sys.modules.get("__main__")
    if main is not None and main.__spec__ is None and getattr(main, "__file__", None):
        main.__spec__ = importlib.machinery.ModuleSpec("monitor.__main__", None)


_analysed = itertools.count(1)
# Pages between two trims of a worker's heap, and the size of page that is trimmed after
# at once: trimming after every page cost 4% of a page's CPU (pages fault in again).
TRIM_EVERY = 8
TRIM_AFTER_BYTES = 1 << 20


def _analyse_and_trim(page: FetchedPage, entry: FeedEntry) -> Analysis:
    """`analyse`, in a worker or (workers = 0) in the daemon's own process."""
    try:
        return analyse(page, entry)
    finally:
        # A large page leaves the C heap (lxml's trees) grown; give the free part back
        # so that a worker's memory stays flat instead of ratcheting up (about 15 MB).
        if next(_analysed) % TRIM_EVERY == 0 or len(page.body) >= TRIM_AFTER_BYTES:
            heap.trim()


def _start_worker(daemon_pid: int) -> None:
    # Ctrl-C reaches the whole process group; the daemon decides how to stop, and
    # shuts the workers down itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # A worker's parent is the fork server, not the daemon: if the daemon is killed
    # outright, nothing would tell its workers (nor, through them, the fork server).
    threading.Thread(target=_exit_with, args=(daemon_pid,), daemon=True).start()


def _exit_with(daemon_pid: int) -> None:
    try:
        handle = os.pidfd_open(daemon_pid)
    except ProcessLookupError:
        os._exit(0)
    except (AttributeError, OSError):  # no pidfd: look now and then instead
        while process_alive(daemon_pid):
            time.sleep(1.0)
        os._exit(0)
    select.select([handle], [], [])  # readable once the daemon has exited
    os._exit(0)
