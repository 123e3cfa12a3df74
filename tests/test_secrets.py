"""Database passwords never appear in logs, errors or `check-config`.

PostgreSQL here trusts every local connection, so a URL with a password works and
every command can run for real with it, at DEBUG level; the commands that fail
(an unreachable server, a malformed URL) must not quote it either.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.commands import MONITOR, environment
from tests.databases import postgres_schema

pytestmark = pytest.mark.slow
SECRET = "s3cret-Pa55"


def monitor(config: Path, *arguments: str, **env: str) -> tuple[int, str]:
    result = subprocess.run(
        [MONITOR, "--config", str(config), "--log-level", "DEBUG", *arguments],
        capture_output=True,
        text=True,
        env=environment(**env),
        timeout=120,
        check=False,
    )
    return result.returncode, result.stdout + result.stderr


def config_with(tmp_path: Path, database_url: str) -> Path:
    config = tmp_path / "config.toml"
    config.write_text(
        f'[database]\nurl = "{database_url}"\n'
        "[fetch]\nallow_private_addresses = true\n"
        '[[feeds]]\nname = "down"\nurl = "http://127.0.0.1:9/feed.rss"\n',
        encoding="utf-8",
    )
    return config


COMMANDS = [
    ["check-config"],
    ["db", "upgrade"],
    ["db", "current"],
    ["run-once"],
    ["status"],
    ["export", "--format", "csv"],
    ["search", "raid"],
    ["retag"],
    ["index", "rebuild"],
]


def test_every_command_keeps_the_password_to_itself(tmp_path: Path) -> None:
    with postgres_schema() as url:
        with_password = url.replace("postgres@", f"postgres:{SECRET}@", 1)
        assert SECRET in with_password
        config = config_with(tmp_path, with_password)
        for arguments in COMMANDS:
            code, output = monitor(config, *arguments)
            assert code == 0, output[-2000:]
            assert SECRET not in output, arguments
            if arguments == ["check-config"]:
                assert "postgres:***@" in output


@pytest.mark.parametrize(
    ("url", "says"),
    [
        (f"postgresql://monitor:{SECRET}@127.0.0.1:1/monitor", "cannot open database"),
        (f"postgresql://monitor:{SECRET}@127.0.0.1:port/monitor", "bad port: expected"),
        (f"postgresql://monitor:{SECRET}@[::1/monitor", "database.url"),
        (f"mysql://monitor:{SECRET}@db/monitor", "unsupported database 'mysql'"),
    ],
)
@pytest.mark.parametrize("where", ["config", "environment"])
def test_failures_never_quote_the_password(tmp_path: Path, url: str, says: str, where: str) -> None:
    if where == "config":
        config, env = config_with(tmp_path, url), {}
    else:
        config, env = config_with(tmp_path, "sqlite:///unused.db"), {"MONITOR_DATABASE_URL": url}
    code, output = monitor(config, "run-once" if where == "environment" else "run", **env)
    assert SECRET not in output, output
    assert "Traceback" not in output
    assert code != 0 and says in output, output
