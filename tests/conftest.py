"""Session fixtures: the real services, started once per test session by the project's scripts.

A service that cannot start fails the tests that need it; nothing is skipped.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import psycopg
import pytest
from sqlalchemy.engine import make_url

from tests import services

# Scripts that tests run in other venvs (MLflow's, MLServer's): not modules of this venv.
collect_ignore = ["integration/mlflow_sidecar_runner.py", "integration/seldon_v2_gateway.py"]


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20261124)


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if external:
        yield external
        return
    try:
        bootstrap = services.start_kafka()
    except services.ServiceError as exc:
        pytest.fail(f"the Kafka broker could not start: {exc}", pytrace=False)
    yield bootstrap
    services.stop_kafka()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    external = os.environ.get("DRIFTLINE_TEST_POSTGRES_URL")
    if external:
        yield external
        return
    try:
        url = services.start_postgres()
    except services.ServiceError as exc:
        pytest.fail(f"PostgreSQL could not start: {exc}", pytrace=False)
    yield url
    services.stop_postgres()


def _admin_dsn(url: str) -> str:
    parsed = make_url(url)
    return (f"host={parsed.host} port={parsed.port or 5432} user={parsed.username} "
            f"password={parsed.password or ''} dbname={parsed.database}")


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+pysqlite:///{tmp_path / 'driftline.db'}"
        return
    base = request.getfixturevalue("postgres_url")
    name = f"driftline_t_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(_admin_dsn(base), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield make_url(base).set(database=name).render_as_string(hide_password=False)
    with psycopg.connect(_admin_dsn(base), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def topic_factory(kafka_bootstrap: str) -> Iterator[Callable[[str], str]]:
    from kafka.admin import KafkaAdminClient, NewTopic

    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap, client_id="driftline-tests")
    created: list[str] = []

    def make(prefix: str) -> str:
        name = f"{prefix}.{uuid.uuid4().hex[:8]}"
        admin.create_topics([NewTopic(name, num_partitions=3, replication_factor=1)])
        created.append(name)
        return name

    yield make
    admin.close()
