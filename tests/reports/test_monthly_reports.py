"""The monthly reports (issue 14, items 3 and 8): every figure of Summary, Usage, Purchases and
Allocations, on the page, in the API and in its CSV, equals what this test sums itself from the
CDRs, their ratings and the ledger's entries; the queries do not grow with the calls or the
profiles; bad input is a 400 naming the field; another company's rows never show."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from apps.billing.ledger.allocations import credit_allocate, credit_take_back
from apps.billing.models import CreditPurchase, LedgerEntry, LedgerTransaction
from apps.billing.purchases.wires import purchase_confirm_wire
from apps.cdrs.models import Cdr, PendingCdr
from apps.companies.models import Company, Role
from apps.core.actor import Actor
from apps.rating.engine import rate_pending
from apps.rating.models import Rate
from apps.sip_profiles.models import SipProfile
from apps.sip_profiles.services import sip_profile_create
from tests.billing.factories import wire_purchase
from tests.factories import CompanyFactory, member
from tests.rating.factories import Call, cdr_for, small_deck

pytestmark = pytest.mark.django_db

NOW = datetime(2027, 3, 20, 12, 0, tzinfo=UTC)
MARCH, FEBRUARY = "2027-03", "2027-02"
CALLEES = ("+442079460000", "+447911123456", "+4915112345678", "+12125550100", "+4980012345", "+99912345")
D = Decimal


def at(day: int, hour: int = 10, month: int = 3) -> datetime:
    return datetime(2027, month, day, hour, 0, tzinfo=UTC)


def make_calls(profiles: list[SipProfile], count: int, *, first_edge_id: int, month: int = 3) -> None:
    """`count` calls of the profiles in the month up to NOW: answered and not, inbound, refused
    at the channel limit, to every destination of the deck and to a number no rate covers."""
    cdrs = []
    for n in range(count):
        profile = profiles[n % len(profiles)]
        started = at(1 + n % 19, 8 + n % 12, month) + timedelta(minutes=n % 50)
        call = Call(
            first_edge_id + n,
            profile.pk,
            profile.company_id,
            "GBP",
            CALLEES[n % len(CALLEES)],
            started,
            (n * 37) % 700,
            direction="inbound" if n % 11 == 0 else "outbound",
            answered=n % 7 != 0,
        )
        cdr = cdr_for(call)
        if n % 13 == 5:
            cdr.answered_at, cdr.billable_seconds, cdr.disposition = None, 0, "refused"
            cdr.refusal_reason, cdr.sip_code = "channel_limit", 486
        cdrs.append(cdr)
    made = Cdr.objects.bulk_create(cdrs)
    PendingCdr.objects.bulk_create([PendingCdr(cdr_id=c.pk) for c in made])


def world(company: Company, owner: Any, *, profiles: int = 2, calls: int = 60) -> list[SipProfile]:
    """A month of a company's money and calls, through the services: a wire credited, profiles
    (their channels charged), credit allocated and taken back, calls rated by the engine."""
    actor = Actor(user=owner)
    with time_machine.travel(at(1, 9), tick=False):
        purchase_confirm_wire(actor=actor, purchase=wire_purchase(company, owner, "400.00"), amount_received="400.00")
        wire_purchase(company, owner, "25.00")  # started, never paid
    made = []
    for n in range(profiles):
        with time_machine.travel(at(2 + n % 5, 9), tick=False):
            profile, _ = sip_profile_create(
                actor=actor, company=company, name=f"PBX {n}", auth_method="registration", channels=2 + n % 3
            )
            credit_allocate(actor=actor, profile=profile, amount="20.00", key=f"alloc-{company.pk}-{n}")
        made.append(profile)
    with time_machine.travel(at(10, 9), tick=False):
        credit_take_back(actor=actor, profile=made[-1], amount="5.00", key=f"back-{company.pk}")
    make_calls(made, calls, first_edge_id=company.pk * 100_000)
    # Calls of February: not in March's figures.
    make_calls(made[:1], 9, first_edge_id=company.pk * 100_000 + 50_000, month=2)
    rate_pending()
    return made


@pytest.fixture
def company(db: Any) -> Company:
    return CompanyFactory(currency="GBP")


@pytest.fixture
def deck() -> None:
    small_deck(effective_from=datetime(2026, 1, 1, tzinfo=UTC))


# --- The independent computation ---------------------------------------------------------


def destination_of(callee: str) -> tuple[str, str]:
    """The longest prefix among every rate, by a plain scan."""
    digits = callee.removeprefix("+")
    best: tuple[str, str, str] | None = None
    for prefix, country, kind in Rate.objects.values_list("prefix", "country", "destination_class"):
        if digits.startswith(prefix) and (best is None or len(prefix) > len(best[0])):
            best = (prefix, country, kind)
    return (best[1], best[2]) if best else ("", "")


def expected_usage(company: Company, first: date, after: date) -> dict[str, dict[Any, dict[str, Any]]]:
    out: dict[str, dict[Any, dict[str, Any]]] = {"profile": {}, "destination": {}, "day": {}}
    for cdr in Cdr.objects.filter(company=company).select_related("rating"):
        if not first <= cdr.started_at.date() < after:
            continue
        kind = destination_of(cdr.callee) if cdr.direction == "outbound" else ("", "")
        for group, key in (
            ("profile", cdr.sip_profile_id),
            ("destination", (cdr.direction, *kind)),
            ("day", cdr.started_at.date().isoformat()),
        ):
            row = out[group].setdefault(
                key,
                defaultdict(int, cost=D(0), billable=0),  # type: ignore[call-overload]
            )
            row["calls"] += 1
            row["answered"] += cdr.answered_at is not None
            row["billable"] += cdr.billable_seconds
            row["bundle_minutes"] += cdr.rating.bundle_minutes
            row["cost"] += cdr.rating.cost
            row["refused"] += cdr.disposition == "refused"
            row["refused_at_channel_limit"] += cdr.refusal_reason == "channel_limit"
            row["unrated"] += cdr.rating.status == "error"
    return out


def expected_ledger(company: Company, first: date, after: date) -> dict[str, Decimal]:
    """The month's money from the ledger's entries, classified here one entry at a time."""
    sums: dict[str, Decimal] = defaultdict(Decimal)
    entries = LedgerEntry.objects.filter(transaction__company=company).select_related("transaction", "account")
    for entry in entries:
        if not first <= entry.transaction.created_at.date() < after:
            continue
        kind, account = entry.transaction.kind, entry.account.kind
        if kind == "purchase" and account == "company_balance":
            sums["purchases"] += entry.amount
        if kind == "allocation" and account == "profile_balance":
            sums["allocated"] += entry.amount
            sums[f"allocated:{entry.account.sip_profile_id}"] += entry.amount
        if kind == "take_back" and account == "profile_balance":
            sums["taken_back"] -= entry.amount
            sums[f"taken_back:{entry.account.sip_profile_id}"] -= entry.amount
        if kind == "charge" and account.startswith("revenue_"):
            name = {"revenue_channels": "channels", "revenue_bundles": "bundles", "revenue_numbers": "numbers"}
            sums[name[account]] += entry.amount
            sums[f"{name[account]}:{entry.transaction.created_at.date().isoformat()}"] += entry.amount
    return sums


def api_get(client: Client, report: str, **query: str) -> Any:
    response = client.get(f"/api/v1/reports/{report}/", query)
    assert response.status_code == 200, response.content
    return response.json()


def signed_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


# --- The figures ---------------------------------------------------------------------------


@time_machine.travel(NOW, tick=False)
def test_usage_per_profile_destination_and_day_equals_the_calls_and_their_ratings(company, owner, deck) -> None:
    profiles = world(company, owner)
    client = signed_in(member(company, Role.VIEWER))
    data = api_get(client, "usage", month=MARCH)
    expected = expected_usage(company, date(2027, 3, 1), date(2027, 4, 1))

    def same(row: dict[str, Any], want: dict[str, Any]) -> None:
        assert row["calls"] == want["calls"]
        assert row["answered"] == want["answered"]
        assert row["billable_seconds"] == want["billable"]
        assert D(row["minutes"]) == (D(want["billable"]) / 60).quantize(D("0.1"))
        assert row["bundle_minutes"] == want["bundle_minutes"]
        assert D(row["cost"]) == want["cost"]
        assert row["refused"] == want["refused"]
        assert row["refused_at_channel_limit"] == want["refused_at_channel_limit"]
        assert row["unrated"] == want["unrated"]

    by_public = {str(p.public_id): p.pk for p in profiles}
    assert len(data["by_profile"]) == len(expected["profile"]) == 2
    for row in data["by_profile"]:
        same(row, expected["profile"][by_public[row["profile"]]])
    assert {(r["direction"], r["country"], r["destination_class"]) for r in data["by_destination"]} == set(
        expected["destination"]
    )
    for row in data["by_destination"]:
        same(row, expected["destination"][(row["direction"], row["country"], row["destination_class"])])
    assert len(data["by_day"]) == 31
    for row in data["by_day"]:
        want = expected["day"].get(row["day"])
        if want is None:
            assert row["calls"] == 0
        else:
            same(row, want)
    # The world has what the figures must tell apart.
    assert data["total"]["unrated"] > 0
    assert data["total"]["refused_at_channel_limit"] > 0
    assert ("outbound", "", "") in expected["destination"]  # the number no rate covers
    assert data["total"]["calls"] == 60

    # One profile only.
    one = api_get(client, "usage", month=MARCH, profile=str(profiles[0].public_id))
    assert [r["profile"] for r in one["by_profile"]] == [str(profiles[0].public_id)]
    assert one["total"]["calls"] == expected["profile"][profiles[0].pk]["calls"]

    # February holds only February's calls.
    february = api_get(client, "usage", month=FEBRUARY)
    assert february["total"]["calls"] == 9

    # The CSV is the same table.
    response = client.get("/api/v1/reports/usage/", {"month": MARCH, "format": "csv", "by": "destination"})
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert len(rows) == len(data["by_destination"])
    for row in rows:
        want = expected["destination"][(row["direction"], row["country"], row["destination_class"])]
        assert int(row["calls"]) == want["calls"]
        assert D(row["cost"]) == want["cost"]

    # And the page shows the totals and draws the chart from json_script.
    page = client.get("/reports/usage/", {"month": MARCH})
    assert page.status_code == 200
    text = page.content.decode()
    assert f'id="usage-calls">{data["total"]["calls"]}<' in text
    assert 'id="report-chart-data"' in text
    assert "<script>" not in text.replace('<script id="report-chart-data" type="application/json">', "")


@time_machine.travel(NOW, tick=False)
def test_the_summary_is_the_ledgers_money_and_the_calls_cost(company, owner, deck) -> None:
    world(company, owner)
    client = signed_in(member(company, Role.BILLING))
    data = api_get(client, "summary", month=MARCH)
    ledger = expected_ledger(company, date(2027, 3, 1), date(2027, 4, 1))
    calls = expected_usage(company, date(2027, 3, 1), date(2027, 4, 1))["day"]

    assert D(data["purchases"]) == ledger["purchases"] == D("400")
    assert data["purchase_count"] == 1
    assert D(data["allocated"]) == ledger["allocated"] == D("40")
    assert D(data["taken_back"]) == ledger["taken_back"] == D("5")
    assert D(data["channels"]) == ledger["channels"] > 0
    assert D(data["bundles"]) == ledger["bundles"]
    assert D(data["numbers"]) == ledger["numbers"]
    total_calls = sum((row["cost"] for row in calls.values()), D(0))
    assert D(data["calls"]) == total_calls > 0
    assert D(data["spent"]) == total_calls + ledger["channels"] + ledger["bundles"] + ledger["numbers"]
    assert len(data["days"]) == 31
    for day in data["days"]:
        want_calls = calls[day["day"]]["cost"] if day["day"] in calls else D(0)
        assert D(day["calls"]) == want_calls
        assert D(day["channels"]) == ledger.get(f"channels:{day['day']}", D(0))
        assert D(day["total"]) == D(day["calls"]) + D(day["channels"]) + D(day["bundles"]) + D(day["numbers"])

    # February: nothing was bought or allocated then; its calls are there.
    february = api_get(client, "summary", month=FEBRUARY)
    assert D(february["purchases"]) == 0
    assert D(february["calls"]) == sum(
        (r["cost"] for r in expected_usage(company, date(2027, 2, 1), date(2027, 3, 1))["day"].values()), D(0)
    )

    response = client.get("/reports/", {"month": MARCH, "format": "csv"})
    assert response.status_code == 200
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == ["day", "item", "amount_gbp"]
    totals = {r[1]: D(r[2]) for r in rows[1:] if r[0] == "total"}
    assert totals["purchases"] == D("400")
    assert totals["spent"] == D(data["spent"])


@time_machine.travel(NOW, tick=False)
def test_purchases_and_allocations_per_profile(company, owner, deck) -> None:
    profiles = world(company, owner)
    client = signed_in(owner)
    purchases = api_get(client, "purchases", month=MARCH)
    mine = CreditPurchase.objects.filter(company=company).order_by("created_at", "id")
    assert [p["id"] for p in purchases["purchases"]] == [str(p.public_id) for p in mine]
    assert D(purchases["credited"]) == D("400")
    assert [p["status"] for p in purchases["purchases"]] == ["succeeded", "pending"]

    allocations = api_get(client, "allocations", month=MARCH)
    ledger = expected_ledger(company, date(2027, 3, 1), date(2027, 4, 1))
    usage = expected_usage(company, date(2027, 3, 1), date(2027, 4, 1))["profile"]
    assert [p["name"] for p in allocations["profiles"]] == ["PBX 0", "PBX 1"]
    for row, profile in zip(allocations["profiles"], profiles, strict=True):
        assert D(row["allocated"]) == ledger[f"allocated:{profile.pk}"]
        assert D(row["taken_back"]) == ledger.get(f"taken_back:{profile.pk}", D(0))
        assert D(row["net"]) == D(row["allocated"]) - D(row["taken_back"])
        assert D(row["calls_cost"]) == usage[profile.pk]["cost"]
        assert row["channels"] == profile.channels
    assert allocations["channels"] == sum(p.channels for p in profiles)

    page = client.get("/reports/allocations/", {"month": MARCH, "format": "csv"})
    rows = list(csv.DictReader(io.StringIO(page.content.decode())))
    assert [D(r["allocated"]) for r in rows] == [D("20"), D("20")]
    for report in ("", "usage/", "purchases/", "allocations/"):
        assert client.get(f"/reports/{report}", {"month": MARCH}).status_code == 200


# --- Queries, input, tenancy -----------------------------------------------------------------


def queries(client: Client, url: str, query: dict[str, str]) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, query)
    assert response.status_code == 200
    return len(captured)


@time_machine.travel(NOW, tick=False)
def test_every_report_takes_the_same_queries_with_ten_times_the_calls_and_profiles(deck) -> None:
    small, large = CompanyFactory(currency="GBP"), CompanyFactory(currency="GBP")
    small_owner, large_owner = member(small, Role.OWNER), member(large, Role.OWNER)
    first = {small: world(small, small_owner, profiles=1, calls=12)[0]}
    first[large] = world(large, large_owner, profiles=6, calls=240)[0]
    urls: list[tuple[str, dict[str, str]]] = []
    for report in ("summary", "usage", "purchases", "allocations"):
        urls += [(f"/api/v1/reports/{report}/", {}), (f"/api/v1/reports/{report}/", {"format": "csv"})]
    urls += [("/api/v1/reports/usage/", {"format": "csv", "by": by}) for by in ("destination", "day")]
    urls += [(f"/reports/{r}", {}) for r in ("", "usage/", "purchases/", "allocations/")]
    urls += [(f"/reports/{r}", {"format": "csv"}) for r in ("", "usage/", "purchases/", "allocations/")]
    # One profile's usage and allocations.
    urls += [
        (url, {"profile": "first"}) for url in ("/api/v1/reports/usage/", "/reports/usage/", "/reports/allocations/")
    ]
    for url, extra in urls:
        counts = []
        for company, user in ((small, small_owner), (large, large_owner)):
            query = {"month": MARCH, **extra}
            if "profile" in query:
                query["profile"] = str(first[company].public_id)
            counts.append(queries(signed_in(user), url, query))
        assert counts[0] == counts[1], (url, extra)
        # Session, user, membership… then the report's own (summary 2, usage 4, purchases 1,
        # allocations 3, the profile filter's list on the pages that have one).
        assert counts[0] <= 12, (url, counts)


@time_machine.travel(NOW, tick=False)
def test_bad_input_is_a_400_naming_the_field_and_the_page_says_why(company, owner) -> None:
    client = signed_in(owner)
    other = CompanyFactory()
    stranger, _ = sip_profile_create(
        actor=Actor(user=member(other, Role.OWNER)), company=other, name="Not yours", auth_method="registration"
    )
    for query, field in (
        ({"month": "2027-13"}, "month"),
        ({"month": "March"}, "month"),
        ({"month": "2027-04"}, "month"),  # not started yet
        ({"profile": "not-a-uuid"}, "profile"),
        ({"profile": str(stranger.public_id)}, "profile"),  # another company's: never shown
        ({"by": "hour"}, "by"),
    ):
        response = client.get("/api/v1/reports/usage/", query)
        assert response.status_code == 400, query
        assert field in response.json()["errors"], response.json()
        csv_answer = client.get("/api/v1/reports/usage/", {**query, "format": "csv"})
        assert csv_answer.status_code == 400
        assert csv_answer["Content-Type"].startswith("application/json")
    page = client.get("/reports/usage/", {"month": "2027-13"})
    assert page.status_code == 200
    assert "Give the month as YYYY-MM" in page.content.decode()


@time_machine.travel(NOW, tick=False)
def test_a_company_sees_only_its_own_calls_and_money(deck) -> None:
    mine, theirs = CompanyFactory(currency="GBP"), CompanyFactory(currency="GBP")
    me, them = member(mine, Role.OWNER), member(theirs, Role.OWNER)
    world(theirs, them, profiles=2, calls=30)
    client = signed_in(me)
    usage = api_get(client, "usage", month=MARCH)
    assert usage["total"]["calls"] == 0
    assert usage["by_profile"] == []
    summary = api_get(client, "summary", month=MARCH)
    assert D(summary["purchases"]) == D(summary["calls"]) == D(summary["channels"]) == 0
    assert api_get(client, "purchases", month=MARCH)["purchases"] == []
    assert api_get(client, "allocations", month=MARCH)["profiles"] == []
    assert LedgerTransaction.objects.filter(company=theirs).exists()
