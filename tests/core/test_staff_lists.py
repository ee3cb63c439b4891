"""The staff lists over growing tables (CDRs and their ratings, ledger transactions, audit events,
rejected edge CDRs, Stripe events, purchases, charges, rates) use indexes for
every query they make: their page, filters, searches and count (apps.core.admin_lists).

Each table gets 40,000 rows and is analysed, so that the plans are PostgreSQL's real choice
for a big table (on a table of a few rows a sequential scan is cheapest whatever the indexes).
Every query a page runs is then explained, and none may read one of the big tables whole."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

import pytest
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.core.staff_rows import LISTS
from tests.factories import UserFactory
from tests.sip_profiles.factories import digest_profile

pytestmark = pytest.mark.django_db

ROWS = 40_000
BIG = (
    "cdrs_cdr",
    "cdrs_cdrrating",
    "audit_auditevent",
    "billing_ledgertransaction",
    "cdrs_rejectedcdr",
    "billing_stripeevent",
    "billing_creditpurchase",
    "billing_charge",
    "rating_rate",
)


def lists(*urls: str) -> pytest.MarkDecorator:
    """The staff lists a test opens: only their tables are filled (each costs seconds)."""
    return pytest.mark.staff_lists(*urls)


@pytest.fixture
def staff_client(request: pytest.FixtureRequest, company: Any, owner: Any) -> Iterator[Client]:
    marker = request.node.get_closest_marker("staff_lists")
    urls = marker.args if marker else tuple(LISTS)
    profile, _ = digest_profile(company, owner)
    # Rolled back before the test's end checks the deferred constraints (the ledger's
    # transactions below have no entries: every transaction must balance when it commits).
    savepoint = transaction.savepoint()
    for url in urls:
        LISTS[url](ROWS, company, profile)
    with connection.cursor() as cursor:
        for table in BIG:
            cursor.execute(f"ANALYZE {table}")
    client = Client()
    client.force_login(UserFactory(is_staff=True, is_superuser=True, email="lists@platform.example"))
    yield client
    transaction.savepoint_rollback(savepoint)


def one_day(field: str, start: datetime) -> str:
    """The date range filter's parameters (DateFieldListFilter's own) for one day from `start`."""
    end = start + timedelta(days=1)
    return f"{field}__gte={quote(start.isoformat())}&{field}__lt={quote(end.isoformat())}"


def full_scans(sql: str) -> list[str]:
    """The big tables a query reads from start to end, by PostgreSQL's own plan."""
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}")
        plan = cursor.fetchone()[0]
    text = json.dumps(plan if not isinstance(plan, str) else json.loads(plan))
    found = []
    for node in json.loads(text)[0]["Plan"], *_children(json.loads(text)[0]["Plan"]):
        if node.get("Node Type") == "Seq Scan" and node.get("Relation Name") in BIG:
            found.append(node["Relation Name"])
    return found


