"""Migrations are serialised (issue 12): processes that migrate one database at once all succeed.

PostgreSQL's advisory lock is shown by tests/integration/test_several_collectors.py; here the
SQLite file lock, with processes (the lock is per open file, so threads would do too).
"""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest
from sqlalchemy import text

from collector.store import make_engine
from collector.store.migrate import migration_file_lock

UPGRADE = "import sys; from collector.store import make_engine, upgrade; " \
          "upgrade(make_engine(sys.argv[1]))"


@pytest.mark.slow
def test_processes_that_migrate_an_empty_sqlite_database_at_once_all_succeed(
    tmp_path: Path,
) -> None:
    url = f"sqlite+pysqlite:///{tmp_path / 'race.db'}"
    processes = [subprocess.Popen([sys.executable, "-c", UPGRADE, url],
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
                 for _ in range(4)]
    outputs = [p.communicate(timeout=120)[0].decode() for p in processes]
    assert [p.returncode for p in processes] == [0] * 4, outputs
    engine = make_engine(url)
    with engine.connect() as connection:
        versions = connection.execute(text("SELECT version_num FROM alembic_version")).all()
    engine.dispose()
    assert len(versions) == 1


def test_the_file_lock_excludes_a_second_holder(tmp_path: Path) -> None:
    url = f"sqlite+pysqlite:///{tmp_path / 'x.db'}"
    entered = threading.Event()

    def second() -> None:
        with migration_file_lock(url):
            entered.set()

    with migration_file_lock(url):
        thread = threading.Thread(target=second)
        thread.start()
        assert not entered.wait(timeout=0.2)
    assert entered.wait(timeout=10)
    thread.join()
    assert (tmp_path / "x.db.migrate.lock").exists()


def test_memory_and_server_databases_need_no_file(tmp_path: Path) -> None:
    for url in ("sqlite+pysqlite:///:memory:", "postgresql+psycopg://u@h/db"):
        with migration_file_lock(url):
            pass
    assert list(tmp_path.iterdir()) == []
