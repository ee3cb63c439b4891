"""Reads about companies: memberships, roles and the purchase policy in force."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db.models import QuerySet

from apps.companies.models import (
    Company,
    Invitation,
    Membership,
    PurchasePolicy,
    PurchaseTier,
    VerificationRequest,
)
from apps.core.actor import Actor

PAYMENT_METHOD_LABELS = {"card": "Card", "paypal": "PayPal", "bank_wire": "Bank wire"}

# The documented defaults (also seeded by a migration). Used when a tier's row is
# missing, so a missing row never means "unlimited".
DEFAULT_POLICIES = {
    PurchaseTier.UNVERIFIED: {"max_purchase": Decimal("100"), "allow_bank_wire": False},
    PurchaseTier.VERIFIED: {"max_purchase": Decimal("5000"), "allow_bank_wire": True},
}


@dataclass(frozen=True)
class EffectivePolicy:
    tier: str
    max_purchase: Decimal
    limit_overridden: bool
    payment_methods: tuple[str, ...]
    currency: str

    @property
    def payment_method_labels(self) -> list[str]:
        return [PAYMENT_METHOD_LABELS[m] for m in self.payment_methods]


def _policy_row(tier: str) -> PurchasePolicy:
    policy = PurchasePolicy.objects.filter(tier=tier).first()
    if policy is None:
        policy = PurchasePolicy(tier=tier, **DEFAULT_POLICIES[PurchaseTier(tier)])
    return policy


def _methods(policy: PurchasePolicy) -> tuple[str, ...]:
    flags = (("card", policy.allow_card), ("paypal", policy.allow_paypal), ("bank_wire", policy.allow_bank_wire))
    return tuple(name for name, allowed in flags if allowed)


def purchase_tier_for(company: Company) -> str:
    # Pending and rejected companies buy as unverified ones do.
    return PurchaseTier.VERIFIED if company.is_verified else PurchaseTier.UNVERIFIED


def purchase_policy_for_company(company: Company) -> EffectivePolicy:
    tier = purchase_tier_for(company)
    policy = _policy_row(tier)
    override = company.purchase_limit_override
    return EffectivePolicy(
        tier=tier,
        max_purchase=override if override is not None else policy.max_purchase,
        limit_overridden=override is not None,
        payment_methods=_methods(policy),
        currency=company.currency,
    )


def verified_policy_preview(company: Company) -> EffectivePolicy:
    """What verification would give this company: shown to unverified companies."""
    policy = _policy_row(PurchaseTier.VERIFIED)
    return EffectivePolicy(
        tier=PurchaseTier.VERIFIED,
        max_purchase=max(policy.max_purchase, company.purchase_limit_override or Decimal("0")),
        limit_overridden=False,
        payment_methods=_methods(policy),
        currency=company.currency,
    )


def companies_for_user(*, user: Any) -> QuerySet[Company]:
    return Company.objects.filter(memberships__user=user).order_by("name")


def membership_for(*, user: Any, company: Company) -> Membership | None:
    return Membership.objects.filter(user=user, company=company).first()


def actor_role(*, actor: Actor, company: Company) -> str | None:
    """The role the actor holds in this company, or None."""
    if actor.api_key is not None:
        return actor.api_key.role if actor.api_key.company_id == company.pk else None
    if actor.user is None:
        return None
    membership = membership_for(user=actor.user, company=company)
    return membership.role if membership else None


def member_list(*, company: Company) -> QuerySet[Membership]:
    return Membership.objects.for_company(company).select_related("user").order_by("created_at")


def invitation_list(*, company: Company) -> QuerySet[Invitation]:
    return Invitation.objects.for_company(company).select_related("invited_by").order_by("-created_at")


def latest_verification_request(*, company: Company) -> VerificationRequest | None:
    return (
        VerificationRequest.objects.for_company(company).prefetch_related("documents").order_by("-created_at").first()
    )


@dataclass(frozen=True)
class BillingDetails:
    """Who the company is on a receipt: the legal name and address staff verified (else the
    company's name and country alone), its registration and VAT/tax numbers when known."""

    name: str
    legal_name: str
    address_lines: tuple[str, ...]
    country: str
    registration_number: str
    tax_number: str


def company_billing_details(*, company: Company) -> BillingDetails:
    """Queries: the latest approved verification request (1)."""
    verified = (
        VerificationRequest.objects.for_company(company)
        .filter(status=VerificationRequest.Status.APPROVED)
        .order_by("-reviewed_at", "-created_at")
        .first()
    )
    if verified is None:
        return BillingDetails(
            name=company.name,
            legal_name=company.name,
            address_lines=(),
            country=str(company.country.name),
            registration_number="",
            tax_number=company.tax_number,
        )
    town = " ".join(part for part in (verified.postal_code, verified.city) if part)
    return BillingDetails(
        name=company.name,
        legal_name=verified.legal_name,
        address_lines=tuple(line for line in (verified.address_line1, verified.address_line2, town) if line),
        country=str(verified.country.name),
        registration_number=verified.registration_number,
        tax_number=company.tax_number,
    )
