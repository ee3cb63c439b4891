"""Billing's rows: the ledger (accounts, transactions, entries), charges for what was bought
(each paid by a ledger debit of the company balance, or left unpaid with a grace period),
prices, purchases, saved cards, auto-recharge and the Stripe webhook inbox."""

from __future__ import annotations

from decimal import Decimal

from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q

from apps.billing.money import format_money
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
        return f"{self.get_kind_display()}: {format_money(self.amount, self.currency)}"


class Charge(PublicModel):
    """One purchase or renewal of something billed from the company balance."""

    class Kind(models.TextChoices):
        CHANNELS = "channels", "Channels"
        NUMBER = "number", "Online Number"
        US_BUNDLE = "us_bundle", "US minute bundle"

    class Status(models.TextChoices):
        PAID = "paid", "Paid"
        UNPAID = "unpaid", "Unpaid (grace period)"
        SUSPENDED = "suspended", "Unpaid (item suspended)"
        CANCELLED = "cancelled", "Cancelled (the item ended unpaid)"

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
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.UNPAID)
    paid_at = models.DateTimeField(null=True, blank=True)
    ledger_transaction = models.OneToOneField(
        "LedgerTransaction", on_delete=models.PROTECT, null=True, blank=True, related_name="charge"
    )
    # Until when an unpaid renewal keeps its item running; then the item is suspended.
    grace_until = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)

    objects = CompanyOwnedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["status", "grace_until"], name="charge_unpaid_due"),
            models.Index(fields=["created_at"], name="charge_recent"),  # the staff list's order and dates
        ]
        constraints = [
            models.CheckConstraint(condition=~Q(status="paid") | Q(paid_at__isnull=False), name="charge_paid_has_time"),
            models.CheckConstraint(
                condition=Q(status="paid") | Q(grace_until__isnull=False), name="charge_unpaid_has_grace"
            ),
            models.CheckConstraint(condition=Q(amount__gte=0), name="charge_amount_not_negative"),
            models.CheckConstraint(condition=Q(period_end__gt=models.F("period_start")), name="charge_period_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.description}: {format_money(self.amount, self.currency)}"


class LedgerAccount(models.Model):
    """One account of the double-entry ledger. `balance` caches the sum of its entries and is
    changed only by apps.billing.ledger.services.ledger_post, under a row lock, in the entries' transaction."""

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
        indexes = [
            models.Index(fields=["company", "-created_at"], name="ledger_txn_company_recent"),
            # The staff list (apps/billing/admin.py), newest first.
            models.Index(fields=["created_at", "id"], name="ledger_txn_recent"),
        ]

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
        return f"{format_money(self.amount, places=4)} to {self.account}"


# --- Buying credit: Stripe (card, PayPal) and bank wire -------------------------------


class StripeCustomer(models.Model):
    """The Stripe customer that holds a company's payments and saved cards (created on first use)."""

    company = models.OneToOneField(Company, on_delete=models.PROTECT, related_name="stripe_customer")
    stripe_id = models.CharField(max_length=255, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.stripe_id} ({self.company})"


class SavedPaymentMethod(PublicModel):
    """A card saved in Stripe for later (off-session) use. Only what a person needs to recognise
    it is kept here: brand, last four digits and expiry, never the card number."""

    company = models.ForeignKey(Company, on_delete=models.PROTECT, related_name="saved_payment_methods")
    stripe_id = models.CharField(max_length=255, unique=True)
    brand = models.CharField(max_length=30)
    last4 = models.CharField(max_length=4)
    exp_month = models.PositiveSmallIntegerField()
    exp_year = models.PositiveSmallIntegerField()
    is_default = models.BooleanField(default=False)
    created_by = models.ForeignKey("accounts.User", on_delete=models.PROTECT, null=True, blank=True, related_name="+")

    objects = CompanyOwnedQuerySet.as_manager()

    class Meta:
        ordering = ["-is_default", "-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["company"], condition=Q(is_default=True), name="saved_payment_method_one_default"
            ),
            models.CheckConstraint(condition=Q(last4__regex=r"^[0-9]{4}$"), name="saved_payment_method_last4"),
            models.CheckConstraint(
                condition=Q(exp_month__gte=1) & Q(exp_month__lte=12), name="saved_payment_method_exp_month"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.brand_label} ending {self.last4} ({self.exp_month:02d}/{self.exp_year})"

    @property
    def brand_label(self) -> str:
        return CARD_BRANDS.get(self.brand, self.brand.title())


CARD_BRANDS = {
    "visa": "Visa",
    "mastercard": "Mastercard",
    "amex": "American Express",
    "discover": "Discover",
    "diners": "Diners Club",
    "jcb": "JCB",
    "unionpay": "UnionPay",
}


class CreditPurchase(PublicModel):
    """One purchase of company credit. The balance changes only through the ledger: the
    transaction that credits it (`credit_transaction`, key stripe:<payment intent> or
    wire:<public id>) and, for a refund, the one that takes it back."""

    class Method(models.TextChoices):
        CARD = "card", "Card"
        PAYPAL = "paypal", "PayPal"
        BANK_WIRE = "bank_wire", "Bank wire"

    class Status(models.TextChoices):
        PENDING = "pending", "Awaiting payment"
        SUCCEEDED = "succeeded", "Paid"
        FAILED = "failed", "Failed"
        CANCELED = "canceled", "Canceled"
        REFUNDING = "refunding", "Refund in progress"
        REFUNDED = "refunded", "Refunded"

    # Statuses in which the purchase's credit was granted (and not taken back).
    CREDITED = (Status.SUCCEEDED, Status.REFUNDING, Status.REFUNDED)

    company = models.ForeignKey(Company, on_delete=models.PROTECT, related_name="credit_purchases")
    amount = models.DecimalField(max_digits=14, decimal_places=4)
    currency = models.CharField(max_length=3, choices=Currency.choices)
    method = models.CharField(max_length=10, choices=Method.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    # Stripe's ids. Unique: one purchase per PaymentIntent, whichever path (webhook or retrieval) sees it.
    stripe_payment_intent = models.CharField(max_length=255, unique=True, null=True, blank=True)
    stripe_setup_intent = models.CharField(max_length=255, blank=True)
    stripe_refund = models.CharField(max_length=255, blank=True)
    save_card = models.BooleanField(default=False)
    # What paid, for the receipt (never more than a person sees on the card).
    card_brand = models.CharField(max_length=30, blank=True)
    card_last4 = models.CharField(max_length=4, blank=True)
    # The reference a company writes on its bank transfer, e.g. SM-7K3Q-9XPA.
    wire_reference = models.CharField(max_length=20, unique=True, null=True, blank=True)
    # What was credited: the amount Stripe received, or what staff saw arrive by wire.
    amount_received = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True)
    created_by = models.ForeignKey("accounts.User", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    succeeded_at = models.DateTimeField(null=True, blank=True)
    refunded_at = models.DateTimeField(null=True, blank=True)
    credit_transaction = models.ForeignKey(
        LedgerTransaction, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    refund_transaction = models.ForeignKey(
        LedgerTransaction, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    refund_reason = models.TextField(blank=True)
    refund_attempts = models.PositiveSmallIntegerField(default=0)
    refund_started_at = models.DateTimeField(null=True, blank=True)
    failure_message = models.CharField(max_length=500, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = CompanyOwnedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["company", "-created_at"], name="purchase_company_recent"),
            models.Index(fields=["status", "created_at"], name="purchase_status_age"),
            models.Index(fields=["created_at", "id"], name="purchase_recent"),  # the staff list's order and dates
        ]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="purchase_amount_positive"),
            models.CheckConstraint(
                condition=Q(amount_received__isnull=True) | Q(amount_received__gt=0),
                name="purchase_amount_received_positive",
            ),
            models.CheckConstraint(
                condition=Q(status__in=["pending", "succeeded", "failed", "canceled", "refunding", "refunded"]),
                name="purchase_status_known",
            ),
            # A wire has a reference and no PaymentIntent; a card or PayPal purchase the reverse.
            models.CheckConstraint(
                condition=(
                    Q(method="bank_wire") & Q(wire_reference__isnull=False) & Q(stripe_payment_intent__isnull=True)
                )
                | (Q(method__in=["card", "paypal"]) & Q(wire_reference__isnull=True)),
                name="purchase_method_matches_references",
            ),
            # Credited purchases point at the ledger transaction that credited them.
            models.CheckConstraint(
                condition=~Q(status__in=["succeeded", "refunding", "refunded"])
                | (
                    Q(credit_transaction__isnull=False)
                    & Q(amount_received__isnull=False)
                    & Q(succeeded_at__isnull=False)
                ),
                name="purchase_credited_has_transaction",
            ),
            models.CheckConstraint(
                condition=~Q(status__in=["refunding", "refunded"]) | Q(refund_transaction__isnull=False),
                name="purchase_refund_has_transaction",
            ),
            models.CheckConstraint(
                condition=~Q(status="refunded") | Q(refunded_at__isnull=False), name="purchase_refunded_has_date"
            ),
        ]

    def __str__(self) -> str:
        reference = self.wire_reference or str(self.public_id)[:8]
        return f"{self.get_method_display()} {reference}: {format_money(self.amount, self.currency)}"

    @property
    def is_stripe(self) -> bool:
        return self.method in (self.Method.CARD, self.Method.PAYPAL)

    @property
    def has_receipt(self) -> bool:
        return self.status in self.CREDITED


class StripeEvent(models.Model):
    """The webhook inbox: every Stripe event, stored once (its id is unique) before it is handled."""

    class Status(models.TextChoices):
        RECEIVED = "received", "Received"
        PROCESSED = "processed", "Processed"
        FAILED = "failed", "Failed"

    event_id = models.CharField(max_length=255, unique=True)
    type = models.CharField(max_length=100)
    payload = models.JSONField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RECEIVED)
    error = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        indexes = [
            models.Index(fields=["status", "received_at"], name="stripe_event_status_age"),
            # The staff list: its order and dates, and its type filter's values (apps.core.admin_lists).
            models.Index(fields=["received_at", "id"], name="stripe_event_recent"),
            models.Index(fields=["type"], name="stripe_event_type"),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.event_id} ({self.status})"


class IdempotentRequest(models.Model):
    """The first answer to an API request sent with an Idempotency-Key, replayed for retries.

    `fingerprint` is a hash of the request's parameters: the same key with other parameters is
    refused. A row without a response is a request still running (or one that crashed: it may
    be taken over once stale)."""

    company = models.ForeignKey(Company, on_delete=models.PROTECT, related_name="+")
    endpoint = models.CharField(max_length=100)
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64)
    # The purchase this request started, set in the transaction that creates it, before Stripe
    # is called. A claim holding a purchase is never released or run again: a retry answers
    # with that purchase (apps.billing.idempotency), so one key can never charge twice.
    purchase = models.OneToOneField(
        "CreditPurchase", null=True, blank=True, on_delete=models.PROTECT, related_name="idempotent_request"
    )
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    claimed_at = models.DateTimeField()
    completed_at = models.DateTimeField(null=True, blank=True)

    objects = CompanyOwnedQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["company", "endpoint", "key"], name="idempotent_request_once_per_key")
        ]
        indexes = [models.Index(fields=["created_at"], name="idempotent_request_age")]

    def __str__(self) -> str:
        return f"{self.endpoint} {self.key}"


