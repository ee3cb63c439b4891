"""Staff confirm bank wires and refund purchases, in the admin and through the services."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone

from apps.billing.ledger.allocations import credit_allocate
from apps.billing.ledger.selectors import company_balance
from apps.billing.ledger.services import InsufficientFunds
from apps.billing.models import CreditPurchase, LedgerAccount, LedgerTransaction
from apps.billing.purchases import clients
from apps.billing.purchases.refunds import purchase_refund
from apps.billing.purchases.services import purchase_create
from apps.billing.purchases.wires import purchase_confirm_wire
from apps.companies.models import Notice, Role
from apps.core.actor import Actor
from apps.core.exceptions import ApplicationError, Conflict
from tests.billing.factories import wire_purchase
from tests.billing.stripe_fixtures import LocalStripe
from tests.factories import UserFactory, member
from tests.helpers.races import run_concurrently
from tests.sip_profiles.factories import digest_profile

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("localstripe")]


@pytest.fixture
def staff() -> Any:
    return UserFactory(is_staff=True, is_superuser=True)


def paid_by_card(company: Any, owner: Any, amount: str = "50") -> CreditPurchase:
    purchase = purchase_create(actor=Actor(user=owner), company=company, amount=amount, method="card").purchase
    clients.payment_intent_confirm(purchase.stripe_payment_intent, payment_method="pm_card_visa")
    from apps.billing.purchases.services import purchase_sync

    synced, _ = purchase_sync(purchase=purchase)
    assert synced.status == CreditPurchase.Status.SUCCEEDED
    return synced


def browser_as(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def account_balance(kind: str) -> Decimal:
    account = LedgerAccount.objects.filter(kind=kind, company__isnull=True).first()
    return account.balance if account else Decimal("0")


# --- Bank wires ------------------------------------------------------------------------------


def test_confirming_a_wire_credits_the_amount_that_arrived_once(
    company, owner, staff, django_capture_on_commit_callbacks
) -> None:
    member(company, Role.ADMIN, email="admin@example.com")
    purchase = wire_purchase(company, owner, "500.00")

    with django_capture_on_commit_callbacks(execute=True):
        confirmed = purchase_confirm_wire(actor=Actor(user=staff), purchase=purchase, amount_received="487.50")
    with pytest.raises(Conflict, match="already confirmed"):
        purchase_confirm_wire(actor=Actor(user=staff), purchase=purchase, amount_received="500")

    assert confirmed.status == CreditPurchase.Status.SUCCEEDED
    assert confirmed.amount_received == Decimal("487.50")
    assert company_balance(company) == Decimal("487.50")
    assert account_balance(LedgerAccount.Kind.BANK_CASH) == Decimal("-487.50")
    assert LedgerTransaction.objects.get().idempotency_key == f"wire:{purchase.public_id}"
    assert Notice.objects.get(company=company).message.startswith(
        f"We received your bank wire {purchase.wire_reference}"
    )
    assert mail.outbox, "the company's admins are e-mailed"


@pytest.mark.django_db(transaction=True)
def test_two_staff_confirming_the_same_wire_at_once_credit_it_once(company, owner, staff) -> None:
    purchase = wire_purchase(company, owner, "100.00")

    def confirm() -> str:
        purchase_confirm_wire(actor=Actor(user=staff), purchase=purchase, amount_received="100")
        return "credited"

    results = run_concurrently(*[confirm] * 6, catch=(Conflict,))
    outcomes = ["conflict" if isinstance(r, Conflict) else r for r in results]

    assert sorted(outcomes) == ["conflict"] * 5 + ["credited"]
    assert company_balance(company) == Decimal("100")


def test_only_wires_are_confirmed_by_staff(company, owner, staff) -> None:
    card = purchase_create(actor=Actor(user=owner), company=company, amount="20", method="card").purchase

    with pytest.raises(ApplicationError, match="Only bank-wire"):
        purchase_confirm_wire(actor=Actor(user=staff), purchase=card, amount_received="20")


def test_staff_confirm_a_wire_in_the_admin(company, owner, staff) -> None:
    purchase = wire_purchase(company, owner, "300.00")
    admin = browser_as(staff)
    page = f"/staff/billing/creditpurchase/{purchase.pk}/"
    change_page = f"{page}change/"

    change = admin.get(change_page)
    form = admin.get(f"{page}confirm-wire/")
    done = admin.post(f"{page}confirm-wire/", {"amount_received": "299.00"})
    again = admin.post(f"{page}confirm-wire/", {"amount_received": "299.00"}, follow=True)

    assert b"Confirm wire received" in change.content
    assert b"amount_received" in form.content
    assert done.status_code == 302
    assert "already confirmed" in again.content.decode()
    assert company_balance(company) == Decimal("299.00")


# --- Refunds -----------------------------------------------------------------------------------


def test_refunding_a_card_purchase_refunds_at_stripe_and_reverses_the_credit(
    company, owner, staff, localstripe: LocalStripe
) -> None:
    purchase = paid_by_card(company, owner, "50")

    refunded = purchase_refund(actor=Actor(user=staff), purchase=purchase, reason="Asked by the customer")
    again = purchase_refund(actor=Actor(user=staff), purchase=purchase, reason="Double click")

    assert refunded.status == again.status == CreditPurchase.Status.REFUNDED
    assert refunded.refunded_at is not None
    assert refunded.refund_reason == "Asked by the customer"
    assert company_balance(company) == Decimal("0")
    assert account_balance(LedgerAccount.Kind.REFUNDS) == Decimal("50")
    stripe_refunds = localstripe.refunds_of(purchase.stripe_payment_intent)
    assert [r["id"] for r in stripe_refunds] == [refunded.stripe_refund]
    assert stripe_refunds[0]["amount"] == 5000
    assert LedgerTransaction.objects.filter(idempotency_key=f"refund:{purchase.public_id}").count() == 1


def test_a_refund_never_takes_the_company_balance_below_zero(company, owner, staff, localstripe: LocalStripe) -> None:
    purchase = paid_by_card(company, owner, "50")
    profile, _ = digest_profile(company, owner)
    credit_allocate(actor=Actor(user=owner), profile=profile, amount="20", key="spent")
    remaining = company_balance(company)  # 50 less the profile's channels and the 20 allocated
    assert remaining < Decimal("30")

    with pytest.raises(InsufficientFunds, match="Not enough credit"):
        purchase_refund(actor=Actor(user=staff), purchase=purchase, reason="Too late")

    assert CreditPurchase.objects.get(pk=purchase.pk).status == CreditPurchase.Status.SUCCEEDED
    assert company_balance(company) == remaining
    assert localstripe.refunds_of(purchase.stripe_payment_intent) == [], "Stripe was not asked"


def test_a_refund_stripe_refuses_puts_the_credit_back_and_can_be_tried_again(
    company, owner, staff, monkeypatch
) -> None:
    purchase = paid_by_card(company, owner, "40")

    def refuse(**kwargs: Any) -> clients.RefundInfo:
        raise clients.PaymentProviderError("The payment provider refused the request: charge disputed")

    with monkeypatch.context() as patch:
        patch.setattr(clients, "refund_create", refuse)
        with pytest.raises(ApplicationError, match="The credit was put back"):
            purchase_refund(actor=Actor(user=staff), purchase=purchase, reason="Duplicate")
    failed = CreditPurchase.objects.get(pk=purchase.pk)
    assert failed.status == CreditPurchase.Status.SUCCEEDED
    assert "charge disputed" in failed.failure_message
    assert company_balance(company) == Decimal("40")

    refunded = purchase_refund(actor=Actor(user=staff), purchase=purchase, reason="Duplicate, again")

    assert refunded.status == CreditPurchase.Status.REFUNDED
    assert company_balance(company) == Decimal("0")
    keys = set(LedgerTransaction.objects.values_list("idempotency_key", flat=True))
    assert {
        f"refund:{purchase.public_id}",
        f"refund-undo:{purchase.public_id}:1",
        f"refund:{purchase.public_id}:2",
    } <= keys


def test_a_refund_interrupted_after_stripe_refunded_finishes_without_refunding_twice(
    company, owner, staff, localstripe: LocalStripe
) -> None:
    purchase = paid_by_card(company, owner, "30")
    purchase_refund(actor=Actor(user=staff), purchase=purchase, reason="First go")
    # As if the process died after Stripe refunded, before the purchase was marked refunded.
    CreditPurchase.objects.filter(pk=purchase.pk).update(
        status=CreditPurchase.Status.REFUNDING, refunded_at=None, refund_started_at="2000-01-01T00:00:00Z"
    )

    finished = purchase_refund(actor=Actor(user=staff), purchase=purchase, reason="Finish it")

    assert finished.status == CreditPurchase.Status.REFUNDED
    assert len(localstripe.refunds_of(purchase.stripe_payment_intent)) == 1
    assert company_balance(company) == Decimal("0")


def test_a_refund_in_progress_is_not_started_twice(company, owner, staff) -> None:
    purchase = paid_by_card(company, owner, "30")
    purchase_refund(actor=Actor(user=staff), purchase=purchase, reason="First")
    # Another staff member's refund, still talking to Stripe.
    CreditPurchase.objects.filter(pk=purchase.pk).update(
        status=CreditPurchase.Status.REFUNDING, refunded_at=None, refund_started_at=timezone.now()
    )

    with pytest.raises(Conflict, match="already in progress"):
        purchase_refund(actor=Actor(user=staff), purchase=purchase, reason="Again")


def test_refunding_a_wire_reverses_the_credit_without_stripe(company, owner, staff) -> None:
    purchase = purchase_confirm_wire(
        actor=Actor(user=staff), purchase=wire_purchase(company, owner, "200"), amount_received="195"
    )

    refunded = purchase_refund(actor=Actor(user=staff), purchase=purchase, reason="Sent back by bank")

    assert refunded.status == CreditPurchase.Status.REFUNDED
    assert refunded.stripe_refund == ""
    assert company_balance(company) == Decimal("0")


def test_a_purchase_that_was_not_paid_cannot_be_refunded(company, owner, staff) -> None:
    with pytest.raises(ApplicationError, match="Only a paid purchase"):
        purchase_refund(actor=Actor(user=staff), purchase=wire_purchase(company, owner), reason="?")


def test_staff_refund_in_the_admin_with_a_reason(company, owner, staff, localstripe: LocalStripe) -> None:
    purchase = paid_by_card(company, owner, "25")
    admin = browser_as(staff)
    page = f"/staff/billing/creditpurchase/{purchase.pk}/"
    change_page = f"{page}change/"

    assert b"Refund" in admin.get(change_page).content
    assert admin.post(f"{page}refund/", {"reason": ""}).status_code == 200, "the form asks for a reason"
    done = admin.post(f"{page}refund/", {"reason": "Customer left"})

    assert done.status_code == 302
    assert CreditPurchase.objects.get(pk=purchase.pk).status == CreditPurchase.Status.REFUNDED
    assert company_balance(company) == Decimal("0")
