"""entries wait before a transient failure is tried again

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-08

`entries.next_attempt_at`: when an entry whose page failed for a passing reason (a
rate limit, an outage, a timeout) may be fetched again, or when its host asked to be
left alone until (429 or 503 with Retry-After). Null: at the next poll, as before.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# Timezone-aware UTC: timestamptz on PostgreSQL, UTC text on SQLite.
Timestamp = sa.DateTime(timezone=True)

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A plain ALTER TABLE ADD COLUMN on both databases: nothing is rebuilt.
    op.add_column("entries", sa.Column("next_attempt_at", Timestamp, nullable=True))


def downgrade() -> None:
    # SQLite drops a column in place since 3.35 (Python 3.11 ships a newer one); a
    # batch rebuild of `entries` would break the views that name it.
    op.drop_column("entries", "next_attempt_at")