def _children(node: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for child in node.get("Plans", []):
        out += [child, *_children(child)]
    return out


def scans_of(client: Client, url: str) -> dict[str, list[str]]:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, url
    selects = [q["sql"] for q in captured.captured_queries if q["sql"].lstrip().upper().startswith(("SELECT", "WITH"))]
    return {sql[:200]: scans for sql in selects if (scans := full_scans(sql))}


@lists("/staff/cdrs/cdr/")
def test_the_staff_cdr_list_its_filters_and_searches_use_indexes(staff_client: Client) -> None:
    day = timezone.now() - timedelta(days=20)
    urls = [
        "/staff/cdrs/cdr/",
        f"/staff/cdrs/cdr/?{one_day('started_at', day)}",
        "/staff/cdrs/cdr/?node=node-1",
        "/staff/cdrs/cdr/?rating__status=error",
        f"/staff/cdrs/cdr/?q={quote('+12025550042')}",
        f"/staff/cdrs/cdr/?q={quote('+4420794600042')}",
        f"/staff/cdrs/cdr/?q={quote('call-77@pbx.example')}",
        "/staff/cdrs/cdr/?q=31337",
        "/staff/cdrs/cdr/?p=5",
    ]

    assert {url: scans_of(staff_client, url) for url in urls} == {url: {} for url in urls}


@lists("/staff/cdrs/cdr/")
def test_the_cdr_list_finds_by_exact_number_and_edge_id_and_lists_the_nodes(staff_client: Client) -> None:
    by_number = staff_client.get(f"/staff/cdrs/cdr/?q={quote('+4420794600042')}").content.decode()
    by_edge_id = staff_client.get("/staff/cdrs/cdr/?q=31337").content.decode()
    page = staff_client.get("/staff/cdrs/cdr/").content.decode()

    assert "+4420794600042" in by_number
    assert "+4420794631337" in by_edge_id
    assert "?node=node-0" in page
    assert "?node=node-1" in page


@lists("/staff/audit/auditevent/", "/staff/billing/ledgertransaction/")
def test_the_staff_audit_and_ledger_lists_use_indexes(staff_client: Client) -> None:
    day = timezone.now() - timedelta(days=10)
    urls = [
        "/staff/audit/auditevent/",
        "/staff/audit/auditevent/?action=action.7",
        f"/staff/audit/auditevent/?{one_day('created_at', day)}",
        f"/staff/audit/auditevent/?q={quote('person7@example.com')}",
        "/staff/audit/auditevent/?q=12345",
        "/staff/billing/ledgertransaction/",
        "/staff/billing/ledgertransaction/?q=test:12345",
        f"/staff/billing/ledgertransaction/?{one_day('created_at', day)}",
    ]

    assert {url: scans_of(staff_client, url) for url in urls} == {url: {} for url in urls}


@lists(
    "/staff/cdrs/rejectedcdr/",
    "/staff/billing/stripeevent/",
    "/staff/billing/creditpurchase/",
    "/staff/billing/charge/",
    "/staff/rating/rate/",
)
def test_the_staff_lists_of_payments_charges_rejected_cdrs_and_rates_use_indexes(staff_client: Client) -> None:
    day = timezone.now() - timedelta(days=10)
    urls = [
        "/staff/cdrs/rejectedcdr/",
        "/staff/cdrs/rejectedcdr/?node=node-1",
        "/staff/cdrs/rejectedcdr/?q=31337",
        f"/staff/cdrs/rejectedcdr/?{one_day('created_at', day)}",
        "/staff/billing/stripeevent/",
        "/staff/billing/stripeevent/?type=charge.refunded",
        "/staff/billing/stripeevent/?status=failed",
        "/staff/billing/stripeevent/?q=evt_31337",
        f"/staff/billing/stripeevent/?{one_day('received_at', day)}",
        "/staff/billing/creditpurchase/",
        "/staff/billing/creditpurchase/?status=pending",
        "/staff/billing/creditpurchase/?q=pi_31337",
        "/staff/billing/creditpurchase/?q=SM-00031338",
        f"/staff/billing/creditpurchase/?q={quote(str(uuid.uuid4()))}",
        f"/staff/billing/creditpurchase/?{one_day('created_at', day)}",
        "/staff/billing/charge/",
        "/staff/billing/charge/?q=test:31337",
        f"/staff/billing/charge/?{one_day('created_at', day)}",
        "/staff/rating/rate/",
        "/staff/rating/rate/?q=440031337",
        "/staff/rating/rate/?p=5",
    ]

    assert {url: scans_of(staff_client, url) for url in urls} == {url: {} for url in urls}
    # What they find, exactly.
    events = staff_client.get("/staff/billing/stripeevent/").content.decode()
    by_intent = staff_client.get("/staff/billing/creditpurchase/?q=pi_31337").content.decode()
    by_prefix = staff_client.get("/staff/rating/rate/?q=440031337").content.decode()
    rejected = staff_client.get("/staff/cdrs/rejectedcdr/?q=31337").content.decode()

    assert "?type=charge.refunded" in events
    assert "?type=payment_intent.succeeded" in events
    assert "1 result" in by_intent
    assert "440031337" in by_prefix
    assert "1 result" in by_prefix
    assert "1 result" in rejected
