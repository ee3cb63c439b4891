"""The dashboard (issue 14, item 1): balance and auto-recharge, spend against the ledger's own
rows, one row per profile, alerts linking to their fix, next steps, and a viewer's links."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from apps.billing.ledger.allocations import credit_allocate
from apps.billing.ledger.services import Leg, ledger_post, platform_account, profile_account
from apps.billing.models import AutoRecharge, LedgerAccount, LedgerEntry, LedgerTransaction
from apps.bundles.models import BundlePeriod
from apps.callerid.models import Landline
from apps.cdrs.models import CdrRating
from apps.companies.models import Company, Role, VerificationRequest, VerificationStatus
from apps.core.actor import Actor
from apps.core.money import format_money
from apps.edge.models import EdgeNode
from apps.rating.engine import rate_pending
from apps.sip_profiles.models import SipProfile
from apps.sip_profiles.services import sip_profile_create
from tests.cdrs.factories import cdr_csv, csv_row, load
from tests.core.outages import closed_port
from tests.factories import CompanyFactory, UserFactory, grant, member
from tests.rating.factories import Call, queue_calls, small_deck
from tests.sip_profiles.factories import digest_profile, held_number, ip_profile

pytestmark = pytest.mark.django_db

# Mid-March: last month (February) is shorter, and its "same day" is still inside it.
NOW = datetime(2027, 3, 15, 12, 0, tzinfo=UTC)


def page(user: Any) -> Any:
    client = Client()
    client.force_login(user)
    response = client.get("/")
    assert response.status_code == 200
    return response


def trunk(company: Company, owner: Any, name: str, *, channels: int) -> tuple[SipProfile, str | None]:
    return sip_profile_create(
        actor=Actor(user=owner), company=company, name=name, auth_method="registration", channels=channels
    )


def call_cost(profile: SipProfile, amount: str, *, key: str) -> None:
    """A call rated from the profile's balance, posted as rating posts it (kind CALL)."""
    account = profile_account(profile)
    value = Decimal(amount)
    ledger_post(
        actor=Actor.system(),
        key=key,
        kind=LedgerTransaction.Kind.CALL,
        company=profile.company,
        currency=profile.company.currency,
        description="Calls",
        legs=[Leg(account, -value), Leg(platform_account(LedgerAccount.Kind.REVENUE_CALLS, "GBP"), value)],
        may_go_negative=[account.pk],
    )


def expected_spend(company: Company, now: datetime) -> dict[str, Decimal]:
    """The spend figures from the ledger's rows, summed here in Python: every entry on the
    company's own balances of a call or a recurring charge, by when it was written."""
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    month = today.replace(day=1)
    last = (month - timedelta(days=1)).replace(day=1)
    same_moment = now.replace(year=last.year, month=last.month, day=min(now.day, 28))
    figures = dict.fromkeys(("today", "this_month", "last_month", "last_month_to_date"), Decimal("0"))
    for entry in LedgerEntry.objects.select_related("transaction", "account").filter(account__company=company):
        if entry.transaction.kind not in ("call", "charge"):
            continue
        spent = -entry.amount
        at = entry.created_at
        if at >= today:
            figures["today"] += spent
        if at >= month:
            figures["this_month"] += spent
        if last <= at < month:
            figures["last_month"] += spent
        if last <= at < same_moment:
            figures["last_month_to_date"] += spent
    return figures


def test_spend_today_this_month_and_last_month_add_up_the_ledgers_calls_and_charges_only(company, owner) -> None:
    grant(company, "500", "stripe:pi_spend")  # a purchase: money in, not spent
    with time_machine.travel(datetime(2027, 2, 3, 9, 0, tzinfo=UTC), tick=False):
        profile, _ = digest_profile(company, owner)  # 2 channels charged from the company balance
        credit_allocate(actor=Actor.system(), profile=profile, amount="40", key="alloc:spend-1")  # not spent
        call_cost(profile, "1.2345", key="cdr:t:1")
    with time_machine.travel(datetime(2027, 2, 20, 18, 0, tzinfo=UTC), tick=False):  # after "the same day"
        call_cost(profile, "3.5000", key="cdr:t:2")
    with time_machine.travel(datetime(2027, 3, 1, 0, 0, 5, tzinfo=UTC), tick=False):
        call_cost(profile, "0.7000", key="cdr:t:3")
        ip_profile(company, owner, channels=1)  # another channel charge, this month
    with time_machine.travel(datetime(2027, 3, 15, 8, 30, tzinfo=UTC), tick=False):
        call_cost(profile, "0.0155", key="cdr:t:4")
        call_cost(profile, "2.0000", key="cdr:t:5")

    with time_machine.travel(NOW, tick=False):
        board = page(owner).context["board"]

    expected = expected_spend(company, NOW)
    assert expected["today"] == Decimal("2.0155")  # the two calls of the morning, nothing else
    assert board.spend.today == expected["today"]
    assert board.spend.this_month == expected["this_month"]
    assert board.spend.last_month == expected["last_month"]
    assert board.spend.last_month_to_date == expected["last_month_to_date"]
    assert board.spend.last_month > board.spend.last_month_to_date  # the 20 February call is after the 15th


