"""One polling cycle in a process of its own, timed from the inside (bench/polling.py).

    python -m bench.polling_cycle CONFIG [--profile OUT.prof]

Does what `monitor run-once` does (bench/polling.py also runs the command itself) and
prints one JSON line: the wall and CPU seconds (user + system) of the start (imports,
configuration, connecting, the migration check, syncing the feeds table) and of the
cycle (`monitor.runner.run_once`: every feed polled once, every new entry processed),
and what the cycle did. The imports are timed from this module's first line; the
interpreter's own start is in the caller's figure for the whole process.
"""

from __future__ import annotations

import resource
import time

_STARTED = time.perf_counter()
_STARTED_CPU = time.process_time()

import argparse  # noqa: E402
import cProfile  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Time one monitor run-once cycle from inside.")
    parser.add_argument("config", type=Path)
    parser.add_argument("--profile", type=Path, help="profile the cycle, stats written here")
    args = parser.parse_args(argv)
    cpu_at_start = _cpu() - (time.process_time() - _STARTED_CPU)

    import monitor
    from monitor.config import load_settings
    from monitor.logs import configure_logging
    from monitor.runner import open_store, run_once

    configure_logging("WARNING", "text")
    settings = load_settings(args.config, environ={})
    store = open_store(settings)
    ready = time.perf_counter()
    ready_cpu = _cpu()

    profiler = cProfile.Profile() if args.profile else None
    if profiler is not None:
        profiler.enable()
    summary = run_once(settings, store)
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(str(args.profile))
    done = time.perf_counter()
    done_cpu = _cpu()
    store.engine.dispose()
    result = {
        "start_seconds": ready - _STARTED,
        "start_cpu_seconds": ready_cpu - cpu_at_start,
        "cycle_seconds": done - ready,
        "cycle_cpu_seconds": done_cpu - ready_cpu,
        "feeds_polled": summary.feeds_polled,
        "feeds_failed": summary.feeds_failed,
        "not_modified": sum(1 for report in summary.reports if report.not_modified),
        "entries_seen": summary.total("entries_seen"),
        "new_entries": summary.total("new_entries"),
        "outcomes": summary.outcomes,
        "monitor": monitor.__file__,
        "errors": sorted({report.error for report in summary.reports if report.error})[:5],
    }
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
