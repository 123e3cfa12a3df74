"""tags stored by earlier versions brought to what the schema promises

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07

Data only, no change of schema. Two promises of docs/schema.md that rows stored by
earlier versions did not keep:

- No tag holds a `;` (it separates the tags of a CSV export): a feed category
  "Labour; Asia" stored whole becomes "Labour" and "Asia", with its source and detail.
- A story carries the `category` tags of every arrival, its copies' included: the
  categories of each entry that was stored as the story or recorded as its copy
  (`entries.categories`) are added where missing. (Its copies' `feed` tags come from
  the configuration of the time, which the database does not hold: they are not
  added back.)

The downgrade leaves the tags as they are: they are valid in every revision.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# As monitor.records.MAX_TAG_LENGTH and monitor.tagging.arrival_tags have it at this
# revision (copied: a migration must not change when the application does).
_MAX_TAG_LENGTH = 200
_BATCH = 5000

_INSERT_TAG = sa.text(
    "INSERT INTO article_tags (article_id, tag, source, detail)"
    " VALUES (:article_id, :tag, :source, :detail) ON CONFLICT DO NOTHING"
)


def _names(value: str) -> list[str]:
    """The tags one stored tag or feed category stands for."""
    names = (" ".join(part.split())[:_MAX_TAG_LENGTH] for part in value.split(";"))
    return [name for name in names if name]


def _insert(connection: sa.Connection, rows: Iterable[dict[str, object]]) -> None:
    batch = list(rows)
    if batch:
        connection.execute(_INSERT_TAG, batch)


def _split_tags(connection: sa.Connection) -> None:
    rows = connection.execute(
        sa.text(
            "SELECT article_id, tag, source, detail FROM article_tags"
            " WHERE tag LIKE '%;%' ORDER BY article_id, tag, source"
        )
    ).all()
    _insert(
        connection,
        (
            {"article_id": article_id, "tag": name, "source": source, "detail": detail}
            for article_id, tag, source, detail in rows
            for name in _names(tag)
        ),
    )
    for article_id, tag, source, _detail in rows:
        connection.execute(
            sa.text(
                "DELETE FROM article_tags"
                " WHERE article_id = :article_id AND tag = :tag AND source = :source"
            ),
            {"article_id": article_id, "tag": tag, "source": source},
        )


def _categories(value: str | None) -> list[str]:
    try:
        categories = json.loads(value) if value else []
    except ValueError:
        return []
    if not isinstance(categories, list):
        return []
    strings = (category for category in categories if isinstance(category, str))
    return [name for category in strings for name in _names(category)]


def _add_arrivals_categories(connection: sa.Connection) -> None:
    last_id = 0
    while True:
        rows = connection.execute(
            sa.text(
                "SELECT id, article_id, categories FROM entries"
                " WHERE id > :after AND article_id IS NOT NULL AND categories IS NOT NULL"
                " AND outcome IN ('stored', 'duplicate') ORDER BY id LIMIT :limit"
            ),
            {"after": last_id, "limit": _BATCH},
        ).all()
        if not rows:
            return
        wanted = {
            (article_id, name)
            for _entry_id, article_id, categories in rows
            for name in _categories(categories)
        }
        _insert(
            connection,
            (
                {"article_id": article_id, "tag": name, "source": "category", "detail": None}
                for article_id, name in sorted(wanted)
            ),
        )
        last_id = rows[-1][0]


def upgrade() -> None:
    connection = op.get_bind()
    _split_tags(connection)
    _add_arrivals_categories(connection)


def downgrade() -> None:
    pass
