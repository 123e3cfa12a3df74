"""full-text search

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29

Full-text search over the articles' title and text, kept current by the
database itself: on SQLite an FTS5 table (`articles_fts`, external content,
updated by triggers); on PostgreSQL a generated `tsvector` column
(`articles.search_document`) with a GIN index. Both are outside the models
(migrations/env.py leaves them out of `alembic check`).
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SQLITE_UP = (
    "CREATE VIRTUAL TABLE articles_fts USING fts5("
    " title, text, content='articles', content_rowid='id',"
    " tokenize='unicode61 remove_diacritics 2')",
    "CREATE TRIGGER articles_fts_insert AFTER INSERT ON articles BEGIN"
    " INSERT INTO articles_fts (rowid, title, text) VALUES (new.id, new.title, new.text); END",
    "CREATE TRIGGER articles_fts_delete AFTER DELETE ON articles BEGIN"
    " INSERT INTO articles_fts (articles_fts, rowid, title, text)"
    " VALUES ('delete', old.id, old.title, old.text); END",
    "CREATE TRIGGER articles_fts_update AFTER UPDATE OF title, text ON articles BEGIN"
    " INSERT INTO articles_fts (articles_fts, rowid, title, text)"
    " VALUES ('delete', old.id, old.title, old.text);"
    " INSERT INTO articles_fts (rowid, title, text) VALUES (new.id, new.title, new.text); END",
    "INSERT INTO articles_fts (articles_fts) VALUES ('rebuild')",
)
POSTGRES_UP = (
    "ALTER TABLE articles ADD COLUMN search_document tsvector GENERATED ALWAYS AS"
    " (setweight(to_tsvector('english', coalesce(title, '')), 'A') ||"
    " setweight(to_tsvector('english', coalesce(text, '')), 'B')) STORED",
    "CREATE INDEX ix_articles_search_document ON articles USING gin (search_document)",
)


def upgrade() -> None:
    for statement in SQLITE_UP if op.get_bind().dialect.name == "sqlite" else POSTGRES_UP:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for trigger in ("articles_fts_insert", "articles_fts_delete", "articles_fts_update"):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        op.execute("DROP TABLE IF EXISTS articles_fts")
    else:
        op.execute("DROP INDEX IF EXISTS ix_articles_search_document")
        op.execute("ALTER TABLE articles DROP COLUMN IF EXISTS search_document")
