from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Any, Self

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django_countries.fields import CountryField

from apps.core.models import PublicModel


class Currency(models.TextChoices):
    USD = "USD", "US dollar"
    EUR = "EUR", "Euro"
    GBP = "GBP", "Pound sterling"


class VerificationStatus(models.TextChoices):
    UNVERIFIED = "unverified", "Unverified"
    PENDING = "pending", "Pending review"
    VERIFIED = "verified", "Verified"
    REJECTED = "rejected", "Rejected"


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    BILLING = "billing", "Billing"
    VIEWER = "viewer", "Viewer"


class Capability(StrEnum):
    """What a role may do. Views and services ask for a capability, never for a role."""

    VIEW = "view"
    VIEW_REPORTS = "view_reports"
    VIEW_AUDIT = "view_audit"
    MANAGE_COMPANY = "manage_company"
    MANAGE_MEMBERS = "manage_members"
    MANAGE_OWNERS = "manage_owners"
    MANAGE_SERVICE = "manage_service"
    MANAGE_BILLING = "manage_billing"
    MANAGE_API_KEYS = "manage_api_keys"


ROLE_CAPABILITIES: dict[str, frozenset[Capability]] = {
    Role.OWNER: frozenset(Capability),
    Role.ADMIN: frozenset(Capability) - {Capability.MANAGE_OWNERS},
    Role.BILLING: frozenset({Capability.VIEW, Capability.VIEW_REPORTS, Capability.MANAGE_BILLING}),
    Role.VIEWER: frozenset({Capability.VIEW, Capability.VIEW_REPORTS}),
}


def role_can(role: str, capability: Capability) -> bool:
    return capability in ROLE_CAPABILITIES.get(role, frozenset())


class CompanyQuerySet(models.QuerySet["Company"]):
    def for_user(self, user: Any) -> CompanyQuerySet:
        return self.filter(memberships__user=user)


class Company(PublicModel):
    name = models.CharField(max_length=120)
    country = CountryField()
    # Fixed at creation: balances, prices and ledger entries are all in this currency.
    currency = models.CharField(max_length=3, choices=Currency.choices)
    verification_status = models.CharField(
        max_length=12, choices=VerificationStatus.choices, default=VerificationStatus.UNVERIFIED
    )
    verified_at = models.DateTimeField(null=True, blank=True)
    # Staff may raise (or lower) one company's purchase limit above its tier's.
    purchase_limit_override = models.DecimalField(
        max_digits=14, decimal_places=4, null=True, blank=True, validators=[MinValueValidator(Decimal("0"))]
    )
    # The buyer's VAT (or other tax) number, printed on its receipts; optional.
    tax_number = models.CharField(max_length=40, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = CompanyQuerySet.as_manager()

    class Meta:
        verbose_name_plural = "companies"
        constraints = [
            models.CheckConstraint(condition=Q(currency__in=Currency.values), name="company_currency_known"),
            models.CheckConstraint(
                condition=Q(verification_status__in=VerificationStatus.values), name="company_verification_known"
            ),
            models.CheckConstraint(
                condition=Q(purchase_limit_override__isnull=True) | Q(purchase_limit_override__gte=0),
                name="company_purchase_limit_override_not_negative",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_verified(self) -> bool:
        return self.verification_status == VerificationStatus.VERIFIED


class CompanyOwnedQuerySet(models.QuerySet[Any]):
    """The entry point for every request-serving query of a company's rows."""

    def for_company(self, company: Company) -> Self:
        return self.filter(company=company)


class Membership(PublicModel):
    company = models.ForeignKey(Company, on_delete=models.PROTECT, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices)
    updated_at = models.DateTimeField(auto_now=True)

    objects = CompanyOwnedQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["company", "user"], name="membership_one_per_user_and_company"),
            models.CheckConstraint(condition=Q(role__in=Role.values), name="membership_role_known"),
        ]
        ordering = ["created_at"]

    def __str__(self) -> str:
        return f"{self.user} in {self.company} ({self.role})"

    def can(self, capability: Capability) -> bool:
        return role_can(self.role, capability)


class Invitation(PublicModel):
    company = models.ForeignKey(Company, on_delete=models.PROTECT, related_name="invitations")
    email = models.EmailField()
    role = models.CharField(max_length=10, choices=Role.choices)
    # Only a SHA-256 of the token is kept: a database leak does not leak live links.
    token_hash = models.CharField(max_length=64, unique=True)
    invited_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", null=True)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = CompanyOwnedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(role__in=Role.values), name="invitation_role_known"),
            models.CheckConstraint(
                condition=Q(accepted_at__isnull=True) | Q(revoked_at__isnull=True),
                name="invitation_not_both_accepted_and_revoked",
            ),
        ]

    def __str__(self) -> str:
        return f"Invitation of {self.email} to {self.company}"

    @property
    def status(self) -> str:
        if self.accepted_at:
            return "accepted"
        if self.revoked_at:
            return "revoked"
        if self.expires_at <= timezone.now():
            return "expired"
        return "pending"


