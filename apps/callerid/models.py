from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django_countries.fields import CountryField
from phonenumber_field.modelfields import PhoneNumberField

from apps.companies.models import Company, CompanyOwnedQuerySet
from apps.core.models import PublicModel

VERIFICATION_DAYS = 365


class CallerIdCountry(models.Model):
    """Staff-editable: countries whose numbers may be presented as caller ID."""

    country = CountryField(unique=True)
    note = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["country"]
        verbose_name_plural = "caller ID countries"

    def __str__(self) -> str:
        return self.country.name


def landline_proof_path(instance: Landline, filename: str) -> str:
    return f"landline-proofs/{instance.company.public_id}/{instance.public_id}/{filename}"


class Landline(PublicModel):
    """A fixed-line number a company says it owns, proved by an uploaded document."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending review"
        VERIFIED = "verified", "Verified"
        REJECTED = "rejected", "Rejected"
        EXPIRED = "expired", "Expired (prove again)"
        WITHDRAWN = "withdrawn", "Withdrawn"

    company = models.ForeignKey(Company, on_delete=models.PROTECT, related_name="landlines")
    number = PhoneNumberField()
    proof = models.FileField(upload_to=landline_proof_path, max_length=300)
    proof_name = models.CharField(max_length=200)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    reason = models.TextField(blank=True)
    submitted_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+")
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    verified_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = CompanyOwnedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # One live registration per number per company; history rows stay.
            models.UniqueConstraint(
                fields=["company", "number"],
                condition=Q(status__in=["pending", "verified"]),
                name="landline_one_live_per_company",
            ),
            models.CheckConstraint(
                condition=~Q(status="verified") | Q(expires_at__isnull=False), name="landline_verified_has_expiry"
            ),
            models.CheckConstraint(
                condition=~Q(status="rejected") | ~Q(reason=""), name="landline_rejection_has_reason"
            ),
        ]

    def __str__(self) -> str:
        return str(self.number)
