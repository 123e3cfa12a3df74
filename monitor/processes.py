"""Whether a process is still running, by its pid."""

from __future__ import annotations

import os


def process_alive(pid: int) -> bool:
    """True while `pid` runs a process (someone else's counts: it runs)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
