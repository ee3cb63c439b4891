"""What was bought, when and at what price. The credit release turns each Charge into
a ledger debit of the company balance; until then charges are recorded only."""

from __future__ import annotations

from decimal import Decimal

from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q

from apps.companies.models import Company, CompanyOwnedQuerySet, Currency
from apps.core.models import PublicModel


class Price(models.Model):
    """Staff-editable monthly prices per currency (channels; later bundles)."""

    class Kind(models.TextChoices):
        CHANNEL_MONTHLY = "channel_monthly", "Channel, per month"
        US_BUNDLE_MONTHLY = "us_bundle_monthly", "US minute bundle, per month"

    kind = models.CharField(max_length=20, choices=Kind.choices)
    currency = models.CharField(max_length=3, choices=Currency.choices)
    amount = models.DecimalField(max_digits=10, decimal_places=4, validators=[MinValueValidator(Decimal("0"))])
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["kind", "currency"]
        constraints = [
            models.UniqueConstraint(fields=["kind", "currency"], name="price_one_per_kind_and_currency"),
            models.CheckConstraint(condition=Q(amount__gte=0), name="price_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.amount} {self.currency}"


class Charge(PublicModel):
    """One purchase or renewal of something billed from the company balance."""

    class Kind(models.TextChoices):
        CHANNELS = "channels", "Channels"
        NUMBER = "number", "Online Number"
        US_BUNDLE = "us_bundle", "US minute bundle"

    class Status(models.TextChoices):
        RECORDED = "recorded", "Recorded"

    company = models.ForeignKey(Company, on_delete=models.PROTECT, related_name="charges")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    description = models.CharField(max_length=200)
    quantity = models.PositiveIntegerField(default=1)
    unit_price = models.DecimalField(max_digits=12, decimal_places=4)
    amount = models.DecimalField(max_digits=12, decimal_places=4)
    currency = models.CharField(max_length=3, choices=Currency.choices)
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    # What was bought: "sip_profiles.sipprofile:<uuid>", "numbers.numbersubscription:<uuid>".
    item = models.CharField(max_length=100)
    # One charge per source event: a retried request or task finds the key and stops.
    idempotency_key = models.CharField(max_length=120, unique=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RECORDED)

    objects = CompanyOwnedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gte=0), name="charge_amount_not_negative"),
            models.CheckConstraint(condition=Q(period_end__gt=models.F("period_start")), name="charge_period_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.description}: {self.amount} {self.currency}"
