from __future__ import annotations

from celery import shared_task

from apps.cdrs import services
from apps.core.locks import job_lock


@shared_task(acks_late=True, soft_time_limit=840, time_limit=900)
def run_cdr_import(job_id: int) -> None:
    """Check and load one staff CDR CSV. A redelivered task finds the job finished."""
    services.cdr_import_run(job_id=job_id)


@shared_task(acks_late=True, soft_time_limit=240, time_limit=300)
def purge_expired_cdrs() -> int | None:
    """Delete the CDRs past CALL_RETENTION_MONTHS, in bounded batches (hourly). None: another
    run holds the lock (on PostgreSQL the purge also takes an advisory lock per batch)."""
    with job_lock("cdrs-purge-expired", timeout=360) as acquired:
        if not acquired:
            return None
        return services.cdrs_purge_expired().deleted


@shared_task(acks_late=True, soft_time_limit=840, time_limit=900)
def run_export(export_id: int) -> None:
    """Write one background export. A redelivered task starts it over under a new attempt;
    a finished one is left alone."""
    services.export_run(export_id=export_id)


@shared_task(acks_late=True, soft_time_limit=240, time_limit=300)
def purge_expired_exports() -> int | None:
    """Delete the exports (file and row) past their day. None: another run holds the lock."""
    with job_lock("cdrs-purge-expired-exports", timeout=360) as acquired:
        if not acquired:
            return None
        return services.exports_purge_expired()
