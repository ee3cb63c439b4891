"""The staff lists over growing tables (CDRs, ledger transactions, audit events) use indexes for
every query they make: their page, filters, searches and count (apps.core.admin_lists).

Each table gets 40,000 rows and is analysed, so that the plans are PostgreSQL's real choice
for a big table (on a table of a few rows a sequential scan is cheapest whatever the indexes).
Every query a page runs is then explained, and none may read one of the big tables whole."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

import pytest
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.factories import UserFactory
from tests.sip_profiles.factories import digest_profile

pytestmark = pytest.mark.django_db

ROWS = 40_000
BIG = ("cdrs_cdr", "cdrs_cdrrating", "audit_auditevent", "billing_ledgertransaction")


@pytest.fixture
def staff_client(company: Any, owner: Any) -> Iterator[Client]:
    profile, _ = digest_profile(company, owner)
    # Rolled back before the test's end checks the deferred constraints (the ledger's
    # transactions below have no entries: every transaction must balance when it commits).
    savepoint = transaction.savepoint()
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO cdrs_cdr (public_id, created_at, node, edge_id, call_id, direction, caller, callee,
                started_at, answered_at, ended_at, duration_seconds, billable_seconds, sip_code, disposition,
                refusal_reason, auth_method, source_address, company_id, sip_profile_id)
            SELECT gen_random_uuid(), now(), 'node-' || (n %% 2), n, 'call-' || n || '@pbx.example', 'outbound',
                   '+1202555' || lpad((n %% 10000)::text, 4, '0'), '+44207946' || lpad(n::text, 5, '0'),
                   s.t, s.t, s.t + interval '60 seconds', 60, 60, 200, 'answered', '', 'registration',
                   '192.0.2.1', %(company)s, %(profile)s
              FROM generate_series(1, %(rows)s) AS n,
                   LATERAL (SELECT now() - n * interval '2 minutes' AS t) AS s
            """,
            {"company": company.pk, "profile": profile.pk, "rows": ROWS},
        )
        cursor.execute(
            "INSERT INTO cdrs_cdrrating (cdr_id, status, cost, currency, rate_prefix, bundle_seconds,"
            " bundle_minutes, note, rated_at) SELECT id, CASE WHEN id %% 500 = 0 THEN 'error' ELSE 'zero_rated' END,"
            " 0, 'GBP', '', 0, 0, '', now() FROM cdrs_cdr",
            [],
        )
        cursor.execute(
            "INSERT INTO audit_auditevent (public_id, created_at, company_id, actor_label, action, object_type,"
            " object_id, object_repr, changes, user_agent) SELECT gen_random_uuid(), now() - n * interval '1 minute',"
            " %(c)s, 'person' || (n %% 50) || '@example.com', 'action.' || (n %% 20), 'thing', n::text, 'thing',"
            " '{}', ''"
            " FROM generate_series(1, %(rows)s) AS n",
            {"c": company.pk, "rows": ROWS},
        )
        cursor.execute(
            "INSERT INTO billing_ledgertransaction (public_id, created_at, kind, company_id, currency, description,"
            " idempotency_key, actor_label) SELECT gen_random_uuid(), now() - n * interval '1 minute', 'adjustment',"
            " %(c)s, 'GBP', 'Adjustment', 'test:' || n, '' FROM generate_series(1, %(rows)s) AS n",
            {"c": company.pk, "rows": ROWS},
        )
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


def test_the_cdr_list_finds_by_exact_number_and_edge_id_and_lists_the_nodes(staff_client: Client) -> None:
    by_number = staff_client.get(f"/staff/cdrs/cdr/?q={quote('+4420794600042')}").content.decode()
    by_edge_id = staff_client.get("/staff/cdrs/cdr/?q=31337").content.decode()
    page = staff_client.get("/staff/cdrs/cdr/").content.decode()

    assert "+4420794600042" in by_number
    assert "+4420794631337" in by_edge_id
    assert "?node=node-0" in page
    assert "?node=node-1" in page


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
