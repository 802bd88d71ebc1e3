"""Alembic environment: migrations run on the connection the caller passes in.

Each migration transaction first takes the migration lock (`lock_migrations`), so processes
that migrate one database at the same moment do it one after the other (issue 12).
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, engine_from_config, pool

import collector.store.leases  # noqa: F401 - registers run_leases on the collector's metadata
from collector.store.migrate import lock_migrations, migration_file_lock
from collector.store.schema import target_metadata

config = context.config


def _migrate(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        lock_migrations(connection)
        context.run_migrations()


def run_migrations() -> None:
    """Run migrations on `config.attributes["connection"]`, or on the configured URL."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _migrate(connection)
        return
    engine = engine_from_config(
        config.get_section(config.config_ini_section) or {},
        prefix="sqlalchemy.",
        poolclass=pool.NullPool,
    )
    with migration_file_lock(engine.url), engine.connect() as conn:
        _migrate(conn)


run_migrations()
