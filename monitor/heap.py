"""The C heap of a long-running process (glibc's malloc): few arenas, free pages handed back.

glibc gives a thread an arena on its first allocation (one an exited thread left,
else a new one, up to eight per core) and never gives an arena back. The daemon's
process starts threads all the time (a poll's fetch threads, the scheduler's
pool), so large buffers (page bodies, feed documents, SQLite's pages) end up
spread over 15 arenas, each keeping the free space between the blocks still in
use: the 100,000-article soak saw those arenas grow 13 → 21 MiB in seven minutes
while the objects Python holds stayed flat. Python code holds the GIL while it
allocates, so more arenas buy almost no parallelism.

Elsewhere (musl, macOS) these are no-ops.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger(__name__)

# mallopt's parameter number for the arena limit (glibc's malloc.h).
_M_ARENA_MAX = -8
# Arenas for a process whose threads mostly take turns with the GIL: the main
# arena and one more, so that a thread blocked in C (SQLite, lxml) does not make
# the others wait for its arena.
ARENAS = 2


def _load_glibc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim  # noqa: B018 - glibc only
        libc.mallopt  # noqa: B018
    except (OSError, AttributeError):
        return None
    return libc


_GLIBC = _load_glibc()


def limit_arenas(arenas: int = ARENAS) -> None:
    """Cap the malloc arenas of this process; call before it starts threads (arenas
    made before stay)."""
    if _GLIBC is not None and not _GLIBC.mallopt(_M_ARENA_MAX, arenas):
        log.debug("malloc did not accept an arena limit of %d", arenas)


def trim() -> None:
    """Hand the free pages of every arena back to the system (`malloc_trim`): the
    heap's resident size follows what is in use instead of its high-water mark."""
    if _GLIBC is not None:
        _GLIBC.malloc_trim(0)
