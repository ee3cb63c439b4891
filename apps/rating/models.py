"""Rate decks (one per currency and effective time) and the numbers that are never callable."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from apps.companies.models import Currency
from apps.core.models import PublicModel


class DestinationClass(models.TextChoices):
    LANDLINE = "landline", "Landline"
    MOBILE = "mobile", "Mobile"
    TOLL_FREE = "toll_free", "Toll-free"
    PREMIUM = "premium", "Premium rate"
    SPECIAL_SERVICE = "special_service", "Special service"
    EMERGENCY = "emergency", "Emergency"


# Classes a deck may list (so a deck can mirror a carrier's) but that are never priced:
# a call to them is refused before it rings.
NEVER_PRICED = frozenset({DestinationClass.PREMIUM, DestinationClass.SPECIAL_SERVICE, DestinationClass.EMERGENCY})


class RateDeck(PublicModel):
    """One version of the prices in one currency. The deck in force at a time is the latest
    active deck of the currency whose effective_from is not after it."""

    class Status(models.TextChoices):
        DRAFT = "draft", "Importing"
        FAILED = "failed", "Import failed"
        ACTIVE = "active", "Active"
        RETIRED = "retired", "Retired"

    currency = models.CharField(max_length=3, choices=Currency.choices)
    # What customers see (the Rates page, the API); never the uploaded file's name, which only
    # staff see (on the import job). Empty: display_name says the currency and the date.
    name = models.CharField(max_length=200, blank=True)
    # Read from the file: null until the import has checked it.
    effective_from = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    rate_count = models.PositiveIntegerField(default=0)
    import_job = models.OneToOneField(
        "core.ImportJob", on_delete=models.PROTECT, null=True, blank=True, related_name="rate_deck"
    )
    created_by = models.ForeignKey("accounts.User", on_delete=models.PROTECT, related_name="+", null=True, blank=True)

    class Meta:
        ordering = ["currency", "-effective_from"]
        constraints = [
            models.CheckConstraint(condition=Q(currency__in=Currency.values), name="rate_deck_currency_known"),
            # Two active versions taking effect at the same moment would make "the deck in force" ambiguous.
            models.UniqueConstraint(
                fields=["currency", "effective_from"],
                condition=Q(status="active"),
                name="rate_deck_one_active_per_currency_and_time",
            ),
            models.CheckConstraint(
                condition=~Q(status="active") | Q(effective_from__isnull=False),
                name="rate_deck_active_has_effective_from",
            ),
        ]
        indexes = [models.Index(fields=["currency", "status", "-effective_from"], name="rate_deck_in_force_idx")]

    def __str__(self) -> str:
        when = self.effective_from.strftime("%Y-%m-%d %H:%M") if self.effective_from else "—"
        return f"{self.display_name} ({self.currency}, from {when})"

    @property
    def display_name(self) -> str:
        """The name customers see: the one staff gave, else "GBP rates from 1 Jan 2026"."""
        if self.name:
            return self.name
        if self.effective_from is None:
            return f"{self.currency} rates"
        return f"{self.currency} rates from {self.effective_from.day} {self.effective_from:%b %Y}"


class Rate(models.Model):
    """The price of the destinations whose E.164 digits start with `prefix` (no "+")."""

    deck = models.ForeignKey(RateDeck, on_delete=models.CASCADE, related_name="rates")
    prefix = models.CharField(max_length=15)
    destination = models.CharField(max_length=100)
    # ISO 3166 code, or "" for ranges of no country (+882, +883 international networks).
    country = models.CharField(max_length=2, blank=True)
    destination_class = models.CharField(max_length=20, choices=DestinationClass.choices)
    price_per_minute = models.DecimalField(max_digits=12, decimal_places=6)
    connection_fee = models.DecimalField(max_digits=12, decimal_places=6)
    first_increment = models.PositiveIntegerField(help_text="Seconds billed first (e.g. 60 or 1).")
    next_increment = models.PositiveIntegerField(help_text="Seconds billed after the first increment.")

    class Meta:
        constraints = [
            # Also the index of the longest-prefix lookup: deck_id = ? AND prefix IN (...).
            models.UniqueConstraint(fields=["deck", "prefix"], name="rate_unique_prefix_per_deck"),
            models.CheckConstraint(condition=Q(prefix__regex=r"^[0-9]{1,15}$"), name="rate_prefix_digits"),
            models.CheckConstraint(
                condition=Q(price_per_minute__gte=0) & Q(connection_fee__gte=0), name="rate_prices_not_negative"
            ),
            models.CheckConstraint(
                condition=Q(first_increment__gte=1) & Q(next_increment__gte=1), name="rate_increments_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"+{self.prefix} {self.destination}"


class BlockedPrefix(models.Model):
    """A number range that is never callable, kept by staff.

    `prefix` is either international ("+1900": matched against the E.164 number, whoever
    dials it; `country` then names the range's country) or as dialled ("911": matched
    against what a caller in `country` dials, or in any country when `country` is "*").
    """

    class Kind(models.TextChoices):
        EMERGENCY = "emergency", "Emergency"
        SPECIAL_SERVICE = "special_service", "Special service"
        OPERATOR = "operator", "Operator services"
        PREMIUM_RATE = "premium_rate", "Premium rate"

    ANY_COUNTRY = "*"

    country = models.CharField(max_length=2, help_text='ISO code such as US, or "*" for every country.')
    prefix = models.CharField(max_length=16, help_text='"+1900" (E.164) or "911" (as dialled in the country).')
    exact = models.BooleanField(
        default=False, help_text='Only the whole dialled string ("0" for the operator), not numbers starting with it.'
    )
    kind = models.CharField(max_length=20, choices=Kind.choices)
    reason = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["country", "prefix"]
        verbose_name_plural = "blocked prefixes"
        constraints = [
            models.UniqueConstraint(fields=["country", "prefix"], name="blocked_prefix_unique"),
            models.CheckConstraint(condition=Q(prefix__regex=r"^\+?[0-9]{1,15}$"), name="blocked_prefix_digits"),
            models.CheckConstraint(condition=Q(country__regex=r"^([A-Z]{2}|\*)$"), name="blocked_prefix_country"),
        ]

    def __str__(self) -> str:
        return f"{self.prefix} ({self.country}): {self.reason}"