def test_the_page_shows_the_balance_auto_recharge_and_the_spend(company, owner) -> None:
    grant(company, "120", "stripe:pi_page")
    profile, _ = digest_profile(company, owner)
    credit_allocate(actor=Actor.system(), profile=profile, amount="10", key="alloc:page")
    call_cost(profile, "1.2500", key="cdr:p:1")
    AutoRecharge.objects.create(
        company=company, enabled=True, amount=Decimal("50"), threshold=Decimal("20"), monthly_limit=Decimal("200")
    )

    response = page(owner)
    html = response.content.decode()
    balance = LedgerAccount.objects.get(company=company, kind="company_balance").balance
    spent_today = expected_spend(company, timezone.now())["today"]

    assert response.context["board"].balance == balance
    assert f'<div class="value">{format_money(balance, "GBP")}</div>' in html
    assert "Auto-recharge on: 50.00 GBP when below 20.00 GBP" in html
    assert format_money(spent_today, "GBP") in html.split('id="spend-today"')[1].split("</div>\n")[0]


def test_each_profile_has_a_row_with_its_channels_balance_and_bundle_minutes_and_unknown_live_state_without_nodes(
    company, owner
) -> None:
    grant(company, "300", "stripe:pi_rows")
    main, _ = trunk(company, owner, "Alpha PBX", channels=4)
    branch = ip_profile(company, owner, name="Beta branch", channels=1)
    credit_allocate(actor=Actor.system(), profile=main, amount="25.5", key="alloc:rows")
    now = timezone.now()
    BundlePeriod.objects.create(
        sip_profile=main,
        company=company,
        period_start=now - timedelta(days=3),
        period_end=now + timedelta(days=27),
        bundles=1,
        minutes_included=2000,
        minutes_used=345,
    )
    SipProfile.objects.filter(pk=main.pk).update(us_minute_bundles=1)

    board = page(owner).context["board"]

    first, second = board.profiles
    assert (first.profile.name, second.profile.name) == ("Alpha PBX", "Beta branch")
    assert first.balance.balance == LedgerAccount.objects.get(sip_profile=main).balance == Decimal("25.5")
    assert first.bundle_minutes_left == 2000 - 345
    assert second.bundle_minutes_left is None
    assert second.balance is None
    assert first.profile.channels == 4
    assert second.profile.channels == 1
    # No edge node is configured: the live figures are unknown, not zero.
    assert first.now.active_calls is None
    assert first.registration == "unknown"
    assert second.registration == "ip"
    assert branch.pk == second.profile.pk


def test_an_edge_node_that_does_not_answer_leaves_channels_unknown_and_the_page_quick(company, owner) -> None:
    digest_profile(company, owner)
    EdgeNode.objects.create(
        name="down-node",
        role=EdgeNode.Role.PRIMARY,
        sip_host="127.0.0.1",
        rpc_url=f"http://127.0.0.1:{closed_port()}/RPC",
        database_url="postgres://nobody@127.0.0.1:1/none",
    )

    page(owner)  # the process's first page (templates compiled)
    started = time.monotonic()
    response = page(owner)
    elapsed = time.monotonic() - started

    [row] = response.context["board"].profiles
    assert row.now.active_calls is None
    assert row.registration == "unknown"
    assert 'title="No edge node answered in time">unknown</span> / 2' in response.content.decode()
    assert elapsed < 2


def query_count(user: Any) -> int:
    client = Client()
    client.force_login(user)
    client.get("/")  # the session and its caches warmed
    with CaptureQueriesContext(connection) as captured:
        assert client.get("/").status_code == 200
    return len(captured.captured_queries)


def test_the_number_of_queries_does_not_grow_with_the_number_of_profiles(company, owner) -> None:
    grant(company, "2000", "stripe:pi_queries")
    profile, _ = digest_profile(company, owner, name="P0")
    credit_allocate(actor=Actor.system(), profile=profile, amount="1", key="alloc:q0")
    now = timezone.now()
    BundlePeriod.objects.create(
        sip_profile=profile,
        company=company,
        period_start=now - timedelta(days=1),
        period_end=now + timedelta(days=20),
        bundles=1,
        minutes_included=100,
    )
    SipProfile.objects.filter(pk=profile.pk).update(us_minute_bundles=1)
    one = query_count(owner)

    for i in range(1, 12):
        more, _ = digest_profile(company, owner, name=f"P{i}")
        credit_allocate(actor=Actor.system(), profile=more, amount="1", key=f"alloc:q{i}")
        BundlePeriod.objects.create(
            sip_profile=more,
            company=company,
            period_start=now - timedelta(days=1),
            period_end=now + timedelta(days=20),
            bundles=1,
            minutes_included=100,
        )
    SipProfile.objects.filter(company=company).update(us_minute_bundles=1)
    held_number(company)

    assert query_count(owner) == one


