"""Call detail records: one row per call leg, imported from the SIP edge (apps.edge.cdr_import,
within seconds of the hangup) or from a staff CSV (back-fills).

A CDR never changes after import: PostgreSQL refuses any UPDATE or DELETE (migrations 0002,
0003). What rating decides is written once, beside it, in CdrRating; a CDR waits for rating
as a row of PendingCdr, written in the same transaction as the CDR."""

from __future__ import annotations

from decimal import Decimal

from django.core.files.storage import Storage, storages
from django.db import models
from django.db.models import F, Q

from apps.companies.models import Company, CompanyOwnedQuerySet, Currency
from apps.core.models import PublicModel


class Cdr(PublicModel):
    class Direction(models.TextChoices):
        OUTBOUND = "outbound", "Outbound"
        INBOUND = "inbound", "Inbound"
        # A call to a business account by name, carried on the platform (never a carrier).
        ON_NET = "on_net", "On-net"

    class Disposition(models.TextChoices):
        ANSWERED = "answered", "Answered"
        BUSY = "busy", "Busy"
        NO_ANSWER = "no_answer", "No answer"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"
        # The edge refused the call itself (refusal_reason says why); it costs nothing.
        REFUSED = "refused", "Refused by the edge"

    class RefusalReason(models.TextChoices):
        """Why the edge refused a call: the codes kamailio.cfg writes (route CDR_REFUSED)."""

        CHANNEL_LIMIT = "channel_limit", "All channels in use"
        NO_CREDIT = "no_credit", "No balance or bundle minutes"
        BLOCKED_NUMBER = "blocked_number", "Blocked number"
        NOT_E164 = "not_e164", "Not an E.164 number"
        SUSPENDED = "suspended", "Profile suspended"
        TLS_REQUIRED = "tls_required", "TLS required"
        MEDIA_REFUSED = "media_refused", "Media refused (fax, video or codecs)"
        MEDIA_RELAY = "media_relay", "Media relay unavailable"
        UNAVAILABLE = "unavailable", "PBX not registered or unreachable"
        NO_CARRIER = "no_carrier", "No carrier available"

    class AuthMethod(models.TextChoices):
        REGISTRATION = "registration", "SIP registration (digest)"
        IP = "ip", "IP address"

    # Where the call was handled, and the edge database's own id for it: together the
    # CDR's identity (and its ledger key, cdr:<node>:<edge_id>).
    node = models.CharField(max_length=40)
    edge_id = models.BigIntegerField()
    call_id = models.CharField("SIP Call-ID", max_length=255)
    # Indexed with started_at (Meta.indexes), not alone.
    sip_profile = models.ForeignKey(
        "sip_profiles.SipProfile",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="cdrs",
        db_index=False,
    )
    # The profile's company, copied so tenant queries and reports need no join.
    company = models.ForeignKey(Company, on_delete=models.PROTECT, related_name="cdrs", db_index=False)
    direction = models.CharField(max_length=8, choices=Direction.choices)
    caller = models.CharField(max_length=16)  # E.164, checked at import
    # E.164, or a business account's name (on-net), or what was dialled (a refused call).
    callee = models.CharField(max_length=40)
    started_at = models.DateTimeField()
    answered_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField()
    duration_seconds = models.PositiveIntegerField()
    billable_seconds = models.PositiveIntegerField()
    sip_code = models.PositiveSmallIntegerField("SIP final code")
    disposition = models.CharField(max_length=10, choices=Disposition.choices)
    refusal_reason = models.CharField(max_length=16, choices=RefusalReason.choices, blank=True, default="")
    auth_method = models.CharField(max_length=12, choices=AuthMethod.choices)
    source_address = models.GenericIPAddressField()

    objects = CompanyOwnedQuerySet.as_manager()

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
            models.CheckConstraint(
                condition=Q(direction__in=["outbound", "inbound", "on_net"]), name="cdr_direction_known"
            ),
            models.CheckConstraint(
                condition=Q(disposition__in=["answered", "busy", "no_answer", "failed", "cancelled", "refused"]),
                name="cdr_disposition_known",
            ),
            models.CheckConstraint(
                condition=Q(refusal_reason="")
                | (
                    Q(disposition="refused")
                    & Q(
                        refusal_reason__in=[
                            "channel_limit",
                            "no_credit",
                            "blocked_number",
                            "not_e164",
                            "suspended",
                            "tls_required",
                            "media_refused",
                            "media_relay",
                            "unavailable",
                            "no_carrier",
                        ]
                    )
                ),
                name="cdr_refusal_reason_known",
            ),
            models.CheckConstraint(condition=Q(auth_method__in=["registration", "ip"]), name="cdr_auth_method_known"),
        ]
        indexes = [
            # The Calls list's order, (started_at, id) newest first, within the company: a keyset
            # page starts its scan at the cursor (apps.core.keyset). It replaced (company,
            # started_at), of which it is a superset, so imports keep one index to update.
            models.Index(fields=["company", "started_at", "id"], name="cdr_company_start_id_idx"),
            # What staff search by in the CDR list (apps/cdrs/admin.py): exact numbers and
            # Call-IDs (the node comes from the (node, edge_id) index; the date range from the
            # BRIN index cdr_started_brin, PostgreSQL only: migration 0008).
            models.Index(fields=["caller"], name="cdr_caller_idx"),
            # A profile's calls by start time: the rating batch recomputes the channel peaks of
            # the (profile, day) pairs it touched from these (apps.cdrs.peaks). It replaced the
            # foreign key's own index (sip_profile_id), of which it is a superset.
            models.Index(fields=["sip_profile", "started_at"], name="cdr_profile_start_idx"),
            models.Index(fields=["callee"], name="cdr_callee_idx"),
            models.Index(fields=["call_id"], name="cdr_call_id_idx"),
            # Reports count refused calls by reason (the channel limit's above all).
            models.Index(
                fields=["company", "refusal_reason", "started_at"],
                name="cdr_company_refusal_idx",
                condition=Q(disposition="refused"),
            ),
        ]

    def __str__(self) -> str:
        return f"CDR {self.node}:{self.edge_id}"

    @property
    def ledger_key(self) -> str:
        return f"cdr:{self.node}:{self.edge_id}"


