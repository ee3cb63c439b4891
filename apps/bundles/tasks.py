from __future__ import annotations

from celery import shared_task


@shared_task(acks_late=True, soft_time_limit=240, time_limit=300)
def notify_bundle_periods(period_ids: list[int]) -> int:
    """The 80% and 100% notices of bundle periods a rating batch used: a task of its own, so
    that rating never waits for notices and e-mails. Safe to run twice (each notice is claimed
    with a conditional UPDATE)."""
    from apps.bundles.services import bundle_periods_notify

    return bundle_periods_notify(period_ids)
