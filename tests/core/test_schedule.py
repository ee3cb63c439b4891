"""The periodic jobs of skypemanager/schedule.py: each is a registered task delivered at least
once (acknowledged late, put back when its worker dies, done before Redis would hand it to
another worker), and a run never overlaps another (a shared lock)."""

from __future__ import annotations

import pytest
from celery import Task
from django.conf import settings
from django.core.cache import cache

from apps.core.locks import job_lock
from skypemanager.celery import app
from skypemanager.schedule import BEAT_SCHEDULE
from tests.helpers.queries import expect_queries

# The job_lock each periodic task takes. A task added to the schedule must be added here.
LOCKS = {
    "apps.rating.tasks.rate_cdrs": "rate-cdrs",
    "apps.numbers.tasks.process_number_periods": "numbers-process-periods",
    "apps.billing.tasks.reconcile_credit_purchases": "billing-reconcile-purchases",
    "apps.billing.tasks.purge_idempotent_requests": "billing-purge-idempotent-requests",
    "apps.billing.tasks.settle_charges": "settle-charges",
    "apps.sip_profiles.tasks.renew_channels": "renew-channels",
    "apps.bundles.tasks.renew_bundles": "renew-bundles",
    "apps.billing.tasks.auto_recharge_sweep": "billing-auto-recharge-sweep",
    "apps.rating.tasks.low_balance_notices": "rating-low-balance-notices",
    "apps.callerid.tasks.expire_landlines": "callerid.expire_landlines",
    "apps.edge.tasks.edge_reconcile_task": "edge-reconcile",
    "apps.edge.tasks.edge_cdrs_import_all": "edge-cdr-import-all",
    "apps.cdrs.tasks.purge_expired_cdrs": "cdrs-purge-expired",
    "apps.cdrs.tasks.purge_expired_exports": "cdrs-purge-expired-exports",
}
SCHEDULED = sorted({entry["task"] for entry in BEAT_SCHEDULE.values()})
VISIBILITY_TIMEOUT = settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"]


def registered(name: str) -> Task:  # type: ignore[type-arg]
    # What a worker does at start: import CELERY_IMPORTS and each app's tasks module.
    app.loader.import_default_modules()
    return app.tasks[name]


def our_tasks() -> list[str]:
    app.loader.import_default_modules()
    return sorted(name for name in app.tasks if name.startswith("apps."))


def time_limit(task: Task) -> int | None:  # type: ignore[type-arg]
    return task.time_limit or app.conf.task_time_limit


def test_every_scheduled_task_says_which_lock_it_takes() -> None:
    assert set(SCHEDULED) == set(LOCKS), "add the task's job_lock name to LOCKS"


def test_the_broker_redelivers_only_after_the_longest_task_would_have_ended() -> None:
    assert our_tasks(), "no task was discovered"
    too_long = {name: time_limit(app.tasks[name]) for name in our_tasks()}
    assert all(limit is not None for limit in too_long.values())
    assert {name: limit for name, limit in too_long.items() if limit and limit >= VISIBILITY_TIMEOUT} == {}
    assert settings.CELERY_TASK_ACKS_LATE
    assert settings.CELERY_TASK_REJECT_ON_WORKER_LOST


@pytest.mark.parametrize("name", SCHEDULED)
def test_the_scheduled_task_is_registered_and_delivered_at_least_once(name: str) -> None:
    task = registered(name)

    assert task.name == name
    assert task.acks_late is True
    assert task.reject_on_worker_lost is True
    limit = time_limit(task)
    assert limit is not None
    assert limit < VISIBILITY_TIMEOUT
    # The soft limit lets a run stop cleanly (its batches committed) before it is killed.
    assert task.soft_time_limit is None or task.soft_time_limit < limit


@pytest.mark.django_db
@pytest.mark.parametrize("name", SCHEDULED)
def test_the_scheduled_task_does_nothing_while_another_run_holds_its_lock(name: str) -> None:
    task = registered(name)
    key = f"lock:{LOCKS[name]}"

    with job_lock(LOCKS[name]) as acquired:
        assert acquired
        holder = cache.get(key)
        with expect_queries():  # not one read, let alone a write
            result = task.apply().get()
        assert result is None
        assert cache.get(key) == holder  # and it left the other run's lock alone
    assert cache.get(key) is None


@pytest.mark.django_db
@pytest.mark.parametrize("name", SCHEDULED)
def test_the_scheduled_task_runs_with_its_lock_free_and_frees_it(name: str) -> None:
    task = registered(name)

    result = task.apply().get()

    assert result is not None  # it ran (on an empty database: nothing to do)
    assert cache.get(f"lock:{LOCKS[name]}") is None
