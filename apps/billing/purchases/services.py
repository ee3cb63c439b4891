"""Buying company credit: card and PayPal through Stripe PaymentIntents, bank wire confirmed by
staff; saved cards; refunds.

Exactly-once crediting. A Stripe payment is credited by purchase_apply_intent, whichever reaches
it first: the verified webhook (apps.billing.purchases.webhooks) or a server-side retrieval of the
PaymentIntent (the browser coming back, the pay step, the reconcile task). It locks the purchase
row, so the two queue; the second finds the purchase credited and stops. Under that, the ledger
key `stripe:<payment intent>` is unique, so even a bug above could not credit twice. A wire is
credited under `wire:<purchase>` by staff, once.

Network calls (apps.billing.purchases.clients) are never made inside a database transaction: each service
does its Stripe calls first or last, and its database writes in short transactions of their own.
"""

from __future__ import annotations

import logging
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from apps.audit.services import audit_record
from apps.billing.charges.services import charges_settle_after_credit
from apps.billing.ledger.services import Leg, company_account, ledger_post, platform_account
from apps.billing.models import (
    CreditPurchase,
    LedgerAccount,
    LedgerTransaction,
    SavedPaymentMethod,
    StripeCustomer,
)
from apps.billing.money import CENTS, clean_amount, format_money
from apps.billing.purchases import clients
from apps.companies.models import Company, Notice
from apps.companies.notices import notice_create
from apps.companies.selectors import PAYMENT_METHOD_LABELS, purchase_policy_for_company
from apps.core.actor import Actor
from apps.core.exceptions import ApplicationError, Conflict

logger = logging.getLogger(__name__)

Method = CreditPurchase.Method
Status = CreditPurchase.Status
SYSTEM = Actor.system()
# Unambiguous characters for wire references: no 0/O, 1/I/L.
REFERENCE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
# A refund still "in progress" after this long was interrupted (a crash): it may be continued.
REFUND_STALE_AFTER = timedelta(minutes=10)
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


def _label(method: str) -> str:
    return PAYMENT_METHOD_LABELS.get(method, method)


# --- Rules ----------------------------------------------------------------------------------


def purchase_amount(value: Any, *, company: Company) -> Decimal:
    """A purchase amount the company may buy: at least the minimum, at most its limit, in cents."""
    # Stripe charges whole cents; "25.500" is fine, "25.505" is not.
    amount = clean_amount(value, quantum=CENTS).quantize(CENTS)
    currency = company.currency
    minimum = settings.MINIMUM_PURCHASE
    if amount < minimum:
        raise ApplicationError(
            f"The minimum purchase is {format_money(minimum, currency)}.", field="amount", code="below_minimum"
        )
    policy = purchase_policy_for_company(company)
    if amount > policy.max_purchase:
        hint = "" if company.is_verified else " Verify your company to raise it."
        raise ApplicationError(
            f"Your limit is {format_money(policy.max_purchase, currency)} per purchase.{hint}",
            field="amount",
            code="above_limit",
        )
    return amount


def purchase_method(value: Any, *, company: Company) -> str:
    if value not in Method.values:
        raise ApplicationError("Choose card, PayPal or bank wire.", field="method")
    policy = purchase_policy_for_company(company)
    if value not in policy.payment_methods:
        if value == Method.BANK_WIRE and not company.is_verified:
            message = "Bank wire is available to verified companies. Verify your company to pay by bank wire."
        else:
            message = f"{_label(value)} is not available to your company."
        raise ApplicationError(message, field="method", code="method_not_allowed")
    return str(value)


# --- Stripe customer and saved cards -----------------------------------------------------------


def stripe_customer_id(company: Company) -> str:
    """The company's Stripe customer, created at first use. Makes a network call: outside transactions."""
    existing = StripeCustomer.objects.filter(company=company).values_list("stripe_id", flat=True).first()
    if existing:
        return existing
    created = clients.customer_create(
        name=company.name, company_id=str(company.public_id), idempotency_key=f"customer:{company.public_id}"
    )
    try:
        with transaction.atomic():
            StripeCustomer.objects.create(company=company, stripe_id=created)
    except IntegrityError:
        # A concurrent request stored the company's customer first (the real API returns the
        # same customer for the same idempotency key; the local imitation makes a second one).
        winner = StripeCustomer.objects.get(company=company).stripe_id
        if winner != created:
            try:
                clients.customer_delete(created)
            except clients.PaymentProviderError:
                logger.warning("Could not delete the unused Stripe customer %s", created)
        return winner
    return created


