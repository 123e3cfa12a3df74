"""near-duplicate index

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29

The near-duplicate index: each kept article's MinHash signatures
(`article_signatures`) and their LSH bands (`lsh_buckets`), written in the same
transaction as the article; and `articles.repost_signals`.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "lsh_buckets",
        sa.Column("bucket", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("article_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.PrimaryKeyConstraint("bucket", "article_id", name=op.f("pk_lsh_buckets")),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "article_signatures",
        sa.Column("article_id", Id, nullable=False),
        sa.Column("scheme", sa.String(length=100), nullable=False),
        sa.Column("skeleton", sa.LargeBinary(), nullable=False),
        sa.Column("entities", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["article_id"],
            ["articles.id"],
            name=op.f("fk_article_signatures_article_id_articles"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("article_id", name=op.f("pk_article_signatures")),
    )
    with op.batch_alter_table("articles", schema=None) as batch_op:
        batch_op.add_column(sa.Column("repost_signals", sa.String(length=200), nullable=True))
    with op.batch_alter_table("duplicates", schema=None) as batch_op:
        batch_op.add_column(sa.Column("former_article_id", sa.BigInteger(), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_duplicates_former_article_id"), ["former_article_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("duplicates", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_duplicates_former_article_id"))
        batch_op.drop_column("former_article_id")
    with op.batch_alter_table("articles", schema=None) as batch_op:
        batch_op.drop_column("repost_signals")

    op.drop_table("article_signatures")
    op.drop_table("lsh_buckets")