class PendingCdr(models.Model):
    """A CDR waiting to be rated: the rating job's queue. Written with the CDR, deleted in the
    transaction that writes its CdrRating, so a CDR is rated exactly once: a batch claims its
    rows with SELECT … FOR UPDATE SKIP LOCKED (two jobs never share one), and a job that dies
    rolls back and leaves them here for the next run.

    No database foreign key (the CDR is inserted in the same statement, and a CDR is never
    deleted): a per-row key check would double the cost of loading a million CDRs."""

    cdr = models.OneToOneField(
        Cdr, on_delete=models.DO_NOTHING, primary_key=True, db_constraint=False, related_name="+"
    )

    def __str__(self) -> str:
        return f"CDR #{self.cdr_id} waiting to be rated"


class CdrRating(models.Model):
    """What rating decided for one CDR, written once and never changed (a trigger refuses it).

    One row per CDR (the primary key is the CDR's), so a CDR's cost is in the ledger once: its
    ledger key cdr:<node>:<edge id> (unique, as the CDR's node and edge id are) names the line
    of the ledger transaction that carries the calls of its company rated in the same batch
    (`ledger_transaction`). No database foreign keys, for the same reason as PendingCdr: the
    rating engine writes these rows from ids it read in the same transaction, and neither
    CDRs nor ledger transactions are ever deleted. (The key is not stored: a second unique
    index on a million text keys cost more than the rest of writing the ratings.)"""

    class Status(models.TextChoices):
        RATED = "rated", "Rated"
        BUNDLE = "bundle", "US minute bundle"
        ZERO_RATED = "zero_rated", "Zero-rated"
        BLOCKED = "blocked", "Blocked destination"
        ERROR = "error", "Not rated"

    cdr = models.OneToOneField(
        Cdr, on_delete=models.DO_NOTHING, primary_key=True, db_constraint=False, related_name="rating"
    )
    status = models.CharField(max_length=10, choices=Status.choices)
    cost = models.DecimalField(max_digits=14, decimal_places=4, default=Decimal("0"))
    currency = models.CharField(max_length=3, choices=Currency.choices)
    rate_prefix = models.CharField(max_length=15, blank=True)
    # Seconds of the call paid by US minute bundles (whole minutes' worth).
    bundle_seconds = models.PositiveIntegerField(default=0)
    bundle_minutes = models.PositiveIntegerField(default=0)
    note = models.CharField(max_length=200, blank=True)
    rated_at = models.DateTimeField()
    ledger_transaction = models.ForeignKey(
        "billing.LedgerTransaction",
        on_delete=models.DO_NOTHING,
        null=True,
        blank=True,
        db_constraint=False,
        db_index=False,
        related_name="+",
    )

    class Meta:
        # Staff look for the CDRs rating could not price or refused (the CDR list's filter):
        # few rows, so a small index; the common statuses are found by walking the CDRs.
        indexes = [
            models.Index(fields=["status"], name="cdr_rating_unusual_idx", condition=Q(status__in=["error", "blocked"]))
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["rated", "bundle", "zero_rated", "blocked", "error"]),
                name="cdr_rating_status_known",
            ),
            models.CheckConstraint(condition=Q(cost__gte=0), name="cdr_rating_cost_not_negative"),
            # Money moved exactly when there is a cost.
            models.CheckConstraint(
                condition=Q(cost=0, ledger_transaction__isnull=True) | Q(cost__gt=0, ledger_transaction__isnull=False),
                name="cdr_rating_cost_has_ledger_transaction",
            ),
        ]

    def __str__(self) -> str:
        return f"CDR #{self.cdr_id}: {self.get_status_display()} {self.cost} {self.currency}"

    @property
    def ledger_key(self) -> str:
        return self.cdr.ledger_key


