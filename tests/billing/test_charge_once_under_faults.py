"""One charge per Idempotency-Key and per auto-recharge crossing whatever fails: a request that
dies after Stripe charged, a claim taken over, Stripe refusing connections, an answer lost on
the way to Stripe or back, and claims racing allocations and take-backs. Against localstripe,
with real refused connections (a closed loopback port)."""

from __future__ import annotations

import itertools
import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.db import close_old_connections
from django.utils import timezone

from apps.billing import idempotency
from apps.billing.ledger.allocations import credit_allocate, credit_take_back
from apps.billing.ledger.selectors import company_balance
from apps.billing.ledger.services import company_account
from apps.billing.models import AutoRecharge, CreditPurchase, IdempotentRequest, LedgerEntry, RechargeAttempt
from apps.billing.purchases import clients
from apps.billing.purchases import services as purchases
from apps.billing.recharge import company as company_recharge
from apps.billing.recharge import sweep as recharge_sweep
from apps.companies.models import Company
from apps.core.actor import Actor
from tests.billing.stripe_fixtures import LocalStripe
from tests.billing.test_auto_recharge import card_purchases, run, save_card, turn_on
from tests.core.outages import closed_port
from tests.factories import grant
from tests.sip_profiles.factories import digest_profile

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("localstripe")]

URL = "/api/v1/credit/purchases/"
SYSTEM = Actor.system()


def stripe_refuses_connections(settings: Any) -> str:
    real = settings.STRIPE_API_BASE
    settings.STRIPE_API_BASE = f"http://127.0.0.1:{closed_port()}"
    return str(real)


def buy_with(api: Any, card: Any, key: str) -> Any:
    body = {"amount": "25", "method": "card", "payment_method": str(card.public_id)}
    return api.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY=key)


def succeeded_intents(localstripe: LocalStripe, company: Company) -> list[dict[str, Any]]:
    return [
        intent
        for intent in localstripe.payment_intents()
        if intent["status"] == "succeeded" and intent["metadata"].get("company") == str(company.public_id)
    ]


# --- Idempotency-Key on purchases ---------------------------------------------------------------


def test_a_retry_after_the_request_died_after_the_charge_returns_that_purchase_and_charges_no_more(
    owner_api, company, localstripe, monkeypatch
) -> None:
    card = save_card(company)
    real_apply = purchases.purchase_apply_intent
    calls = {"n": 0}

    def dies_once(**kwargs: Any) -> CreditPurchase | None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("the worker died after Stripe charged the card")
        return real_apply(**kwargs)

    monkeypatch.setattr(purchases, "purchase_apply_intent", dies_once)
    owner_api.raise_request_exception = False
    first = buy_with(owner_api, card, "order-1")
    retried = buy_with(owner_api, card, "order-1")
    again = buy_with(owner_api, card, "order-1")

    purchase = CreditPurchase.objects.get()
    assert first.status_code == 500
    assert retried.status_code == 201
    assert retried["Idempotent-Replayed"] == "true"
    assert retried.json()["id"] == str(purchase.public_id)
    assert retried.json()["status"] == "succeeded"
    assert again.json() == retried.json()
    assert len(succeeded_intents(localstripe, company)) == 1
    assert company_balance(company) == Decimal("25")


def test_a_retry_while_the_first_request_may_still_be_running_is_a_conflict_and_starts_nothing(
    owner_api, company, localstripe
) -> None:
    card = save_card(company)
    first = buy_with(owner_api, card, "order-2")
    IdempotentRequest.objects.update(response_status=None, response_body=None)  # as if still running

    busy = buy_with(owner_api, card, "order-2")

    assert first.status_code == 201
    assert busy.status_code == 409
    assert busy.json()["code"] == "idempotency_key_in_use"
    assert CreditPurchase.objects.count() == 1
    assert len(succeeded_intents(localstripe, company)) == 1


def test_a_request_killed_between_its_claim_and_stripe_is_run_once_by_a_retry_once_stale(
    owner_api, company, localstripe, monkeypatch
) -> None:
    card = save_card(company)

    def killed(company: Company) -> str:
        raise RuntimeError("the worker was killed after claiming the key")

    monkeypatch.setattr(purchases, "stripe_customer_id", killed)
    monkeypatch.setattr(idempotency, "_unfinished", lambda row: None)  # a killed process cleans nothing up
    owner_api.raise_request_exception = False
    died = buy_with(owner_api, card, "order-3")
    monkeypatch.undo()

    busy = buy_with(owner_api, card, "order-3")
    IdempotentRequest.objects.update(claimed_at=timezone.now() - idempotency.STALE_CLAIM - timedelta(seconds=1))
    taken_over = buy_with(owner_api, card, "order-3")
    replayed = buy_with(owner_api, card, "order-3")

    assert died.status_code == 500
    assert busy.status_code == 409
    assert taken_over.status_code == 201
    assert taken_over.json()["status"] == "succeeded"
    assert replayed.json() == taken_over.json()
    assert CreditPurchase.objects.count() == 1
    assert len(succeeded_intents(localstripe, company)) == 1