# --- Auto-recharge ----------------------------------------------------------------------------


class RechargeSettings(models.Model):
    """What a company's and a profile's auto-recharge share: top up `amount` when the balance
    falls below `threshold`, at most `monthly_limit` a calendar month, and the failures seen."""

    enabled = models.BooleanField(default=False)
    amount = models.DecimalField(max_digits=14, decimal_places=4)
    threshold = models.DecimalField(max_digits=14, decimal_places=4)
    monthly_limit = models.DecimalField(max_digits=14, decimal_places=4)
    consecutive_failures = models.PositiveSmallIntegerField(default=0)
    last_failure_at = models.DateTimeField(null=True, blank=True)
    last_failure_message = models.CharField(max_length=500, blank=True)
    # When the settings were last saved: attempts before it do not count for the
    # one-charge-per-threshold-crossing rule (a person re-arms it by saving).
    armed_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = CompanyOwnedQuerySet.as_manager()

    class Meta:
        abstract = True


def recharge_constraints(prefix: str) -> list[models.BaseConstraint]:
    """The checks of RechargeSettings, named `<prefix>_…` for the concrete model."""
    return [
        models.CheckConstraint(condition=Q(amount__gt=0), name=f"{prefix}_amount_positive"),
        models.CheckConstraint(condition=Q(threshold__gte=0), name=f"{prefix}_threshold_not_negative"),
        models.CheckConstraint(
            condition=Q(monthly_limit__gte=models.F("amount")), name=f"{prefix}_limit_covers_amount"
        ),
    ]


