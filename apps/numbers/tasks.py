from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from apps.core.locks import job_lock
from apps.numbers import services

# The lock outlives the hard time limit, so a run that is killed frees it by expiry,
# and it is never freed while that run could still be working.
PERIODS_SOFT_LIMIT = 540
PERIODS_HARD_LIMIT = 600


@shared_task(acks_late=True, soft_time_limit=PERIODS_SOFT_LIMIT, time_limit=PERIODS_HARD_LIMIT)
def process_number_periods() -> dict[str, int] | None:
    """Hourly: renew or end Online Numbers whose period is over; free quarantined ones."""
    with job_lock("numbers-process-periods", timeout=PERIODS_HARD_LIMIT + 60) as acquired:
        if not acquired:
            return None  # the previous run is still going
        return services.number_periods_process(now=timezone.now())


@shared_task(acks_late=True, soft_time_limit=840, time_limit=900)
def run_number_import(job_id: int) -> None:
    """Check and import one staff CSV of stock. A redelivered task finds the job finished."""
    services.number_import_run(job_id=job_id)
