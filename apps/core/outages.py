"""What this process knows about its dependencies being down, so an outage is logged twice
(when it starts and when it ends) instead of once per request with a traceback.

The state is per process: each gunicorn worker and Celery worker notices on its own. It is
only ever used for logging and for the rate limit's choice; every request still tries the
dependency, so recovery needs nothing but the dependency coming back.
"""

from __future__ import annotations

import logging
import threading
import time

from django.db import InterfaceError, OperationalError

logger = logging.getLogger("apps.core.outages")

# What a 503 asks the client to wait before retrying.
RETRY_AFTER_SECONDS = 5
UNAVAILABLE_DETAIL = "The service is briefly unavailable. Please retry in a few seconds."


class Outage:
    """One dependency's state in this process: up, or down since a monotonic time."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._lock = threading.Lock()
        self._down_since: float | None = None
        self._noted: set[str] = set()

    @property
    def is_down(self) -> bool:
        return self._down_since is not None

    def failed(self, error: BaseException | str) -> None:
        """The dependency failed; the first failure of an outage logs one warning."""
        with self._lock:
            if self._down_since is not None:
                return
            self._down_since = time.monotonic()
        logger.warning("%s unavailable: %s", self.name, _one_line(error))

    def succeeded(self) -> None:
        """The dependency answered; the first answer after an outage logs one warning."""
        if self._down_since is None:  # the usual case, without taking the lock
            return
        with self._lock:
            if self._down_since is None:
                return
            seconds = time.monotonic() - self._down_since
            self._down_since = None
            self._noted.clear()
        logger.warning("%s available again after %.1f s", self.name, seconds)

    def note_once(self, key: str, message: str, *args: object) -> None:
        """Log `message` once per outage (e.g. what a feature does without the dependency)."""
        with self._lock:
            if key in self._noted:
                return
            self._noted.add(key)
        logger.warning(message, *args)

    def reset(self) -> None:
        """Forget the state (tests)."""
        with self._lock:
            self._down_since = None
            self._noted.clear()


database = Outage("database")
redis = Outage("redis")
broker = Outage("celery broker")


def _one_line(error: BaseException | str) -> str:
    text = str(error).strip() or type(error).__name__
    return " ".join(text.split())[:300]


# SQLSTATE classes that mean "the server cannot serve us now", as opposed to a query that
# failed (deadlock 40P01, lock timeout 55P03, statement timeout 57014 stay what they are):
# 08 connection exception, 57P0x shutdown / cannot connect now, 53 insufficient resources
# (too many connections, out of memory, disk full).
_UNAVAILABLE_SQLSTATES = ("08", "57P", "53")


def database_unavailable(exc: BaseException) -> bool:
    """True when `exc` says the database cannot be reached, not that a query went wrong."""
    if isinstance(exc, InterfaceError):
        return True  # the connection was already closed under us
    if not isinstance(exc, OperationalError):
        return False
    cause = exc.__cause__
    if cause is None or not hasattr(cause, "sqlstate"):
        return False  # not psycopg: SQLite's errors (a missing table, a locked file) are not outages
    sqlstate = getattr(cause, "sqlstate", None)
    # Client-side failures (refused, timed out, server closed the connection) carry no SQLSTATE.
    return sqlstate is None or str(sqlstate).startswith(_UNAVAILABLE_SQLSTATES)
