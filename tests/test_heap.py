"""monitor.heap: glibc's arenas capped for the daemon's threads, free pages handed back."""

from __future__ import annotations

import ctypes.util
import json
import subprocess
import sys
import textwrap

import pytest

from monitor import heap

pytestmark = pytest.mark.skipif(
    heap._GLIBC is None, reason="glibc's malloc only (mallopt, malloc_trim, malloc_info)"
)

# Six threads, each allocating while the others are alive, then glibc's own count of
# its arenas (malloc_info's <heap nr=...> elements), and what a trim gives back once
# the large blocks are freed.
_THREADS_SCRIPT = textwrap.dedent(
    """
    import ctypes, json, os, sys, tempfile, threading
    from monitor import heap

    if sys.argv[1] == "limited":
        heap.limit_arenas(2)
    libc = ctypes.CDLL(sys.argv[2])
    libc.fopen.restype = ctypes.c_void_p
    libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
    libc.fclose.argtypes = [ctypes.c_void_p]

    all_started = threading.Barrier(7)
    kept = []
    pinned = []

    def allocate():
        # Above pymalloc's 512 bytes and below the mmap threshold: from an arena. A
        # small block after each large one stays, so the large ones, once freed, are
        # holes that malloc keeps rather than the top of the heap that it gives back.
        for _ in range(40):
            kept.append(bytearray(64 * 1024))
            pinned.append(bytearray(1024))
        all_started.wait()
        all_started.wait()

    threads = [threading.Thread(target=allocate) for _ in range(6)]
    for thread in threads:
        thread.start()
    all_started.wait()
    path = tempfile.mktemp()
    stream = libc.fopen(path.encode(), b"w")
    libc.malloc_info(0, stream)
    libc.fclose(stream)
    with open(path) as handle:
        arenas = handle.read().count("<heap nr=")
    os.unlink(path)
    all_started.wait()
    for thread in threads:
        thread.join()

    def rss_kib():
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))

    kept.clear()
    before_trim = rss_kib()
    heap.trim()
    print(json.dumps({"arenas": arenas, "freed_kib": before_trim - rss_kib()}))
    """
)


def _run(mode: str) -> dict[str, int]:
    libc = ctypes.util.find_library("c") or "libc.so.6"
    result = subprocess.run(
        [sys.executable, "-c", _THREADS_SCRIPT, mode, libc],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    figures: dict[str, int] = json.loads(result.stdout)
    return figures


def test_the_arena_limit_holds_for_threads_started_after_it() -> None:
    unlimited = _run("default")
    limited = _run("limited")
    # glibc's default gives each of the six threads an arena of its own (8 per core).
    assert unlimited["arenas"] >= 4
    assert limited["arenas"] == 2


def test_trim_hands_the_free_pages_of_the_threads_arenas_back() -> None:
    # 6 threads x 40 x 64 KiB = 15 MiB freed by Python, kept by malloc until trimmed.
    assert _run("default")["freed_kib"] > 8 * 1024