class RejectedCdr(models.Model):
    """A record of a node's CDR table the portal could not accept as a Cdr (unknown profile,
    malformed number, impossible times): kept as it came, with why, for staff; never
    dropped. (node, edge_id) is the record's identity, as for a Cdr, so an import run twice
    keeps it once."""

    node = models.CharField(max_length=40)
    edge_id = models.BigIntegerField()
    reason = models.CharField(max_length=300)
    record = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "rejected edge CDR"
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["created_at"], name="rejected_cdr_recent")]  # the staff list
        constraints = [
            models.UniqueConstraint(fields=["node", "edge_id"], name="rejected_cdr_node_edge_id_unique"),
        ]

    def __str__(self) -> str:
        return f"edge CDR {self.node}:{self.edge_id} rejected: {self.reason}"


class DailyCalls(models.Model):
    """The calls of one profile on one UTC day to one kind of destination, summed: what reports
    read instead of the CDRs (a month of a busy company is millions of CDRs, a few thousand of
    these). Written only by the rating engine, in the transaction that writes the calls'
    CdrRating rows (one INSERT … ON CONFLICT DO UPDATE adding the batch's sums), so a figure
    never disagrees with the ratings; rebuilt from them by `manage.py rating_daily_rebuild`.

    A call's destination is the country and destination class of the rate that covers the
    number dialled (outbound calls, answered or not), "" for inbound and on-net calls and for
    numbers no rate covers. Refused calls are rows of their own (refusal_reason); calls that
    could not be rated are counted in `unrated` (their CdrRating says why).

    A month of rating writes hundreds of thousands of these rows, so the table has one index,
    its key (a composite primary key: no id column and no second index to keep), the key's
    text compares bytes on PostgreSQL (collation "C", set by migration 0007: grouping needs no
    language's order, and SQLite has no such collation), and
    there are no database foreign keys, as for CdrRating (the engine writes these rows from
    ids it read in the same transaction, and neither companies nor profiles are ever
    deleted). A call with no profile has `sip_profile_id` 0."""

    pk = models.CompositePrimaryKey(
        "company_id", "day", "sip_profile_id", "direction", "country", "destination_class", "refusal_reason"
    )
    company = models.ForeignKey(
        Company, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+"
    )
    sip_profile_id = models.BigIntegerField(help_text="The SIP profile's id; 0 for calls of no profile.")
    day = models.DateField()
    direction = models.CharField(max_length=8, choices=Cdr.Direction.choices)
    country = models.CharField(max_length=2, blank=True)
    destination_class = models.CharField(max_length=20, blank=True)
    refusal_reason = models.CharField(max_length=16, choices=Cdr.RefusalReason.choices, blank=True, default="")
    calls = models.PositiveIntegerField(default=0)
    answered = models.PositiveIntegerField(default=0)
    billable_seconds = models.PositiveBigIntegerField(default=0)
    # Seconds and whole minutes paid by US minute bundles.
    bundle_seconds = models.PositiveBigIntegerField(default=0)
    bundle_minutes = models.PositiveBigIntegerField(default=0)
    cost = models.DecimalField(max_digits=16, decimal_places=4, default=Decimal("0"))
    unrated = models.PositiveIntegerField(default=0)

    objects = CompanyOwnedQuerySet.as_manager()

    class Meta:
        verbose_name = "daily call figures"
        verbose_name_plural = "daily call figures"
        # The key is the upsert's conflict target, and its leading columns every report's
        # index (company_id = ? AND day BETWEEN …).
        constraints = [
            models.CheckConstraint(condition=Q(answered__lte=F("calls")), name="daily_calls_answered_le_calls"),
            models.CheckConstraint(condition=Q(cost__gte=0), name="daily_calls_cost_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.day} profile #{self.sip_profile_id}: {self.calls} calls"


class CallSums(models.Model):
    """What every call figure holds (DailyCalls' sums, for the roll-ups below)."""

    calls = models.PositiveIntegerField(default=0)
    answered = models.PositiveIntegerField(default=0)
    billable_seconds = models.PositiveBigIntegerField(default=0)
    bundle_seconds = models.PositiveBigIntegerField(default=0)
    bundle_minutes = models.PositiveBigIntegerField(default=0)
    cost = models.DecimalField(max_digits=16, decimal_places=4, default=Decimal("0"))
    unrated = models.PositiveIntegerField(default=0)

    class Meta:
        abstract = True


class MonthlyCalls(CallSums):
    """DailyCalls summed over the UTC month: one row per company, month, profile, direction,
    destination and refusal reason. The reports' per-profile and per-destination tables read
    these (a month of a million calls of 200 profiles is a few hundred thousand daily rows, and
    about ten thousand of these). Written with DailyCalls, in the same statement's transaction,
    from the same batch sums, so the two never disagree; `month` is the month's first day."""

    pk = models.CompositePrimaryKey(
        "company_id", "month", "sip_profile_id", "direction", "country", "destination_class", "refusal_reason"
    )
    company = models.ForeignKey(
        Company, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+"
    )
    month = models.DateField()
    sip_profile_id = models.BigIntegerField(help_text="The SIP profile's id; 0 for calls of no profile.")
    direction = models.CharField(max_length=8, choices=Cdr.Direction.choices)
    country = models.CharField(max_length=2, blank=True)
    destination_class = models.CharField(max_length=20, blank=True)
    refusal_reason = models.CharField(max_length=16, choices=Cdr.RefusalReason.choices, blank=True, default="")

    objects = CompanyOwnedQuerySet.as_manager()

    class Meta:
        verbose_name = "monthly call figures"
        verbose_name_plural = "monthly call figures"
        constraints = [
            models.CheckConstraint(condition=Q(answered__lte=F("calls")), name="monthly_calls_answered_le_calls"),
        ]

    def __str__(self) -> str:
        return f"{self.month:%Y-%m} profile #{self.sip_profile_id}: {self.calls} calls"


class ProfileDayCalls(CallSums):
    """DailyCalls summed over the destinations: one row per company, UTC day and profile, with
    the refused calls counted. The reports' per-day figures read these (a month of 200 profiles
    is 6,000 rows, whatever the calls). Written with DailyCalls, from the same batch sums."""

    pk = models.CompositePrimaryKey("company_id", "day", "sip_profile_id")
    company = models.ForeignKey(
        Company, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+"
    )
    day = models.DateField()
    sip_profile_id = models.BigIntegerField(help_text="The SIP profile's id; 0 for calls of no profile.")
    refused = models.PositiveIntegerField(default=0)
    refused_at_channel_limit = models.PositiveIntegerField(default=0)

    objects = CompanyOwnedQuerySet.as_manager()

    class Meta:
        verbose_name = "daily call figures per profile"
        verbose_name_plural = "daily call figures per profile"
        constraints = [
            models.CheckConstraint(condition=Q(answered__lte=F("calls")), name="profile_day_calls_answered_le_calls"),
            models.CheckConstraint(condition=Q(refused__lte=F("calls")), name="profile_day_calls_refused_le_calls"),
        ]

    def __str__(self) -> str:
        return f"{self.day} profile #{self.sip_profile_id}: {self.calls} calls"


class CdrPurge(models.Model):
    """One run of the retention purge that deleted CDRs: calls that started before `cutoff`
    may be gone. A CDR from before the latest cutoff is not loaded again (a staff CSV, an edge
    record read late): its first rating's row and ledger key went with it, so it would be
    charged a second time."""

    cutoff = models.DateTimeField()
    deleted = models.PositiveBigIntegerField(default=0)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["-cutoff"], name="cdr_purge_cutoff_idx")]

    def __str__(self) -> str:
        return f"{self.deleted} CDRs before {self.cutoff:%Y-%m-%d %H:%M} UTC"


