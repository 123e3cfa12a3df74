"""Opening the database: engine set-up per backend, and migrations to head.

SQLite gets WAL, foreign keys, a busy timeout and `BEGIN IMMEDIATE` (so two
writers queue instead of failing on a lock upgrade); a `postgresql://` URL
gets the psycopg 3 driver the project ships.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote, unquote

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine, make_url

import monitor
from monitor.errors import DatabaseError

if TYPE_CHECKING:
    from alembic.config import Config

log = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_MS = 30_000
SQLITE_CACHE_KIB = 1024  # per connection (SQLite's default: 2,000)

# PostgreSQL: a bounded wait to connect, and the kernel noticing a dead peer behind a
# partition that drops packets (no RST), which would otherwise leave a poll waiting for
# ever: keepalives on an idle connection, and a bound on data left unacknowledged
# (libpq's tcp_user_timeout, in milliseconds).
POSTGRESQL_CONNECT_ARGS: dict[str, int] = {
    "connect_timeout": 10,
    "keepalives": 1,
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
    "tcp_user_timeout": 30_000,
}

# The newest revision in migrations/versions (tests/test_migrations.py checks it is
# Alembic's head). A start on a database already there reads one row instead of
# importing Alembic, which the daemon would hold for nothing (11 MiB).
SCHEMA_HEAD = "0012"


def normalize_database_url(url: str) -> URL:
    """Parse a database URL as an operator writes it; `postgresql://` means psycopg 3."""
    try:
        parsed = make_url(url)
    except (sa.exc.ArgumentError, ValueError):
        raise DatabaseError(f"invalid database URL {mask_url(url)!r}") from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def mask_url(url: str | URL) -> str:
    """The URL with any password replaced by ***, in its place or in the query
    (`?password=…`, as libpq also reads it)."""
    try:
        parsed = make_url(url) if isinstance(url, str) else url
    except (sa.exc.ArgumentError, ValueError):
        return "<unparseable database URL>"
    database = parsed.database or ""
    if parsed.query.get("mode") == "ro" and database.startswith("file:"):
        return f"sqlite:///{unquote(database.removeprefix('file:'))} (read-only)"
    secret = {key: "***" for key in parsed.query if _SECRET_PARAMETER.search(key)}
    if secret:
        parsed = parsed.update_query_dict(secret)
    return parsed.render_as_string(hide_password=True).replace("%2A%2A%2A", "***")


_SECRET_PARAMETER = re.compile(r"pass|pwd|secret|token|key", re.IGNORECASE)


def missing_sqlite_file(url: str) -> Path | None:
    """The SQLite file `url` names when it does not exist (None for other databases)."""
    try:
        parsed = normalize_database_url(url)
    except DatabaseError:
        return None
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    if database.startswith("file:"):
        return None
    path = Path(database).expanduser()
    return None if path.exists() else path


def create_database_engine(url: str, *, read_only: bool = False) -> Engine:
    """An engine for `url`, configured for its backend; creates a SQLite file's folder.

    `read_only` (the commands that only read): a SQLite file this process may not
    write, or in a folder it may not write, is opened read-only instead of failing
    on SQLite's write-ahead log."""
    parsed = normalize_database_url(url)
    if parsed.get_backend_name() == "sqlite":
        if read_only:
            read_only_url = _read_only_sqlite_url(parsed)
            if read_only_url is not None:
                return _sqlite_engine(read_only_url, writable=False)
        return _sqlite_engine(parsed)
    try:
        # Checked before use, and a bounded wait for a database that is away.
        return sa.create_engine(
            parsed, pool_pre_ping=True, connect_args=dict(POSTGRESQL_CONNECT_ARGS)
        )
    except (ImportError, sa.exc.ArgumentError, sa.exc.NoSuchModuleError) as exc:
        raise DatabaseError(f"cannot use database {mask_url(parsed)}: {exc}") from None


def _read_only_sqlite_url(url: URL) -> URL | None:
    """A URI opening the SQLite file of `url` read-only, when this process may not
    write it or its folder (a read-only volume, another user's file); None when it may.

    A write-ahead-log database opens read-only only beside its `-shm` and `-wal`
    files, which SQLite creates in the folder: with the folder read-only and no `-wal`
    left (the last writer closed cleanly, so the file holds every commit) the file is
    opened as immutable, which needs neither."""
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    path = Path(database).expanduser().resolve()
    folder_writable = os.access(path.parent, os.W_OK)
    if folder_writable and os.access(path, os.W_OK):
        return None
    query = {"uri": "true", "mode": "ro"}
    if not folder_writable and not Path(f"{path}-wal").exists():
        query["immutable"] = "1"
    return url.set(database=f"file:{quote(str(path))}", query=query)


def _sqlite_engine(url: URL, *, writable: bool = True) -> Engine:
    database = url.database
    if database and database != ":memory:" and not database.startswith("file:"):
        folder = Path(database).expanduser().parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DatabaseError(
                f"cannot create {folder} for the SQLite database {mask_url(url)}:"
                f" {exc.strerror or exc}"
            ) from None
    engine = sa.create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        if writable:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        # Each pooled connection keeps its own page cache, 2 MiB by default, filled on a
        # large database: 9 MiB of the daemon's memory for five. The pages it would hold
        # stay in the system's file cache, a read away.
        cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        # Writers take the write lock up front (no deadlock upgrading a read lock);
        # read-only work (engine.execution_options(read_only=True)) takes none.
        read_only = connection.get_execution_options().get("read_only", False)
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

    return engine


