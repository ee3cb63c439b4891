from __future__ import annotations

from decimal import Decimal

from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django_countries.fields import CountryField
from phonenumber_field.modelfields import PhoneNumberField

from apps.companies.models import Company, CompanyOwnedQuerySet
from apps.core.models import PublicModel

TERMS = (3, 12)
QUARANTINE_DAYS = 30


def _price() -> models.DecimalField:  # type: ignore[type-arg]
    return models.DecimalField(max_digits=10, decimal_places=4, validators=[MinValueValidator(Decimal("0"))])


class OnlineNumber(PublicModel):
    """A DID in the platform's stock, kept by staff."""

    class Type(models.TextChoices):
        GEOGRAPHIC = "geographic", "Geographic"
        MOBILE = "mobile", "Mobile"
        TOLL_FREE = "toll_free", "Toll-free"

    class Status(models.TextChoices):
        AVAILABLE = "available", "Available"
        ACTIVE = "active", "Active"
        QUARANTINE = "quarantine", "Quarantine"

    number = PhoneNumberField(unique=True)
    country = CountryField()
    area = models.CharField(max_length=100, blank=True, help_text="Area or city")
    number_type = models.CharField(max_length=10, choices=Type.choices)
    price_3m_usd = _price()
    price_12m_usd = _price()
    price_3m_eur = _price()
    price_12m_eur = _price()
    price_3m_gbp = _price()
    price_12m_gbp = _price()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.AVAILABLE)
    quarantine_until = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["number"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(status="quarantine") | Q(quarantine_until__isnull=False),
                name="online_number_quarantine_has_end",
            ),
        ]
        indexes = [models.Index(fields=["status", "country"], name="online_number_search")]

    def __str__(self) -> str:
        return str(self.number)

    def price(self, *, currency: str, months: int) -> Decimal:
        value: Decimal = getattr(self, f"price_{months}m_{currency.lower()}")
        return value


class NumberSubscription(PublicModel):
    """A company's holding of an Online Number for 3 or 12 months at a time."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        SUSPENDED = "suspended", "Suspended (renewal unpaid)"
        ENDED = "ended", "Ended"

    company = models.ForeignKey(Company, on_delete=models.PROTECT, related_name="number_subscriptions")
    number = models.ForeignKey(OnlineNumber, on_delete=models.PROTECT, related_name="subscriptions")
    months = models.PositiveSmallIntegerField()
    auto_renew = models.BooleanField(default=True)
    # The price this subscription renews at, fixed when it was bought.
    price = models.DecimalField(max_digits=10, decimal_places=4)
    currency = models.CharField(max_length=3)
    current_period_start = models.DateTimeField()
    current_period_end = models.DateTimeField()
    business_account = models.ForeignKey(
        "business_accounts.BusinessAccount",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="numbers",
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    ended_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = CompanyOwnedQuerySet.as_manager()

    class Meta:
        ordering = ["number__number"]
        constraints = [
            models.UniqueConstraint(
                fields=["number"], condition=Q(status="active"), name="number_one_active_subscription"
            ),
            models.CheckConstraint(condition=Q(months__in=TERMS), name="number_subscription_term_3_or_12"),
            models.CheckConstraint(
                condition=Q(current_period_end__gt=models.F("current_period_start")),
                name="number_subscription_period_positive",
            ),
        ]

    def __str__(self) -> str:
        return str(self.number.number)