def rated_calls(profiles: list[SipProfile], count: int, *, first_edge_id: int) -> None:
    """`count` calls of the profiles this month and last, rated by the rating job (answered and
    not, to a covered and an uncovered number): ledger call entries, ratings, daily figures."""
    calls = [
        Call(
            first_edge_id + n,
            profiles[n % len(profiles)].pk,
            profiles[n % len(profiles)].company_id,
            "GBP",
            ("+442079460000", "+447911123456", "+99912345")[n % 3],
            NOW - timedelta(days=n % 40, hours=1 + n % 5),
            30 + n % 300,
            answered=n % 4 != 0,
        )
        for n in range(count)
    ]
    queue_calls(calls)
    rate_pending(batch_size=50)  # a ledger call transaction per batch, as every few seconds


def test_the_number_of_queries_does_not_grow_with_the_calls(company, owner) -> None:
    small_deck(effective_from=datetime(2026, 1, 1, tzinfo=UTC))
    grant(company, "2000", "stripe:pi_calls")
    first, _ = digest_profile(company, owner, name="P0")
    credit_allocate(actor=Actor.system(), profile=first, amount="50", key="alloc:c0")
    with time_machine.travel(NOW, tick=False):
        rated_calls([first], 1, first_edge_id=1)
        one = query_count(owner)

        profiles = [first]
        for i in range(1, 8):
            more, _ = digest_profile(company, owner, name=f"P{i}")
            credit_allocate(actor=Actor.system(), profile=more, amount="50", key=f"alloc:c{i}")
            profiles.append(more)
        rated_calls(profiles, 400, first_edge_id=100)
        assert CdrRating.objects.filter(cdr__company=company).count() == 401
        assert LedgerTransaction.objects.filter(company=company, kind=LedgerTransaction.Kind.CALL).count() == 8
        many = query_count(owner)

    assert many == one


def alert_kinds(response: Any) -> dict[str, Any]:
    return {alert.kind: alert for alert in response.context["board"].alerts}


def test_alerts_name_what_is_wrong_and_link_to_its_fix(company, owner) -> None:
    grant(company, "10", "stripe:pi_alerts")
    with time_machine.travel(datetime(2027, 3, 10, 9, 0, tzinfo=UTC), tick=False):
        profile, _ = digest_profile(company, owner)  # 15.90 GBP: more than the balance
    auto = AutoRecharge.objects.create(
        company=company,
        enabled=False,
        amount=Decimal("50"),
        threshold=Decimal("20"),
        monthly_limit=Decimal("200"),
        consecutive_failures=1,
        last_failure_at=datetime(2027, 3, 14, 7, 5, tzinfo=UTC),
        last_failure_message="Your card was declined.",
    )
    credit_allocate(actor=Actor.system(), profile=profile, amount="9", key="alloc:alerts")
    call_cost(profile, "9", key="cdr:a:1")  # the profile's balance is now empty
    ending = held_number(company, "+442079460077")
    ending.auto_renew = False
    ending.current_period_end = NOW + timedelta(days=5)
    ending.save()
    landline = Landline.objects.create(
        company=company,
        number="+442071234567",
        proof="x.pdf",
        proof_name="x.pdf",
        status="verified",
        verified_at=NOW - timedelta(days=300),
        expires_at=NOW + timedelta(days=6),
    )
    VerificationRequest.objects.create(
        company=company,
        legal_name="Acme",
        registration_number="1",
        address_line1="1 Road",
        city="London",
        status=VerificationRequest.Status.REJECTED,
        reason="The document is unreadable.",
        reviewed_at=NOW - timedelta(days=1),
    )

    with time_machine.travel(NOW, tick=False):
        response = page(owner)
    alerts, html = alert_kinds(response), response.content.decode()

    assert alerts["balance-low"].url == reverse("credit")  # 1.00 GBP left, below the default 5.00
    assert alerts["charge-grace"].url == reverse("credit")
    assert "suspended on 17 Mar 2027" in alerts["charge-grace"].message
    assert alerts["recharge-failed"].url == reverse("credit-auto-recharge")
    assert "Your card was declined." in alerts["recharge-failed"].message
    assert alerts["profile-empty"].url == reverse("sip-profile-credit", args=[profile.public_id])
    assert alerts["number-ending"].url == reverse("number-detail", args=[ending.public_id])
    assert "+442079460077 is released on 20 Mar 2027" in alerts["number-ending"].message
    assert alerts["callerid-expiring"].url == reverse("callerid-list")
    assert str(landline.number) in alerts["callerid-expiring"].message
    assert alerts["verification-rejected"].url == reverse("verification")
    assert "unreadable" in alerts["verification-rejected"].message
    for alert in alerts.values():
        assert f'<a href="{alert.url}">{alert.link}</a>' in html
    assert auto.pk


