from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from apps.companies.emails import EMAIL_TASK, email_members, email_subject
from apps.companies.models import Notice, Role
from apps.core.enqueue import enqueue
from apps.core.locks import job_lock
from apps.rating import low_balance, services

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
    with job_lock("rate-cdrs", timeout=RATE_RUN_SECONDS + 180) as acquired:
        if not acquired:
            return None
        run = services.cdrs_rate_queued(max_seconds=RATE_RUN_SECONDS)
    if run.more:
        enqueue(rate_cdrs)
    if run.charged:
        enqueue(low_balance_notices)
    return {
        "cdrs": run.cdrs,
        "batches": run.batches,
        "charged": run.charged,
        "errors": run.errors,
        "more": run.more,
        "seconds": {step: round(seconds, 2) for step, seconds in run.timings.items()},
    }


# Runs a few minutes after each auto-recharge sweep (skypemanager/schedule.py), so a balance
# the sweep is about to top up is not reported low.
LOW_BALANCE_SOFT_LIMIT = 240
LOW_BALANCE_HARD_LIMIT = 300


@shared_task(acks_late=True, soft_time_limit=LOW_BALANCE_SOFT_LIMIT, time_limit=LOW_BALANCE_HARD_LIMIT)
def low_balance_notices() -> dict[str, int] | None:
    """Every few minutes: tell companies once when a SIP profile's balance falls below its
    threshold and once when it reaches zero; re-arm those back above (apps.rating.low_balance)."""
    with job_lock("rating-low-balance-notices", timeout=LOW_BALANCE_HARD_LIMIT + 60) as acquired:
        if not acquired:
            return None
        return low_balance.low_balance_notices_send(now=timezone.now())


@shared_task(**EMAIL_TASK)
def send_low_balance_email(notice_id: int) -> None:
    """Billing members hear of a low or empty SIP profile balance (they allocate credit).
    Owners and admins get the dashboard notice's own e-mail, so nobody gets two."""
    notice = Notice.objects.select_related("company").filter(pk=notice_id).first()
    if notice is None:
        return
    email_members(
        company=notice.company,
        roles=[Role.BILLING],
        subject=email_subject(notice.subject or "A SIP profile's balance is low", notice.company),
        message=f"{notice.message}\n\n{settings.SITE_URL.rstrip('/')}{reverse('credit')}\n",
    )
