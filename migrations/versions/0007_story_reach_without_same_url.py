"""story_reach counts copies under other URLs

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06

A `same_url` duplicate is the kept article's own URL met again in another feed (an
aggregator, a section feed): not a copy, and its site is the article's own. In
0005's `story_reach` it counted as a copy, so a story listed by two feeds showed
one copy "copied by" its own publisher. `copies`, `copying_sites` and `copied_by`
now count copies under other URLs; the new `same_url_entries` counts the others.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _story_reach(dialect: str, *, copies_only: bool) -> str:
    """The view as of 0007 (`copies_only`) or as 0005 created it."""

    def counted(column: str) -> str:
        # NULL for a same_url row: count() and the site lists skip it.
        return f"CASE WHEN d.kind <> 'same_url' THEN {column} END" if copies_only else column

    site = counted("d.site")
    sites = (
        f"string_agg(DISTINCT {site}, ', ' ORDER BY {site})"
        if dialect == "postgresql"
        else f"group_concat(DISTINCT {site})"
    )
    same_url = (
        ",\n               count(CASE WHEN d.kind = 'same_url' THEN d.id END) AS same_url_entries"
        if copies_only
        else ""
    )
    return f"""
        CREATE VIEW story_reach AS
        SELECT a.id AS article_id, a.title, a.url, a.site, a.published_at,
               count({counted("d.id")}) AS copies,
               count(DISTINCT {site}) AS copying_sites,
               {sites} AS copied_by{same_url}
        FROM articles a LEFT JOIN duplicates d ON d.article_id = a.id
        GROUP BY a.id, a.title, a.url, a.site, a.published_at
        """


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.execute("DROP VIEW story_reach")
    op.execute(_story_reach(dialect, copies_only=True))


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.execute("DROP VIEW story_reach")
    op.execute(_story_reach(dialect, copies_only=False))
