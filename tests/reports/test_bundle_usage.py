"""The Bundle usage report (issue 14, item 3): each profile's US minute bundle minutes left at
the end of each day, the minutes used that day to US landlines and to US mobiles, the run-out
forecast (ran out, runs out about, will not run out), and what last month would have cost with
0, 1, … bundles, the cheapest marked, all equal to what this test works out from the CDRs, their
ratings, the bundle periods and the rate deck; the queries do not grow with the calls or the
profiles; another company's calls never show."""

from __future__ import annotations

import csv
import io
import math
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest
import time_machine
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from apps.billing.models import Price
from apps.billing.purchases.wires import purchase_confirm_wire
from apps.bundles.models import BundlePeriod
from apps.bundles.services import bundles_renew
from apps.cdrs.models import Cdr
from apps.companies.models import Company, Role
from apps.core.actor import Actor
from apps.rating.engine import rate_pending
from apps.rating.models import Rate
from apps.sip_profiles.models import SipProfile
from apps.sip_profiles.services import sip_profile_create
from tests.billing.factories import wire_purchase
from tests.factories import CompanyFactory, member
from tests.rating.factories import SMALL_DECK, Call, queue_calls, small_deck
from tests.reports.test_monthly_reports import api_get as report_get
from tests.reports.test_monthly_reports import destination_of, signed_in

pytestmark = pytest.mark.django_db

NOW = datetime(2027, 3, 20, 12, 0, tzinfo=UTC)
MARCH, FEBRUARY = "2027-03", "2027-02"
LANDLINE, MOBILE = "+12125550100", "+19175550123"
D = Decimal
# US prices at which a bundle can pay: landlines 0.010 (New York 0.009), mobiles 0.012.
US_DECK = [row for row in SMALL_DECK if row[2] != "US"] + [
    ("1", "North America", "US", "landline", "0.010000"),
    ("1212", "United States, New York", "US", "landline", "0.009000"),
    ("1917", "United States, New York mobile", "US", "mobile", "0.012000"),
]
_edge_ids = iter(range(1, 10_000_000))


def at(day: int, hour: int = 9, month: int = 3) -> datetime:
    return datetime(2027, month, day, hour, 0, tzinfo=UTC)


def calls(
    profile: SipProfile, *, month: int, days: range, minutes_a_day: int, callee: str, hour: int = 9
) -> list[Call]:
    """50-minute calls (and one shorter) adding up to `minutes_a_day` on each of `days`."""
    out = []
    for day in days:
        left, n = minutes_a_day, 0
        while left > 0:
            length = min(50, left)
            started = at(day, hour, month) + timedelta(minutes=n * 55 % 600)
            out.append(Call(next(_edge_ids), profile.pk, profile.company_id, "GBP", callee, started, length * 60))
            left, n = left - length, n + 1
    return out


def world(company: Company, owner: Any) -> dict[str, SipProfile]:
    """Heavy (2 bundles): 12,000 US minutes in February, 700 a day in March until its minutes
    ran out; Light (1 bundle): 1,000 in February, 190 a day in March; Steady US (1 bundle): 100 a
    day in March; Payg (no bundles): 4,000 in February, all at the rate."""
    actor = Actor(user=owner)
    with time_machine.travel(at(1, 0, 2), tick=False):
        purchase_confirm_wire(actor=actor, purchase=wire_purchase(company, owner, "900.00"), amount_received="900.00")
        made = {}
        for name, channels, bundles in (("Heavy", 3, 2), ("Light", 2, 1), ("Steady US", 2, 1), ("Payg", 2, 0)):
            made[name], _ = sip_profile_create(
                actor=actor,
                company=company,
                name=name,
                auth_method="registration",
                channels=channels,
                us_minute_bundles=bundles,
            )
    heavy, light, steady, payg = made.values()
    february = [
        *calls(heavy, month=2, days=range(1, 21), minutes_a_day=400, callee=LANDLINE),
        *calls(heavy, month=2, days=range(1, 21), minutes_a_day=200, callee=MOBILE, hour=18),
        *calls(light, month=2, days=range(1, 11), minutes_a_day=100, callee=MOBILE),
        *calls(payg, month=2, days=range(1, 21), minutes_a_day=200, callee=LANDLINE),
        # Not a US call: never bundle minutes, never in the what-if.
        Call(next(_edge_ids), payg.pk, company.pk, "GBP", "+442079460000", at(3, 9, 2), 600),
    ]
    queue_calls(february)
    with time_machine.travel(at(1, 0, 3) + timedelta(seconds=1), tick=False):
        rate_pending()
        bundles_renew()
    march = [
        *calls(heavy, month=3, days=range(1, 16), minutes_a_day=500, callee=LANDLINE),
        *calls(heavy, month=3, days=range(1, 16), minutes_a_day=200, callee=MOBILE, hour=18),
        *calls(light, month=3, days=range(1, 21), minutes_a_day=190, callee=LANDLINE),
        *calls(steady, month=3, days=range(1, 21), minutes_a_day=100, callee=MOBILE),
    ]
    queue_calls(march)
    rate_pending()
    return made