class ChannelPeakDay(models.Model):
    """One profile's channel figures on one UTC day that are maxima, not sums (so they cannot be
    added to like ProfileDayCalls): the most answered calls in progress at once (a call that
    spans midnight counts on both days) and the most calls refused at the channel limit within
    one minute. The Channel peaks report reads these (a month of 200 profiles is 6,000 rows,
    whatever the calls) and the refused counts from ProfileDayCalls.

    Recomputed by the rating batch, in the transaction that writes the ratings, for the
    (profile, day) pairs its calls touched, from those pairs' CDRs (apps.cdrs.peaks); rebuilt by
    `manage.py rating_daily_rebuild`. No database foreign keys, as for DailyCalls."""

    pk = models.CompositePrimaryKey("company_id", "day", "sip_profile_id")
    company = models.ForeignKey(
        Company, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+"
    )
    day = models.DateField()
    sip_profile_id = models.BigIntegerField()
    peak = models.PositiveIntegerField(default=0)
    busiest_refused_minute = models.PositiveIntegerField(default=0)

    objects = CompanyOwnedQuerySet.as_manager()

    class Meta:
        verbose_name = "daily channel peak"

    def __str__(self) -> str:
        return f"{self.day} profile #{self.sip_profile_id}: peak {self.peak}"