def test_a_request_whose_claim_was_taken_over_creates_no_purchase_and_calls_no_stripe(
    company, owner, localstripe
) -> None:
    row = IdempotentRequest.objects.create(
        company=company, endpoint="credit/purchases", key="order-4", fingerprint="f", claimed_at=timezone.now()
    )
    slow = idempotency.Claim(IdempotentRequest.objects.get(pk=row.pk))
    IdempotentRequest.objects.filter(pk=row.pk).update(claimed_at=timezone.now() + timedelta(seconds=1))
    intents_before = len(localstripe.payment_intents())

    with pytest.raises(idempotency.ClaimLost):
        purchases.purchase_create(
            actor=Actor(user=owner), company=company, amount="25", method="card", on_created=slow.bind_purchase
        )

    assert not CreditPurchase.objects.exists()
    assert len(localstripe.payment_intents()) == intents_before


def test_stripe_refusing_connections_is_a_503_and_the_retry_with_the_same_key_buys_once(
    owner_api, company, localstripe, settings
) -> None:
    card = save_card(company)
    real = stripe_refuses_connections(settings)

    refused = buy_with(owner_api, card, "order-5")
    settings.STRIPE_API_BASE = real
    bought = buy_with(owner_api, card, "order-5")

    assert refused.status_code == 503
    assert refused.json()["code"] == "payment_provider_unavailable"
    assert "nothing was charged" in refused.json()["detail"]
    assert bought.status_code == 201
    assert bought.json()["status"] == "succeeded"
    assert list(CreditPurchase.objects.order_by("pk").values_list("status", flat=True)) == ["failed", "succeeded"]
    assert len(succeeded_intents(localstripe, company)) == 1
    assert company_balance(company) == Decimal("25")


# --- Company auto-recharge ------------------------------------------------------------------------


def test_stripe_refusing_connections_fails_the_recharge_at_once_without_blame_and_the_next_run_charges(
    company, owner, localstripe, settings
) -> None:
    save_card(company)
    turn_on(company, owner)
    real = stripe_refuses_connections(settings)

    refused = run(company)
    settings.STRIPE_API_BASE = real
    charged = run(company)

    assert refused is not None
    assert refused.status == RechargeAttempt.Status.FAILED
    assert refused.card_failure is False
    assert refused.purchase is not None
    assert refused.purchase.status == CreditPurchase.Status.FAILED
    assert AutoRecharge.objects.get().consecutive_failures == 0
    assert charged is not None
    assert charged.status == RechargeAttempt.Status.SUCCEEDED
    assert len(succeeded_intents(localstripe, company)) == 1
    assert company_balance(company) == Decimal("50")


def test_an_answer_lost_while_creating_the_intent_charges_nothing_and_rearms_at_once(
    company, owner, localstripe, monkeypatch
) -> None:
    save_card(company)
    turn_on(company, owner)
    real_create = clients.payment_intent_create
    made: list[str] = []

    def created_then_lost(**kwargs: Any) -> clients.PaymentIntentInfo:
        made.append(real_create(**kwargs).id)
        raise clients.PaymentProviderError("The payment provider did not answer in time. Please try again.")

    monkeypatch.setattr(clients, "payment_intent_create", created_then_lost)
    lost = run(company)
    monkeypatch.setattr(clients, "payment_intent_create", real_create)
    charged = run(company)

    assert lost is not None
    assert lost.status == RechargeAttempt.Status.FAILED
    assert lost.card_failure is False
    assert clients.payment_intent_retrieve(made[0]).status == "requires_confirmation", "never confirmed"
    assert charged is not None
    assert charged.status == RechargeAttempt.Status.SUCCEEDED
    assert len(succeeded_intents(localstripe, company)) == 1
    assert company_balance(company) == Decimal("50")


def test_a_charge_that_never_reached_stripe_is_canceled_by_the_sweep_and_charged_once_afresh(
    company, owner, localstripe, monkeypatch
) -> None:
    save_card(company)
    turn_on(company, owner)

    def lost_on_the_way(payment_intent_id: str) -> clients.PaymentIntentInfo:
        raise clients.PaymentProviderError("The payment provider did not answer in time. Please try again.")

    monkeypatch.setattr(clients, "payment_intent_confirm_off_session", lost_on_the_way)
    stuck = run(company)
    monkeypatch.undo()
    assert stuck is not None
    assert stuck.status == RechargeAttempt.Status.IN_FLIGHT
    assert recharge_sweep.auto_recharge_sweep(now=datetime.now(UTC))["settled"] == 0, "still within its grace period"

    with time_machine.travel(datetime.now(UTC) + recharge_sweep.SYNC_PENDING_AFTER + timedelta(seconds=5)):
        counts = recharge_sweep.auto_recharge_sweep(now=datetime.now(UTC))

    stuck.refresh_from_db()
    assert stuck.purchase is not None
    assert counts["settled"] == 1
    assert counts["companies"] == 1
    assert stuck.status == RechargeAttempt.Status.FAILED
    assert stuck.card_failure is False
    assert stuck.purchase.status == CreditPurchase.Status.CANCELED
    assert clients.payment_intent_retrieve(stuck.purchase.stripe_payment_intent).status == "canceled"
    assert not RechargeAttempt.objects.filter(status=RechargeAttempt.Status.IN_FLIGHT).exists()
    assert len(succeeded_intents(localstripe, company)) == 1
    assert card_purchases(company) == 2
    assert company_balance(company) == Decimal("50")