@pytest.fixture
def deck() -> None:
    small_deck(rows=US_DECK, effective_from=datetime(2026, 1, 1, tzinfo=UTC))


# --- The independent computation ---------------------------------------------------------


def us_calls(profile: SipProfile, first: date, after: date) -> list[tuple[Cdr, str]]:
    """The profile's answered outbound calls to US landlines and mobiles, with the class."""
    out = []
    for cdr in Cdr.objects.filter(sip_profile=profile).select_related("rating"):
        country, kind = destination_of(cdr.callee)
        if first <= cdr.started_at.date() < after and country == "US" and kind in ("landline", "mobile"):
            out.append((cdr, kind))
    return out


def expected_burn_down(profile: SipProfile) -> dict[str, tuple[int | None, int, int]]:
    """Per day of March up to today: (minutes left at its end, landline, mobile bundle minutes)."""
    period = BundlePeriod.objects.filter(sip_profile=profile, period_start__lte=NOW, period_end__gt=NOW).first()
    used: dict[tuple[date, str], int] = defaultdict(int)
    for cdr, kind in us_calls(profile, date(2027, 3, 1), date(2027, 4, 1)):
        used[(cdr.started_at.date(), kind)] += cdr.rating.bundle_minutes
    out = {}
    spent = 0
    for n in range(31):
        day = date(2027, 3, 1) + timedelta(days=n)
        spent += used[(day, "landline")] + used[(day, "mobile")]
        left = None if period is None or day > NOW.date() else max(period.minutes_included - spent, 0)
        out[day.isoformat()] = (left, used[(day, "landline")], used[(day, "mobile")])
    return out


def general_us_price(kind: str) -> Decimal:
    rows = [(len(r.prefix), r.price_per_minute) for r in Rate.objects.filter(country="US", destination_class=kind)]
    return min(rows)[1]


def expected_what_if(company: Company, profile: SipProfile) -> tuple[Decimal, list[Decimal]]:
    """February's US minutes of the profile and their cost with 0 … k bundles: the bundle
    minutes valued at what a minute of the class paid at the rate (the profile's, else the
    company's, else the deck's general US price)."""
    first, after = date(2027, 2, 1), date(2027, 3, 1)
    paid: dict[Any, list[Any]] = defaultdict(lambda: [0, D(0)])
    for other in SipProfile.objects.filter(company=company):
        for cdr, kind in us_calls(other, first, after):
            for key in ((other.pk, kind), kind):
                paid[key][0] += cdr.billable_seconds - cdr.rating.bundle_seconds
                paid[key][1] += cdr.rating.cost

    def rate(kind: str) -> Decimal:
        for key in ((profile.pk, kind), kind):
            seconds, cost = paid.get(key, (0, D(0)))
            if seconds:
                return cost * 60 / seconds
        return general_us_price(kind)

    minutes, value = D(0), D(0)
    for cdr, kind in us_calls(profile, first, after):
        minutes += cdr.rating.bundle_minutes + D(cdr.billable_seconds - cdr.rating.bundle_seconds) / 60
        value += cdr.rating.cost + cdr.rating.bundle_minutes * rate(kind)
    blended = value / minutes if minutes else D(0)
    price = Price.objects.get(kind="us_bundle_monthly", currency=company.currency).amount
    k = max(profile.us_minute_bundles, math.ceil(minutes / 5000)) + 1
    totals = []
    for n in range(k + 1):
        over = max(minutes - 5000 * n, D(0))
        totals.append(
            (price * n).quantize(D("0.0001"), ROUND_HALF_UP) + (over * blended).quantize(D("0.0001"), ROUND_HALF_UP)
        )
    return minutes, totals


def api_get(client: Client, **query: str) -> Any:
    return report_get(client, "bundle-usage", **query)