def payment_method_record(*, actor: Actor, company: Company, card: clients.CardInfo) -> SavedPaymentMethod:
    """Remember a card saved at Stripe. The company's first card becomes its default."""
    existing = SavedPaymentMethod.objects.filter(stripe_id=card.id).first()
    if existing is not None:
        if existing.company_id != company.pk:
            raise ApplicationError("This card belongs to another company.")
        return existing
    for may_be_default in (True, False):
        try:
            with transaction.atomic():
                has_default = SavedPaymentMethod.objects.for_company(company).filter(is_default=True).exists()
                saved = SavedPaymentMethod.objects.create(
                    company=company,
                    stripe_id=card.id,
                    brand=card.brand[:30],
                    last4=card.last4,
                    exp_month=card.exp_month,
                    exp_year=card.exp_year,
                    is_default=may_be_default and not has_default,
                    created_by=actor.user,
                )
                audit_record(
                    actor=actor,
                    action="payment_method.saved",
                    company=company,
                    target=saved,
                    changes={"card": {"before": None, "after": str(saved)}},
                )
            return saved
        except IntegrityError:
            # The same card saved by a concurrent request; or another card became the default
            # at the same moment (the partial unique index): then save this one as not default.
            existing = SavedPaymentMethod.objects.filter(stripe_id=card.id).first()
            if existing is not None:
                return existing
    raise ApplicationError("The card could not be saved. Please try again.")


def payment_method_set_default(*, actor: Actor, method: SavedPaymentMethod) -> SavedPaymentMethod:
    with transaction.atomic():
        # Lock every card of the company: two "make default" requests then run one after the other.
        cards = list(SavedPaymentMethod.objects.for_company(method.company).select_for_update().order_by("pk"))
        before = next((c for c in cards if c.is_default), None)
        if before is not None and before.pk == method.pk:
            return before
        SavedPaymentMethod.objects.for_company(method.company).filter(is_default=True).update(is_default=False)
        SavedPaymentMethod.objects.filter(pk=method.pk).update(is_default=True)
        method.is_default = True
        audit_record(
            actor=actor,
            action="payment_method.default_set",
            company=method.company,
            target=method,
            changes={"default": {"before": str(before) if before else None, "after": str(method)}},
        )
    return method


def payment_method_remove(*, actor: Actor, method: SavedPaymentMethod) -> None:
    """Detach the card at Stripe, then forget it. If Stripe refuses, the card stays listed."""
    clients.payment_method_detach(method.stripe_id)
    with transaction.atomic():
        deleted, _ = SavedPaymentMethod.objects.filter(pk=method.pk).delete()
        if deleted:
            audit_record(
                actor=actor,
                action="payment_method.removed",
                company=method.company,
                target=method,
                changes={"card": {"before": str(method), "after": None}},
            )


# --- Starting a purchase ------------------------------------------------------------------------


def _start_purchase(
    *, actor: Actor, company: Company, amount: Decimal, fields: dict[str, Any], changes: dict[str, Any]
) -> CreditPurchase:
    """Create a pending purchase and its audit event (amount first, then `changes`)."""
    purchase = CreditPurchase.objects.create(
        company=company, amount=amount, currency=company.currency, created_by=actor.user, **fields
    )
    audit_record(
        actor=actor,
        action="credit.purchase_started",
        company=company,
        target=purchase,
        changes={
            "amount": {"before": None, "after": format_money(amount, company.currency)},
            **{name: {"before": None, "after": value} for name, value in changes.items()},
        },
    )
    return purchase


def _wire_reference() -> str:
    chars = "".join(secrets.choice(REFERENCE_ALPHABET) for _ in range(8))
    return f"SM-{chars[:4]}-{chars[4:]}"


