from __future__ import annotations

from typing import Any

from celery import shared_task
from django.conf import settings

from apps.core.locks import job_lock
from apps.edge import services
from apps.edge.clients import EdgeNodeError
from apps.edge.models import EdgeNode
from apps.edge.reloads import address_reload_trailing

MAX_BACKOFF = 300


@shared_task(bind=True, acks_late=True, max_retries=10, soft_time_limit=50, time_limit=60)
def edge_sync_profile_task(self: Any, profile_id: int, node_names: list[str] | None = None) -> dict[str, Any]:
    """Sync one profile; nodes that failed are retried alone, with exponential backoff (a
    node that is down is caught up when it returns, or by the reconciliation)."""
    results = services.edge_sync_profile(profile_id=profile_id, node_names=node_names)
    failed = [r.node for r in results if r.error]
    if failed and not self.request.is_eager:
        raise self.retry(args=(profile_id, failed), countdown=min(2**self.request.retries, MAX_BACKOFF))
    return {r.node: r.error or r.changes for r in results}


@shared_task(bind=True, acks_late=True, max_retries=10, soft_time_limit=50, time_limit=60)
def edge_sync_blocked_task(self: Any, node_names: list[str] | None = None, reload: bool = False) -> dict[str, Any]:
    """Push the blocked list to the nodes (queued by a blocked-prefix change, debounced in
    services.blocked_prefixes_changed); failed nodes are retried alone, with a reload, since
    their rows may be in place already."""
    results = services.edge_sync_blocked(node_names=node_names, reload=reload)
    failed = [r.node for r in results if r.error]
    if failed and not self.request.is_eager:
        raise self.retry(args=(failed, True), countdown=min(2**self.request.retries, MAX_BACKOFF))
    return {r.node: r.error or r.changes for r in results}


@shared_task(bind=True, acks_late=True, max_retries=10, soft_time_limit=50, time_limit=60)
def edge_sync_global_task(self: Any, node_names: list[str] | None = None) -> dict[str, Any]:
    """Push the lists every profile shares (carriers, their sources, blocked numbers); nodes
    that failed are retried alone, with exponential backoff."""
    results = services.edge_sync_global(node_names=node_names)
    failed = [r.node for r in results if r.error]
    if failed and not self.request.is_eager:
        raise self.retry(args=(failed,), countdown=min(2**self.request.retries, MAX_BACKOFF))
    return {r.node: r.error or r.changes for r in results}


@shared_task(bind=True, acks_late=True, max_retries=10, soft_time_limit=20, time_limit=30)
def edge_address_reload_task(self: Any, node_id: int) -> None:
    """The trailing, debounced permissions.addressReload of a node (apps.edge.reloads)."""
    node = EdgeNode.objects.filter(pk=node_id, enabled=True).first()
    if node is None:
        return
    try:
        address_reload_trailing(node)
    except EdgeNodeError as exc:
        raise self.retry(countdown=min(2**self.request.retries, MAX_BACKOFF)) from exc


@shared_task(acks_late=True, soft_time_limit=240, time_limit=300)
def edge_reconcile_task() -> dict[str, Any] | None:
    """Periodic: repair drift between the portal and the nodes, one bounded batch per run."""
    with job_lock("edge-reconcile", timeout=300) as acquired:
        if not acquired:
            return None  # another run is at it
        if not settings.EDGE_SYNC_ENABLED:
            return {"skipped": "EDGE_SYNC_ENABLED is off"}
        result = services.edge_reconcile()
        return {"checked": result.checked, "repaired": result.repaired, "failed": result.failed}