class AutoRecharge(RechargeSettings):
    """A company's auto-recharge: charge `amount` to a saved card off-session when the company
    balance falls below `threshold`, at most `monthly_limit` per calendar month (apps.billing.recharge.company)."""

    company = models.OneToOneField(Company, on_delete=models.PROTECT, related_name="auto_recharge")
    # None: the company's default card at the time of the charge.
    payment_method = models.ForeignKey(
        SavedPaymentMethod, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    disabled_reason = models.CharField(max_length=300, blank=True)

    class Meta:
        constraints = recharge_constraints("auto_recharge")

    def __str__(self) -> str:
        return f"Auto-recharge of {self.company}"


class RechargeAttempt(PublicModel):
    """One company auto-recharge: claimed (in flight) in one transaction, charged outside any,
    finished in another. The database allows one attempt in flight per company."""

    class Status(models.TextChoices):
        IN_FLIGHT = "in_flight", "In progress"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    class Trigger(models.TextChoices):
        THRESHOLD = "threshold", "Balance below the threshold"
        SWEEP = "sweep", "Periodic check"
        UNPAID_CHARGE = "unpaid_charge", "A charge could not be paid"

    company = models.ForeignKey(Company, on_delete=models.PROTECT, related_name="recharge_attempts")
    amount = models.DecimalField(max_digits=14, decimal_places=4)
    currency = models.CharField(max_length=3, choices=Currency.choices)
    # The first day of the calendar month (UTC) whose limit the attempt counts against.
    month = models.DateField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.IN_FLIGHT)
    trigger = models.CharField(max_length=15, choices=Trigger.choices)
    # Linked, under the attempt's row lock, before Stripe is called: an attempt without a
    # purchase never reached Stripe.
    purchase = models.OneToOneField(
        CreditPurchase, on_delete=models.PROTECT, null=True, blank=True, related_name="recharge_attempt"
    )
    # The id of the company account's last ledger entry when the attempt was claimed: the next
    # charge needs an entry after it at or above the threshold (a new crossing).
    ledger_watermark = models.BigIntegerField(default=0)
    # A failure of the card (declined, authentication), counted towards switching off; not an
    # interruption or an unreachable Stripe.
    card_failure = models.BooleanField(default=False)
    error = models.CharField(max_length=500, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = CompanyOwnedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["company", "month", "status"], name="recharge_attempt_month")]
        constraints = [
            models.UniqueConstraint(
                fields=["company"], condition=Q(status="in_flight"), name="recharge_one_in_flight_per_company"
            ),
            models.CheckConstraint(condition=Q(amount__gt=0), name="recharge_attempt_amount_positive"),
            models.CheckConstraint(
                condition=Q(status="in_flight") | Q(finished_at__isnull=False), name="recharge_attempt_finished_at"
            ),
        ]

    def __str__(self) -> str:
        return f"Auto-recharge {format_money(self.amount, self.currency)} ({self.status})"


