from __future__ import annotations

import logging
from typing import Any

from celery import shared_task
from django.conf import settings

from apps.core.enqueue import enqueue
from apps.core.locks import job_lock
from apps.edge import cdr_import, services
from apps.edge.clients import EdgeNodeError
from apps.edge.models import EdgeNode
from apps.edge.reloads import address_reload_trailing
from apps.rating import services as rating_services
from apps.rating.tasks import low_balance_notices, rate_cdrs

logger = logging.getLogger(__name__)

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


# CDR import: celery beat runs edge_cdrs_import_all every second (skypemanager/schedule.py); it
# queues one edge_cdrs_import_task per enabled node, which runs under that node's lock (runs of
# one node never overlap; a node that is down costs its own task its timeout, not the others).
# A task that waited in the queue longer than CDR_IMPORT_EXPIRES is dropped: a later tick has
# queued a fresher one. Rating follows in the same task, after the commit.
# A run imports at most 4 batches (20,000 records, a few seconds; the next tick goes on) and
# rates for at most CDR_IMPORT_RATE_SECONDS, so it stays well inside its time limit; a worker
# killed mid-run leaves the node's lock until CDR_IMPORT_LOCK_SECONDS, the longest pause a
# node's import can suffer (nothing is lost: the records wait on the node).
CDR_IMPORT_EXPIRES = 10
CDR_IMPORT_RATE_SECONDS = 15
CDR_IMPORT_LOCK_SECONDS = 60


@shared_task(acks_late=True, soft_time_limit=20, time_limit=30)
def edge_cdrs_import_all() -> int | None:
    """Every second: queue the CDR import of each enabled node. Returns how many (None when
    another tick is still queueing: a lock, as every periodic job has)."""
    with job_lock("edge-cdr-import-all", timeout=30) as acquired:
        if not acquired:
            return None
        node_ids = list(EdgeNode.objects.filter(enabled=True).values_list("pk", flat=True))
        for node_id in node_ids:
            edge_cdrs_import_task.apply_async((node_id,), expires=CDR_IMPORT_EXPIRES)
        return len(node_ids)


@shared_task(acks_late=True, soft_time_limit=40, time_limit=50)
def edge_cdrs_import_task(node_id: int) -> dict[str, Any] | None:
    """Import one node's new CDRs, then rate them at once (rating's own service; the minute
    job rates whatever this leaves). None when another run of the node holds its lock."""
    with job_lock(f"edge-cdr-import:{node_id}", timeout=CDR_IMPORT_LOCK_SECONDS) as acquired:
        if not acquired:
            return None
        node = EdgeNode.objects.filter(pk=node_id, enabled=True).first()
        if node is None:
            return None
        try:
            run = cdr_import.edge_cdrs_import(node=node)
        except EdgeNodeError as exc:
            # Tried again at the next tick; nothing was lost (the node keeps its records).
            logger.warning("edge %s: CDR import failed: %s", node.name, exc)
            return {"node": node.name, "error": str(exc)}
    result: dict[str, Any] = {
        "node": run.node,
        "read": run.read,
        "cdrs": run.cdrs,
        "rejected": run.rejected,
        "watermark": run.watermark,
        "waiting_at": run.waiting_at,
    }
    if run.cdrs:
        rated = rating_services.cdrs_rate_queued(max_seconds=CDR_IMPORT_RATE_SECONDS)
        result["rated"] = rated.cdrs
        if rated.more:
            enqueue(rate_cdrs)
        if rated.charged:
            enqueue(low_balance_notices)
    return result
