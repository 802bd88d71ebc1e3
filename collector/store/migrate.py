"""Apply Alembic migrations programmatically (`driftline db upgrade`, and `serve` on start).

Alembic has no guard against two processes migrating at once (sqlalchemy/alembic#633): two
`serve` processes started together on an empty PostgreSQL database both created
`alembic_version` and one died with `UniqueViolation` (issue 12). Migrations are therefore
serialised: on PostgreSQL by a transaction-level advisory lock taken in the migration's own
transaction before anything is read (`lock_migrations`, called from env.py), so the second
process reads the version table only after the first has committed; on SQLite, whose
migrations do not run in one transaction, by an exclusive lock on a file next to the
database (`migration_file_lock`; SQLite is single-host anyway).
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import URL, Connection, Engine, func, select
from sqlalchemy.engine import make_url

MIGRATIONS_DIR = Path(__file__).with_name("migrations")

# The advisory-lock key of migrations: the bytes "driftlin" as a (positive) bigint.
MIGRATION_LOCK_KEY = int.from_bytes(b"driftlin", "big")


def alembic_config(engine: Engine) -> Config:
    """An Alembic config pointing at our migrations and at `engine`'s database."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option(
        "sqlalchemy.url", engine.url.render_as_string(hide_password=False).replace("%", "%%")
    )
    return config


def lock_migrations(connection: Connection) -> None:
    """Wait until no other process migrates this PostgreSQL database (no-op elsewhere).

    Call it inside the migration transaction, before Alembic reads `alembic_version`; the
    lock is released when that transaction commits or rolls back (or the session dies).
    """
    if connection.dialect.name == "postgresql":
        connection.execute(select(func.pg_advisory_xact_lock(MIGRATION_LOCK_KEY)))


@contextmanager
def migration_file_lock(url: URL | str) -> Iterator[None]:
    """Hold an exclusive lock on `<database>.migrate.lock` for a SQLite file database.

    Other databases (and in-memory SQLite) need no file lock: the block simply runs.
    """
    parsed = make_url(url)
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:" \
            or database.startswith("file:"):
        yield
        return
    path = Path(database).with_name(Path(database).name + ".migrate.lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)  # released when the file is closed
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the database schema up to `revision` (idempotent, safe to run concurrently)."""
    config = alembic_config(engine)
    with migration_file_lock(engine.url), engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
