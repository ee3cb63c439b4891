from __future__ import annotations

from celery import shared_task

from apps.rating import services


@shared_task(acks_late=True, soft_time_limit=840, time_limit=900)
def run_rate_deck_import(job_id: int) -> None:
    """Check and import one staff rate deck CSV. A redelivered task finds the job finished."""
    services.rate_deck_import_run(job_id=job_id)
