"""SQLite's full-text index keeps runs of Khmer, Thai, Lao and Myanmar whole

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07

FTS5's `unicode61` tokenizer takes only letters and digits as parts of a word, so it
cut a Khmer run at every vowel sign and subscript (combining marks): "ក្រសួងមហាផ្ទៃ"
was indexed as "ក", "ងមហ", "ទ"…, a one-consonant query found the article and a
highlight split a letter from its vowel. The marks of the scripts written without
spaces are now word characters (`tokenchars`), so a run is one word, as PostgreSQL's
text search and docs/schema.md have it. Only SQLite's index changes; it is rebuilt.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Thai, Lao, Myanmar and Khmer (with its symbols block): their combining marks.
_SCRIPTS = ((0x0E00, 0x0E7F), (0x0E80, 0x0EFF), (0x1000, 0x109F), (0x1780, 0x17FF))
MARKS = "".join(
    chr(code)
    for first, last in _SCRIPTS
    for code in range(first, last + 1)
    if unicodedata.category(chr(code)).startswith("M")
)
_TRIGGERS = (
    "CREATE TRIGGER articles_fts_insert AFTER INSERT ON articles BEGIN"
    " INSERT INTO articles_fts (rowid, title, text) VALUES (new.id, new.title, new.text); END",
    "CREATE TRIGGER articles_fts_delete AFTER DELETE ON articles BEGIN"
    " INSERT INTO articles_fts (articles_fts, rowid, title, text)"
    " VALUES ('delete', old.id, old.title, old.text); END",
    "CREATE TRIGGER articles_fts_update AFTER UPDATE OF title, text ON articles BEGIN"
    " INSERT INTO articles_fts (articles_fts, rowid, title, text)"
    " VALUES ('delete', old.id, old.title, old.text);"
    " INSERT INTO articles_fts (rowid, title, text) VALUES (new.id, new.title, new.text); END",
)


def _recreate(tokenize: str) -> None:
    for trigger in ("articles_fts_insert", "articles_fts_delete", "articles_fts_update"):
        op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    op.execute("DROP TABLE IF EXISTS articles_fts")
    op.execute(
        "CREATE VIRTUAL TABLE articles_fts USING fts5("
        " title, text, content='articles', content_rowid='id',"
        f' tokenize="{tokenize}")'
    )
    for statement in _TRIGGERS:
        op.execute(statement)
    op.execute("INSERT INTO articles_fts (articles_fts) VALUES ('rebuild')")


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _recreate(f"unicode61 remove_diacritics 2 tokenchars '{MARKS}'")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _recreate("unicode61 remove_diacritics 2")