@time_machine.travel(NOW, tick=False)
def test_the_burn_down_and_the_run_out_forecast_equal_the_calls_bundle_minutes(company, owner, deck) -> None:
    made = world(company, owner)
    data = api_get(signed_in(member(company, Role.VIEWER)), month=MARCH)
    rows = {p["name"]: p for p in data["profiles"]}
    assert list(rows) == ["Heavy", "Light", "Payg", "Steady US"]
    for name, profile in made.items():
        want = expected_burn_down(profile)
        got = {d["day"]: (d["minutes_left"], d["landline"], d["mobile"]) for d in rows[name]["by_day"]}
        assert got == want, name
    # What the world was built to tell apart.
    assert sum(d["mobile"] for d in rows["Heavy"]["by_day"]) > 0
    assert sum(d["landline"] for d in rows["Heavy"]["by_day"]) > 0
    assert rows["Payg"]["by_day"][0]["minutes_left"] is None  # no bundles, no period
    assert rows["Heavy"]["by_day"][25]["minutes_left"] is None  # the 26th has not come yet

    # The forecast, worked out here from the period so far (the 1st to the 20th).
    for name in ("Light", "Steady US", "Heavy"):
        period = BundlePeriod.objects.get(sip_profile=made[name], period_start__lte=NOW, period_end__gt=NOW)
        spent = sum(m for _left, *pool in expected_burn_down(made[name]).values() for m in pool)
        row = rows[name]
        assert row["minutes_included"] == period.minutes_included == 5000 * made[name].us_minute_bundles
        assert row["minutes_used"] == min(spent, period.minutes_included)
        assert row["minutes_left"] == max(period.minutes_included - spent, 0)
    light = rows["Light"]  # 3,800 of 5,000 in 20 days: 190 a day, 6.3 days to go
    assert light["run_out"] == (NOW.date() + timedelta(days=math.ceil(1200 / (3800 / 20)))).isoformat() == "2027-03-27"
    assert (light["ran_out"], light["forecast"]) == (False, "Runs out about 27 Mar")
    steady = rows["Steady US"]  # 2,000 in 20 days: 30 more days, past the renewal on 1 April
    assert (steady["run_out"], steady["ran_out"], steady["forecast"]) == (None, False, "Will not run out")
    heavy = rows["Heavy"]  # 700 a day: 10,000 reached on the 15th
    ran_out_on = next(day for day, (left, *_pool) in expected_burn_down(made["Heavy"]).items() if left == 0)
    assert (heavy["run_out"], heavy["ran_out"]) == (ran_out_on, True)
    assert heavy["forecast"] == "Ran out on 15 Mar"
    assert rows["Payg"]["forecast"] == "No bundles"

    # One profile only, and the page.
    client = signed_in(owner)
    one = api_get(client, month=MARCH, profile=str(made["Light"].public_id))
    assert [p["name"] for p in one["profiles"]] == ["Light"]
    page = client.get("/reports/bundle-usage/", {"month": MARCH})
    assert page.status_code == 200
    text = page.content.decode()
    for phrase in ("Runs out about 27 Mar", "Will not run out", "Ran out on 15 Mar", 'id="report-chart-data"'):
        assert phrase in text
    by_day = client.get("/api/v1/reports/bundle-usage/", {"month": MARCH, "format": "csv", "by": "day"})
    table = list(csv.DictReader(io.StringIO(by_day.content.decode())))
    assert len(table) == 4 * 31
    light_days = {r["day"]: r for r in table if r["profile"] == "Light"}
    want = expected_burn_down(made["Light"])
    assert [int(light_days[f"2027-03-{n:02d}"]["minutes_left"]) for n in range(1, 21)] == [
        want[f"2027-03-{n:02d}"][0] for n in range(1, 21)
    ]