@pytest.mark.django_db(transaction=True)
def test_claims_racing_allocations_and_take_backs_are_made_only_below_the_threshold_once_per_crossing(
    company, owner, localstripe
) -> None:
    save_card(company)
    grant(company, "45")
    turn_on(company, owner, amount="20", threshold="30", limit="100000")
    profile, _ = digest_profile(company, owner)
    credit_allocate(actor=SYSTEM, profile=profile, amount="10", key="seed")  # 35 left, the profile holds 10
    account = company_account(company)
    errors: list[BaseException] = []
    stop = threading.Event()

    def mover(n: int) -> None:
        try:
            for i in range(25):
                move = credit_allocate if (i + n) % 2 == 0 else credit_take_back
                try:
                    move(actor=SYSTEM, profile=profile, amount="5.0125", key=f"race-{n}-{i}")
                except Exception as error:  # an allocation larger than the balance is refused: fine
                    if "balance" not in str(error).lower() and "enough" not in str(error).lower():
                        raise
        except BaseException as error:
            errors.append(error)
        finally:
            close_old_connections()

    def claimer() -> None:
        try:
            while not stop.is_set():
                company_recharge.company_recharge_run(company_id=company.pk, trigger="threshold")
        except BaseException as error:
            errors.append(error)
        finally:
            close_old_connections()

    movers = [threading.Thread(target=mover, args=(n,)) for n in range(4)]
    claimers = [threading.Thread(target=claimer) for _ in range(2)]
    for thread in movers + claimers:
        thread.start()
    for thread in movers:
        thread.join()
    stop.set()
    for thread in claimers:
        thread.join()

    assert errors == []
    attempts = list(RechargeAttempt.objects.filter(company=company).order_by("ledger_watermark"))
    assert attempts, "the balance crossed the threshold: something was charged"
    threshold = Decimal("30")
    for attempt in attempts:
        at_claim = LedgerEntry.objects.get(pk=attempt.ledger_watermark)
        assert at_claim.account_id == account.pk
        assert at_claim.balance_after < threshold, f"claimed at {at_claim.balance_after}"
    for earlier, later in itertools.pairwise(attempts):
        assert LedgerEntry.objects.filter(
            account=account,
            pk__gt=earlier.ledger_watermark,
            pk__lte=later.ledger_watermark,
            balance_after__gte=threshold,
        ).exists(), "a second charge needs a new crossing"
    assert not RechargeAttempt.objects.filter(status=RechargeAttempt.Status.IN_FLIGHT).exists()
    assert len(succeeded_intents(localstripe, company)) == len(attempts)


@pytest.mark.django_db(transaction=True)
def test_a_take_back_arriving_during_a_claim_waits_for_it_so_the_claim_saw_the_balance_it_commits_with(
    company, owner, localstripe, monkeypatch
) -> None:
    save_card(company)
    grant(company, "60")
    profile, _ = digest_profile(company, owner)
    credit_allocate(actor=SYSTEM, profile=profile, amount="20", key="seed")
    turn_on(company, owner, amount="20", threshold="30", limit="1000")
    before = company_balance(company)
    assert before + 10 >= 30 > before, "the take-back below lifts the balance over the threshold"
    real_crossed = company_recharge.crossed
    landed: dict[str, bool] = {}
    movers: list[threading.Thread] = []

    def take_back() -> None:
        try:
            credit_take_back(actor=SYSTEM, profile=profile, amount="10", key="during-claim")
        finally:
            close_old_connections()

    def a_take_back_lands_meanwhile(**kwargs: Any) -> bool:
        mover = threading.Thread(target=take_back)
        movers.append(mover)
        mover.start()
        mover.join(timeout=1.5)
        landed["during the claim"] = not mover.is_alive()
        return real_crossed(**kwargs)

    monkeypatch.setattr(company_recharge, "crossed", a_take_back_lands_meanwhile)
    attempt = run(company)
    for mover in movers:
        mover.join(timeout=30)

    assert attempt is not None
    assert landed == {"during the claim": False}, "the take-back waits for the claim's lock on the balance"
    assert LedgerEntry.objects.get(pk=attempt.ledger_watermark).balance_after == before
    assert company_balance(company) == before + 10 + 20
