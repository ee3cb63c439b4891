"""Periodic jobs, defined in code; celery beat's database scheduler picks them up."""

from celery.schedules import crontab

BEAT_SCHEDULE = {
    # Renew or end Online Number subscriptions whose period is over; free quarantined numbers.
    "numbers-process-periods": {
        "task": "apps.numbers.tasks.process_number_periods",
        "schedule": crontab(minute=5),
    },
    # Landline caller IDs expire 12 months after they were proved.
    "callerid-expire-landlines": {
        "task": "apps.callerid.tasks.expire_landlines",
        "schedule": crontab(minute=15),
    },
}
