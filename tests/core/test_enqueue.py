"""A best-effort task queued while the broker is down: the committed work stands, the caller
carries on, and the outage is logged once. The broker is a real Redis URL on a closed port."""

from __future__ import annotations

import logging
import time

import pytest
from celery import Celery
from django.db import transaction

from apps.core.enqueue import enqueue, enqueue_on_commit
from tests.core.outages import closed_port, outage_lines

pytestmark = pytest.mark.usefixtures("fresh_outage_state")


@pytest.fixture
def task_without_broker():
    app = Celery("broker-down", broker=f"redis://127.0.0.1:{closed_port()}/0", set_as_current=False)
    app.conf.update(broker_connection_retry_on_startup=False, broker_connection_max_retries=0)

    @app.task(name="tests.noop")
    def noop(*args):
        return args

    yield noop
    app.close()


def test_enqueue_reports_false_and_logs_once_when_the_broker_is_down(task_without_broker, caplog) -> None:
    caplog.set_level(logging.WARNING)
    started = time.monotonic()

    results = [enqueue(task_without_broker, 1), enqueue(task_without_broker, 2)]

    assert results == [False, False]
    assert time.monotonic() - started < 10
    lines = outage_lines(caplog)
    assert lines[0].startswith("celery broker unavailable: ")
    assert lines[1] == "celery broker down: not queued: tests.noop"
    assert len(lines) == 2


@pytest.mark.django_db(transaction=True)
def test_a_committed_transaction_is_not_failed_by_a_task_queued_on_commit(task_without_broker) -> None:
    from apps.companies.models import Company
    from tests.factories import CompanyFactory

    with transaction.atomic():
        company = CompanyFactory()
        enqueue_on_commit(task_without_broker, company.pk)

    assert Company.objects.filter(pk=company.pk).exists()


def test_in_process_tasks_still_run_and_raise_as_before() -> None:
    from skypemanager.celery import app

    @app.task(name="tests.boom")
    def boom():
        raise RuntimeError("the task's own error")

    assert app.conf.task_always_eager
    with pytest.raises(RuntimeError):
        enqueue(boom)
