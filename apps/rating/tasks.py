from __future__ import annotations

import logging

from celery import shared_task

from apps.core.enqueue import enqueue
from apps.core.locks import job_lock
from apps.rating import services

logger = logging.getLogger(__name__)


@shared_task(acks_late=True, soft_time_limit=840, time_limit=900)
def run_rate_deck_import(job_id: int) -> None:
    """Check and import one staff rate deck CSV. A redelivered task finds the job finished."""
    services.rate_deck_import_run(job_id=job_id)


# The most one run of rate_cdrs works before it leaves the rest to the next run (each batch
# commits on its own, so a run that is killed loses at most the batch in progress).
RATE_RUN_SECONDS = 240


@shared_task(acks_late=True, soft_time_limit=RATE_RUN_SECONDS + 60, time_limit=RATE_RUN_SECONDS + 120)
def rate_cdrs() -> dict[str, object] | None:
    """Rate every queued CDR, batch by batch (every minute, and right after a CDR import).
    Runs never overlap (a lock); even if they did, batches run one at a time (an advisory
    lock) and a CDR's rating is written once, so nothing is charged twice. Re-queues itself
    when it stopped at its time budget with CDRs left, and asks for the low-balance notices
    when it charged calls (so they go out now, not at the next 5-minute sweep)."""
    from apps.bundles.services import bundles_renew
    from apps.rating.engine import rate_pending

    with job_lock("rate-cdrs", timeout=RATE_RUN_SECONDS + 180) as acquired:
        if not acquired:
            return None
        # A bundle period must exist before the calls made in it are rated, or they would be
        # charged at the standard rate: start the periods due (one cheap query when none is).
        try:
            bundles_renew(limit=1000)
        except Exception:
            logger.exception("US minute bundle renewal before rating failed")
        run = rate_pending(max_seconds=RATE_RUN_SECONDS)
    if run.more:
        enqueue(rate_cdrs)
    if run.charged:
        from apps.billing.tasks import low_balance_notices

        enqueue(low_balance_notices)
    return {
        "cdrs": run.cdrs,
        "batches": run.batches,
        "charged": run.charged,
        "errors": run.errors,
        "more": run.more,
        "seconds": {step: round(seconds, 2) for step, seconds in run.timings.items()},
    }
