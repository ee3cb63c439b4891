"""Debounced `permissions.addressReload`, coalesced across every worker, per node.

Kamailio's address table (IP profiles' source addresses) has no per-key update: a reload
re-reads the whole table, and Kamailio refuses a second reload within `reload_delta`
(1 s in deploy/kamailio/kamailio.cfg) with "ongoing reload". So a sync that changed a
node's addresses does not reload by itself; it asks for a reload here:

- `dirty` (a Redis key per node) says "a committed change may not be loaded yet";
- whoever takes `lock` (SET NX with a TTL just above reload_delta) clears `dirty` and
  reloads at once: the first change after a quiet spell is enforced without any wait;
- anyone who finds the lock held leaves `dirty` set and makes sure that one *trailing*
  reload is scheduled for when the lock expires (`trailing`, SET NX: one per node at a
  time), so the last change is always applied, within about one interval;
- the trailing task clears `trailing` before it looks at `dirty`, so a change that finds
  `trailing` set is covered by a reload that starts after it.

At most one reload per interval per node, whatever the number of workers and syncs. A
reload that fails (node down) leaves `dirty` set: the profile's retried sync, the next sync
on that node, and the periodic reconciliation each reload a node whose `dirty` is set.
Without Redis (a laptop: no broker, tasks in-process) the reload is done at once, retried
past the interval.
"""

from __future__ import annotations

import hashlib
import logging
import time
from functools import cache
from typing import TYPE_CHECKING

import redis
from django.conf import settings

from apps.edge import clients

if TYPE_CHECKING:
    from apps.edge.models import EdgeNode

logger = logging.getLogger(__name__)

# Above Kamailio's reload_delta (1 s; its check is in whole seconds of the wall clock).
INTERVAL_MS = 1100
# A trailing reload that was lost (its worker died before it ran) stops blocking new ones after this.
TRAILING_TTL_MS = 30_000
DIRTY_TTL_S = 24 * 3600
REDIS_ERRORS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)


@cache
def _redis(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)


def _keys(node: EdgeNode) -> tuple[str, str, str]:
    # By the node's RPC address too: two portals' nodes of one name (test processes) never share keys.
    tag = f"{node.name}:{hashlib.sha256(node.rpc_url.encode()).hexdigest()[:10]}"
    return f"edge:addr-reload:{tag}:dirty", f"edge:addr-reload:{tag}:lock", f"edge:addr-reload:{tag}:trailing"


def _reload_now(node: EdgeNode) -> None:
    clients.rpc(node.rpc_url, "permissions.addressReload")
    logger.info("permissions.addressReload on %s", node.name)


def _direct(node: EdgeNode) -> None:
    clients.rpc_address_reload(node.rpc_url)
    logger.info("permissions.addressReload on %s (not debounced: no Redis)", node.name)


def address_reload_request(node: EdgeNode) -> None:
    """A committed change to the node's address table must be loaded: reload now, or make
    sure a trailing reload follows. Raises EdgeNodeError when the reload done here failed."""
    if not settings.REDIS_URL:
        _direct(node)
        return
    dirty, _, _ = _keys(node)
    try:
        _redis(settings.REDIS_URL).set(dirty, 1, ex=DIRTY_TTL_S)
        _reload_or_defer(node)
    except REDIS_ERRORS as exc:
        logger.warning("redis unavailable, reloading %s without debounce: %s", node.name, exc)
        _direct(node)


def address_reload_pending(node: EdgeNode) -> bool:
    """True when a change on the node may still be waiting for its reload (one that failed)."""
    if not settings.REDIS_URL:
        return False
    try:
        return bool(_redis(settings.REDIS_URL).exists(_keys(node)[0]))
    except REDIS_ERRORS:
        return False


def _reload_or_defer(node: EdgeNode) -> None:
    r = _redis(settings.REDIS_URL)
    dirty, lock, _ = _keys(node)
    if r.set(lock, 1, nx=True, px=INTERVAL_MS):
        # Cleared before the reload starts: whatever was committed before this point is loaded by it.
        r.delete(dirty)
        try:
            _reload_now(node)
        except clients.RpcReloadBusy:
            # Reloaded by someone else (an operator, another portal): it may predate our write.
            r.set(dirty, 1, ex=DIRTY_TTL_S)
            _defer(node, INTERVAL_MS)
        except clients.EdgeNodeError:
            r.set(dirty, 1, ex=DIRTY_TTL_S)
            raise
        return
    _defer(node, max(int(r.pttl(lock)), 0))


def _defer(node: EdgeNode, wait_ms: int) -> None:
    """One trailing reload per node at a time, when the interval is over."""
    r = _redis(settings.REDIS_URL)
    _, _, trailing = _keys(node)
    if not r.set(trailing, 1, nx=True, px=TRAILING_TTL_MS):
        return  # one is scheduled: it clears `trailing`, then reloads if `dirty`
    # apps.edge.tasks imports this module (import cycle).
    from apps.edge.tasks import edge_address_reload_task

    if edge_address_reload_task.app.conf.task_always_eager:
        # No broker (laptop, most tests): a countdown would run at once, so wait here instead.
        time.sleep(wait_ms / 1000)
        address_reload_trailing(node)
        return
    edge_address_reload_task.apply_async((node.pk,), countdown=wait_ms / 1000 + 0.01)


def address_reload_trailing(node: EdgeNode) -> None:
    """The trailing reload: clear `trailing` first (see the module's docstring), then reload if
    anything is still waiting."""
    r = _redis(settings.REDIS_URL)
    dirty, _, trailing = _keys(node)
    r.delete(trailing)
    if r.exists(dirty):
        _reload_or_defer(node)


def address_reload_if_pending(node: EdgeNode) -> None:
    """For the retry and the reconciliation: reload a node whose last reload failed."""
    if address_reload_pending(node):
        address_reload_request(node)
