"""The ledger and the audit events are paged by cursor (apps.core.keyset), as calls/ is: a page
is the rows after the cursor's row in the index, so a deep page makes the queries of the first
and no page counts the rows; following `next` reads every row once, newest first, and
`previous` walks back. Their old `page` numbers are refused, naming the parameter."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import time_machine

from apps.audit.models import AuditEvent
from apps.audit.services import audit_record
from apps.billing.models import LedgerEntry
from apps.core.actor import Actor
from tests.conftest import client_as
from tests.factories import grant
from tests.helpers.queries import SIGNED_IN, expect_queries

pytestmark = pytest.mark.django_db


def walk(client, url: str, params: dict[str, str]) -> list[dict]:
    pages, body = [], client.get(url, params).json()
    pages.append(body)
    while body["next"]:
        body = client.get(body["next"]).json()
        pages.append(body)
    return pages


def walk_back(client, page: dict) -> list[list]:
    back = []
    while page["previous"]:
        page = client.get(page["previous"]).json()
        back.insert(0, page["results"])
    return back


def test_following_next_reads_every_statement_entry_once_newest_first_and_previous_walks_back(company, owner) -> None:
    for n in range(23):
        grant(company, f"{n + 1}")
    client = client_as(owner)

    pages = walk(client, "/api/v1/ledger/", {"page_size": "5"})

    amounts = [e["amount"] for page in pages for e in page["results"]]
    assert amounts == [f"{n}.0000" for n in range(23, 0, -1)]
    assert [len(p["results"]) for p in pages] == [5, 5, 5, 5, 3]
    assert pages[0]["previous"] is None
    assert "count" not in pages[0]
    assert walk_back(client, pages[-1]) == [p["results"] for p in pages[:-1]]


def test_a_deep_statement_page_makes_the_queries_of_the_first(company, owner) -> None:
    for _ in range(30):
        grant(company, "1")
    client = client_as(owner)
    first = client.get("/api/v1/ledger/", {"page_size": "2"}).json()
    deep = first
    for _ in range(10):
        deep = client.get(deep["next"]).json()
    reasons = (*SIGNED_IN, "the page of entries after the cursor (no count)")

    with expect_queries(*reasons) as top:
        client.get("/api/v1/ledger/", {"page_size": "2"})
    with expect_queries(*reasons) as far:
        page = client.get(deep["next"])

    assert page.status_code == 200
    assert len(page.json()["results"]) == 2
    assert "COUNT(" not in top.captured_queries[-1]["sql"].upper()
    assert "COUNT(" not in far.captured_queries[-1]["sql"].upper()
    # The deep page starts at its cursor: `id < …` in the WHERE, no OFFSET.
    assert '"billing_ledgerentry"."id" <' in far.captured_queries[-1]["sql"]
    assert "OFFSET" not in far.captured_queries[-1]["sql"].upper()
    ids = list(LedgerEntry.objects.filter(account__company=company).order_by("-id").values_list("id", flat=True))
    assert len(ids) == 30


def test_following_next_reads_every_audit_event_once_in_order_even_where_times_are_equal(company, owner) -> None:
    # Events written at one moment share a time: the id orders them.
    for n in range(17):
        with time_machine.travel(datetime(2026, 11, 30, 12, n // 6, tzinfo=UTC), tick=False):
            audit_record(actor=Actor(user=owner), action=f"test.{n:02d}", company=company)
    expected = list(
        AuditEvent.objects.filter(company=company, action__startswith="test.")
        .order_by("-created_at", "-id")
        .values_list("action", flat=True)
    )
    client = client_as(owner)

    pages = walk(client, "/api/v1/audit-events/", {"action_prefix": "test.", "page_size": "3"})

    assert [e["action"] for page in pages for e in page["results"]] == expected
    assert len(expected) == 17
    assert expected[:6] == [f"test.{n:02d}" for n in range(16, 10, -1)]
    assert walk_back(client, pages[-1]) == [p["results"] for p in pages[:-1]]


def test_a_deep_audit_page_makes_the_queries_of_the_first(company, owner) -> None:
    for n in range(20):
        audit_record(actor=Actor(user=owner), action=f"test.{n}", company=company)
    client = client_as(owner)
    deep = client.get("/api/v1/audit-events/", {"page_size": "2"}).json()
    for _ in range(6):
        deep = client.get(deep["next"]).json()
    reasons = (*SIGNED_IN, "the page of events after the cursor (no count)")

    with expect_queries(*reasons):
        client.get("/api/v1/audit-events/", {"page_size": "2"})
    with expect_queries(*reasons) as far:
        page = client.get(deep["next"])

    assert len(page.json()["results"]) == 2
    assert "OFFSET" not in far.captured_queries[-1]["sql"].upper()


@pytest.mark.parametrize("path", ["/api/v1/ledger/", "/api/v1/audit-events/"])
@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"page": "2"}, "page"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"page_size": "0"}, "page_size"),
        ({"page_size": "201"}, "page_size"),
        ({"page_size": "٣"}, "page_size"),
    ],
)
def test_a_page_number_or_a_bad_cursor_or_size_is_a_400_naming_it(company, owner, path, params, field) -> None:
    response = client_as(owner).get(path, params)

    assert response.status_code == 400
    body = response.json()
    assert list(body["errors"]) == [field]
    assert body["detail"]
