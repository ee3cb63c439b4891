"""The shared test tools fail when they should, and say why."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection

from apps.companies.models import Company
from tests.helpers.queries import expect_queries
from tests.helpers.races import run_concurrently


@pytest.mark.django_db
def test_a_query_count_that_matches_its_reasons_passes() -> None:
    with expect_queries("the count of companies", "the first company"):
        Company.objects.count()
        Company.objects.first()


@pytest.mark.django_db
def test_a_query_count_that_differs_fails_with_the_sql_beside_the_reasons() -> None:
    def two_queries() -> None:
        Company.objects.count()
        Company.objects.exists()

    with pytest.raises(pytest.fail.Exception) as failed, expect_queries("the count of companies"):
        two_queries()

    report = str(failed.value)
    assert "expected 1 queries, 2 ran" in report
    assert "1. the count of companies" in report
    assert "2. (no reason: one query too many)" in report
    assert "COUNT(*)" in report
    assert "LIMIT 1" in report


@pytest.mark.django_db
def test_no_reasons_means_no_query_at_all() -> None:
    with expect_queries():
        pass
    with pytest.raises(pytest.fail.Exception), expect_queries():
        Company.objects.count()


@pytest.mark.django_db(transaction=True)
def test_racing_functions_start_together_each_on_its_own_connection() -> None:
    seen = threading.Lock()
    backends: list[int] = []

    def backend_pid() -> int:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            pid = cursor.fetchone()[0]
        with seen:
            backends.append(pid)
        return pid

    results = run_concurrently(backend_pid, backend_pid, backend_pid)

    assert len(set(results)) == 3  # three connections, one per thread
    assert sorted(results) == sorted(backends)  # results in the functions' order
    # And every thread closed its connection (a backend ends just after its client leaves).
    deadline = time.monotonic() + 5
    with connection.cursor() as cursor:
        while True:
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)", [results])
            left = cursor.fetchone()[0]
            if left == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
    assert left == 0


def test_results_come_back_in_order_and_caught_errors_take_their_place() -> None:
    def fails() -> None:
        raise KeyError("expected")

    results = run_concurrently(lambda: "first", fails, lambda: "third", catch=(KeyError,))

    assert results[0] == "first"
    assert isinstance(results[1], KeyError)
    assert results[2] == "third"


def test_an_error_not_caught_is_raised_in_the_test_after_every_thread_finished() -> None:
    finished: list[str] = []

    def fails() -> None:
        raise RuntimeError("boom")

    def slow() -> None:
        threading.Event().wait(0.2)
        finished.append("slow")

    with pytest.raises(RuntimeError, match="boom"):
        run_concurrently(fails, slow)
    assert finished == ["slow"]
