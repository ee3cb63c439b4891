"""Company auto-recharge against localstripe: one charge per threshold crossing whatever races,
retries, crashes and timeouts do; the monthly limit; failures, notices and switching off."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any

import pytest
import time_machine
from django.core import mail
from django.test import Client

from apps.billing import tasks
from apps.billing.ledger.selectors import company_balance
from apps.billing.ledger.services import Leg, company_account, ledger_post, platform_account
from apps.billing.models import AutoRecharge, Charge, CreditPurchase, LedgerAccount, LedgerTransaction, RechargeAttempt
from apps.billing.purchases import clients
from apps.billing.purchases.payment_methods import stripe_customer_id
from apps.billing.recharge import company as company_recharge
from apps.billing.recharge import rules as recharge_rules
from apps.billing.recharge import sweep as recharge_sweep
from apps.companies.models import Company, Notice, Role
from apps.core.actor import Actor
from apps.core.exceptions import ApplicationError
from tests.billing.stripe_fixtures import LocalStripe, sign
from tests.factories import grant, member
from tests.helpers.races import run_concurrently

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("localstripe")]

SYSTEM = Actor.system()
DECLINES_AT_CHARGE = "pm_card_chargeCustomerFail"  # 4000000000000341: attaches, then declines
_keys = itertools.count()


def save_card(company: Company, payment_method: str = "pm_card_visa") -> Any:
    from apps.billing.models import SavedPaymentMethod

    card = clients.payment_method_attach(payment_method, customer=stripe_customer_id(company))
    return SavedPaymentMethod.objects.create(
        company=company, stripe_id=card.id, brand=card.brand, last4=card.last4, exp_month=12, exp_year=2030,
        is_default=True,
    )  # fmt: skip


def debit(company: Company, amount: str) -> None:
    """A charge paid from the company balance, as the charges service posts it."""
    ledger_post(
        actor=SYSTEM,
        key=f"test-charge:{next(_keys)}",
        kind=LedgerTransaction.Kind.CHARGE,
        company=company,
        currency=company.currency,
        description="Channels",
        legs=[
            Leg(company_account(company), -Decimal(amount)),
            Leg(platform_account(LedgerAccount.Kind.REVENUE_CHANNELS, company.currency), Decimal(amount)),
        ],
    )


def turn_on(company: Company, owner: Any, *, amount: str = "50", threshold: str = "10", limit: str = "500") -> None:
    company_recharge.auto_recharge_update(
        actor=Actor(user=owner), company=company, enabled=True, amount=amount, threshold=threshold, monthly_limit=limit
    )


def run(company: Company) -> RechargeAttempt | None:
    return company_recharge.company_recharge_run(company_id=company.pk, trigger="threshold")


def card_purchases(company: Company) -> int:
    return CreditPurchase.objects.filter(company=company, method="card").count()


def test_a_debit_below_the_threshold_charges_the_saved_card_once(company, owner) -> None:
    save_card(company)
    grant(company, "20")
    turn_on(company, owner)
    debit(company, "15")

    attempt = run(company)
    again = run(company)

    assert attempt is not None
    assert attempt.status == RechargeAttempt.Status.SUCCEEDED
    assert again is None
    assert company_balance(company) == Decimal("55")
    assert card_purchases(company) == 1
    assert attempt.purchase is not None
    assert attempt.purchase.status == CreditPurchase.Status.SUCCEEDED


def test_a_recharge_e_mails_the_billing_members_how_much_which_card_and_why(
    company, owner, settings, django_capture_on_commit_callbacks
) -> None:
    settings.PRODUCT_NAME = "Acme Voice"
    billing = member(company, Role.BILLING)
    admin = member(company, Role.ADMIN)
    member(company, Role.VIEWER)
    save_card(company)
    grant(company, "20")
    turn_on(company, owner, amount="50", threshold="10")
    debit(company, "15")

    with django_capture_on_commit_callbacks(execute=True):
        attempt = run(company)

    assert attempt is not None
    assert attempt.status == RechargeAttempt.Status.SUCCEEDED
    (message,) = mail.outbox
    assert sorted(message.to) == sorted([owner.email, admin.email, billing.email])  # no viewer
    assert message.subject == f"[Acme Voice] {company.name}: Auto-recharge charged 50.00 GBP to Visa ending 4242"
    assert "charged 50.00 GBP to Visa ending 4242" in message.body
    assert "because your balance fell below the threshold of 10.00 GBP" in message.body
    assert "The company balance is now 55.00 GBP." in message.body
    assert f"/credit/purchases/{attempt.purchase.public_id}/receipt.pdf" in message.body


def test_nothing_is_charged_while_the_balance_is_at_or_above_the_threshold(company, owner) -> None:
    save_card(company)
    grant(company, "10")
    turn_on(company, owner)

    assert run(company) is None
    assert card_purchases(company) == 0


def test_a_new_charge_needs_a_new_crossing_of_the_threshold(company, owner) -> None:
    save_card(company)
    turn_on(company, owner, amount="10", threshold="30")  # a recharge too small to get back above
    grant(company, "5")

    first = run(company)
    second = run(company)  # balance 15: still below, but the same crossing
    grant(company, "20")  # 35: above the threshold again
    debit(company, "10")  # 25: a new crossing
    third = run(company)

    assert first is not None
    assert first.status == "succeeded"
    assert second is None
    assert third is not None
    assert third.status == "succeeded"
    assert card_purchases(company) == 2
    assert company_balance(company) == Decimal("35")


@pytest.mark.django_db(transaction=True)
def test_many_triggers_and_the_sweep_racing_make_exactly_one_charge(company, owner) -> None:
    save_card(company)
    grant(company, "20")
    turn_on(company, owner)
    debit(company, "15")

    def trigger(n: int) -> None:
        if n % 6 == 5:
            tasks.auto_recharge_sweep.run()
        else:
            company_recharge.company_recharge_requested(company_id=company.pk, trigger="threshold")

    run_concurrently(*[partial(trigger, n) for n in range(12)])

    assert card_purchases(company) == 1
    assert RechargeAttempt.objects.filter(company=company).count() == 1
    assert RechargeAttempt.objects.get().status == RechargeAttempt.Status.SUCCEEDED
    assert company_balance(company) == Decimal("55")


def test_a_retried_task_does_not_charge_again(company, owner) -> None:
    save_card(company)
    turn_on(company, owner)

    first = tasks.company_auto_recharge.run(company.pk, "threshold")
    retried = tasks.company_auto_recharge.run(company.pk, "threshold")

    assert (first, retried) == (True, False)
    assert card_purchases(company) == 1
    assert company_balance(company) == Decimal("50")


def test_a_worker_killed_after_its_claim_is_recovered_and_its_late_charge_never_happens(company, owner) -> None:
    card = save_card(company)
    turn_on(company, owner)
    claimed = company_recharge._claim(company_id=company.pk, trigger="threshold", now=datetime.now(UTC))
    assert claimed is not None
    lost, _ = claimed  # the worker died here, before charging

    assert run(company) is None, "an attempt in flight blocks any other"
    with time_machine.travel(datetime.now(UTC) + recharge_sweep.STALE_AFTER + timedelta(minutes=1)):
        counts = recharge_sweep.auto_recharge_sweep(now=datetime.now(UTC))
    late = company_recharge._charge(lost, card)  # the dead worker's charge, had it only been slow

    lost.refresh_from_db()
    assert counts["recovered"] == 1
    assert counts["companies"] == 1
    assert lost.status == RechargeAttempt.Status.FAILED
    assert lost.purchase is None
    assert late.status == RechargeAttempt.Status.FAILED
    assert card_purchases(company) == 1
    assert company_balance(company) == Decimal("50")
    assert AutoRecharge.objects.get().consecutive_failures == 0, "an interruption is not the card's failure"


def test_a_stripe_timeout_after_the_charge_is_settled_by_the_webhook_and_never_charged_twice(
    company, owner, localstripe: LocalStripe, monkeypatch
) -> None:
    save_card(company)
    turn_on(company, owner)
    real_confirm = clients.payment_intent_confirm_off_session
    made: list[str] = []

    def charged_then_timed_out(payment_intent_id: str) -> clients.PaymentIntentInfo:
        made.append(real_confirm(payment_intent_id).id)
        raise clients.PaymentProviderError("The payment provider did not answer in time. Please try again.")

    monkeypatch.setattr(clients, "payment_intent_confirm_off_session", charged_then_timed_out)
    attempt = run(company)
    monkeypatch.setattr(clients, "payment_intent_confirm_off_session", real_confirm)
    assert attempt is not None
    assert attempt.status == RechargeAttempt.Status.IN_FLIGHT

    again = run(company)
    counts = recharge_sweep.auto_recharge_sweep(now=datetime.now(UTC))
    assert (again, counts["companies"], counts["settled"]) == (None, 0, 0)

    payload = json.dumps(localstripe.event_for(made[0], "payment_intent.succeeded")).encode()
    response = Client().post(
        "/stripe/webhook/", data=payload, content_type="application/json", HTTP_STRIPE_SIGNATURE=sign(payload)
    )
    counts = recharge_sweep.auto_recharge_sweep(now=datetime.now(UTC))

    attempt.refresh_from_db()
    assert response.status_code == 200
    assert counts["settled"] == 1
    assert attempt.status == RechargeAttempt.Status.SUCCEEDED
    assert len(made) == 1
    assert card_purchases(company) == 1
    assert company_balance(company) == Decimal("50")


def test_the_monthly_limit_stops_recharges_until_the_first(company, owner) -> None:
    save_card(company)
    with time_machine.travel(datetime(2026, 11, 10, 12, tzinfo=UTC), tick=True):
        turn_on(company, owner, amount="50", threshold="10", limit="100")
        results = []
        for _ in range(3):
            results.append(run(company))
            if company_balance(company) > 5:
                debit(company, str(company_balance(company) - Decimal("5")))  # down to 5: a new crossing
        assert [r is not None for r in results] == [True, True, False]
        assert company_recharge.company_month_total(
            company, month=recharge_rules.month_of(datetime.now(UTC))
        ) == Decimal("100")
    with time_machine.travel(datetime(2026, 11, 30, 23, 50, tzinfo=UTC), tick=True):
        assert recharge_sweep.auto_recharge_sweep(now=datetime.now(UTC))["companies"] == 0
    with time_machine.travel(datetime(2026, 12, 1, 0, 5, tzinfo=UTC), tick=True):
        assert recharge_sweep.auto_recharge_sweep(now=datetime.now(UTC))["companies"] == 1

    assert card_purchases(company) == 3
    assert company_balance(company) == Decimal("55")


def test_a_card_declined_at_charge_time_records_the_failure_emails_and_notifies(
    company, owner, django_capture_on_commit_callbacks
) -> None:
    billing = member(company, Role.BILLING)
    admin = member(company, Role.ADMIN)
    member(company, Role.VIEWER)
    save_card(company, DECLINES_AT_CHARGE)
    turn_on(company, owner)

    with django_capture_on_commit_callbacks(execute=True):
        attempt = run(company)

    assert attempt is not None
    assert attempt.status == RechargeAttempt.Status.FAILED
    assert attempt.error == "Your card was declined."
    auto = AutoRecharge.objects.get()
    assert (auto.enabled, auto.consecutive_failures, auto.last_failure_message) == (
        True,
        1,
        "Your card was declined.",
    )
    notice = Notice.objects.get(company=company, kind="auto_recharge_failed")
    assert "declined" in notice.message
    recipients = sorted(address for message in mail.outbox for address in message.to)
    assert recipients == sorted([owner.email, admin.email, billing.email])
    assert company_balance(company) == Decimal("0")


def test_three_failures_in_a_row_switch_auto_recharge_off(company, owner) -> None:
    save_card(company, DECLINES_AT_CHARGE)
    turn_on(company, owner)
    start = datetime.now(UTC)

    outcomes = []
    for n in range(4):
        with time_machine.travel(start + n * (company_recharge.RETRY_AFTER_FAILURE + timedelta(minutes=1))):
            outcomes.append(run(company))

    auto = AutoRecharge.objects.get()
    assert [o.status if o else None for o in outcomes] == ["failed", "failed", "failed", None]
    assert auto.enabled is False
    assert auto.consecutive_failures == 3
    assert "Switched off after 3 failed recharges" in auto.disabled_reason
    assert card_purchases(company) == 3


def test_a_failed_card_is_not_retried_before_the_back_off(company, owner) -> None:
    save_card(company, DECLINES_AT_CHARGE)
    turn_on(company, owner)

    run(company)

    assert run(company) is None
    assert card_purchases(company) == 1


def test_turning_it_on_again_clears_the_failures(company, owner) -> None:
    save_card(company)
    turn_on(company, owner)
    AutoRecharge.objects.update(enabled=False, consecutive_failures=3, disabled_reason="Switched off")

    turn_on(company, owner)

    auto = AutoRecharge.objects.get()
    assert (auto.enabled, auto.consecutive_failures, auto.disabled_reason) == (True, 0, "")


@pytest.mark.parametrize(
    ("fields", "errors"),
    [
        ({"amount": "5"}, {"amount"}),
        ({"amount": "100000"}, {"amount"}),
        ({"amount": "12.345"}, {"amount"}),
        ({"threshold": "-1"}, {"threshold"}),
        ({"threshold": "abc"}, {"threshold"}),
        ({"monthly_limit": "20"}, {"monthly_limit"}),
        ({"amount": "5", "monthly_limit": "0"}, {"amount", "monthly_limit"}),
    ],
)
def test_bad_settings_are_field_errors(company, owner, fields, errors) -> None:
    save_card(company)
    values = {"amount": "50", "threshold": "10", "monthly_limit": "200", **fields}

    with pytest.raises(ApplicationError) as raised:
        company_recharge.auto_recharge_update(actor=Actor(user=owner), company=company, enabled=True, **values)

    assert set(raised.value.errors) == errors
    assert not AutoRecharge.objects.exists()


def test_turning_it_on_needs_a_saved_card(company, owner) -> None:
    with pytest.raises(ApplicationError) as raised:
        turn_on(company, owner)

    assert "payment_method" in raised.value.errors


def test_saving_the_settings_is_audited(company, owner) -> None:
    from apps.audit.models import AuditEvent

    save_card(company)
    turn_on(company, owner)

    event = AuditEvent.objects.get(action="auto_recharge.updated")
    assert event.changes["amount"] == {"before": None, "after": "50.00"}


def test_an_allocation_that_takes_the_balance_below_the_threshold_recharges_after_commit(
    company, owner, django_capture_on_commit_callbacks
) -> None:
    from apps.billing.ledger.allocations import credit_allocate
    from tests.sip_profiles.factories import digest_profile

    profile, _ = digest_profile(company, owner)
    save_card(company)
    grant(company, "30")
    turn_on(company, owner)

    with django_capture_on_commit_callbacks(execute=True):
        credit_allocate(actor=Actor(user=owner), profile=profile, amount="25", key="to-profile")

    assert RechargeAttempt.objects.get().status == RechargeAttempt.Status.SUCCEEDED
    # The recharged credit also paid the profile's channels, unpaid since it was created.
    channels = Charge.objects.get(kind="channels")
    assert channels.status == Charge.Status.PAID
    assert company_balance(company) == Decimal("55") - channels.amount


def test_a_paid_charge_that_takes_the_balance_below_the_threshold_recharges_after_commit(
    company, owner, django_capture_on_commit_callbacks
) -> None:
    from tests.sip_profiles.factories import digest_profile

    save_card(company)
    grant(company, "20")
    turn_on(company, owner, amount="50", threshold="10")

    with django_capture_on_commit_callbacks(execute=True):
        digest_profile(company, owner)  # its channels (up to 15.90 GBP) are paid from the 20

    attempt = RechargeAttempt.objects.get()
    assert attempt.status == RechargeAttempt.Status.SUCCEEDED
    assert attempt.trigger == "threshold"
    assert company_balance(company) > Decimal("50")
