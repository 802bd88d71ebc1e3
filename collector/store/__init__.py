"""The store: SQLAlchemy 2 tables, queries and Alembic migrations."""

from collector.store.engine import make_engine, make_session_factory
from collector.store.migrate import upgrade

__all__ = ["make_engine", "make_session_factory", "upgrade"]
