"""Periodic jobs, defined in code; celery beat's database scheduler picks them up."""

from celery.schedules import crontab

BEAT_SCHEDULE = {
    # Rate the CDRs waiting in the queue (also started right after each CDR import).
    "rating-rate-cdrs": {
        "task": "apps.rating.tasks.rate_cdrs",
        "schedule": crontab(),
    },
    # Renew or end Online Number subscriptions whose period is over; free quarantined numbers.
    "numbers-process-periods": {
        "task": "apps.numbers.tasks.process_number_periods",
        "schedule": crontab(minute=5),
    },
    # Credit a payment whose webhook was missed, expire abandoned purchases, retry failed events.
    "billing-reconcile-purchases": {
        "task": "apps.billing.tasks.reconcile_credit_purchases",
        "schedule": crontab(minute="*/10"),
    },
    # Idempotency-Key records and page forms' one-time tokens (apps.core.once) are kept for 30 days.
    "billing-purge-idempotent-requests": {
        "task": "apps.billing.tasks.purge_idempotent_requests",
        "schedule": crontab(minute=40, hour=3),
    },
    # Retry unpaid charges daily within their grace period, suspend after it, resume when paid.
    "billing-settle-charges": {
        "task": "apps.billing.tasks.settle_charges",
        "schedule": crontab(minute=25),
    },
    # Each SIP profile's channels renew monthly on its renewal day.
    "sip-profiles-renew-channels": {
        "task": "apps.sip_profiles.tasks.renew_channels",
        "schedule": crontab(minute=0, hour="*/6"),
    },
    # Each SIP profile's US minute bundles renew with its channels, on its renewal day.
    "bundles-renew": {
        "task": "apps.bundles.tasks.renew_bundles",
        "schedule": crontab(minute=0, hour="*/6"),
    },
    # Auto-recharge: finish settled or interrupted recharges, recharge companies and profiles below threshold.
    "billing-auto-recharge-sweep": {
        "task": "apps.billing.tasks.auto_recharge_sweep",
        "schedule": crontab(minute="*/5"),
    },
    # Tell companies once when a SIP profile's balance runs low and when it reaches zero; two
    # minutes after each auto-recharge sweep, so what the sweep tops up is not reported.
    "rating-low-balance-notices": {
        "task": "apps.rating.tasks.low_balance_notices",
        "schedule": crontab(minute="2-59/5"),
    },
    # SIP edge: repair drift between the portal's profiles and each node's database (bounded batches).
    "edge-reconcile": {
        "task": "apps.edge.tasks.edge_reconcile_task",
        "schedule": crontab(minute="*/5"),
    },
    # SIP edge: import each node's new CDRs and rate them (hangup to debited balance within
    # seconds); per-node tasks under per-node locks, dropped when a later tick has queued another.
    "edge-import-cdrs": {
        "task": "apps.edge.tasks.edge_cdrs_import_all",
        "schedule": 1.0,
        "options": {"expires": 5},
    },
    # Landline caller IDs expire 12 months after they were proved.
    "callerid-expire-landlines": {
        "task": "apps.callerid.tasks.expire_landlines",
        "schedule": crontab(minute=15),
    },
    # CDRs past CALL_RETENTION_MONTHS are deleted in bounded batches (the daily figures stay).
    "cdrs-purge-expired": {
        "task": "apps.cdrs.tasks.purge_expired_cdrs",
        "schedule": crontab(minute=50),
    },
    # Background exports are kept a day (EXPORT_TTL_HOURS): then the file and its row go.
    "cdrs-purge-expired-exports": {
        "task": "apps.cdrs.tasks.purge_expired_exports",
        "schedule": crontab(minute="*/15"),
    },
}
