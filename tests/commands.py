"""Running the installed `monitor` command from tests, as an operator would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

MONITOR = str(Path(sys.executable).parent / "monitor")


def environment(**overrides: str) -> dict[str, str]:
    """This process's environment without MONITOR_* settings, plus `overrides`."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MONITOR_")}
    return {**clean, **overrides}


def run_monitor(config: Path, *arguments: str, timeout: float = 600) -> str:
    """`monitor --config CONFIG ARGUMENTS…`, which must succeed without a traceback; its stdout."""
    result = subprocess.run(
        [MONITOR, "--config", str(config), *arguments],
        capture_output=True,
        text=True,
        env=environment(),
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    return result.stdout
