"""Buying company credit by card and PayPal through Stripe PaymentIntents: starting a purchase
(a bank wire is started in .wires), paying it on the page or off-session with a saved card,
and learning what Stripe did.

Exactly-once crediting. A Stripe payment is credited by purchase_apply_intent, whichever reaches
it first: the verified webhook (apps.billing.purchases.webhooks) or a server-side retrieval of the
PaymentIntent (the browser coming back, the pay step, the reconcile task). It locks the purchase
row, so the two queue; the second finds the purchase credited and stops. Under that, the ledger
key `stripe:<payment intent>` is unique, so even a bug above could not credit twice. A wire is
credited under `wire:<purchase>` by staff, once (apps.billing.purchases.wires).

Network calls (apps.billing.purchases.clients) are never made inside a database transaction: each
service does its Stripe calls first or last, and its database writes in short transactions of
their own.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from apps.billing.models import CreditPurchase, LedgerAccount, SavedPaymentMethod
from apps.billing.money import CENTS, format_money
from apps.billing.purchases import clients
from apps.billing.purchases.payment_methods import payment_method_record, stripe_customer_id
from apps.billing.purchases.records import (
    SYSTEM,
    Method,
    Status,
    method_label,
    purchase_amount,
    purchase_credit,
    purchase_mark,
    purchase_method,
    purchase_set_status,
    purchase_start,
)
from apps.billing.purchases.wires import purchase_create_wire
from apps.companies.models import Company
from apps.core.actor import Actor
from apps.core.exceptions import ApplicationError, Conflict

logger = logging.getLogger(__name__)

# Stripe intents the browser may still be paying are left alone this long by the reconcile task.
RECONCILE_GRACE = timedelta(minutes=10)
RECONCILE_BATCH = 200


class PaymentMismatch(ApplicationError):
    """Stripe reports a payment that does not match the purchase (amount or currency)."""

    status_code = 409
    default_code = "payment_mismatch"


@dataclass(frozen=True)
class PurchaseResult:
    purchase: CreditPurchase
    # Set when the browser still has to act: confirm the payment (API clients, PayPal) or
    # authenticate it (3-D Secure).
    client_secret: str = ""
    requires_action: bool = False


# --- Starting a purchase ------------------------------------------------------------------------


def purchase_create(
    *,
    actor: Actor,
    company: Company,
    amount: Any,
    method: Any,
    save_card: bool = False,
    saved_card: SavedPaymentMethod | None = None,
    on_created: Callable[[CreditPurchase], None] | None = None,
) -> PurchaseResult:
    """Start a purchase. Bank wire: a pending purchase with its reference. Card and PayPal: a
    PaymentIntent the browser confirms (its client secret is returned), or, with `saved_card`,
    one confirmed here and now with that card.

    `on_created` runs in the transaction that creates the purchase, before Stripe is called
    (the API binds the purchase to its Idempotency-Key there); raising in it creates nothing."""
    amount = purchase_amount(amount, company=company)
    method = purchase_method(method, company=company)
    if method == Method.BANK_WIRE:
        return PurchaseResult(
            purchase=purchase_create_wire(actor=actor, company=company, amount=amount, on_created=on_created)
        )
    if saved_card is not None and (method != Method.CARD or saved_card.company_id != company.pk):
        raise ApplicationError("Choose one of your company's saved cards.", field="payment_method")

    customer = stripe_customer_id(company)
    with transaction.atomic():
        purchase = purchase_start(
            actor=actor,
            company=company,
            amount=amount,
            fields={"method": method, "save_card": bool(save_card) and method == Method.CARD and saved_card is None},
            changes={"method": method},
        )
        if on_created is not None:
            on_created(purchase)
    # The row exists before the intent, so any intent Stripe reports belongs to a purchase of
    # ours (found by id, or by the metadata if we died before storing the id).
    try:
        intent = clients.payment_intent_create(
            amount=amount,
            currency=company.currency,
            method=method,
            customer=customer,
            metadata={"purchase": str(purchase.public_id), "company": str(company.public_id)},
            idempotency_key=f"purchase:{purchase.public_id}",
        )
    except ApplicationError as error:
        purchase_mark(purchase, status=Status.FAILED, failure_message=error.message[:500])
        raise
    CreditPurchase.objects.filter(pk=purchase.pk).update(stripe_payment_intent=intent.id)
    purchase.stripe_payment_intent = intent.id
    if saved_card is not None:
        return purchase_pay(actor=actor, purchase=purchase, saved_card=saved_card)
    return PurchaseResult(purchase=purchase, client_secret=intent.client_secret, requires_action=True)


def purchase_charge_off_session(
    *,
    actor: Actor,
    company: Company,
    amount: Any,
    card: SavedPaymentMethod,
    idempotency_key: str,
    on_created: Callable[[CreditPurchase], None] | None = None,
) -> CreditPurchase:
    """Charge a saved card now, without the person (auto-recharge). Returns the purchase:
    succeeded (credited), failed (declined, or the bank wants the person to authenticate), or
    pending (the outcome is not known yet: the webhook or purchase_settle_off_session settles
    it). When Stripe cannot be used, the purchase is marked failed if nothing can have been
    charged (the error is raised after that), or left pending with its intent if the answer to
    the charge was lost (PaymentProviderError is raised).

    `idempotency_key` is passed to Stripe, which deduplicates it; the caller must still decide
    from its own recorded state whether to charge at all (the local imitation ignores it).
    `on_created` runs in the transaction that creates the purchase, before Stripe is called:
    the caller links the purchase to its own record there, or raises to call nothing."""
    amount = purchase_amount(amount, company=company)
    purchase_method(Method.CARD, company=company)
    if card.company_id != company.pk:
        raise ApplicationError("Choose one of your company's saved cards.", field="payment_method")
    customer = stripe_customer_id(company)
    with transaction.atomic():
        purchase = purchase_start(
            actor=actor,
            company=company,
            amount=amount,
            fields={"method": Method.CARD, "card_brand": card.brand, "card_last4": card.last4},
            changes={"card": str(card), "off_session": True},
        )
        if on_created is not None:
            on_created(purchase)
    # Two calls: an intent created unconfirmed charges nothing, so a create that fails in any way
    # (refused, timed out, its answer lost) is a known failure. Only the confirm can charge, and
    # by then the intent's id is stored: an unknown outcome is settled by asking Stripe about it.
    try:
        intent = clients.payment_intent_create(
            amount=amount,
            currency=company.currency,
            method=Method.CARD,
            customer=customer,
            metadata={"purchase": str(purchase.public_id), "company": str(company.public_id)},
            idempotency_key=idempotency_key,
            payment_method=card.stripe_id,
        )
    except clients.CardDeclined as declined:
        return _fail_uncharged(purchase, actor=actor, message=declined.message, payment_intent=declined.payment_intent)
    except ApplicationError as error:
        _fail_uncharged(purchase, actor=actor, message=f"Not charged: {error.message}")
        raise
    CreditPurchase.objects.filter(pk=purchase.pk).update(stripe_payment_intent=intent.id, updated_at=timezone.now())
    purchase.stripe_payment_intent = intent.id
    try:
        intent = clients.payment_intent_confirm_off_session(intent.id)
    except clients.PaymentProviderUnreachable as error:
        _fail_uncharged(purchase, actor=actor, message=error.message)
        raise
    # Any other error (a read timeout) leaves the purchase pending with its intent: the webhook,
    # or the sweep asking Stripe (purchase_settle_off_session), settles it.
    applied = purchase_apply_intent(intent=intent, actor=actor) or purchase
    if intent.status == "requires_action":
        with transaction.atomic():
            locked = (
                CreditPurchase.objects.select_for_update(of=("self",)).select_related("company").get(pk=purchase.pk)
            )
            if locked.status == Status.PENDING:
                message = "Your bank asks you to confirm this payment, which cannot be done automatically."
                purchase_set_status(locked, Status.FAILED, actor=actor, failure_message=message)
            applied = locked
    return applied


def _fail_uncharged(
    purchase: CreditPurchase, *, actor: Actor, message: str, payment_intent: str | None = None
) -> CreditPurchase:
    """Record that a pending purchase failed before anything could be charged."""
    with transaction.atomic():
        locked = CreditPurchase.objects.select_for_update(of=("self",)).select_related("company").get(pk=purchase.pk)
        if payment_intent and not locked.stripe_payment_intent:
            locked.stripe_payment_intent = payment_intent
            locked.save(update_fields=["stripe_payment_intent", "updated_at"])
        if locked.status == Status.PENDING:
            purchase_set_status(locked, Status.FAILED, actor=actor, failure_message=message[:500])
    return locked


def purchase_settle_off_session(*, purchase: CreditPurchase) -> CreditPurchase:
    """Settle an off-session charge whose outcome was never learnt (the sweep, past its grace
    period). With no intent stored, nothing was confirmed, so nothing was charged. With one, what
    Stripe holds decides; an intent still unconfirmed is canceled at Stripe, so it can never be
    charged late, and the purchase with it. Network calls."""
    purchase = CreditPurchase.objects.select_related("company").get(pk=purchase.pk)
    if purchase.status != Status.PENDING:
        return purchase
    if not purchase.stripe_payment_intent:
        with transaction.atomic():
            locked = (
                CreditPurchase.objects.select_for_update(of=("self",)).select_related("company").get(pk=purchase.pk)
            )
            if locked.status == Status.PENDING and not locked.stripe_payment_intent:
                purchase_set_status(locked, Status.CANCELED, actor=SYSTEM)
        return locked
    synced, intent = purchase_sync(purchase=purchase)
    if synced.status != Status.PENDING or intent is None or intent.status in ("processing", "succeeded"):
        return synced
    try:
        intent = clients.payment_intent_cancel(intent.id)
    except clients.PaymentProviderUnreachable:
        raise
    except clients.PaymentProviderError:
        intent = clients.payment_intent_retrieve(intent.id)  # confirmed meanwhile?
    return purchase_apply_intent(intent=intent) or synced


def purchase_card_form(*, purchase: CreditPurchase) -> clients.SetupIntentInfo:
    """The SetupIntent the pay page's card form confirms with Stripe.js (the card goes from the
    browser to Stripe only). A used or canceled one is replaced. Network calls."""
    if purchase.method != Method.CARD or purchase.status != Status.PENDING:
        raise ApplicationError("This purchase is not awaiting a card payment.", code="not_pending")
    if purchase.stripe_setup_intent:
        current = clients.setup_intent_retrieve(purchase.stripe_setup_intent)
        if current.status == "requires_payment_method":
            return current
    # Always with the company's customer: the real API attaches the card to it on setup, which
    # an on-session payment by the company's own customer needs. Cards not to be kept are
    # detached again after the payment (purchase_pay).
    setup = clients.setup_intent_create(
        customer=stripe_customer_id(purchase.company),
        off_session=purchase.save_card,
        idempotency_key=f"setup:{purchase.public_id}:{uuid.uuid4().hex[:12]}",
    )
    purchase_mark(purchase, stripe_setup_intent=setup.id)
    return setup


def purchase_pay(
    *,
    actor: Actor,
    purchase: CreditPurchase,
    setup_intent: str | None = None,
    saved_card: SavedPaymentMethod | None = None,
) -> PurchaseResult:
    """Pay a pending card purchase on the server: with the card the page's form set up
    (`setup_intent`), or with a saved card. Network calls; the outcome is applied through
    purchase_apply_intent like any other report from Stripe."""
    purchase = CreditPurchase.objects.select_related("company").get(pk=purchase.pk)
    if purchase.method != Method.CARD or purchase.status != Status.PENDING or not purchase.stripe_payment_intent:
        raise ApplicationError("This purchase is no longer awaiting payment.", code="not_pending")
    company = purchase.company
    forget: str | None = None
    if saved_card is not None:
        if saved_card.company_id != company.pk:
            raise ApplicationError("Choose one of your company's saved cards.", field="payment_method")
        payment_method, brand, last4 = saved_card.stripe_id, saved_card.brand, saved_card.last4
    else:
        if not setup_intent or setup_intent != purchase.stripe_setup_intent:
            raise ApplicationError("The card form has expired. Reload the page and enter the card again.")
        setup = clients.setup_intent_retrieve(setup_intent)
        if setup.status != "succeeded" or not setup.payment_method:
            raise ApplicationError("The card was not accepted. Check its details and try again.", code="card_declined")
        card = clients.payment_method_retrieve(setup.payment_method)
        customer = stripe_customer_id(company)
        if card.customer not in (None, customer):
            raise ApplicationError("This card cannot be used here.")
        if purchase.save_card:
            if card.customer is None:  # the local imitation does not attach on setup
                card = clients.payment_method_attach(card.id, customer=customer)
            payment_method_record(actor=actor, company=company, card=card)
        elif card.customer is not None:
            forget = card.id
        payment_method, brand, last4 = card.id, card.brand, card.last4
    purchase_mark(purchase, card_brand=brand[:30], card_last4=last4[:4])
    try:
        intent = clients.payment_intent_confirm(purchase.stripe_payment_intent, payment_method=payment_method)
    except clients.PaymentProviderError:
        # Perhaps confirmed already (a double submit): what Stripe holds now decides.
        intent = clients.payment_intent_retrieve(purchase.stripe_payment_intent)
        if intent.status not in ("succeeded", "processing", "requires_action"):
            raise
    if forget and intent.status != "requires_action":
        try:
            clients.payment_method_detach(forget)
        except clients.PaymentProviderError:
            logger.warning("Could not detach the unsaved card %s", forget)
    applied = purchase_apply_intent(intent=intent, actor=actor) or purchase
    if intent.status == "requires_action":
        return PurchaseResult(purchase=applied, client_secret=intent.client_secret, requires_action=True)
    return PurchaseResult(purchase=applied)


# --- Stripe tells us what happened ---------------------------------------------------------------


def _find_for_update(intent: clients.PaymentIntentInfo) -> CreditPurchase | None:
    purchase = (
        CreditPurchase.objects.select_for_update(of=("self",))
        .select_related("company")
        .filter(stripe_payment_intent=intent.id)
        .first()
    )
    if purchase is not None:
        return purchase
    # Created at Stripe but its id never stored (the process died in between).
    try:
        public_id = uuid.UUID(intent.metadata.get("purchase", ""))
    except ValueError:
        return None
    purchase = (
        CreditPurchase.objects.select_for_update(of=("self",))
        .select_related("company")
        .filter(public_id=public_id, stripe_payment_intent__isnull=True, method__in=[Method.CARD, Method.PAYPAL])
        .first()
    )
    if purchase is not None:
        purchase.stripe_payment_intent = intent.id
        purchase.save(update_fields=["stripe_payment_intent", "updated_at"])
    return purchase


def purchase_apply_intent(*, intent: clients.PaymentIntentInfo, actor: Actor = SYSTEM) -> CreditPurchase | None:
    """Bring a purchase in line with its PaymentIntent as Stripe reported it (a verified webhook's
    object, or a retrieval). Succeeded: credit, once. Failed or canceled: record it, unless the
    purchase was already paid (events can arrive late and in any order). No network calls."""
    with transaction.atomic():
        purchase = _find_for_update(intent)
        if purchase is None:
            logger.info("PaymentIntent %s belongs to no purchase", intent.id)
            return None
        if intent.status == "succeeded":
            _credit_stripe(purchase=purchase, intent=intent, actor=actor)
        elif intent.status == "canceled":
            if purchase.status in (Status.PENDING, Status.FAILED):
                purchase_set_status(purchase, Status.CANCELED, actor=actor)
        elif intent.status == "requires_payment_method" and intent.error_message and purchase.status == Status.PENDING:
            # This attempt was declined. A later success on the same intent still credits.
            purchase_set_status(purchase, Status.FAILED, actor=actor, failure_message=intent.error_message[:500])
        return purchase


def _credit_stripe(*, purchase: CreditPurchase, intent: clients.PaymentIntentInfo, actor: Actor) -> None:
    if purchase.status in CreditPurchase.CREDITED:
        return  # credited already: by the other path, or by an earlier delivery
    received = intent.amount_received if intent.amount_received is not None else intent.amount
    if intent.currency != purchase.currency or received != purchase.amount.quantize(CENTS):
        # Never credit what we did not sell; staff look at the failed event.
        logger.error(
            "PaymentIntent %s paid %s %s for purchase %s of %s %s",
            intent.id,
            received,
            intent.currency,
            purchase.public_id,
            purchase.amount,
            purchase.currency,
        )
        raise PaymentMismatch(
            f"Stripe reports {format_money(received, intent.currency)} paid for a purchase of "
            f"{format_money(purchase.amount, purchase.currency)}; our staff will look into it."
        )
    purchase_credit(
        actor=actor,
        purchase=purchase,
        received=received,
        cash=LedgerAccount.Kind.STRIPE_CASH,
        key=f"stripe:{intent.id}",
        description=f"Credit bought by {method_label(purchase.method).lower()}",
    )


def purchase_sync(*, purchase: CreditPurchase) -> tuple[CreditPurchase, clients.PaymentIntentInfo | None]:
    """The retrieval path: ask Stripe how an unfinished card or PayPal purchase stands and apply
    it. Network call; returns the purchase and the intent (None when nothing was asked)."""
    recent = purchase.created_at >= timezone.now() - timedelta(hours=settings.CREDIT_PURCHASE_EXPIRY_HOURS)
    unfinished = purchase.status == Status.PENDING or (purchase.status == Status.FAILED and recent)
    if not purchase.is_stripe or not purchase.stripe_payment_intent or not unfinished:
        return purchase, None
    intent = clients.payment_intent_retrieve(purchase.stripe_payment_intent)
    return purchase_apply_intent(intent=intent) or purchase, intent


# --- Giving up a purchase -----------------------------------------------------------------------


def purchase_cancel(*, actor: Actor, purchase: CreditPurchase) -> CreditPurchase:
    """The customer gives up a purchase still awaiting payment (or whose payment failed), so no
    "Awaiting payment" row stays open. A card or PayPal purchase is canceled at Stripe first, so
    it can no longer be paid; should Stripe say it was paid meanwhile, it is credited instead and
    the cancel refused. A wire that arrives after its purchase was canceled is still credited by
    staff (purchase_confirm_wire takes any purchase not yet credited)."""
    if purchase.status not in (Status.PENDING, Status.FAILED):
        raise Conflict(
            f"This purchase is {purchase.get_status_display().lower()}: only one awaiting payment can be cancelled.",
            code="not_cancellable",
        )
    if purchase.is_stripe and purchase.stripe_payment_intent:
        try:
            intent = clients.payment_intent_cancel(purchase.stripe_payment_intent)
        except clients.PaymentProviderError:
            intent = clients.payment_intent_retrieve(purchase.stripe_payment_intent)  # paid meanwhile?
        purchase = purchase_apply_intent(intent=intent, actor=actor) or purchase
        if purchase.status in CreditPurchase.CREDITED:
            paid = format_money(purchase.amount_received or purchase.amount, purchase.currency)
            raise Conflict(
                f"This purchase was paid before it could be cancelled: {paid} was added to your balance.",
                code="already_paid",
            )
        if purchase.status == Status.CANCELED:
            return purchase
    with transaction.atomic():
        locked = CreditPurchase.objects.select_for_update(of=("self",)).get(pk=purchase.pk)
        if locked.status in CreditPurchase.CREDITED:
            raise Conflict("This purchase was paid before it could be cancelled.", code="already_paid")
        if locked.status in (Status.PENDING, Status.FAILED):
            purchase_set_status(locked, Status.CANCELED, actor=actor)
    return locked


def purchases_reconcile(*, now: datetime) -> dict[str, int]:
    """Periodic: settle card and PayPal purchases the browser never finished. Each unfinished
    purchase is retrieved (and credited if Stripe says it was paid); one left unpaid past the
    expiry is canceled at Stripe, so it can no longer be paid; one whose intent was never stored
    (the request died in between) is canceled as soon as it is past the grace."""
    expiry = now - timedelta(hours=settings.CREDIT_PURCHASE_EXPIRY_HOURS)
    candidates = list(
        CreditPurchase.objects.filter(method__in=[Method.CARD, Method.PAYPAL], created_at__lt=now - RECONCILE_GRACE)
        .filter(Q(status=Status.PENDING) | Q(status=Status.FAILED, created_at__gte=expiry))
        .order_by("created_at")[:RECONCILE_BATCH]
    )
    counts = {"checked": 0, "credited": 0, "canceled": 0, "errors": 0}
    # Wires nobody sent: canceled after WIRE_PURCHASE_EXPIRY_DAYS, so the list does not keep an
    # "Awaiting payment" row for ever (one that arrives later is still credited by staff).
    stale_wires = CreditPurchase.objects.filter(
        method=Method.BANK_WIRE,
        status=Status.PENDING,
        created_at__lt=now - timedelta(days=settings.WIRE_PURCHASE_EXPIRY_DAYS),
    ).order_by("created_at")[:RECONCILE_BATCH]
    for wire in stale_wires:
        with transaction.atomic():
            locked = CreditPurchase.objects.select_for_update(of=("self",)).get(pk=wire.pk)
            if locked.status == Status.PENDING:
                purchase_set_status(locked, Status.CANCELED, actor=SYSTEM)
                counts["canceled"] += 1
    for purchase in candidates:
        counts["checked"] += 1
        try:
            if not purchase.stripe_payment_intent:
                # Interrupted between creating the row and storing its intent (the intent is
                # created at once, so a purchase past the grace has none only then). Nobody was
                # given a client secret, so nothing can be paid and a retry only reads it: it is
                # canceled now, not left pending for a day. Should an intent of it still be paid
                # (found by its metadata), the payment is credited all the same.
                with transaction.atomic():
                    locked = CreditPurchase.objects.select_for_update().get(pk=purchase.pk)
                    if locked.status == Status.PENDING and not locked.stripe_payment_intent:
                        purchase_set_status(locked, Status.CANCELED, actor=SYSTEM)
                        counts["canceled"] += 1
                continue
            synced, intent = purchase_sync(purchase=purchase)
            if synced.status == Status.PENDING and purchase.created_at < expiry and intent is not None:
                try:
                    intent = clients.payment_intent_cancel(intent.id)
                except clients.PaymentProviderError:
                    intent = clients.payment_intent_retrieve(intent.id)  # paid or canceled meanwhile?
                synced = purchase_apply_intent(intent=intent) or synced
                counts["canceled"] += synced.status == Status.CANCELED
            counts["credited"] += synced.status == Status.SUCCEEDED
        except ApplicationError:
            counts["errors"] += 1
            logger.exception("Could not reconcile purchase %s", purchase.public_id)
    return counts
