"""Redis unreachable (the cache: rate limits, job locks): reads answer as usual, the rate
limit fails open or closed as configured, locks are not taken. The outage is real: the cache
points at a closed port."""

from __future__ import annotations

import logging
import time

import pytest
from django.core.cache import cache
from django.test import Client, override_settings

from apps.companies.models import Role
from apps.core.locks import job_lock
from tests.conftest import client_as
from tests.core.outages import outage_lines, redis_down
from tests.factories import CompanyFactory, member

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fresh_outage_state")]


@pytest.fixture
def owner_client():
    return client_as(member(CompanyFactory(), Role.OWNER))


def test_an_api_read_answers_as_usual_and_the_rate_limit_fails_open_by_default(owner_client, caplog) -> None:
    caplog.set_level(logging.WARNING)
    with redis_down():
        answers = [owner_client.get("/api/v1/members/").status_code for _ in range(3)]

    assert answers == [200, 200, 200]
    lines = outage_lines(caplog)
    assert len(lines) == 2, lines
    assert lines[0].startswith("redis unavailable: ")
    assert "rate limit not enforced" in lines[1]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


def test_the_rate_limit_refuses_with_503_and_retry_after_when_set_to_fail_closed(owner_client) -> None:
    with redis_down(), override_settings(RATE_LIMIT_WHEN_REDIS_DOWN="closed"):
        response = owner_client.get("/api/v1/members/")

    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert response.json()["code"] == "service_unavailable"
    # Redis back: the same setting lets requests through again.
    with override_settings(RATE_LIMIT_WHEN_REDIS_DOWN="closed"):
        assert owner_client.get("/api/v1/members/").status_code == 200


def test_pages_answer_as_usual(owner_client) -> None:
    with redis_down():
        assert owner_client.get("/").status_code == 200


def test_a_job_lock_is_not_taken_and_nothing_raises() -> None:
    with redis_down(), job_lock("nightly") as acquired:
        assert acquired is False


def test_the_cache_reads_misses_and_drops_writes_within_a_second_per_call() -> None:
    with redis_down():
        started = time.monotonic()
        assert cache.get("k", "default") == "default"
        assert cache.get_many(["a", "b"]) == {}
        assert cache.set("k", 1) is None
        assert cache.add("k", 1) is False
        assert cache.delete("k") is False
        assert cache.has_key("k") is False
        assert cache.set_many({"a": 1}) == ["a"]
        with pytest.raises(ValueError):
            cache.incr("k")
        assert cache.is_available() is False
        elapsed = time.monotonic() - started

    assert elapsed < 9 * 1.0


def test_recovery_is_logged_once_when_redis_answers_again(caplog) -> None:
    caplog.set_level(logging.WARNING)
    with redis_down():
        cache.get("k")
        cache.get("k")
    cache.set("k", 1)
    cache.get("k")

    lines = outage_lines(caplog)
    assert len(lines) == 2, lines
    assert lines[1].startswith("redis available again after ")
    assert cache.is_available() is True


def test_health_says_redis_failed_with_503() -> None:
    with redis_down():
        response = Client().get("/health/")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "degraded"
    assert body["checks"]["redis"]["ok"] is False
    assert body["checks"]["redis"]["error"]
    assert body["checks"]["database"]["ok"] is True
