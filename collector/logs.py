"""Log formatting: constant messages with their `extra=` fields appended as key=value."""

from __future__ import annotations

import logging
import sys

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class KeyValueFormatter(logging.Formatter):
    """`2026-11-24T10:00:00 INFO collector.ingest ingest connected bootstrap=...`."""

    def format(self, record: logging.LogRecord) -> str:
        """Format the record and append its extra fields."""
        line = super().format(record)
        extras = {k: v for k, v in vars(record).items() if k not in _STANDARD}
        if extras:
            line += " " + " ".join(f"{k}={v}" for k, v in extras.items())
        return line


def configure_logging(level: str = "INFO") -> None:
    """Log to stderr with key=value extras; quiet the chatty client libraries."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(KeyValueFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("kafka", "apscheduler", "httpx", "uvicorn", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
