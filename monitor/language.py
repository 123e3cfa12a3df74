"""The language of a text (py3langid), with the model's two large tables mapped from an
unpacked copy on disk instead of unpacked into memory by every process that starts.

py3langid ships its model compressed and unpacks it on first use: 65 MiB of
anonymous memory (a 37 MiB table of state transitions, 27 MiB of feature
probabilities) held for as long as the daemon runs, whatever its texts are, and 0.5 s
of CPU at each start. monitor unpacks it once into the cache directory and maps the
two tables read-only: a process holds only the pages its texts reach (a process that
classifies 600 English news pages grows by 35 MiB, by 46 for trafilatura's test pages
in a dozen languages, against 74 and 71 unpacked into memory), they are shared by
every process that maps them, the kernel can drop them under memory
pressure as it drops any clean file page, and the model is ready in milliseconds.
The classification is py3langid's own, on the same numbers.

The cache directory is `$XDG_CACHE_HOME/monitor` (`~/.cache/monitor` by default).
When it cannot be written or read, the model is loaded as py3langid loads it.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import mmap
import os
import shutil
import tempfile
import time
from array import array
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from py3langid.langid import MODEL_DIR, MODEL_FILE, LanguageIdentifier
from py3langid.modelio import load_model

log = logging.getLogger(__name__)

_BUNDLED_MODEL = Path(MODEL_DIR) / MODEL_FILE
_STAGING_PREFIX = ".unpacking-"
_ABANDONED_AFTER_SECONDS = 600


def classify(text: str) -> str:
    """The ISO 639-1 code of the text's most likely language."""
    code: str = _identifier().classify(text)[0]
    return code


@cache
def _identifier() -> LanguageIdentifier:
    return load_identifier(cache_directory())


def cache_directory() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "monitor"


def load_identifier(cache: Path) -> LanguageIdentifier:
    """py3langid's identifier over its bundled model, the large tables mapped from
    `cache` (unpacked there first if need be)."""
    try:
        return _mapped_identifier(cache)
    # A full disk, a read-only home, a py3langid whose model is laid out otherwise.
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        # Worth a warning, not a failure: the daemon works the same, with more memory.
        log.warning(
            "language model not mapped from %s (%s); loading it into memory instead",
            cache,
            exc,
        )
        return LanguageIdentifier.from_model_file(_BUNDLED_MODEL)


def _mapped_identifier(cache: Path) -> LanguageIdentifier:
    # Named after the bundled model's bytes: an upgraded py3langid unpacks its own.
    digest = hashlib.sha256(_BUNDLED_MODEL.read_bytes()).hexdigest()[:16]
    directory = cache / f"py3langid-{digest}"
    try:
        tables = _map_tables(directory)
    except (OSError, ValueError):  # not unpacked yet, or damaged
        _unpack(directory)
        tables = _map_tables(directory)
    ptc, pc, classes, nextmove, row, output = tables
    return LanguageIdentifier(
        ptc,
        pc,
        classes,
        # A memoryview indexes to plain ints, as fast as py3langid's own array.
        memoryview(nextmove),
        output.tolist(),
        tk_row=array("I", row.astype(np.uint32).tobytes()),
    )


def _unpack(directory: Path) -> None:
    ptc, pc, classes, nextmove, row, output = load_model(_BUNDLED_MODEL)
    directory.parent.mkdir(parents=True, exist_ok=True)
    _remove_abandoned_unpacking(directory.parent)
    # Written aside and renamed into place whole: a process that dies half-way, or
    # two daemons starting at once, never leave a partial model where one is read.
    staging = Path(tempfile.mkdtemp(prefix=_STAGING_PREFIX, dir=directory.parent))
    try:
        np.save(staging / "ptc.npy", np.asarray(ptc))
        np.save(staging / "nextmove.npy", np.asarray(nextmove, dtype=np.uint32))
        np.savez(
            staging / "small.npz",
            pc=np.asarray(pc),
            classes=np.asarray(classes),
            row=np.asarray(row),
            output=np.asarray(output, dtype=np.int32),
        )
        for written in staging.iterdir():
            _sync(written)
        if directory.exists() and not _intact(directory):
            _set_aside(directory)
        try:
            staging.rename(directory)
        except OSError:
            # Another process has just put its copy there: used, never replaced.
            if not _intact(directory):
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _intact(directory: Path) -> bool:
    try:
        _map_tables(directory)
    except (OSError, ValueError):
        return False
    return True


def _set_aside(damaged: Path) -> None:
    # Renamed before it is removed, so that no process maps a directory half-deleted;
    # processes that map its files already keep their pages.
    aside = damaged.with_name(f"{_STAGING_PREFIX}damaged-{os.getpid()}-{time.monotonic_ns()}")
    with contextlib.suppress(FileNotFoundError):  # another process set it aside first
        damaged.rename(aside)
        shutil.rmtree(aside, ignore_errors=True)


def _remove_abandoned_unpacking(cache: Path) -> None:
    """What a process killed while unpacking left behind (67 MB each): anything older
    than an unpacking takes, by a wide margin."""
    for staging in cache.glob(_STAGING_PREFIX + "*"):
        with contextlib.suppress(OSError):
            if time.time() - staging.stat().st_mtime > _ABANDONED_AFTER_SECONDS:
                shutil.rmtree(staging)


def _sync(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _map_tables(directory: Path) -> tuple[Any, Any, list[str], Any, Any, Any]:
    with np.load(directory / "small.npz", allow_pickle=False) as small:
        pc, classes = small["pc"], small["classes"].tolist()
        row, output = small["row"], small["output"]
    ptc = _map_array(directory / "ptc.npy")
    nextmove = _map_array(directory / "nextmove.npy")
    consistent = (
        ptc.ndim == 2
        and ptc.shape[1] == len(pc) == len(classes)
        and nextmove.ndim == 1
        and nextmove.dtype == np.uint32
        and nextmove.size % 256 == 0
        and len(row) == len(output) > 0
        and int(row.max()) < nextmove.size // 256
        and int(output.max()) < ptc.shape[0]
    )
    if not consistent:
        raise ValueError(f"damaged language model in {directory}")
    return ptc, pc, classes, nextmove, row, output


def _map_array(path: Path) -> np.ndarray[Any, Any]:
    """A read-only view of an .npy file's array, mapped, not read."""
    with path.open("rb") as file:
        version = np.lib.format.read_magic(file)
        if version == (1, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(file)
        else:
            shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(file)
        offset = file.tell()
        # Pages cached by writing (or by reading the file whole) come in large folios,
        # which a fault maps whole: 34 MiB for one sentence. Dropped, they come back
        # a page at a time, as texts reach them. Pages other processes map stay.
        os.posix_fadvise(file.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
        mapped = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
    # Texts reach the tables at scattered places: without this, each fault would read
    # ahead, and map, neighbouring pages no text needs.
    mapped.madvise(mmap.MADV_RANDOM)
    flat = np.frombuffer(mapped, dtype=dtype, count=math.prod(shape), offset=offset)
    return flat.reshape(shape, order="F" if fortran_order else "C")