def exports_storage() -> Storage:
    """Where export files are written: STORAGES["exports"] (a private folder; never served
    under a public URL, only through the company's download view)."""
    return storages["exports"]


class Export(PublicModel):
    """A large CSV written in the background for a company (a Celery task), with its progress,
    kept for EXPORT_TTL_HOURS and then deleted with its file by a periodic task.

    A run claims the row by raising `attempt` (a redelivered task starts over under a new
    attempt, and only the attempt that still holds the row may finish it); the file is written
    whole to storage before the row says done, so a done export always has its whole file
    (and the database refuses done without one)."""

    class Kind(models.TextChoices):
        CALLS = "calls", "Calls"

    class Status(models.TextChoices):
        QUEUED = "queued", "Waiting"
        RUNNING = "running", "Writing"
        DONE = "done", "Ready"
        FAILED = "failed", "Failed"

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="exports")
    requested_by = models.ForeignKey("accounts.User", on_delete=models.SET_NULL, null=True, related_name="+")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    # What to export: for calls, the Calls list's filters as the query string gave them.
    params = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    attempt = models.PositiveIntegerField(default=0)
    rows_done = models.PositiveBigIntegerField(default=0)
    rows_total = models.PositiveBigIntegerField(default=0)
    file = models.FileField(storage=exports_storage, max_length=300, blank=True)
    filename = models.CharField(max_length=120, help_text="The name the download is saved under.")
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField()
    error = models.CharField(max_length=500, blank=True)

    objects = CompanyOwnedQuerySet.as_manager()

    class Meta:
        indexes = [models.Index(fields=["expires_at"], name="export_expires_idx")]
        constraints = [
            models.CheckConstraint(condition=~Q(status="done") | ~Q(file=""), name="export_done_has_file"),
            models.CheckConstraint(
                condition=Q(status__in=["queued", "running", "done", "failed"]), name="export_status_known"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} export {self.public_id} ({self.status})"

    @property
    def percent(self) -> int:
        if self.status == self.Status.DONE:
            return 100
        return min(100, int(100 * self.rows_done / self.rows_total)) if self.rows_total else 0

    @property
    def finished(self) -> bool:
        return self.status in (self.Status.DONE, self.Status.FAILED)
