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


class LedgerAccount(models.Model):
    """One account of the double-entry ledger. `balance` caches the sum of its entries and is
    changed only by apps.billing.ledger.ledger_post, under a row lock, in the entries' transaction."""

    class Kind(models.TextChoices):
        COMPANY_BALANCE = "company_balance", "Company balance"
        PROFILE_BALANCE = "profile_balance", "SIP profile balance"
        STRIPE_CASH = "stripe_cash", "Cash received by Stripe"
        BANK_CASH = "bank_cash", "Cash received by bank wire"
        REVENUE_CALLS = "revenue_calls", "Revenue: calls"
        REVENUE_CHANNELS = "revenue_channels", "Revenue: channels"
        REVENUE_BUNDLES = "revenue_bundles", "Revenue: US minute bundles"
        REVENUE_NUMBERS = "revenue_numbers", "Revenue: Online Numbers"
        REFUNDS = "refunds", "Refunds"

    CUSTOMER_KINDS = (Kind.COMPANY_BALANCE, Kind.PROFILE_BALANCE)

    kind = models.CharField(max_length=20, choices=Kind.choices)
    company = models.ForeignKey(Company, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    sip_profile = models.OneToOneField(
        "sip_profiles.SipProfile", on_delete=models.PROTECT, null=True, blank=True, related_name="ledger_account"
    )
    currency = models.CharField(max_length=3, choices=Currency.choices)
    balance = models.DecimalField(max_digits=16, decimal_places=4, default=Decimal("0"))
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["company"], condition=Q(kind="company_balance"), name="ledger_one_balance_per_company"
            ),
            models.UniqueConstraint(
                fields=["kind", "currency"], condition=Q(company__isnull=True), name="ledger_one_platform_account"
            ),
            # What a company bought and has not spent can never be negative.
            models.CheckConstraint(
                condition=~Q(kind="company_balance") | Q(balance__gte=0), name="ledger_company_balance_not_negative"
            ),
            models.CheckConstraint(
                condition=(Q(kind="company_balance") & Q(company__isnull=False) & Q(sip_profile__isnull=True))
                | (Q(kind="profile_balance") & Q(company__isnull=False) & Q(sip_profile__isnull=False))
                | (~Q(kind__in=["company_balance", "profile_balance"]) & Q(company__isnull=True)),
                name="ledger_account_owner_matches_kind",
            ),
        ]

    def __str__(self) -> str:
        owner = self.sip_profile or self.company or "platform"
        return f"{self.get_kind_display()} ({owner}, {self.currency})"


class LedgerTransaction(PublicModel):
    """One movement of money: two or more entries summing to zero (a deferred trigger checks
    it at commit), written once under a unique idempotency key, never changed."""

    class Kind(models.TextChoices):
        PURCHASE = "purchase", "Credit purchase"
        REFUND = "refund", "Refund"
        ALLOCATION = "allocation", "Allocation to a profile"
        TAKE_BACK = "take_back", "Taken back from a profile"
        CHARGE = "charge", "Recurring charge"
        CALL = "call", "Call"
        ADJUSTMENT = "adjustment", "Adjustment"

    kind = models.CharField(max_length=12, choices=Kind.choices)
    company = models.ForeignKey(Company, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    currency = models.CharField(max_length=3, choices=Currency.choices)
    description = models.CharField(max_length=200)
    idempotency_key = models.CharField(max_length=150, unique=True)
    actor_label = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["company", "-created_at"], name="ledger_txn_company_recent")]

    def __str__(self) -> str:
        return f"{self.description} ({self.idempotency_key})"


class LedgerEntry(models.Model):
    transaction = models.ForeignKey(LedgerTransaction, on_delete=models.PROTECT, related_name="entries")
    account = models.ForeignKey(LedgerAccount, on_delete=models.PROTECT, related_name="entries")
    amount = models.DecimalField(max_digits=16, decimal_places=4)
    # The account's balance right after this entry: statements show it without summing history.
    balance_after = models.DecimalField(max_digits=16, decimal_places=4)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["account", "id"], name="ledger_entry_account_order")]
        constraints = [models.CheckConstraint(condition=~Q(amount=0), name="ledger_entry_not_zero")]

    def __str__(self) -> str:
        return f"{self.amount} to {self.account}"
