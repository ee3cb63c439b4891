"""Profile auto-recharge (allocated from the company balance) and the auto-recharge API and pages."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.test import Client

from apps.billing.ledger.allocations import credit_allocate, profile_balance
from apps.billing.ledger.selectors import company_balance
from apps.billing.ledger.services import Leg, ledger_post, platform_account, profile_account
from apps.billing.models import AutoRecharge, ProfileAutoRecharge, ProfileRechargeAttempt
from apps.billing.recharge import company as company_recharge
from apps.billing.recharge import profile as profile_recharge
from apps.companies.models import Notice, Role
from apps.core.actor import Actor
from apps.core.exceptions import ApplicationError
from tests.billing.factories import saved_card
from tests.conftest import client_as
from tests.factories import grant, member
from tests.helpers.races import run_concurrently
from tests.sip_profiles.factories import digest_profile

pytestmark = pytest.mark.django_db
SYSTEM = Actor.system()
_calls = iter(range(10**6))


def rate_a_call(profile: Any, amount: str) -> None:
    account = profile_account(profile)
    ledger_post(
        actor=SYSTEM,
        key=f"cdr:test:{next(_calls)}",
        kind="call",
        company=profile.company,
        currency=profile.company.currency,
        description="Call",
        legs=[Leg(account, -Decimal(amount)), Leg(platform_account("revenue_calls", "GBP"), Decimal(amount))],
        may_go_negative={account.pk},
    )


def set_up(company: Any, owner: Any, *, amount: str = "20", threshold: str = "5", limit: str = "100") -> Any:
    profile, _ = digest_profile(company, owner)
    profile_recharge.profile_auto_recharge_update(
        actor=Actor(user=owner), profile=profile, enabled=True, amount=amount, threshold=threshold, monthly_limit=limit
    )
    return profile


def run(profile: Any) -> ProfileRechargeAttempt | None:
    return profile_recharge.profile_recharge_run(profile_id=profile.pk, trigger="threshold")


def test_a_profile_below_its_threshold_is_topped_up_once_per_crossing(company, owner) -> None:
    profile = set_up(company, owner)
    grant(company, "100")
    credit_allocate(actor=SYSTEM, profile=profile, amount="10", key="first")
    rate_a_call(profile, "8")  # 2: below 5

    first, again = run(profile), run(profile)
    rate_a_call(profile, "20")  # 22 → 2: a new crossing
    second = run(profile)

    assert first is not None
    assert first.status == "succeeded"
    assert again is None
    assert second is not None
    assert second.status == "succeeded"
    assert profile_balance(profile) == Decimal("22")
    assert company_balance(company) == Decimal("50")


def test_a_profile_top_up_the_company_cannot_cover_is_recorded_and_the_admins_told(
    company, owner, django_capture_on_commit_callbacks
) -> None:
    profile = set_up(company, owner)

    with django_capture_on_commit_callbacks(execute=True):
        attempt = run(profile)
    later = run(profile)  # within the back-off: not retried

    assert attempt is not None
    assert attempt.status == ProfileRechargeAttempt.Status.FAILED
    assert "Not enough credit" in attempt.error
    assert later is None
    auto = ProfileAutoRecharge.objects.get()
    assert auto.consecutive_failures == 1
    assert Notice.objects.filter(company=company, kind="profile_auto_recharge_failed").count() == 1
    assert profile_balance(profile) == Decimal("0")


def test_the_profile_monthly_limit_is_kept(company, owner) -> None:
    profile = set_up(company, owner, amount="20", threshold="5", limit="40")
    grant(company, "200")
    made = []
    for _ in range(3):
        made.append(run(profile))
        if profile_balance(profile) > 1:
            rate_a_call(profile, str(profile_balance(profile) - Decimal("1")))

    assert [m is not None for m in made] == [True, True, False]
    assert profile_recharge.profile_month_total(profile, month=made[0].month) == Decimal("40")


@pytest.mark.django_db(transaction=True)
def test_threads_topping_up_one_profile_allocate_once(company, owner) -> None:
    profile, _ = digest_profile(company, owner)
    grant(company, "100")
    credit_allocate(actor=SYSTEM, profile=profile, amount="10", key="first")
    profile_recharge.profile_auto_recharge_update(
        actor=Actor(user=owner), profile=profile, enabled=True, amount="20", threshold="5", monthly_limit="100"
    )
    rate_a_call(profile, "8")  # 2: below 5

    run_concurrently(*[lambda: profile_recharge.profile_balance_debited(profile.pk)] * 10)

    assert ProfileRechargeAttempt.objects.filter(status="succeeded").count() == 1
    assert profile_balance(profile) == Decimal("22")
    assert company_balance(company) == Decimal("70")


def test_bad_profile_settings_are_field_errors(company, owner) -> None:
    profile, _ = digest_profile(company, owner)
    with pytest.raises(ApplicationError) as raised:
        profile_recharge.profile_auto_recharge_update(
            actor=Actor(user=owner), profile=profile, enabled=True, amount="0", threshold="-2", monthly_limit="x"
        )
    assert set(raised.value.errors) == {"amount", "threshold", "monthly_limit"}


# --- API ---------------------------------------------------------------------------------------------


def test_the_api_reads_and_sets_the_company_auto_recharge(company, owner) -> None:
    card = saved_card(company, owner)
    api = client_as(owner)

    before = api.get("/api/v1/credit/auto-recharge/")
    response = api.put(
        "/api/v1/credit/auto-recharge/",
        {
            "enabled": True,
            "amount": "50",
            "threshold": "10",
            "monthly_limit": "200",
            "payment_method": str(card.public_id),
        },
        format="json",
    )

    assert before.status_code == 200
    assert before.json()["enabled"] is False
    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["enabled"], body["amount"], body["monthly_limit"]) == (True, "50.00", "200.00")
    assert body["payment_method"] == str(card.public_id)
    assert (body["month_total"], body["consecutive_failures"], body["disabled_reason"]) == ("0.00", 0, "")
    assert AutoRecharge.objects.get().payment_method == card


def test_the_api_answers_bad_settings_with_field_errors(company, owner) -> None:
    saved_card(company, owner)
    response = client_as(owner).put(
        "/api/v1/credit/auto-recharge/",
        {"enabled": True, "amount": "5", "threshold": "-1", "monthly_limit": "100"},
        format="json",
    )

    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"amount", "threshold"}


def test_a_viewer_can_read_but_not_change_auto_recharge(company, owner) -> None:
    viewer = client_as(member(company, Role.VIEWER))

    assert viewer.get("/api/v1/credit/auto-recharge/").status_code == 200
    changed = viewer.put(
        "/api/v1/credit/auto-recharge/",
        {"enabled": False, "amount": "50", "threshold": "10", "monthly_limit": "200"},
        format="json",
    )
    assert changed.status_code == 403


def test_the_api_sets_a_profile_auto_recharge_and_hides_other_companies_profiles(company, owner, other_company) -> None:
    profile, _ = digest_profile(company, owner)
    theirs, _ = digest_profile(other_company, member(other_company, Role.OWNER))
    api = client_as(owner)
    body = {"enabled": True, "amount": "20", "threshold": "5", "monthly_limit": "100"}

    response = api.put(f"/api/v1/sip-profiles/{profile.public_id}/auto-recharge/", body, format="json")
    other = api.put(f"/api/v1/sip-profiles/{theirs.public_id}/auto-recharge/", body, format="json")

    assert response.status_code == 200, response.json()
    assert (response.json()["enabled"], response.json()["amount"]) == (True, "20.00")
    assert other.status_code == 404
    assert api.get(f"/api/v1/sip-profiles/{profile.public_id}/auto-recharge/").json()["threshold"] == "5.00"


# --- Pages ----------------------------------------------------------------------------------------


def page_client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_credit_page_shows_and_saves_auto_recharge(company, owner) -> None:
    saved_card(company, owner)
    browser = page_client(owner)

    saved = browser.post(
        "/credit/auto-recharge/",
        {"enabled": "on", "amount": "60", "threshold": "15", "monthly_limit": "300", "payment_method": ""},
    )
    page = browser.get("/credit/")

    assert saved.status_code == 302
    assert AutoRecharge.objects.get().amount == Decimal("60")
    assert b'id="auto-recharge"' in page.content
    assert b"60.00 GBP when the balance falls below 15.00" in page.content


def test_the_credit_page_shows_why_auto_recharge_switched_off(company, owner) -> None:
    saved_card(company, owner)
    company_recharge.auto_recharge_update(
        actor=Actor(user=owner), company=company, enabled=True, amount="50", threshold="10", monthly_limit="100"
    )
    AutoRecharge.objects.update(enabled=False, disabled_reason="Switched off after 3 failed recharges in a row")

    page = page_client(owner).get("/credit/")

    assert b"Switched off after 3 failed recharges in a row" in page.content


def test_a_bad_auto_recharge_form_shows_the_error(company, owner) -> None:
    browser = page_client(owner)

    response = browser.post(
        "/credit/auto-recharge/",
        {"enabled": "on", "amount": "5", "threshold": "1", "monthly_limit": "100"},
        follow=True,
    )

    assert b"The minimum purchase is 10.00 GBP." in response.content
    assert not AutoRecharge.objects.exists()


def test_the_profile_page_shows_and_saves_the_profile_auto_recharge(company, owner) -> None:
    profile, _ = digest_profile(company, owner)
    browser = page_client(owner)

    saved = browser.post(
        f"/sip-profiles/{profile.public_id}/auto-recharge/",
        {"enabled": "on", "amount": "25", "threshold": "5", "monthly_limit": "100"},
    )
    page = browser.get(f"/sip-profiles/{profile.public_id}/")

    assert saved.status_code == 302
    assert ProfileAutoRecharge.objects.get().amount == Decimal("25")
    assert b'id="profile-auto-recharge"' in page.content
    assert b"25.00 GBP from the company balance when below 5.00" in page.content