@time_machine.travel(NOW, tick=False)
def test_last_month_with_0_1_or_more_bundles_against_pay_as_you_go_the_cheapest_marked(company, owner, deck) -> None:
    made = world(company, owner)
    client = signed_in(owner)
    data = api_get(client, month=MARCH)
    price = Price.objects.get(kind="us_bundle_monthly", currency="GBP").amount
    assert D(data["bundle_price"]) == price
    rows = {p["name"]: p for p in data["profiles"]}
    for name, profile in made.items():
        minutes, totals = expected_what_if(company, profile)
        row = rows[name]
        assert D(row["last_month_minutes"]) == minutes.quantize(D("0.1")), name
        assert [w["bundles"] for w in row["what_if"]] == list(range(len(totals))), name
        assert [D(w["total"]) for w in row["what_if"]] == totals, name
        cheapest = min(range(len(totals)), key=lambda n: (totals[n], n))
        assert [w["bundles"] for w in row["what_if"] if w["cheapest"]] == [cheapest], name
        for w in row["what_if"]:
            assert D(w["bundle_cost"]) == price * w["bundles"]
            assert D(w["total"]) == D(w["bundle_cost"]) + D(w["over_cost"])
            assert w["current"] == (w["bundles"] == profile.us_minute_bundles)
            assert w["needs_more_channels"] == (w["bundles"] > profile.channels)
    # Heavy's 12,000 minutes: 2 bundles (what it holds) are cheapest; Payg's 4,000: one bundle
    # would have saved; Light's 1,000: none (its bundle cost more than its minutes); Steady US
    # made no calls in February.
    cheapest = {name: next(w["bundles"] for w in row["what_if"] if w["cheapest"]) for name, row in rows.items()}
    assert cheapest == {"Heavy": 2, "Light": 0, "Payg": 1, "Steady US": 0}
    assert D(rows["Heavy"]["last_month_minutes"]) == 12000
    assert D(rows["Payg"]["last_month_minutes"]) == 4000  # the UK call is not a US minute
    assert rows["Heavy"]["what_if"][-1]["needs_more_channels"] is True  # 4 bundles, 3 channels

    # The CSV and the page say the same.
    response = client.get("/api/v1/reports/bundle-usage/", {"month": MARCH, "format": "csv"})
    assert 'filename="report-bundles-profile-2027-03.csv"' in response["Content-Disposition"]
    table = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [(r["profile"], int(r["bundles"])) for r in table if r["cheapest"] == "True"] == [
        ("Heavy", 2),
        ("Light", 0),
        ("Payg", 1),
        ("Steady US", 0),
    ]
    assert {D(r["total_gbp"]) for r in table if r["profile"] == "Payg"} == set(
        expected_what_if(company, made["Payg"])[1]
    )
    page = client.get("/reports/bundle-usage/", {"month": MARCH}).content.decode()
    assert page.count('class="marked cheapest"') == 4
    assert "February 2027" in page

    # February's what-if is January's: nothing.
    february = api_get(client, month=FEBRUARY)
    assert all(D(p["last_month_minutes"]) == 0 for p in february["profiles"])
    pdf = client.get("/reports/bundle-usage/", {"month": MARCH, "format": "pdf"})
    assert pdf["Content-Type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF-")


def queries(client: Client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, {"month": MARCH})
    assert response.status_code == 200
    return len(captured)


@time_machine.travel(NOW, tick=False)
def test_the_queries_do_not_grow_with_the_calls_or_the_profiles(deck) -> None:
    small, large = CompanyFactory(currency="GBP"), CompanyFactory(currency="GBP")
    small_owner, large_owner = member(small, Role.OWNER), member(large, Role.OWNER)
    actor = Actor(user=small_owner)
    with time_machine.travel(at(1, 0), tick=False):
        purchase_confirm_wire(
            actor=actor, purchase=wire_purchase(small, small_owner, "100.00"), amount_received="100.00"
        )
        only, _ = sip_profile_create(actor=actor, company=small, name="Only", auth_method="registration")
    queue_calls(calls(only, month=3, days=range(2, 3), minutes_a_day=5, callee=LANDLINE))
    rate_pending()
    world(large, large_owner)
    for url in ("/api/v1/reports/bundle-usage/", "/reports/bundle-usage/"):
        counts = [queries(signed_in(user), url) for user in (small_owner, large_owner)]
        assert counts[0] == counts[1], (url, counts)
        # Session, user, membership… then the report's 5 (profiles, periods, figures, the
        # bundle price, the deck's US rates) and the page's profile filter.
        assert counts[0] <= 13, (url, counts)


@time_machine.travel(NOW, tick=False)
def test_another_companys_bundles_never_show_and_bad_input_names_the_field(company, owner, deck) -> None:
    theirs = CompanyFactory(currency="GBP")
    world(theirs, member(theirs, Role.OWNER))
    client = signed_in(owner)
    data = api_get(client, month=MARCH)
    assert data["profiles"] == []
    stranger = SipProfile.objects.filter(company=theirs).first()
    assert stranger is not None
    for query, field in (
        ({"profile": str(stranger.public_id)}, "profile"),
        ({"month": "2027-13"}, "month"),
        ({"by": "destination"}, "by"),
    ):
        response = client.get("/api/v1/reports/bundle-usage/", {"month": MARCH, **query})
        assert response.status_code == 400, query
        assert field in response.json()["errors"], response.json()
