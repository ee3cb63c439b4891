from __future__ import annotations

from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower

from apps.companies.models import Company, CompanyOwnedQuerySet
from apps.core.models import PublicModel

NAME_PATTERN = r"^[a-z][a-z0-9._-]{5,31}$"
name_validator = RegexValidator(
    NAME_PATTERN,
    "6 to 32 characters: lowercase letters, digits, “.”, “-” or “_”, starting with a letter.",
)


class BusinessAccount(PublicModel):
    """A callable name routed to at most one SIP profile of its company."""

    company = models.ForeignKey(Company, on_delete=models.PROTECT, related_name="business_accounts")
    name = models.CharField(max_length=32, validators=[name_validator])
    display_name = models.CharField(max_length=100)
    member = models.ForeignKey(
        "companies.Membership", on_delete=models.SET_NULL, null=True, blank=True, related_name="business_accounts"
    )
    sip_profile = models.ForeignKey(
        "sip_profiles.SipProfile", on_delete=models.PROTECT, null=True, blank=True, related_name="business_accounts"
    )
    # An account routed to a profile cannot be used to sign in anywhere.
    signin_enabled = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = CompanyOwnedQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(Lower("name"), name="business_account_name_unique_ci"),
            models.CheckConstraint(
                condition=Q(sip_profile__isnull=True, signin_enabled=True)
                | Q(sip_profile__isnull=False, signin_enabled=False),
                name="business_account_signin_only_when_unassigned",
            ),
        ]

    def __str__(self) -> str:
        return self.name
