"""SQLite's full-text table names its content table as Datasette looks for it

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07

Datasette gives a table a search box when an FTS virtual table declares it as its
content with `content="articles"` or `content=[articles]`; `articles_fts` declared
`content='articles'`, which FTS5 reads the same and Datasette does not recognise, so
`/monitor/articles?_search=…` returned every row (docs/reading.md promises the search
box). The table is declared again, the same in every other way, and rebuilt from
`articles` (one pass over the text: about a minute for 100,000 articles). PostgreSQL
has no such table; nothing changes there.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _revision_0009() -> ModuleType:
    """Revision 0009, whose tokenizer and triggers stay as they are: read from the file
    beside this one (the migrations are a folder, not a package, in a checkout and in
    the installed wheel)."""
    path = Path(__file__).with_name("0009_search_khmer_runs_whole.py")
    spec = importlib.util.spec_from_file_location("revision_0009", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_KHMER_RUNS = _revision_0009()
_TOKENIZE = f"unicode61 remove_diacritics 2 tokenchars '{_KHMER_RUNS.MARKS}'"


def _recreate(content: str) -> None:
    for trigger in ("articles_fts_insert", "articles_fts_delete", "articles_fts_update"):
        op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    op.execute("DROP TABLE IF EXISTS articles_fts")
    op.execute(
        "CREATE VIRTUAL TABLE articles_fts USING fts5("
        f" title, text, content={content}, content_rowid='id',"
        f' tokenize="{_TOKENIZE}")'
    )
    for statement in _KHMER_RUNS._TRIGGERS:
        op.execute(statement)
    op.execute("INSERT INTO articles_fts (articles_fts) VALUES ('rebuild')")


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _recreate('"articles"')


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _recreate("'articles'")
