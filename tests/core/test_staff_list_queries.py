"""Every staff list over a growing table makes the same number of queries for a page of one
row as for a page of fifty: nothing on a row (a company's or profile's name, a CDR's rating, a
rate's deck) is fetched per row."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import resolve

from tests.core.staff_rows import LISTS
from tests.factories import UserFactory
from tests.sip_profiles.factories import digest_profile

pytestmark = pytest.mark.django_db


def queries_of_a_page(url: str, fill: Callable[[int, Any, Any], None], rows: int, company: Any, owner: Any) -> int:
    profile, _ = digest_profile(company, owner, name=f"PBX {rows}")
    client = Client()
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    # Rolled back before the deferred checks of commit (ledger transactions without entries).
    savepoint = transaction.savepoint()
    try:
        fill(rows, company, profile)
        client.get(url)  # the session and anything cached once per process
        with CaptureQueriesContext(connection) as captured:
            response = client.get(url)
        assert response.status_code == 200, url
        first_column = resolve(url).func.model_admin.list_display[0]  # type: ignore[attr-defined]
        assert response.content.decode().count(f'class="field-{first_column}') >= rows, url
        return len(captured.captured_queries)
    finally:
        transaction.savepoint_rollback(savepoint)


@pytest.mark.parametrize("url", list(LISTS))
def test_a_staff_list_makes_as_many_queries_for_fifty_rows_as_for_one(url: str, company: Any, owner: Any) -> None:
    one = queries_of_a_page(url, LISTS[url], 1, company, owner)
    fifty = queries_of_a_page(url, LISTS[url], 50, company, owner)

    assert fifty == one
