"""`GET /api/v1/calls/` (issue 14, item 2): the Calls page's filters, keyset pages with no
duplicate and no gap, a deep page served by the index without counting, a constant number of
queries, and the CSV."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from apps.cdrs.models import Cdr
from apps.companies.models import Role
from apps.core.keyset import Cursor
from tests.cdrs.calls_data import DAY, LONDON_COST, make_calls
from tests.conftest import client_as
from tests.factories import api_key_for, member
from tests.helpers.queries import SIGNED_IN, expect_queries
from tests.rating.factories import Call, copy_calls, queue_calls
from tests.sip_profiles.factories import digest_profile

pytestmark = pytest.mark.django_db

URL = "/api/v1/calls/"


@pytest.fixture
def api(company: Any) -> APIClient:
    return client_as(member(company, Role.VIEWER))


def _ids(response: Any) -> list[str]:
    return [call["id"] for call in response.json()["results"]]


def test_each_call_says_how_it_was_paid_and_what_it_cost(api: APIClient, profile: Any, branch: Any) -> None:
    made = make_calls(profile, branch)

    response = api.get(URL)

    assert response.status_code == 200
    body = response.json()
    assert (body["next"], body["previous"]) == (None, None)
    calls = {call["id"]: call for call in body["results"]}
    assert len(calls) == 8
    assert calls[str(made.london.public_id)] == {
        "id": str(made.london.public_id),
        "profile": str(profile.public_id),
        "profile_name": profile.name,
        "direction": "outbound",
        "caller": "+442079460958",
        "callee": "+442079460000",
        "destination": "United Kingdom, London",
        "started_at": "2026-01-05T09:00:00Z",
        "answered_at": "2026-01-05T09:00:04Z",
        "duration_seconds": 125,
        "billable_seconds": 120,
        "disposition": "answered",
        "refusal_reason": "",
        "paid_by": "credit",
        "rate_per_minute": "0.008000",
        "bundle_minutes": 0,
        "cost": str(LONDON_COST),
        "currency": "GBP",
        "note": "",
    }
    uncovered = calls[str(made.uncovered.public_id)]
    assert (uncovered["paid_by"], uncovered["cost"], uncovered["destination"]) == ("not_rated", "0.0000", None)
    assert uncovered["note"] == "No GBP rate covers +882123456789"
    bundle = calls[str(made.bundle.public_id)]
    assert (bundle["paid_by"], bundle["bundle_minutes"], bundle["rate_per_minute"]) == ("bundle", 2, None)
    assert bundle["destination"] == "United States, New York"
    refused = calls[str(made.refused.public_id)]
    assert (refused["paid_by"], refused["refusal_reason"], refused["cost"]) == ("refused", "channel_limit", "0.0000")
    pending = calls[str(made.pending.public_id)]
    assert (pending["paid_by"], pending["cost"]) == ("pending", None)


def test_the_filters_are_the_pages_and_a_bad_one_is_a_400_naming_it(api: APIClient, profile: Any, branch: Any) -> None:
    made = make_calls(profile, branch)

    assert _ids(api.get(URL, {"profile": str(branch.public_id)})) == [str(made.branch_call.public_id)]
    assert _ids(api.get(URL, {"number": "882", "answered": "true"})) == [str(made.uncovered.public_id)]
    assert _ids(api.get(URL, {"date_to": "2026-01-05", "direction": "inbound"})) == [str(made.inbound.public_id)]
    for query, field in [
        ({"direction": "up"}, "direction"),
        ({"date_from": "yesterday"}, "date_from"),
        ({"date_from": "2026-02-01", "date_to": "2026-01-01"}, "date_to"),
        ({"number": "12"}, "number"),
        ({"answered": "perhaps"}, "answered"),
        ({"cursor": "bm9wZQ"}, "cursor"),
        ({"page_size": "0"}, "page_size"),
        ({"page_size": "201"}, "page_size"),
    ]:
        response = api.get(URL, query)
        assert response.status_code == 400, query
        assert list(response.json()["errors"]) == [field], query


def test_another_companys_calls_are_never_listed(company: Any, profile: Any, other_company: Any) -> None:
    theirs, _ = digest_profile(other_company, member(other_company), name="Theirs")
    ours = queue_calls([Call(1, profile.pk, company.pk, "GBP", "+442079460000", DAY, 60)])
    queue_calls([Call(2, theirs.pk, other_company.pk, "GBP", "+442079460000", DAY, 60)])
    _key, secret = api_key_for(company, Role.VIEWER)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")

    assert _ids(client.get(URL)) == [str(ours[0].public_id)]
    assert client.get(URL, {"profile": str(theirs.public_id)}).json()["errors"] == {"profile": ["No such SIP profile."]}


def test_pages_follow_each_other_with_no_duplicate_and_no_gap(api: APIClient, profile: Any) -> None:
    # 23 calls, many sharing a start second: the id orders them within it.
    made = queue_calls(
        [
            Call(n, profile.pk, profile.company_id, "GBP", "+442079460000", DAY + timedelta(seconds=n // 4), 10)
            for n in range(1, 24)
        ]
    )
    newest_first = [str(c.public_id) for c in sorted(made, key=lambda c: (c.started_at, c.pk), reverse=True)]

    pages, seen, url = [], [], URL + "?page_size=5"
    while url:
        body = api.get(url).json()
        pages.append(body)
        seen += [call["id"] for call in body["results"]]
        url = body["next"]
    assert seen == newest_first
    assert [len(p["results"]) for p in pages] == [5, 5, 5, 5, 3]
    assert pages[0]["previous"] is None
    # Back from the last page, "previous" after "previous" walks the same pages newest last.
    back, url = [], pages[-1]["previous"]
    while url:
        body = api.get(url).json()
        back.insert(0, [call["id"] for call in body["results"]])
        url = body["previous"]
    assert back == [[c["id"] for c in p["results"]] for p in pages[:-1]]


def test_the_query_count_does_not_grow_with_the_page(api: APIClient, profile: Any, branch: Any) -> None:
    make_calls(profile, branch)
    api.get(URL)  # warm the session

    reasons = (*SIGNED_IN, "the page of calls, joined with their rating and profile", "their destinations' rates")
    with expect_queries(*reasons):
        small = api.get(URL, {"page_size": "2"})
    with expect_queries(*reasons):
        large = api.get(URL, {"page_size": "200"})
    assert (len(small.json()["results"]), len(large.json()["results"])) == (2, 8)


def test_a_deep_page_starts_at_its_cursor_in_the_index_and_counts_nothing(
    api: APIClient, company: Any, profile: Any, other_company: Any
) -> None:
    theirs, _ = digest_profile(other_company, member(other_company), name="Theirs")
    start = DAY - timedelta(days=40)
    calls = [
        Call(n, profile.pk, company.pk, "GBP", "+442079460000", start + timedelta(seconds=n * 60), 30)
        for n in range(1, 40_001)
    ]
    calls += [
        Call(n, theirs.pk, other_company.pk, "GBP", "+442079460000", start + timedelta(seconds=n * 60), 30)
        for n in range(40_001, 50_001)
    ]
    copy_calls(calls)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE cdrs_cdr, cdrs_cdrrating, sip_profiles_sipprofile")
    first = api.get(URL, {"page_size": "200"}).json()
    assert len(api.get(first["next"]).json()["results"]) == 200  # the links work
    # The page after the 20,000th newest call, as its "next" link names it.
    deep_row = Cdr.objects.filter(company=company).order_by("-started_at", "-id")[19_999]
    cursor = Cursor(older=True, at=deep_row.started_at, id=deep_row.pk).encode()

    with CaptureQueriesContext(connection) as captured:
        response = api.get(URL, {"page_size": "200", "cursor": cursor})
    assert len(response.json()["results"]) == 200
    assert response.json()["results"][0]["started_at"] < first["results"][-1]["started_at"]
    assert not any("COUNT(" in q["sql"].upper() for q in captured.captured_queries)
    (sql,) = [q["sql"] for q in captured.captured_queries if '"cdrs_cdr"' in q["sql"]]
    with connection.cursor() as db:
        db.execute("EXPLAIN (FORMAT JSON) " + sql)
        (plan,) = db.fetchone()
    nodes = list(_nodes(plan[0]["Plan"] if isinstance(plan, list) else json.loads(plan)[0]["Plan"]))
    calls = [n for n in nodes if n.get("Relation Name") == "cdrs_cdr"]
    assert [(n["Node Type"], n.get("Scan Direction"), n.get("Index Name")) for n in calls] == [
        ("Index Scan", "Backward", "cdr_company_start_id_idx")
    ], nodes
    # The scan starts at the cursor (its index condition bounds started_at) rather than
    # reading and dropping the 20,000 newer calls, and stops after the page: nothing sorts.
    assert "started_at <=" in calls[0]["Index Cond"], calls[0]
    assert not [n for n in nodes if n["Node Type"] in ("Sort", "Incremental Sort", "Aggregate")], nodes


def _nodes(plan: dict[str, Any]) -> Any:
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


def test_the_csv_is_the_filtered_list_streamed_and_errors_stay_json(api: APIClient, profile: Any, branch: Any) -> None:
    made = make_calls(profile, branch)

    response = api.get(URL, {"format": "csv", "date_from": "2026-01-06"})
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [(r["id"], r["paid_by"], r["cost"]) for r in rows] == [
        (str(made.pending.public_id), "pending", ""),
        (str(made.branch_call.public_id), "credit", "0.0240"),
    ]
    assert rows[1]["destination"] == "Germany"

    by_accept = api.get(URL, {"date_from": "2026-01-06"}, HTTP_ACCEPT="text/csv")
    assert b"".join(by_accept.streaming_content).decode().splitlines()[0].startswith("id,started_at,")

    bad = api.get(URL, {"format": "csv", "direction": "up"})
    assert bad.status_code == 400
    assert bad["Content-Type"] == "application/json"
    assert list(bad.json()["errors"]) == ["direction"]
