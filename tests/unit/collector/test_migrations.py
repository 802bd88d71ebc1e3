"""The migrations create exactly the tables, columns and indexes the models declare."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from collector.store import make_engine, upgrade
from collector.store.schema import target_metadata


def test_migrations_match_the_models(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite+pysqlite:///{tmp_path / 'm.db'}")
    upgrade(engine)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": False})
        differences = compare_metadata(context, target_metadata)
    engine.dispose()
    assert differences == []
