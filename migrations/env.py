"""Alembic environment: runs migrations on the engine monitor hands over, or on the
URL given as `-x url=...`, MONITOR_DATABASE_URL or the monitor config."""

from __future__ import annotations

import logging.config
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from alembic import context

from monitor.config import load_settings, resolve_config_path
from monitor.storage.database import create_database_engine
from monitor.storage.schema import Base

config = context.config
if config.config_file_name is not None and not config.attributes.get("engine"):
    logging.config.fileConfig(config.config_file_name, disable_existing_loggers=False)


def _engine() -> sa.Engine:
    engine: sa.Engine | None = config.attributes.get("engine")
    if engine is not None:
        return engine
    url = config.attributes.get("url") or context.get_x_argument(as_dictionary=True).get("url")
    if not url:
        url = load_settings(resolve_config_path(None)).database.url
    return create_database_engine(url)


@contextmanager
def _foreign_keys_off(connection: sa.Connection) -> Iterator[None]:
    """SQLite: batch migrations recreate tables, and a DROP TABLE with foreign keys on
    would cascade-delete rows. The pragma only takes effect outside a transaction."""
    if connection.dialect.name != "sqlite":
        yield
        return
    raw = connection.connection.driver_connection
    assert raw is not None
    raw.execute("PRAGMA foreign_keys=OFF")
    try:
        yield
    finally:
        raw.execute("PRAGMA foreign_keys=ON")


# Full-text search lives outside the models (revision 0006): leave it out of comparisons.
_OUTSIDE_THE_MODELS = ("articles_fts", "search_document", "ix_articles_search_document")


def _include_object(
    obj: object, name: str | None, type_: str, reflected: bool, compare_to: object
) -> bool:
    return not (name or "").startswith(_OUTSIDE_THE_MODELS)


def run_migrations_online() -> None:
    with _engine().connect() as connection, _foreign_keys_off(connection):
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            render_as_batch=True,
            compare_type=True,
            include_object=_include_object,
        )
        with context.begin_transaction():
            if connection.dialect.name == "postgresql":
                # Replicas starting together: one migrates, the others wait, then find
                # the schema at head. (SQLite's BEGIN IMMEDIATE serialises them already.)
                connection.exec_driver_sql("SELECT pg_advisory_xact_lock(7283646012)")
            context.run_migrations()
        if connection.dialect.name == "sqlite":
            problems = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
            if problems:
                raise RuntimeError(f"migration left dangling foreign keys: {problems[:5]}")
        connection.commit()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run against a database")
run_migrations_online()
