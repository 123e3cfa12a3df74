"""story_reach lists the copying sites alike on both databases

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07

`copied_by` was PostgreSQL's `string_agg(DISTINCT site, ', ' ORDER BY site)` but
SQLite's `group_concat(DISTINCT site)`: "a.com, b.org" on one, "b.org,a.com" (in no
set order) on the other, so a reader of both had to parse two forms. SQLite before
3.44 has no ORDER BY inside an aggregate, so its sites are now concatenated from an
ordered subquery, ", "-separated as on PostgreSQL. Only SQLite's view changes.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COPIES = "CASE WHEN d.kind <> 'same_url' THEN {} END"


def _story_reach(copied_by: str) -> str:
    return f"""
        CREATE VIEW story_reach AS
        SELECT a.id AS article_id, a.title, a.url, a.site, a.published_at,
               count({_COPIES.format("d.id")}) AS copies,
               count(DISTINCT {_COPIES.format("d.site")}) AS copying_sites,
               {copied_by} AS copied_by,
               count(CASE WHEN d.kind = 'same_url' THEN d.id END) AS same_url_entries
        FROM articles a LEFT JOIN duplicates d ON d.article_id = a.id
        GROUP BY a.id, a.title, a.url, a.site, a.published_at
        """


# group_concat follows the order of the rows it is given, which SQLite documents as
# arbitrary but which is, in every version, the subquery's ORDER BY.
_SORTED_SITES = """(
               SELECT group_concat(site, ', ') FROM (
                   SELECT DISTINCT c.site FROM duplicates c
                   WHERE c.article_id = a.id AND c.kind <> 'same_url' ORDER BY c.site))"""


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.execute("DROP VIEW story_reach")
    op.execute(_story_reach(_SORTED_SITES))


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.execute("DROP VIEW story_reach")
    op.execute(_story_reach(f"group_concat(DISTINCT {_COPIES.format('d.site')})"))
