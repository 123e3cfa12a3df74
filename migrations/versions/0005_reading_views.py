"""reading views

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29

Views for the questions downstream readers ask most (docs/schema.md):
`story_reach` (each story with its copies and the sites that copied it),
`daily_tag_counts` (articles per tag per day) and `feed_health`.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _sites(dialect: str) -> str:
    if dialect == "postgresql":
        return "string_agg(DISTINCT d.site, ', ' ORDER BY d.site)"
    return "group_concat(DISTINCT d.site)"


def _day(dialect: str, column: str) -> str:
    if dialect == "postgresql":
        return f"CAST(({column} AT TIME ZONE 'UTC') AS date)"
    return f"date({column})"


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.execute(
        f"""
        CREATE VIEW story_reach AS
        SELECT a.id AS article_id, a.title, a.url, a.site, a.published_at,
               count(d.id) AS copies,
               count(DISTINCT d.site) AS copying_sites,
               {_sites(dialect)} AS copied_by
        FROM articles a LEFT JOIN duplicates d ON d.article_id = a.id
        GROUP BY a.id, a.title, a.url, a.site, a.published_at
        """
    )
    op.execute(
        f"""
        CREATE VIEW daily_tag_counts AS
        SELECT {_day(dialect, "coalesce(a.published_at, a.fetched_at)")} AS day,
               t.tag, count(DISTINCT a.id) AS articles
        FROM articles a JOIN article_tags t ON t.article_id = a.id
        GROUP BY 1, t.tag
        """
    )
    op.execute(
        """
        CREATE VIEW feed_health AS
        SELECT id AS feed_id, name, url, enabled, health, last_polled_at, last_success_at,
               last_status, consecutive_failures, last_error, next_poll_at, last_entry_count,
               last_new_entry_at
        FROM feeds
        """
    )


def downgrade() -> None:
    for view in ("feed_health", "daily_tag_counts", "story_reach"):
        op.execute(f"DROP VIEW IF EXISTS {view}")
