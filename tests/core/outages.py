"""Real outages for tests: a dependency pointed at a loopback port nobody listens on."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.db import connection
from django.test import override_settings


def closed_port() -> int:
    """A loopback port that was free a moment ago: connecting to it is refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def database_down() -> Iterator[None]:
    """The default connection points at a closed port until the block ends (even on failure)."""
    settings_dict = connection.settings_dict
    saved = {key: settings_dict[key] for key in ("HOST", "PORT")}
    connection.close()
    settings_dict.update(HOST="127.0.0.1", PORT=str(closed_port()))
    try:
        yield
    finally:
        connection.close()
        settings_dict.update(saved)


def redis_down() -> override_settings:
    """The cache (and so the rate limit and job locks) on a closed port."""
    return override_settings(
        CACHES={
            "default": {
                "BACKEND": "apps.core.cache.ResilientRedisCache",
                "LOCATION": f"redis://127.0.0.1:{closed_port()}/0",
            }
        }
    )


def outage_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "apps.core.outages"]
