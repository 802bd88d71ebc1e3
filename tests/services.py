"""Start the real services for tests through the project's own scripts."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEST_KAFKA_PORT = 19092
TEST_KAFKA_DIR = ROOT / ".driftline" / "test-kafka"


class ServiceError(RuntimeError):
    """A service the tests need could not be started."""


def _run(args: list[str], env: dict[str, str] | None = None, timeout: float = 300) -> str:
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, **(env or {})}, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ServiceError(f"{' '.join(args)} failed: {exc}") from exc
    if done.returncode != 0:
        raise ServiceError(f"{' '.join(args)} exited {done.returncode}:\n"
                           f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return done.stdout.strip()


def kafka_env() -> dict[str, str]:
    """The environment that points scripts/kafka-local at the test broker."""
    return {"KAFKA_PORT": str(TEST_KAFKA_PORT), "KAFKA_DATA_DIR": str(TEST_KAFKA_DIR)}


def start_kafka() -> str:
    """A fresh single-node broker on the test port; returns its bootstrap address."""
    _run(["bash", str(ROOT / "scripts" / "kafka-local"), "stop"], env=kafka_env())
    shutil.rmtree(TEST_KAFKA_DIR, ignore_errors=True)
    _run(["bash", str(ROOT / "scripts" / "kafka-local"), "start"], env=kafka_env())
    return f"127.0.0.1:{TEST_KAFKA_PORT}"


def stop_kafka() -> None:
    """Stop the test broker."""
    _run(["bash", str(ROOT / "scripts" / "kafka-local"), "stop"], env=kafka_env())


def start_postgres() -> str:
    """Start (or reuse) the test PostgreSQL server; returns its SQLAlchemy URL."""
    _run(["bash", str(ROOT / "scripts" / "postgres-local"), "start"])
    return _run(["bash", str(ROOT / "scripts" / "postgres-local"), "url"])


def stop_postgres() -> None:
    """Stop the test PostgreSQL server (the next session starts it again in a second)."""
    _run(["bash", str(ROOT / "scripts" / "postgres-local"), "stop"])
