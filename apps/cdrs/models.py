"""Call detail records: one row per call leg, imported from the SIP edge (or a staff CSV until
the edge import exists). A CDR never changes after import except its rating fields; PostgreSQL
enforces it (migration 0002)."""

from __future__ import annotations

from django.db import models
from django.db.models import F, Q

from apps.companies.models import Company, CompanyOwnedQuerySet, Currency
from apps.core.models import PublicModel

# The columns rating may set; the database trigger refuses a change to any other.
RATING_FIELDS = ("rating_status", "cost", "currency", "rated_at", "rate_prefix", "bundle_seconds")


class CdrQuerySet(CompanyOwnedQuerySet):
    def for_company(self, company: Company) -> CdrQuerySet:
        return self.filter(company=company)  # type: ignore[return-value]


class Cdr(PublicModel):
    class Direction(models.TextChoices):
        OUTBOUND = "outbound", "Outbound"
        INBOUND = "inbound", "Inbound"

    class Disposition(models.TextChoices):
        ANSWERED = "answered", "Answered"
        BUSY = "busy", "Busy"
        NO_ANSWER = "no_answer", "No answer"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    class AuthMethod(models.TextChoices):
        REGISTRATION = "registration", "SIP registration (digest)"
        IP = "ip", "IP address"

    class RatingStatus(models.TextChoices):
        PENDING = "pending", "Waiting to be rated"
        RATED = "rated", "Rated"
        ZERO_RATED = "zero_rated", "Zero-rated"
        BLOCKED = "blocked", "Blocked destination"
        ERROR = "error", "Rating failed"

    # Where the call was handled, and the edge database's own id for it: together the
    # CDR's identity (and its ledger key, cdr:<node>:<edge_id>).
    node = models.CharField(max_length=40)
    edge_id = models.BigIntegerField()
    call_id = models.CharField("SIP Call-ID", max_length=255)
    sip_profile = models.ForeignKey(
        "sip_profiles.SipProfile", on_delete=models.PROTECT, null=True, blank=True, related_name="cdrs"
    )
    # The profile's company, copied so tenant queries and reports need no join.
    company = models.ForeignKey(Company, on_delete=models.PROTECT, related_name="cdrs")
    direction = models.CharField(max_length=8, choices=Direction.choices)
    caller = models.CharField(max_length=16)  # E.164, checked at import
    callee = models.CharField(max_length=16)
    started_at = models.DateTimeField()
    answered_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField()
    duration_seconds = models.PositiveIntegerField()
    billable_seconds = models.PositiveIntegerField()
    sip_code = models.PositiveSmallIntegerField("SIP final code")
    disposition = models.CharField(max_length=10, choices=Disposition.choices)
    auth_method = models.CharField(max_length=12, choices=AuthMethod.choices)
    source_address = models.GenericIPAddressField()

    # Rating: set by the rating engine only.
    rating_status = models.CharField(max_length=10, choices=RatingStatus.choices, default=RatingStatus.PENDING)
    cost = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True)
    currency = models.CharField(max_length=3, choices=Currency.choices, blank=True)
    rated_at = models.DateTimeField(null=True, blank=True)
    rate_prefix = models.CharField(max_length=15, blank=True)
    bundle_seconds = models.PositiveIntegerField(default=0)

    objects = CdrQuerySet.as_manager()

    class Meta:
        verbose_name = "CDR"
        constraints = [
            models.UniqueConstraint(fields=["node", "edge_id"], name="cdr_node_edge_id_unique"),
            models.CheckConstraint(
                condition=Q(billable_seconds__lte=F("duration_seconds")), name="cdr_billable_le_duration"
            ),
            models.CheckConstraint(condition=Q(ended_at__gte=F("started_at")), name="cdr_ends_after_start"),
            models.CheckConstraint(
                condition=Q(answered_at__isnull=True)
                | (Q(answered_at__gte=F("started_at")) & Q(answered_at__lte=F("ended_at"))),
                name="cdr_answered_during_call",
            ),
            models.CheckConstraint(condition=Q(sip_code__gte=100, sip_code__lte=699), name="cdr_sip_code_range"),
            models.CheckConstraint(condition=Q(direction__in=["outbound", "inbound"]), name="cdr_direction_known"),
            models.CheckConstraint(
                condition=Q(disposition__in=["answered", "busy", "no_answer", "failed", "cancelled"]),
                name="cdr_disposition_known",
            ),
            models.CheckConstraint(condition=Q(auth_method__in=["registration", "ip"]), name="cdr_auth_method_known"),
            models.CheckConstraint(
                condition=Q(rating_status__in=["pending", "rated", "zero_rated", "blocked", "error"]),
                name="cdr_rating_status_known",
            ),
            models.CheckConstraint(condition=Q(cost__isnull=True) | Q(cost__gte=0), name="cdr_cost_not_negative"),
            models.CheckConstraint(
                condition=Q(bundle_seconds__lte=F("billable_seconds")), name="cdr_bundle_le_billable"
            ),
        ]
        indexes = [
            # The rating job's batches: WHERE rating_status = 'pending' ORDER BY id.
            models.Index(fields=["rating_status", "id"], name="cdr_rating_batch_idx"),
            models.Index(fields=["company", "started_at"], name="cdr_company_start_idx"),
        ]

    def __str__(self) -> str:
        return f"CDR {self.node}:{self.edge_id}"

    @property
    def ledger_key(self) -> str:
        return f"cdr:{self.node}:{self.edge_id}"
