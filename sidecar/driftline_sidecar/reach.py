"""A cheap reachability probe for Kafka bootstrap servers."""

from __future__ import annotations

import socket
from collections.abc import Iterable


def kafka_reachable(bootstrap_servers: str | Iterable[str], timeout_seconds: float = 1.0) -> bool:
    """True when a TCP connection to any bootstrap server succeeds.

    kafka-python 3.0 clients that fail to bootstrap wait out their timeout and leak
    their sockets, so callers probe first and construct clients only when this is True.

    Args:
        bootstrap_servers: "host:port[,host:port]", or the servers one by one.
        timeout_seconds: The longest wait for each server.

    Returns:
        Whether any server accepted a TCP connection.

    Examples:
        >>> kafka_reachable("127.0.0.1:1", timeout_seconds=0.2)
        False
    """
    servers = bootstrap_servers.split(",") if isinstance(bootstrap_servers, str) else \
        list(bootstrap_servers)
    for server in servers:
        host, _, port = server.strip().rpartition(":")
        try:
            with socket.create_connection((host or "127.0.0.1", int(port)), timeout_seconds):
                return True
        except (OSError, ValueError):
            continue
    return False
