"""The Channel peaks report (issue 14, item 3): each day's most calls at once per profile, as
this test finds it by checking every call's start against every other call (a call over
midnight counting on both days, a call that ends as another starts not overlapping it), against
the channels the profile had that day (its channel changes), the calls refused at the channel
limit, and the recommendation both ways with what it changes on the bill; the queries do not
grow with the calls or the profiles; another company's calls never show."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from itertools import count
from typing import Any

import pytest
import time_machine
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from pypdf import PdfReader

from apps.billing.models import Price
from apps.billing.purchases.wires import purchase_confirm_wire
from apps.cdrs import peaks
from apps.cdrs.models import Cdr, ChannelPeakDay, PendingCdr
from apps.companies.models import Company, Role
from apps.core.actor import Actor
from apps.rating.engine import rate_pending
from apps.sip_profiles.models import SipProfile
from apps.sip_profiles.services import sip_profile_create, sip_profile_update
from tests.billing.factories import wire_purchase
from tests.factories import CompanyFactory, member
from tests.reports.test_monthly_reports import api_get as report_get
from tests.reports.test_monthly_reports import signed_in

pytestmark = pytest.mark.django_db

NOW = datetime(2027, 3, 20, 12, 0, tzinfo=UTC)
MARCH = "2027-03"
_edge_ids = count(1)


def at(day: int, hour: int = 10, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2027, 3, day, hour, minute, second, tzinfo=UTC)


def call(profile: SipProfile, start: datetime, minutes: float = 0, *, refused: bool = False) -> Cdr:
    end = start + timedelta(minutes=minutes)
    seconds = int((end - start).total_seconds())
    return Cdr(
        node="test-node",
        edge_id=next(_edge_ids),
        call_id=f"peak-{start.timestamp()}-{seconds}@pbx.example",
        sip_profile_id=profile.pk,
        company_id=profile.company_id,
        direction="outbound",
        caller="+442079460958",
        callee="+442079460000",
        started_at=start,
        answered_at=None if refused else start,
        ended_at=end,
        duration_seconds=seconds,
        billable_seconds=0 if refused else seconds,
        sip_code=486 if refused else 200,
        disposition="refused" if refused else "answered",
        refusal_reason="channel_limit" if refused else "",
        auth_method="registration",
        source_address="198.51.100.7",
    )


def rated(calls: list[Cdr], *, batch_size: int | None = None) -> None:
    """Import the calls and rate them: the report reads what rating keeps."""
    made = Cdr.objects.bulk_create(calls)
    PendingCdr.objects.bulk_create([PendingCdr(cdr_id=c.pk) for c in made])
    rate_pending(batch_size=batch_size)


def funded(company: Company, owner: Any) -> Actor:
    actor = Actor(user=owner)
    with time_machine.travel(at(1, 0), tick=False):
        purchase_confirm_wire(actor=actor, purchase=wire_purchase(company, owner, "900.00"), amount_received="900.00")
    return actor


def profile_at(actor: Actor, company: Company, name: str, channels: int, when: datetime) -> SipProfile:
    with time_machine.travel(when, tick=False):
        profile, _ = sip_profile_create(
            actor=actor, company=company, name=name, auth_method="registration", channels=channels
        )
    return profile


def world(company: Company, owner: Any, *, batch_size: int | None = None) -> dict[str, Any]:
    """Busy: 2 channels from the 2nd, 3 from the 10th, at its cap often, calls refused (three in
    one minute on the 4th); Quiet: 8 channels, never more than 3 calls at once; Steady: 2
    channels, at its cap once. Each call's times are the test's own."""
    actor = funded(company, owner)
    busy = profile_at(actor, company, "Busy", 2, at(2, 9))
    quiet = profile_at(actor, company, "Quiet", 8, at(1, 9))
    steady = profile_at(actor, company, "Steady", 2, at(1, 9))
    with time_machine.travel(at(10, 9), tick=False):
        sip_profile_update(actor=actor, profile=busy, channels=3)
    calls = [
        # The 3rd: two at once; the third starts as the first ends (not three at once).
        call(busy, at(3, 10, 0), 30),
        call(busy, at(3, 10, 15), 30),
        call(busy, at(3, 10, 30), 20),
        # The 4th: two at once, three refused within one minute, one more later.
        call(busy, at(4, 11, 0), 10),
        call(busy, at(4, 11, 2), 10),
        call(busy, at(4, 11, 5, 5), refused=True),
        call(busy, at(4, 11, 5, 30), refused=True),
        call(busy, at(4, 11, 5, 59), refused=True),
        call(busy, at(4, 15, 0), refused=True),
        # Over midnight, the 5th to the 6th: one on the 5th, two at once on the 6th.
        call(busy, at(5, 23, 30), 70),
        call(busy, at(6, 0, 10), 10),
        # The 12th, with 3 channels: three at once.
        call(busy, at(12, 9, 0), 30),
        call(busy, at(12, 9, 10), 30),
        call(busy, at(12, 9, 20), 30),
        # Unanswered calls hold no channel in the report.
        *[call(busy, at(12, 9, 25), 0) for _ in range(3)],
        # Quiet: three at once on the 7th, fewer on other days.
        call(quiet, at(7, 14, 0), 45),
        call(quiet, at(7, 14, 5), 45),
        call(quiet, at(7, 14, 10), 45),
        call(quiet, at(8, 14, 0), 5),
        # Steady: two at once on the 9th only.
        call(steady, at(9, 8, 0), 20),
        call(steady, at(9, 8, 10), 20),
        call(steady, at(15, 8, 0), 20),
        # February: not March's.
        call(busy, datetime(2027, 2, 27, 10, tzinfo=UTC), 10),
    ]
    rated(calls, batch_size=batch_size)
    return {"busy": busy, "quiet": quiet, "steady": steady}


# --- The independent computation ---------------------------------------------------------


def expected_peak(profile: SipProfile, day: date) -> int:
    """The most answered calls in progress at once on `day`: at each moment a call starts
    (or the day starts), count the calls in progress, [start, end)."""
    lo = datetime(day.year, day.month, day.day, tzinfo=UTC)
    hi = lo + timedelta(days=1)
    spans = [
        (max(c.started_at, lo), min(c.ended_at, hi))
        for c in Cdr.objects.filter(sip_profile=profile, disposition="answered")
        if min(c.ended_at, hi) > max(c.started_at, lo)
    ]
    return max((sum(1 for s, e in spans if s <= t < e) for t, _ in spans), default=0)


def expected_refused(profile: SipProfile, day: date) -> tuple[int, int]:
    """Calls refused at the channel limit that day, and the most in one minute."""
    refused = [
        c.started_at
        for c in Cdr.objects.filter(sip_profile=profile, refusal_reason="channel_limit")
        if c.started_at.date() == day
    ]
    per_minute: dict[datetime, int] = {}
    for moment in refused:
        key = moment.replace(second=0, microsecond=0)
        per_minute[key] = per_minute.get(key, 0) + 1
    return len(refused), max(per_minute.values(), default=0)


def expected_channels(profile: SipProfile, day: date) -> int:
    """The most channels the profile had during `day`, from its channel changes."""
    lo = datetime(day.year, day.month, day.day, tzinfo=UTC)
    hi = lo + timedelta(days=1)
    best = 0
    for change in profile.channel_changes.order_by("changed_at"):
        if change.changed_at < hi:
            best = change.after if change.changed_at <= lo else max(best, change.after)
    return best


def api_get(client: Client, **query: str) -> Any:
    return report_get(client, "channel-peaks", **query)


@time_machine.travel(NOW, tick=False)
def test_each_days_peak_against_the_channels_and_the_calls_refused_at_the_limit(company, owner) -> None:
    made = world(company, owner)
    data = api_get(signed_in(member(company, Role.VIEWER)), month=MARCH)
    assert [p["name"] for p in data["profiles"]] == ["Busy", "Quiet", "Steady"]
    rows = {p["name"]: p for p in data["profiles"]}
    days = [date(2027, 3, 1) + timedelta(days=n) for n in range(31)]
    for profile in made.values():
        name, row = profile.name, rows[profile.name]
        assert [d["day"] for d in row["by_day"]] == [d.isoformat() for d in days]
        for got, day in zip(row["by_day"], days, strict=True):
            refused, _busiest = expected_refused(profile, day)
            assert got["peak"] == expected_peak(profile, day), (name, day)
            assert got["channels"] == expected_channels(profile, day), (name, day)
            assert got["refused_at_channel_limit"] == refused, (name, day)
            assert got["at_cap"] == (got["channels"] > 0 and (got["peak"] >= got["channels"] or refused > 0))
        judged = [d for d in row["by_day"] if d["channels"] > 0 and d["day"] <= NOW.date().isoformat()]
        assert row["days"] == len(judged)
        assert row["peak"] == max(d["peak"] for d in judged)
        assert row["days_at_cap"] == sum(d["at_cap"] for d in judged)
        assert row["refused_at_channel_limit"] == sum(d["refused_at_channel_limit"] for d in judged)
        assert row["channels"] == SipProfile.objects.get(pk=profile.pk).channels

    busy = {d["day"]: d for d in rows["Busy"]["by_day"]}
    # What the world was built to tell apart.
    assert busy["2027-03-01"]["channels"] == 0  # not created yet
    assert busy["2027-03-03"]["peak"] == 2  # the call starting as another ends does not overlap it
    assert (busy["2027-03-05"]["peak"], busy["2027-03-06"]["peak"]) == (1, 2)  # over midnight
    assert busy["2027-03-10"]["channels"] == 3
    assert busy["2027-03-12"]["peak"] == 3  # unanswered calls hold no channel here
    february = api_get(signed_in(owner), month="2027-02")
    assert sum(d["peak"] for p in february["profiles"] for d in p["by_day"]) == 1


@time_machine.travel(NOW, tick=False)
def test_the_recommendation_adds_drops_or_keeps_with_what_it_changes_on_the_bill(company, owner) -> None:
    made = world(company, owner)
    price = Price.objects.get(kind="channel_monthly", currency=company.currency).amount
    data = api_get(signed_in(owner), month=MARCH)
    rows = {p["name"]: p for p in data["profiles"]}
    assert Decimal(data["channel_price"]) == price

    # Busy: demand on the 4th was its 2 calls plus 3 refused in one minute, 5 against 3 now.
    busy = rows["Busy"]
    refused_4th, busiest_4th = expected_refused(made["busy"], date(2027, 3, 4))
    demand = expected_peak(made["busy"], date(2027, 3, 4)) + busiest_4th
    assert (refused_4th, busiest_4th, demand) == (4, 3, 5)
    advice = busy["recommendation"]
    assert advice["action"] == "add"
    assert advice["change"] == demand - 3 == 2
    assert advice["channels"] == 5
    assert advice["text"] == (
        f"Add 2 channels: calls peaked at the cap on {busy['days_at_cap']} of {busy['days']} days, "
        f"{busy['refused_at_channel_limit']} calls refused at the limit."
    )
    assert (busy["days_at_cap"], busy["days"]) == (4, 19)  # the 3rd, 4th, 6th and 12th; from the 2nd
    assert Decimal(advice["monthly_change"]) == price * 2

    # Quiet: never above 3 with 8 channels.
    advice = rows["Quiet"]["recommendation"]
    assert (advice["action"], advice["change"], advice["channels"]) == ("drop", -5, 3)
    assert advice["text"] == "Drop 5 channels: never above 3 in 20 days."
    assert Decimal(advice["monthly_change"]) == -price * 5

    # Steady: at its cap once, never refused: keep.
    advice = rows["Steady"]["recommendation"]
    assert (advice["action"], advice["change"]) == ("keep", 0)
    assert advice["text"] == "Keep 2 channels: calls peaked at 2, at the cap on 1 of 20 days."
    assert Decimal(advice["monthly_change"]) == 0

    # The page says the same, and its CSVs are the same tables.
    client = signed_in(owner)
    page = client.get("/reports/channel-peaks/", {"month": MARCH})
    assert page.status_code == 200
    text = page.content.decode()
    for row in data["profiles"]:
        assert row["recommendation"]["text"] in text
    assert 'id="report-chart-data"' in text
    assert f"+{price * 2:.2f} {company.currency}" in text
    response = client.get("/api/v1/reports/channel-peaks/", {"month": MARCH, "format": "csv"})
    assert response["Content-Type"].startswith("text/csv")
    assert 'filename="report-peaks-profile-2027-03.csv"' in response["Content-Disposition"]
    table = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [(r["profile"], r["action"], int(r["change"])) for r in table] == [
        ("Busy", "add", 2),
        ("Quiet", "drop", -5),
        ("Steady", "keep", 0),
    ]
    assert Decimal(table[1][f"monthly_change_{company.currency.lower()}"]) == -price * 5
    by_day = list(
        csv.DictReader(
            io.StringIO(
                client.get("/reports/channel-peaks/", {"month": MARCH, "format": "csv", "by": "day"}).content.decode()
            )
        )
    )
    assert len(by_day) == 3 * 31
    busy_days = {r["day"]: r for r in by_day if r["profile"] == "Busy"}
    assert int(busy_days["2027-03-06"]["peak"]) == expected_peak(made["busy"], date(2027, 3, 6))
    assert int(busy_days["2027-03-04"]["refused_at_channel_limit"]) == 4

    # And its PDF, read back.
    pdf = client.get("/reports/channel-peaks/", {"month": MARCH, "format": "pdf"})
    assert pdf["Content-Type"] == "application/pdf"
    printed = "\n".join(
        " ".join(page.extract_text(extraction_mode="layout").split())
        for page in PdfReader(io.BytesIO(pdf.content)).pages
    )
    assert "Channel peaks" in printed
    assert "March 2027" in printed
    assert f"Busy 3 {busy['peak']} 4 19 4 add 2 {price * 2:.2f}" in printed

    # One profile only.
    one = api_get(client, month=MARCH, profile=str(made["quiet"].public_id))
    assert [p["name"] for p in one["profiles"]] == ["Quiet"]
    assert one["profiles"][0]["recommendation"] == rows["Quiet"]["recommendation"]


def queries(client: Client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, {"month": MARCH})
    assert response.status_code == 200
    return len(captured)


@time_machine.travel(NOW, tick=False)
def test_the_queries_do_not_grow_with_the_calls_or_the_profiles() -> None:
    small, large = CompanyFactory(currency="GBP"), CompanyFactory(currency="GBP")
    small_owner, large_owner = member(small, Role.OWNER), member(large, Role.OWNER)
    one = profile_at(funded(small, small_owner), small, "Only", 2, at(1, 9))
    rated([call(one, at(3), 5)])
    world(large, large_owner)
    actor = Actor(user=large_owner)
    more = [profile_at(actor, large, f"More {n}", 4, at(2 + n, 9)) for n in range(4)]
    rated(
        [call(p, at(1 + n % 19, 8 + n % 10, n % 50), 3 + n % 40) for p in more for n in range(60)]
        + [call(p, at(1 + n % 19, 9, n % 50), refused=True) for p in more for n in range(10)]
    )
    for url in ("/api/v1/reports/channel-peaks/", "/reports/channel-peaks/"):
        counts = [queries(signed_in(user), url) for user in (small_owner, large_owner)]
        assert counts[0] == counts[1], (url, counts)
        # Session, user, membership… then the report's 5 (profiles, channel changes, the
        # price, the peaks, the refused calls) and the page's profile filter.
        assert counts[0] <= 13, (url, counts)


@time_machine.travel(NOW, tick=False)
def test_another_companys_calls_never_show_and_bad_input_names_the_field(company, owner) -> None:
    theirs = CompanyFactory(currency="GBP")
    world(theirs, member(theirs, Role.OWNER))
    mine = profile_at(funded(company, owner), company, "Mine", 2, at(1, 9))
    client = signed_in(owner)
    data = api_get(client, month=MARCH)
    assert [p["name"] for p in data["profiles"]] == ["Mine"]
    assert all(d["peak"] == 0 and d["refused_at_channel_limit"] == 0 for d in data["profiles"][0]["by_day"])
    stranger = SipProfile.objects.filter(company=theirs).first()
    assert stranger is not None
    for query, field in (
        ({"profile": str(stranger.public_id)}, "profile"),
        ({"month": "2027-04"}, "month"),
        ({"by": "destination"}, "by"),
    ):
        response = client.get("/api/v1/reports/channel-peaks/", {"month": MARCH, **query})
        assert response.status_code == 400, query
        assert field in response.json()["errors"], response.json()
    assert mine.channels == 2


def stored_peaks() -> dict[tuple[int, date], tuple[int, int]]:
    """The daily channel peaks as the rating batches left them, days with none left out."""
    return {
        (r.sip_profile_id, r.day): (r.peak, r.busiest_refused_minute)
        for r in ChannelPeakDay.objects.all()
        if r.peak or r.busiest_refused_minute
    }


def expected_peaks(profiles: list[SipProfile]) -> dict[tuple[int, date], tuple[int, int]]:
    days = [date(2027, 2, 1) + timedelta(days=n) for n in range(60)]
    out = {}
    for profile in profiles:
        for day in days:
            figures = (expected_peak(profile, day), expected_refused(profile, day)[1])
            if any(figures):
                out[(profile.pk, day)] = figures
    return out


@time_machine.travel(NOW, tick=False)
def test_the_stored_peaks_are_the_sweeps_after_rating_in_several_batches(company, owner) -> None:
    """Batches of 4 calls: most days are touched by two batches or more, and a last import
    touches days already rated (a call over midnight arriving after both days' others)."""
    made = world(company, owner, batch_size=4)
    busy, quiet = made["busy"], made["quiet"]
    # A profile's peak once its day's calls came in two imports: the 7th goes from 3 to 4, the
    # 5th and 6th gain a call over midnight (2 on the 5th, 3 at 00:15 on the 6th).
    rated([call(quiet, at(7, 14, 20), 10), call(busy, at(5, 23, 45), 40)], batch_size=1)
    rated([call(busy, at(4, 11, 5, 40), refused=True)])
    expected = expected_peaks(list(made.values()))
    assert stored_peaks() == expected
    assert expected[(quiet.pk, date(2027, 3, 7))] == (4, 0)
    assert expected[(busy.pk, date(2027, 3, 5))] == (2, 0)
    assert expected[(busy.pk, date(2027, 3, 6))] == (3, 0)
    assert expected[(busy.pk, date(2027, 3, 4))] == (2, 4)

    # The rebuild (the upgrade's, or after a restore) finds the same; so does the laptop's
    # Python sweep (SQLite's path), run here on the same calls.
    ChannelPeakDay.objects.all().delete()
    call_command("rating_daily_rebuild", stdout=io.StringIO())
    assert stored_peaks() == expected
    ChannelPeakDay.objects.all().delete()
    peaks._recompute_python(peaks._pairs_of(Cdr.objects.all()))
    assert stored_peaks() == expected
    # A month's rebuild leaves the month before as it was.
    ChannelPeakDay.objects.filter(day__gte=date(2027, 3, 1)).update(peak=99)
    ChannelPeakDay.objects.filter(day__lt=date(2027, 3, 1)).update(peak=7)
    call_command("rating_daily_rebuild", since="2027-03", stdout=io.StringIO())
    assert {k: v for k, v in stored_peaks().items() if k[1].month == 3} == {
        k: v for k, v in expected.items() if k[1].month == 3
    }
    assert {v[0] for k, v in stored_peaks().items() if k[1].month == 2} == {7}