class ProfileAutoRecharge(RechargeSettings):
    """A SIP profile's auto-recharge: allocate `amount` from the company balance when the
    profile balance falls below `threshold`, at most `monthly_limit` per calendar month."""

    sip_profile = models.OneToOneField(
        "sip_profiles.SipProfile", on_delete=models.PROTECT, related_name="auto_recharge"
    )
    company = models.ForeignKey(Company, on_delete=models.PROTECT, related_name="+")

    class Meta:
        constraints = recharge_constraints("profile_recharge")

    def __str__(self) -> str:
        return f"Auto-recharge of {self.sip_profile}"


class ProfileRechargeAttempt(PublicModel):
    """One profile auto-recharge, decided and allocated in a single transaction (no network)."""

    class Status(models.TextChoices):
        SUCCEEDED = "succeeded", "Allocated"
        FAILED = "failed", "Failed"

    sip_profile = models.ForeignKey("sip_profiles.SipProfile", on_delete=models.PROTECT, related_name="+")
    company = models.ForeignKey(Company, on_delete=models.PROTECT, related_name="+")
    amount = models.DecimalField(max_digits=14, decimal_places=4)
    month = models.DateField()
    status = models.CharField(max_length=10, choices=Status.choices)
    trigger = models.CharField(max_length=15, choices=RechargeAttempt.Trigger.choices)
    ledger_watermark = models.BigIntegerField(default=0)
    ledger_transaction = models.OneToOneField(
        LedgerTransaction, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    error = models.CharField(max_length=500, blank=True)

    objects = CompanyOwnedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["sip_profile", "month", "status"], name="profile_recharge_month")]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="profile_recharge_attempt_positive"),
            models.CheckConstraint(
                condition=~Q(status="succeeded") | Q(ledger_transaction__isnull=False),
                name="profile_recharge_succeeded_has_transaction",
            ),
        ]

    def __str__(self) -> str:
        return f"Profile auto-recharge {format_money(self.amount)} ({self.status})"


# --- Low-balance notices --------------------------------------------------------------------


class ProfileBalanceAlert(models.Model):
    """Which low-balance notices a SIP profile's company was sent (apps.rating.low_balance).

    A notice is sent when its `*_notified_at` goes from null to a time, by a conditional UPDATE,
    so two runs at once send it once; it is cleared (re-armed) when the balance is back above."""

    sip_profile = models.OneToOneField(
        "sip_profiles.SipProfile", on_delete=models.PROTECT, related_name="balance_alert"
    )
    company = models.ForeignKey(Company, on_delete=models.PROTECT, related_name="+")
    # The balance fell below the low-balance threshold (but stayed above zero).
    low_notified_at = models.DateTimeField(null=True, blank=True)
    # The balance reached zero or below: paid calls stop.
    empty_notified_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = CompanyOwnedQuerySet.as_manager()

    def __str__(self) -> str:
        return f"Balance alerts of {self.sip_profile}"