def test_an_empty_company_balance_is_an_alert_once_credit_was_bought(company, owner) -> None:
    assert "balance-empty" not in alert_kinds(page(owner))  # a new company: "buy credit" is a step
    grant(company, "5", "stripe:pi_empty")
    profile, _ = digest_profile(company, owner)  # its channels cost more: unpaid, the balance kept
    credit_allocate(actor=Actor.system(), profile=profile, amount="5", key="alloc:empty")  # all of it

    assert alert_kinds(page(owner))["balance-empty"].url == reverse("credit")


def steps(response: Any) -> dict[str, bool]:
    return {step.title: step.done for step in response.context["board"].steps}


def test_a_new_companys_next_steps_tick_off_as_they_are_done_then_go(company, owner) -> None:
    # The planning tools' readiness checklist is shown beside them until every box is ticked.
    assert 'id="readiness-checklist"' in page(owner).content.decode()
    assert steps(page(owner)) == {
        "Verify your company": False,
        "Buy credit": False,
        "Create a SIP profile": False,
        "Connect your PBX": False,
    }
    grant(company, "100", "stripe:pi_steps")
    assert steps(page(owner))["Buy credit"] is True
    profile, _ = digest_profile(company, owner)
    response = page(owner)
    assert steps(response)["Create a SIP profile"] is True
    assert f'<a href="{reverse("sip-profile-connect", args=[profile.public_id])}">How to connect</a>' in (
        response.content.decode()
    )
    Company.objects.filter(pk=company.pk).update(verification_status=VerificationStatus.VERIFIED)
    assert steps(page(owner)) == {
        "Verify your company": True,
        "Buy credit": True,
        "Create a SIP profile": True,
        "Connect your PBX": False,
    }
    staff = UserFactory(is_staff=True, is_superuser=True)
    load(cdr_csv(csv_row(1, profile.sip_username)), staff)  # its first call, as staff load it
    assert steps(page(owner)) == {}  # all done: the block is gone
    assert 'id="next-steps"' not in page(owner).content.decode()


LINK = re.compile(r'href="([^"]+)"')


def test_a_viewer_sees_no_link_to_a_page_it_may_not_open_and_is_not_told_to_verify(company, owner) -> None:
    grant(company, "10", "stripe:pi_viewer")
    profile, _ = digest_profile(company, owner)  # a charge in its grace period
    credit_allocate(actor=Actor.system(), profile=profile, amount="0.5", key="alloc:viewer")  # low
    viewer = member(company, Role.VIEWER)

    response = page(viewer)
    html = response.content.decode()
    main = html.split("<main>", 1)[1]

    assert response.context["board"].steps == []
    assert {"charge-grace", "profile-low"} <= set(alert_kinds(response))
    assert all(alert.url == "" for alert in response.context["board"].alerts)
    assert "erify your company" not in main
    client = Client()
    client.force_login(viewer)
    for url in set(LINK.findall(main)):
        if url.startswith("/"):
            assert client.get(url).status_code == 200, f"the viewer was shown a link to {url}"
    for forbidden in (reverse("verification"), reverse("sip-profile-create"), reverse("credit-auto-recharge")):
        assert f'href="{forbidden}"' not in main


def test_a_verified_companys_outcome_is_shown_for_a_fortnight(company, owner) -> None:
    Company.objects.filter(pk=company.pk).update(verification_status=VerificationStatus.VERIFIED)
    VerificationRequest.objects.create(
        company=company,
        legal_name="Acme",
        registration_number="1",
        address_line1="1 Road",
        city="London",
        status=VerificationRequest.Status.APPROVED,
        reviewed_at=NOW - timedelta(days=2),
    )
    with time_machine.travel(NOW, tick=False):
        assert "verification-approved" in alert_kinds(page(owner))
    with time_machine.travel(NOW + timedelta(days=13), tick=False):
        assert "verification-approved" not in alert_kinds(page(owner))


def test_another_companys_figures_never_show(company, owner) -> None:
    other = CompanyFactory(name="Other Ltd")
    other_owner = member(other, Role.OWNER)
    grant(other, "999", "stripe:pi_other")
    digest_profile(other, other_owner, name="Their PBX")

    board = page(owner).context["board"]
    assert board.balance == 0
    assert board.profiles == []
    assert board.spend.this_month == 0
