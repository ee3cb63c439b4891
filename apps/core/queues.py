"""How much work waits in the Celery broker: the length of each queue's Redis list.

Kombu's Redis transport keeps a queue's messages in a list named after the queue (the plain
name for priority 0, which is all this project uses), and the messages a worker has taken
but not yet acknowledged (acks_late) in the "unacked" hash until the task ends.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis
from django.conf import settings

TIMEOUT_SECONDS = 1.0
UNACKED_KEY = "unacked"


@dataclass(frozen=True)
class QueueDepth:
    queue: str
    waiting: int | None  # None: the broker did not answer
    in_progress: int | None  # taken by a worker, not yet acknowledged (every queue's together)
    error: str = ""


def broker_queue_names() -> list[str]:
    return [str(getattr(settings, "CELERY_TASK_DEFAULT_QUEUE", "celery") or "celery")]


def broker_queue_depths() -> list[QueueDepth]:
    """Each queue's waiting messages, asked of the broker within a second; a broker that is
    down or not Redis (tasks run in-process on a laptop) gives no figures and says why."""
    url = settings.CELERY_BROKER_URL
    names = broker_queue_names()
    if not url.startswith(("redis://", "rediss://")):
        return [QueueDepth(name, None, None, "no Redis broker (tasks run in-process)") for name in names]
    client = redis.Redis.from_url(url, socket_connect_timeout=TIMEOUT_SECONDS, socket_timeout=TIMEOUT_SECONDS)
    try:
        pipe = client.pipeline(transaction=False)
        for name in names:
            pipe.llen(name)
        pipe.hlen(UNACKED_KEY)
        *lengths, unacked = pipe.execute()
    except redis.RedisError as exc:
        return [QueueDepth(name, None, None, f"broker unavailable: {type(exc).__name__}") for name in names]
    finally:
        client.close()
    return [QueueDepth(name, int(length), int(unacked)) for name, length in zip(names, lengths, strict=True)]
