"""The documented interface matches the code: schema, configuration keys, commands."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import click
import pytest
from pydantic import BaseModel

from monitor.cli import cli
from monitor.config import Settings
from monitor.storage.schema import Base

REPO = Path(__file__).resolve().parent.parent


def section(markdown: str, heading: str) -> str:
    match = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", markdown, re.M | re.S)
    assert match, f"no section {heading!r}"
    return match.group(1)


@pytest.mark.parametrize("table", sorted(Base.metadata.tables))
def test_every_column_is_documented(table: str) -> None:
    documented = section((REPO / "docs" / "schema.md").read_text(encoding="utf-8"), f"`{table}`")
    for column in Base.metadata.tables[table].columns:
        assert f"| `{column.name}` |" in documented, (
            f"{table}.{column.name} is not in docs/schema.md"
        )


def test_no_documented_column_is_missing_from_the_schema() -> None:
    schema = (REPO / "docs" / "schema.md").read_text(encoding="utf-8")
    for table in Base.metadata.tables.values():
        documented = set(re.findall(r"^\| `(\w+)` \|", section(schema, f"`{table.name}`"), re.M))
        assert documented == set(table.columns.keys()), table.name


def settings_keys(model: type[BaseModel] = Settings, prefix: str = "") -> set[str]:
    keys = set()
    for name, field in model.model_fields.items():
        annotation = field.annotation
        inner = getattr(annotation, "__args__", (None,))[0]
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            keys |= settings_keys(annotation, f"{prefix}{name}.")
        elif isinstance(inner, type) and issubclass(inner, BaseModel):
            keys |= settings_keys(inner, f"{prefix}{name}.")
        else:
            keys.add(f"{prefix}{name}")
    return keys


def test_every_setting_is_documented() -> None:
    docs = (REPO / "docs" / "configuration.md").read_text(encoding="utf-8")
    for key in settings_keys():
        table, _, name = key.rpartition(".")
        heading = f"`[[{table}]]`" if table in ("feeds", "tags") else f"`[{table}]`"
        assert f"| `{name}` |" in section(docs, heading), f"{key} is not in docs/configuration.md"


def test_every_key_in_the_shipped_config_is_documented() -> None:
    config = tomllib.loads((REPO / "config.toml").read_text(encoding="utf-8"))
    documented = settings_keys()
    for table, values in config.items():
        rows = values if isinstance(values, list) else [values]
        for row in rows:
            for key in row:
                assert f"{table}.{key}" in documented


def commands(group: click.Group, prefix: str = "monitor") -> list[str]:
    names = []
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            names += commands(command, f"{prefix} {name}")
        else:
            names.append(f"{prefix} {name}")
    return names


def test_every_command_is_in_the_readme() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    for command in commands(cli):
        assert f"`{command}" in readme, f"{command} is not documented in README.md"


def test_ci_runs_the_readme_test_command() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```sh\n(.*?)\n```", readme, re.S)
    test_command = next(block for block in blocks if "pytest" in block)
    assert test_command in (REPO / ".ci" / "run").read_text(encoding="utf-8").splitlines()