class VerificationRequest(PublicModel):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending review"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"

    company = models.ForeignKey(Company, on_delete=models.PROTECT, related_name="verification_requests")
    legal_name = models.CharField(max_length=200)
    registration_number = models.CharField(max_length=64)
    address_line1 = models.CharField(max_length=200)
    address_line2 = models.CharField(max_length=200, blank=True)
    city = models.CharField(max_length=100)
    postal_code = models.CharField(max_length=20, blank=True)
    country = CountryField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    submitted_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", null=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    # Shown to the company when rejected.
    reason = models.TextField(blank=True)

    objects = CompanyOwnedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # At most one request under review per company at a time.
            models.UniqueConstraint(
                fields=["company"], condition=Q(status="pending"), name="verification_one_pending_per_company"
            ),
            models.CheckConstraint(
                condition=~Q(status="rejected") | ~Q(reason=""), name="verification_rejection_has_reason"
            ),
        ]

    def __str__(self) -> str:
        return f"Verification of {self.company} ({self.status})"


def verification_document_path(instance: VerificationDocument, filename: str) -> str:
    return f"verification/{instance.request.company.public_id}/{instance.public_id}/{filename}"


class VerificationDocument(PublicModel):
    request = models.ForeignKey(VerificationRequest, on_delete=models.PROTECT, related_name="documents")
    file = models.FileField(upload_to=verification_document_path, max_length=300)
    original_name = models.CharField(max_length=200)
    content_type = models.CharField(max_length=100)
    size = models.PositiveIntegerField()

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return self.original_name


class PurchaseTier(models.TextChoices):
    UNVERIFIED = "unverified", "Unverified"
    VERIFIED = "verified", "Verified"


class PurchasePolicy(models.Model):
    """Staff-editable: what a company of a verification tier may buy in one purchase, and how."""

    tier = models.CharField(max_length=12, choices=PurchaseTier.choices, unique=True)
    # In the company's own currency.
    max_purchase = models.DecimalField(max_digits=14, decimal_places=4, validators=[MinValueValidator(Decimal("0"))])
    allow_card = models.BooleanField(default=True)
    allow_paypal = models.BooleanField(default=True)
    allow_bank_wire = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "purchase policies"
        constraints = [
            models.CheckConstraint(condition=Q(max_purchase__gte=0), name="purchase_policy_max_not_negative"),
            models.CheckConstraint(condition=Q(tier__in=PurchaseTier.values), name="purchase_policy_tier_known"),
        ]

    def __str__(self) -> str:
        return f"{self.get_tier_display()} purchase policy"


class Notice(PublicModel):
    """Something a company's admins must see on the dashboard (a caller ID removed, a failed charge)."""

    class Level(models.TextChoices):
        INFO = "info", "Information"
        WARNING = "warning", "Warning"
        ERROR = "error", "Action needed"

    company = models.ForeignKey(Company, on_delete=models.PROTECT, related_name="notices")
    level = models.CharField(max_length=10, choices=Level.choices, default=Level.WARNING)
    kind = models.CharField(max_length=40)
    # What happened, in a few words: the e-mail's subject ("Landline +44… is verified").
    subject = models.CharField(max_length=200, blank=True)
    message = models.TextField()
    dismissed_at = models.DateTimeField(null=True, blank=True)
    dismissed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )

    objects = CompanyOwnedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.message[:80]
