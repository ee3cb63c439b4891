"""PostgreSQL unreachable: 503 with Retry-After, never a 500; one warning per outage; recovery
on the next request once it is back. The outage is real: the connection points at a closed port."""

from __future__ import annotations

import json
import logging

import psycopg
import pytest
from django.db import DatabaseError, connection
from django.test import Client, RequestFactory
from rest_framework.test import APIClient, APIRequestFactory

from apps.core.middleware import DatabaseUnavailableMiddleware
from tests.conftest import client_as
from tests.core.outages import database_down, outage_lines
from tests.factories import CompanyFactory, member

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fresh_outage_state")]


@pytest.fixture
def owner_client() -> APIClient:
    from apps.companies.models import Role

    return client_as(member(CompanyFactory(), Role.OWNER))


def _assert_unavailable_json(response) -> None:
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    body = response.json()
    assert body["code"] == "service_unavailable"
    assert set(body) == {"detail", "code", "errors"}
    assert body["errors"] == {}


def test_an_api_request_gets_503_with_retry_after_and_the_json_error_body(owner_client, caplog) -> None:
    with database_down():
        response = owner_client.get("/api/v1/members/")

    _assert_unavailable_json(response)


def test_a_page_gets_the_maintenance_page_without_touching_the_database(owner_client) -> None:
    with database_down():
        response = owner_client.get("/")
        anonymous = Client().get("/accounts/login/")

    for answer in (response, anonymous):
        assert answer.status_code == 503
        assert answer["Retry-After"] == "5"
        assert answer["Content-Type"].startswith("text/html")
        assert "Back in a moment" in answer.content.decode()


def test_an_outage_logs_one_warning_when_it_starts_and_one_when_it_ends(owner_client, caplog) -> None:
    caplog.set_level(logging.WARNING)
    with database_down():
        answers = [owner_client.get("/api/v1/members/").status_code for _ in range(3)]
        answers += [owner_client.get("/").status_code for _ in range(2)]
        answers.append(Client().get("/health/").status_code)

    assert answers == [503] * 6
    lines = outage_lines(caplog)
    assert len(lines) == 1, lines
    assert lines[0].startswith("database unavailable: ")
    # No traceback anywhere: nothing logged an error.
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]

    assert owner_client.get("/api/v1/members/").status_code == 200
    lines = outage_lines(caplog)
    assert len(lines) == 2, lines
    assert lines[1].startswith("database available again after ")
    assert owner_client.get("/").status_code == 200
    assert len(outage_lines(caplog)) == 2


def test_health_reports_the_database_down_itself_and_recovers(db) -> None:
    with database_down():
        response = Client().get("/health/")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "degraded"
    assert body["checks"]["database"]["ok"] is False
    assert body["checks"]["database"]["error"]
    assert body["checks"]["redis"]["ok"] is True

    assert Client().get("/health/").status_code == 200


def test_the_api_exception_handler_turns_a_lost_database_into_503() -> None:
    """DRF catches a view's exceptions before any middleware: its handler maps them itself."""
    from django.urls import resolve

    view = resolve("/api/v1/members/").func
    request = APIRequestFactory().get("/api/v1/members/", HTTP_AUTHORIZATION="Bearer sm_live_abc")
    with database_down():
        response = view(request).render()

    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert json.loads(response.content) == {
        "detail": "The service is briefly unavailable. Please retry in a few seconds.",
        "code": "service_unavailable",
        "errors": {},
    }


def test_a_database_error_raised_inside_a_view_becomes_the_maintenance_page() -> None:
    with database_down():
        try:
            connection.ensure_connection()
        except DatabaseError as exc:
            error = exc
        else:
            pytest.fail("the closed port accepted a connection")
        middleware = DatabaseUnavailableMiddleware(lambda request: pytest.fail("not reached"))
        response = middleware.process_exception(RequestFactory().get("/numbers/"), error)

    assert response is not None
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert "Back in a moment" in response.content.decode()


def test_a_query_error_that_is_not_an_outage_is_left_alone() -> None:
    with connection.cursor() as cursor:
        try:
            cursor.execute("SELECT 1/0")
        except DatabaseError as exc:
            error = exc

    middleware = DatabaseUnavailableMiddleware(lambda request: pytest.fail("not reached"))
    assert middleware.process_exception(RequestFactory().get("/"), error) is None


def test_a_connection_the_server_dropped_is_replaced_before_the_request_uses_it(owner_client) -> None:
    owner_client.get("/api/v1/members/")  # opens the connection the test client keeps
    backend_pid = connection.connection.info.backend_pid
    db = connection.settings_dict
    with psycopg.connect(
        host=db["HOST"], port=db["PORT"], user=db["USER"], password=db["PASSWORD"], dbname=db["NAME"], autocommit=True
    ) as other:
        # Waits (up to 5 s) until the backend has gone: its farewell is then on the socket.
        other.execute("SELECT pg_terminate_backend(%s, 5000)", [backend_pid])

    connection.health_check_done = False  # what Django does at the start of each request
    assert owner_client.get("/api/v1/members/").status_code == 200
    assert connection.connection.info.backend_pid != backend_pid


def test_a_database_error_outside_any_view_still_answers_503_without_an_error_log() -> None:
    """The last net: Django's 500 handler, reached by a failure in a middleware's response phase."""
    from apps.core.views import server_error

    with database_down():
        try:
            connection.ensure_connection()
        except DatabaseError:
            response = server_error(RequestFactory().get("/api/v1/members/"))

    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert json.loads(response.content)["code"] == "service_unavailable"
    assert response._has_been_logged is True  # django.request does not log it again
