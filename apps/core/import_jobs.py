"""What every staff CSV import job does the same way: claim the job for this run, and save
its progress where the status page sees it at once."""

from __future__ import annotations

from typing import Any

from apps.core.actor import Actor
from apps.core.models import ImportJob


def import_job_claim(*, job_id: int, kind: str) -> tuple[ImportJob, Actor] | None:
    """Start (or, after a worker died, restart) a queued or running job of `kind`, and who
    runs it: the staff member who uploaded the file. None when the job is finished: a task
    delivered twice leaves it alone."""
    claimed = ImportJob.objects.filter(
        pk=job_id, kind=kind, status__in=[ImportJob.Status.QUEUED, ImportJob.Status.RUNNING]
    ).update(status=ImportJob.Status.RUNNING, processed_rows=0, imported_rows=0, errors=[], finished_at=None)
    if not claimed:
        return None
    job = ImportJob.objects.select_related("created_by").get(pk=job_id)
    return job, Actor(user=job.created_by) if job.created_by else Actor.system()


def import_job_progress(job_id: int, **fields: Any) -> None:
    # Runs outside any transaction (autocommit), so the status page sees it at once.
    ImportJob.objects.filter(pk=job_id).update(**fields)