def migrations_directory() -> Path:
    """The Alembic scripts: inside the installed package, or at the top of a checkout."""
    package = Path(monitor.__file__).resolve().parent
    for candidate in (package / "migrations", package.parent / "migrations"):
        if (candidate / "env.py").is_file():
            return candidate
    raise DatabaseError(f"Alembic migrations not found next to {package}")


def alembic_config(engine: Engine | None = None, url: str | None = None) -> Config:
    """An Alembic config that runs on `engine` (or `url`) without alembic.ini."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(migrations_directory()))
    if engine is not None:
        config.attributes["engine"] = engine
    if url is not None:
        config.attributes["url"] = url
    return config


def upgrade_database(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to `revision` (head by default); at head, sign the articles
    left without a near-duplicate signature."""
    if revision not in ("head", SCHEMA_HEAD) or stored_revision(engine) != SCHEMA_HEAD:
        _migrate(engine, revision)
    if stored_revision(engine) == SCHEMA_HEAD:
        from monitor.storage.index import sign_unsigned

        # Also when the schema was at head already: an upgrade stopped while it signed
        # (killed, the database gone) leaves the schema at head and the rest unsigned.
        if signed := sign_unsigned(engine):
            log.warning(
                "%d articles had no near-duplicate signature (the database had been below"
                " revision 0002, or the upgrade that signed them was stopped): signed and"
                " indexed, so that their copies are found",
                signed,
            )


def _migrate(engine: Engine, revision: str) -> None:
    from alembic import command

    try:
        command.upgrade(alembic_config(engine), revision)
    except sa.exc.OperationalError as exc:
        if revision not in ("head", SCHEMA_HEAD) or not migrated_meanwhile(engine):
            raise DatabaseError(f"cannot migrate {mask_url(engine.url)}: {exc.orig}") from None
        # Two processes creating one SQLite database at once (two daemons started
        # together): the other one's schema is the one wanted.
        log.info("database %s migrated by another process meanwhile", mask_url(engine.url))


def migrated_meanwhile(engine: Engine, *, wait: float = 30.0) -> bool:
    """Whether the database reaches the newest revision within `wait` seconds: another
    process's migration, which made ours fail ("view story_reach already exists")."""
    deadline = time.monotonic() + wait
    while True:
        try:
            if stored_revision(engine) == SCHEMA_HEAD:
                return True
        except DatabaseError:
            pass
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.5)


def schema_revisions(engine: Engine) -> tuple[str | None, str | None]:
    """(the database's revision or None for an empty database, the newest revision)."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    with engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
    return current, head


def stored_revision(engine: Engine) -> str | None:
    """The revision in the database's `alembic_version`; None when there is none (an
    empty database). DatabaseError when the table is there but cannot be read (a role
    without the right to): "no schema yet" would send the operator to create one."""
    try:
        with engine.execution_options(read_only=True).connect() as connection:
            if not sa.inspect(connection).has_table("alembic_version"):
                return None
            rows = connection.execute(sa.text("SELECT version_num FROM alembic_version"))
            revisions = rows.scalars().all()
    except sa.exc.DBAPIError as error:
        raise DatabaseError(
            f"cannot read the schema revision of {mask_url(engine.url)}: {first_line(error)}"
        ) from None
    return revisions[0] if len(revisions) == 1 else None


def first_line(error: sa.exc.DBAPIError) -> str:
    """The driver's message, first line (PostgreSQL adds context lines)."""
    message = str(error.orig if error.orig is not None else error).strip()
    return message.splitlines()[0] if message else type(error).__name__


def downgrade_database(engine: Engine, revision: str) -> None:
    from alembic import command

    command.downgrade(alembic_config(engine), revision)


_T = TypeVar("_T")


def within(seconds: float, work: Callable[[], _T]) -> _T:
    """`work()` run in a thread of its own and waited for at most `seconds`.

    A database behind a frozen peer (a stopped proxy, a network partition that drops
    nothing) never answers and never errs: a health check or an exit that waited for
    it would hang with it. TimeoutError when `work` has not finished by then; its
    thread is left to finish, or not, on its own."""
    outcome: list[_T] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            outcome.append(work())
        except BaseException as error:  # noqa: BLE001 (re-raised in the caller's thread)
            failure.append(error)

    thread = threading.Thread(target=run, name="bounded-database-call", daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        raise TimeoutError(f"no answer within {seconds:g} s")
    if failure:
        raise failure[0]
    return outcome[0]


def check_reachable(engine: Engine) -> None:
    """Raise DatabaseError with a clear message when the database cannot be opened."""
    try:
        # Read-only: on SQLite a writer's transaction takes the write lock, and the
        # health probe would wait behind any other process's writes (WAL never makes
        # a reader wait).
        with engine.execution_options(read_only=True).connect() as connection:
            connection.execute(sa.text("SELECT 1"))
    except sa.exc.DBAPIError as exc:
        raise DatabaseError(f"cannot open database {mask_url(engine.url)}: {exc.orig}") from None
