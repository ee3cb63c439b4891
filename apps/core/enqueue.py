"""Queue a best-effort Celery task without letting a broker outage fail the caller.

For follow-ups whose loss is survivable (an e-mail, "rate now rather than at the next
minute", an import job a staff member can see waiting): by the time they are queued the
request's work is committed, and a 500 would tell the user it failed when it did not.
While the broker is down each call costs Celery's publish retries (well under a second on
a refused connection) and the outage is logged once, not per task. Tasks that must not be
lost are not queued this way: their state is in the database and a periodic job picks it up.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from kombu.exceptions import OperationalError as KombuOperationalError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from apps.core import outages

# Celery wraps the transport's connection errors in kombu's OperationalError; the redis ones
# are listed in case one escapes unwrapped.
BROKER_DOWN_ERRORS = (KombuOperationalError, RedisConnectionError, RedisTimeoutError)


def enqueue(task: Any, *args: Any) -> bool:
    """task.delay(*args); False (and one warning per outage) when the broker is down."""
    if task.app.conf.task_always_eager:
        # No broker: the task runs here and now, and its own errors are its caller's.
        task.delay(*args)
        return True
    try:
        task.delay(*args)
    except BROKER_DOWN_ERRORS as exc:
        outages.broker.failed(exc)
        outages.broker.note_once(f"dropped:{task.name}", "celery broker down: not queued: %s", task.name)
        return False
    outages.broker.succeeded()
    return True


def enqueue_on_commit(task: Any, *args: Any, robust: bool = False) -> None:
    """enqueue() once the current transaction commits (at once outside one). `robust` as for
    on_commit: an error of a task run in-process (CELERY_TASK_ALWAYS_EAGER) is logged, not raised."""
    transaction.on_commit(lambda: enqueue(task, *args), robust=robust)