def _create_wire(
    *, actor: Actor, company: Company, amount: Decimal, on_created: Callable[[CreditPurchase], None] | None
) -> CreditPurchase:
    for _ in range(5):
        try:
            with transaction.atomic():
                reference = _wire_reference()
                purchase = _start_purchase(
                    actor=actor,
                    company=company,
                    amount=amount,
                    fields={"method": Method.BANK_WIRE, "wire_reference": reference},
                    changes={"method": Method.BANK_WIRE, "wire_reference": reference},
                )
                if on_created is not None:
                    on_created(purchase)
                return purchase
        except IntegrityError as error:
            # 31^8 references make a clash rare; draw another one. Any other error is real.
            if "wire_reference" not in str(error):
                raise
    raise ApplicationError("Could not create a unique wire reference. Please try again.")


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
        return PurchaseResult(purchase=_create_wire(actor=actor, company=company, amount=amount, on_created=on_created))
    if saved_card is not None and (method != Method.CARD or saved_card.company_id != company.pk):
        raise ApplicationError("Choose one of your company's saved cards.", field="payment_method")

    customer = stripe_customer_id(company)
    with transaction.atomic():
        purchase = _start_purchase(
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
        _mark(purchase, status=Status.FAILED, failure_message=error.message[:500])
        raise
    CreditPurchase.objects.filter(pk=purchase.pk).update(stripe_payment_intent=intent.id)
    purchase.stripe_payment_intent = intent.id
    if saved_card is not None:
        return purchase_pay(actor=actor, purchase=purchase, saved_card=saved_card)
    return PurchaseResult(purchase=purchase, client_secret=intent.client_secret, requires_action=True)


def _mark(purchase: CreditPurchase, **fields: Any) -> None:
    CreditPurchase.objects.filter(pk=purchase.pk).update(**fields, updated_at=timezone.now())
    for name, value in fields.items():
        setattr(purchase, name, value)


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
        purchase = _start_purchase(
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
                _set_status(locked, Status.FAILED, actor=actor, failure_message=message)
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
            _set_status(locked, Status.FAILED, actor=actor, failure_message=message[:500])
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
                _set_status(locked, Status.CANCELED, actor=SYSTEM)
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
    _mark(purchase, stripe_setup_intent=setup.id)
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
    _mark(purchase, card_brand=brand[:30], card_last4=last4[:4])
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
                _set_status(purchase, Status.CANCELED, actor=actor)
        elif intent.status == "requires_payment_method" and intent.error_message and purchase.status == Status.PENDING:
            # This attempt was declined. A later success on the same intent still credits.
            _set_status(purchase, Status.FAILED, actor=actor, failure_message=intent.error_message[:500])
        return purchase


def _set_status(purchase: CreditPurchase, status: str, *, actor: Actor, failure_message: str = "") -> None:
    before = purchase.status
    purchase.status = status
    purchase.failure_message = failure_message
    purchase.save(update_fields=["status", "failure_message", "updated_at"])
    audit_record(
        actor=actor,
        action=f"credit.purchase_{status}",
        company=purchase.company,
        target=purchase,
        changes={"status": {"before": before, "after": status}},
    )


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
    _credit(
        actor=actor,
        purchase=purchase,
        received=received,
        cash=LedgerAccount.Kind.STRIPE_CASH,
        key=f"stripe:{intent.id}",
        description=f"Credit bought by {_label(purchase.method).lower()}",
    )


def _credit(
    *, actor: Actor, purchase: CreditPurchase, received: Decimal, cash: str, key: str, description: str
) -> None:
    """Post the money received (cash account → company balance) once, under `key`, and mark
    the purchase credited."""
    txn, _ = ledger_post(
        actor=actor,
        key=key,
        kind=LedgerTransaction.Kind.PURCHASE,
        company=purchase.company,
        currency=purchase.currency,
        description=description,
        legs=[
            Leg(platform_account(cash, purchase.currency), -received),
            Leg(company_account(purchase.company), received),
        ],
    )
    _record_credit(purchase=purchase, txn=txn, received=received, actor=actor)
    charges_settle_after_credit(purchase.company)


def _record_credit(*, purchase: CreditPurchase, txn: LedgerTransaction, received: Decimal, actor: Actor) -> None:
    before = purchase.status
    purchase.status = Status.SUCCEEDED
    purchase.amount_received = received
    purchase.succeeded_at = timezone.now()
    purchase.credit_transaction = txn
    purchase.failure_message = ""
    purchase.save(
        update_fields=[
            "status",
            "amount_received",
            "succeeded_at",
            "credit_transaction",
            "failure_message",
            "updated_at",
        ]
    )
    audit_record(
        actor=actor,
        action="credit.purchased",
        company=purchase.company,
        target=purchase,
        changes={
            "status": {"before": before, "after": Status.SUCCEEDED},
            "credited": {"before": None, "after": format_money(received, purchase.currency)},
        },
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


def purchases_reconcile(*, now: datetime) -> dict[str, int]:
    """Periodic: settle card and PayPal purchases the browser never finished. Each unfinished
    purchase is retrieved (and credited if Stripe says it was paid); one left unpaid past the
    expiry is canceled at Stripe, so it can no longer be paid."""
    expiry = now - timedelta(hours=settings.CREDIT_PURCHASE_EXPIRY_HOURS)
    candidates = list(
        CreditPurchase.objects.filter(method__in=[Method.CARD, Method.PAYPAL], created_at__lt=now - RECONCILE_GRACE)
        .filter(Q(status=Status.PENDING) | Q(status=Status.FAILED, created_at__gte=expiry))
        .order_by("created_at")[:RECONCILE_BATCH]
    )
    counts = {"checked": 0, "credited": 0, "canceled": 0, "errors": 0}
    for purchase in candidates:
        counts["checked"] += 1
        try:
            if not purchase.stripe_payment_intent:
                if purchase.created_at < expiry:
                    with transaction.atomic():
                        locked = CreditPurchase.objects.select_for_update().get(pk=purchase.pk)
                        if locked.status == Status.PENDING and not locked.stripe_payment_intent:
                            _set_status(locked, Status.CANCELED, actor=SYSTEM)
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


# --- Bank wire ---------------------------------------------------------------------------------------


def purchase_confirm_wire(*, actor: Actor, purchase: CreditPurchase, amount_received: Any) -> CreditPurchase:
    """Staff saw the wire arrive: credit what arrived (which may differ from what was asked), once."""
    received = clean_amount(amount_received, field="amount_received", quantum=CENTS).quantize(CENTS)
    with transaction.atomic():
        purchase = CreditPurchase.objects.select_for_update(of=("self",)).select_related("company").get(pk=purchase.pk)
        if purchase.method != Method.BANK_WIRE:
            raise ApplicationError("Only bank-wire purchases are confirmed by staff.", code="not_a_wire")
        if purchase.status in CreditPurchase.CREDITED:
            raise Conflict(
                f"Wire {purchase.wire_reference} was already confirmed: "
                f"{format_money(purchase.amount_received or Decimal(0), purchase.currency)} credited.",
                code="already_confirmed",
            )
        company = purchase.company
        _credit(
            actor=actor,
            purchase=purchase,
            received=received,
            cash=LedgerAccount.Kind.BANK_CASH,
            key=f"wire:{purchase.public_id}",
            description=f"Credit bought by bank wire {purchase.wire_reference}",
        )
        notice_create(
            company=company,
            kind="credit_wire_received",
            level=Notice.Level.INFO,
            message=f"We received your bank wire {purchase.wire_reference}: "
            f"{format_money(received, purchase.currency)} was added to your balance.",
        )
    return purchase


# --- Refunds ----------------------------------------------------------------------------------------


def _refund_key(purchase: CreditPurchase, attempt: int) -> str:
    return f"refund:{purchase.public_id}" if attempt == 1 else f"refund:{purchase.public_id}:{attempt}"


def purchase_refund(*, actor: Actor, purchase: CreditPurchase, reason: str) -> CreditPurchase:
    """Give a paid purchase's money back, taking its credit back from the company balance.

    The credit is taken back first, in the ledger, so it cannot be spent while Stripe refunds
    (and a company balance too low to give it back stops the refund before Stripe is asked).
    Then Stripe refunds, outside any transaction; if it refuses, a correcting transaction puts
    the credit back. A repeat (double click, retry) finds the refund done or in progress."""
    reason = (reason or "").strip()
    if not reason:
        raise ApplicationError("Give the reason for the refund.", field="reason")
    now = timezone.now()
    with transaction.atomic():
        purchase = CreditPurchase.objects.select_for_update(of=("self",)).select_related("company").get(pk=purchase.pk)
        if purchase.status == Status.REFUNDED:
            return purchase
        if purchase.status == Status.REFUNDING:
            if purchase.refund_started_at and purchase.refund_started_at > now - REFUND_STALE_AFTER:
                raise Conflict("A refund of this purchase is already in progress.", code="refund_in_progress")
            purchase.refund_started_at = now  # interrupted earlier: continue it below
            purchase.save(update_fields=["refund_started_at", "updated_at"])
        elif purchase.status != Status.SUCCEEDED:
            raise ApplicationError("Only a paid purchase can be refunded.", code="not_refundable")
        else:
            credited = purchase.amount_received or purchase.amount
            attempt = purchase.refund_attempts + 1
            company = purchase.company
            txn, _ = ledger_post(
                actor=actor,
                key=_refund_key(purchase, attempt),
                kind=LedgerTransaction.Kind.REFUND,
                company=company,
                currency=purchase.currency,
                description=f"Refund of {purchase}",
                legs=[
                    Leg(company_account(company), -credited),
                    Leg(platform_account(LedgerAccount.Kind.REFUNDS, purchase.currency), credited),
                ],
            )
            purchase.status = Status.REFUNDING
            purchase.refund_attempts = attempt
            purchase.refund_transaction = txn
            purchase.refund_reason = reason
            purchase.refund_started_at = now
            purchase.failure_message = ""
            purchase.save(
                update_fields=[
                    "status",
                    "refund_attempts",
                    "refund_transaction",
                    "refund_reason",
                    "refund_started_at",
                    "failure_message",
                    "updated_at",
                ]
            )
            audit_record(
                actor=actor,
                action="credit.refund_started",
                company=company,
                target=purchase,
                changes={
                    "status": {"before": Status.SUCCEEDED, "after": Status.REFUNDING},
                    "refunded": {"before": None, "after": format_money(credited, purchase.currency)},
                    "reason": {"before": None, "after": reason},
                },
            )

    stripe_refund = ""
    if purchase.is_stripe and purchase.stripe_payment_intent:
        stripe_refund = _refund_at_stripe(actor=actor, purchase=purchase)

    with transaction.atomic():
        purchase = CreditPurchase.objects.select_for_update(of=("self",)).select_related("company").get(pk=purchase.pk)
        if purchase.status != Status.REFUNDING:
            return purchase
        purchase.status = Status.REFUNDED
        purchase.refunded_at = timezone.now()
        purchase.stripe_refund = stripe_refund
        purchase.save(update_fields=["status", "refunded_at", "stripe_refund", "updated_at"])
        credited = purchase.amount_received or purchase.amount
        audit_record(
            actor=actor,
            action="credit.refunded",
            company=purchase.company,
            target=purchase,
            changes={"status": {"before": Status.REFUNDING, "after": Status.REFUNDED}},
        )
        notice_create(
            company=purchase.company,
            kind="credit_refunded",
            level=Notice.Level.INFO,
            message=f"Your purchase of {format_money(credited, purchase.currency)} on "
            f"{purchase.created_at:%d %b %Y} was refunded; the credit was taken back from your balance.",
        )
    return purchase


def _refund_at_stripe(*, actor: Actor, purchase: CreditPurchase) -> str:
    assert purchase.stripe_payment_intent
    purchase_id = str(purchase.public_id)
    try:
        refund = clients.refund_create(
            payment_intent=purchase.stripe_payment_intent,
            purchase_id=purchase_id,
            idempotency_key=_refund_key(purchase, purchase.refund_attempts),
        )
    except ApplicationError as error:
        # A timeout may hide a refund that was made: look before undoing anything.
        try:
            found = clients.refund_find(payment_intent=purchase.stripe_payment_intent, purchase_id=purchase_id)
        except ApplicationError:
            # Cannot tell: the purchase stays "refund in progress" and may be retried later.
            raise ApplicationError(
                f"Stripe could not be reached ({error.message}). The credit is held; try the refund again later.",
                code="refund_unknown",
            ) from error
        if found is None:
            _refund_undo(actor=actor, purchase=purchase, message=error.message)
            raise ApplicationError(
                f"Stripe did not refund: {error.message} The credit was put back.", code="refund_failed"
            ) from error
        refund = found
    return refund.id


def _refund_undo(*, actor: Actor, purchase: CreditPurchase, message: str) -> None:
    with transaction.atomic():
        purchase = CreditPurchase.objects.select_for_update(of=("self",)).select_related("company").get(pk=purchase.pk)
        if purchase.status != Status.REFUNDING:
            return
        credited = purchase.amount_received or purchase.amount
        company = purchase.company
        ledger_post(
            actor=actor,
            key=f"refund-undo:{purchase.public_id}:{purchase.refund_attempts}",
            kind=LedgerTransaction.Kind.ADJUSTMENT,
            company=company,
            currency=purchase.currency,
            description=f"Refund not made, credit restored: {purchase}",
            legs=[
                Leg(platform_account(LedgerAccount.Kind.REFUNDS, purchase.currency), -credited),
                Leg(company_account(company), credited),
            ],
        )
        purchase.status = Status.SUCCEEDED
        purchase.refund_transaction = None
        purchase.refund_started_at = None
        purchase.failure_message = f"Refund failed: {message}"[:500]
        purchase.save(
            update_fields=["status", "refund_transaction", "refund_started_at", "failure_message", "updated_at"]
        )
        audit_record(
            actor=actor,
            action="credit.refund_failed",
            company=company,
            target=purchase,
            changes={"status": {"before": Status.REFUNDING, "after": Status.SUCCEEDED}, "error": message},
        )
