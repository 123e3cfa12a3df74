"""feed politeness and health

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29

Feed politeness and health: when the next poll is due (backoff, Retry-After),
the last unconditional fetch, and the history of polls that found new entries
(for the "stale" state); `health` as of the last poll.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# Timezone-aware UTC: timestamptz on PostgreSQL, UTC text on SQLite.
Timestamp = sa.DateTime(timezone=True)

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("feeds", schema=None) as batch_op:
        batch_op.add_column(sa.Column("next_poll_at", Timestamp, nullable=True))
        batch_op.add_column(sa.Column("last_full_fetch_at", Timestamp, nullable=True))
        batch_op.add_column(sa.Column("first_new_entry_at", Timestamp, nullable=True))
        batch_op.add_column(sa.Column("last_new_entry_at", Timestamp, nullable=True))
        batch_op.add_column(
            sa.Column("polls_with_new_entries", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(sa.Column("health", sa.String(length=20), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("feeds", schema=None) as batch_op:
        batch_op.drop_column("health")
        batch_op.drop_column("polls_with_new_entries")
        batch_op.drop_column("last_new_entry_at")
        batch_op.drop_column("first_new_entry_at")
        batch_op.drop_column("last_full_fetch_at")
        batch_op.drop_column("next_poll_at")
