"""The company's Stripe customer and its saved cards (the cards themselves are held by Stripe:
we keep the brand, last four digits and expiry)."""

from __future__ import annotations

import logging

from django.db import IntegrityError, transaction

from apps.audit.services import audit_record
from apps.billing.models import SavedPaymentMethod, StripeCustomer
from apps.billing.purchases import clients
from apps.companies.models import Company
from apps.core.actor import Actor
from apps.core.exceptions import ApplicationError

logger = logging.getLogger(__name__)


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
