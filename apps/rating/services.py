"""Writes of the rating app: rate deck imports, retiring a deck, and the staff list of
blocked prefixes. Each write is atomic and audited."""

from __future__ import annotations

import io
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.db import IntegrityError, connection, transaction

from apps.audit.services import audit_record
from apps.bundles.services import bundles_renew
from apps.companies.models import Currency
from apps.core.actor import Actor
from apps.core.exceptions import ApplicationError
from apps.core.import_jobs import CsvImport, ImportRejected, RowError, csv_import_queue, csv_import_run
from apps.core.models import ImportJob
from apps.rating import imports
from apps.rating.engine import RunResult, rate_pending
from apps.rating.models import BlockedPrefix, Rate, RateDeck

logger = logging.getLogger(__name__)

IMPORT_KIND = "rate_deck"
IMPORT_PROGRESS_EVERY = 5_000
IMPORT_INSERT_BATCH = 5_000
COPY_COLUMNS = (
    "deck_id",
    "prefix",
    "destination",
    "country",
    "destination_class",
    "price_per_minute",
    "connection_fee",
    "first_increment",
    "next_increment",
)

# COPY's text format gives these characters a meaning; a destination may hold them.
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


# --- CSV import of a deck ------------------------------------------------------------


def rate_deck_import_create(
    *, actor: Actor, currency: str, filename: str, content: bytes | str, name: str = ""
) -> RateDeck:
    """Keep the uploaded file as a draft deck of `currency` and queue its import. The
    header is checked now, so a wrong file is refused on the upload form."""
    if currency not in Currency.values:
        raise ApplicationError(f"“{currency}” is not a currency we bill in.", field="currency")
    # Lazy: apps.rating.tasks imports this module (import cycle).
    from apps.rating.tasks import run_rate_deck_import

    job = csv_import_queue(
        RateDeckImport,
        actor=actor,
        filename=filename,
        content=content,
        task=run_rate_deck_import,
        currency=currency,
        name=name,
    )
    # Set when the deck was created with the job (a one-to-one caches both ways).
    deck: RateDeck = job.rate_deck
    return deck


def _insert_rates(deck: RateDeck, valid: list[imports.RateValues]) -> None:
    """All rows in one go: COPY on PostgreSQL (100,000 rows in about a second), bulk_create elsewhere."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            copy_sql = f"COPY {Rate._meta.db_table} ({', '.join(COPY_COLUMNS)}) FROM STDIN"
            with cursor.cursor.copy(copy_sql) as copy:
                buffer = io.StringIO()
                for values in valid:
                    # Checked values hold no tab, newline or backslash-escapes but the
                    # destination; escape it for COPY's text format.
                    destination = values.destination.translate(_COPY_ESCAPES)
                    buffer.write(
                        f"{deck.pk}\t{values.prefix}\t{destination}\t{values.country}\t{values.destination_class}\t"
                        f"{values.price_per_minute}\t{values.connection_fee}\t{values.first_increment}\t{values.next_increment}\n"
                    )
                    if buffer.tell() > 1 << 20:
                        copy.write(buffer.getvalue())
                        buffer = io.StringIO()
                copy.write(buffer.getvalue())
        return
    Rate.objects.bulk_create(
        [
            Rate(
                deck=deck,
                prefix=v.prefix,
                destination=v.destination,
                country=v.country,
                destination_class=v.destination_class,
                price_per_minute=v.price_per_minute,
                connection_fee=v.connection_fee,
                first_increment=v.first_increment,
                next_increment=v.next_increment,
            )
            for v in valid
        ],
        batch_size=IMPORT_INSERT_BATCH,
    )


class RateDeckImport(CsvImport[imports.RateValues]):
    """The staff CSV import of one rate deck, in the shared import pipeline. One file is one
    draft deck of one currency and one effective time; it becomes active when every row is
    good, or fails with nothing inserted."""

    kind = IMPORT_KIND
    columns = imports.COLUMNS
    max_bytes = imports.MAX_FILE_BYTES
    max_rows = imports.MAX_ROWS
    default_filename = "rates.csv"
    audit_action = "rate_deck_import"
    progress_every = IMPORT_PROGRESS_EVERY

    effective_from: datetime | None = None
    effective_line = 0

    @classmethod
    def queued(cls, job: ImportJob, **options: Any) -> tuple[RateDeck, dict[str, Any]]:
        currency, name = options["currency"], options["name"]
        deck = RateDeck.objects.create(
            # The file's name stays on the job, for staff: customers see the deck's display name.
            currency=currency,
            name=name.strip()[:200],
            import_job=job,
            created_by=job.created_by,
        )
        return deck, {"currency": {"before": None, "after": currency}}

    def __init__(self, job: ImportJob) -> None:
        super().__init__(job)
        self.deck = RateDeck.objects.get(import_job=job)

    # The app's own cleaner, called directly (no wrapper per row).
    clean_row = staticmethod(imports.clean_row)

    def key(self, values: imports.RateValues) -> str:
        return values.prefix

    def duplicate(self, values: imports.RateValues, first_line: int) -> str:
        return f"prefix: +{values.prefix} is also on line {first_line}."

    def check_row(self, values: imports.RateValues, line: int) -> str | None:
        if self.effective_from is None:
            self.effective_from, self.effective_line = values.effective_from, line
        if values.effective_from != self.effective_from:
            return (
                f"effective_date: one file is one deck; line {self.effective_line} says "
                f"{self.effective_from.isoformat()}, this line {values.effective_from.isoformat()}."
            )
        return None

    def lock(self) -> None:
        self.deck = RateDeck.objects.select_for_update().get(pk=self.deck.pk)

    def _clash(self) -> RateDeck | None:
        return RateDeck.objects.filter(
            currency=self.deck.currency, status=RateDeck.Status.ACTIVE, effective_from=self.effective_from
        ).first()

    def _refusal(self, clash: RateDeck | None) -> list[RowError]:
        assert self.effective_from is not None
        message = (
            f"effective_date: the {self.deck.currency} deck “{clash.display_name}” already takes effect at "
            f"{self.effective_from.isoformat()}; retire it first or choose another date."
            if clash is not None
            else "The decks changed during the import; upload again."
        )
        return [{"line": self.effective_line, "error": message}]

    def insert(self, valid: list[tuple[int, imports.RateValues]]) -> int:
        assert self.effective_from is not None  # rows were read, and none was bad
        clash = self._clash()
        if clash is not None:
            raise ImportRejected(self._refusal(clash))
        self.deck.effective_from = self.effective_from
        _insert_rates(self.deck, [values for _, values in valid])
        return len(valid)

    def conflict(self, valid: list[tuple[int, imports.RateValues]]) -> list[RowError]:
        # Another deck of the same time was activated while this file was checked.
        logger.info("rate deck %s lost the race for %s", self.deck.pk, self.effective_from)
        return self._refusal(self._clash())

    def finished(self, *, succeeded: bool, imported: int) -> None:
        deck = self.deck
        deck.status = RateDeck.Status.ACTIVE if succeeded else RateDeck.Status.FAILED
        deck.rate_count = imported
        if not succeeded:
            deck.effective_from = None
        deck.save(update_fields=["status", "rate_count", "effective_from"])

    def audit_target(self) -> RateDeck:
        return self.deck

    def audit_changes(self, *, succeeded: bool, imported: int) -> dict[str, Any]:
        changes: dict[str, Any] = {"rate_count": {"before": None, "after": imported}}
        if succeeded:
            changes["effective_from"] = {"before": None, "after": self.deck.effective_from}
        return changes


def rate_deck_import_run(*, job_id: int) -> RateDeck | None:
    """Check and import one staff rate deck CSV (RateDeckImport). Safe to run twice: a
    finished job is left alone."""
    run = csv_import_run(RateDeckImport, job_id=job_id)
    return run.deck if run is not None else None


def rate_deck_retire(*, actor: Actor, deck: RateDeck) -> RateDeck:
    """Take an active deck out of force: the previous version applies again. Its rates are
    kept, since calls already rated with it refer to them."""
    with transaction.atomic():
        deck = RateDeck.objects.select_for_update().get(pk=deck.pk)
        if deck.status != RateDeck.Status.ACTIVE:
            raise ApplicationError(f"{deck} is not active.")
        deck.status = RateDeck.Status.RETIRED
        deck.save(update_fields=["status"])
        audit_record(
            actor=actor,
            action="rate_deck.retired",
            company=None,
            target=deck,
            changes={"status": {"before": RateDeck.Status.ACTIVE, "after": RateDeck.Status.RETIRED}},
        )
    return deck


# --- Blocked prefixes ----------------------------------------------------------------

BLOCKED_FIELDS = ("country", "prefix", "exact", "kind", "reason")

# The edge (a higher app) pushes the blocked list to its nodes: it registers here, from its
# AppConfig.ready(), and hears of every committed change (rating never imports the edge).
_blocked_listeners: list[Callable[[], None]] = []


def blocked_prefixes_listener_register(listener: Callable[[], None]) -> None:
    if listener not in _blocked_listeners:
        _blocked_listeners.append(listener)


def _blocked_prefixes_changed() -> None:
    """Inside the change's transaction: each listener is called once it commits (robust: a
    push that cannot be queued is the reconciliation's; the change itself stands)."""
    for listener in _blocked_listeners:
        transaction.on_commit(listener, robust=True)


def _clean_blocked(*, country: str, prefix: str, kind: str, reason: str) -> tuple[str, str]:
    errors: dict[str, list[str]] = {}
    country = (country or "").strip().upper()
    prefix = (prefix or "").replace(" ", "").strip()
    if country != BlockedPrefix.ANY_COUNTRY and imports._calling_code(country) is None:
        errors["country"] = ['Enter a country code such as US, or "*" for every country.']
    digits = prefix.removeprefix("+")
    if not (digits.isdigit() and digits.isascii() and 1 <= len(digits) <= 15):
        errors["prefix"] = ['Enter digits, with a leading + for an E.164 range ("+1900") or without ("911").']
    if kind not in BlockedPrefix.Kind.values:
        errors["kind"] = [f"Choose one of {', '.join(BlockedPrefix.Kind.values)}."]
    if not (reason or "").strip():
        errors["reason"] = ["Say why the range is blocked; callers see it."]
    if errors:
        raise ApplicationError(next(iter(errors.values()))[0], errors=errors)
    return country, prefix


def blocked_prefix_create(
    *, actor: Actor, country: str, prefix: str, kind: str, reason: str, exact: bool = False
) -> BlockedPrefix:
    country, prefix = _clean_blocked(country=country, prefix=prefix, kind=kind, reason=reason)
    try:
        with transaction.atomic():
            blocked = BlockedPrefix.objects.create(
                country=country, prefix=prefix, exact=exact, kind=kind, reason=reason.strip()
            )
            audit_record(
                actor=actor,
                action="blocked_prefix.created",
                company=None,
                target=blocked,
                changes={name: {"before": None, "after": getattr(blocked, name)} for name in BLOCKED_FIELDS},
            )
            _blocked_prefixes_changed()
    except IntegrityError:
        raise ApplicationError(f"{prefix} is already blocked for {country}.", field="prefix") from None
    return blocked


def blocked_prefix_update(
    *, actor: Actor, blocked: BlockedPrefix, country: str, prefix: str, kind: str, reason: str, exact: bool
) -> BlockedPrefix:
    country, prefix = _clean_blocked(country=country, prefix=prefix, kind=kind, reason=reason)
    try:
        with transaction.atomic():
            row = BlockedPrefix.objects.select_for_update().get(pk=blocked.pk)
            before = {name: getattr(row, name) for name in BLOCKED_FIELDS}
            row.country, row.prefix, row.exact, row.kind, row.reason = country, prefix, exact, kind, reason.strip()
            row.save()
            changes = {
                name: {"before": before[name], "after": getattr(row, name)}
                for name in BLOCKED_FIELDS
                if before[name] != getattr(row, name)
            }
            if changes:
                audit_record(actor=actor, action="blocked_prefix.updated", company=None, target=row, changes=changes)
                _blocked_prefixes_changed()
    except IntegrityError:
        raise ApplicationError(f"{prefix} is already blocked for {country}.", field="prefix") from None
    return row


def blocked_prefix_delete(*, actor: Actor, blocked: BlockedPrefix) -> None:
    with transaction.atomic():
        audit_record(
            actor=actor,
            action="blocked_prefix.deleted",
            company=None,
            target=blocked,
            changes={name: {"before": getattr(blocked, name), "after": None} for name in BLOCKED_FIELDS},
        )
        BlockedPrefix.objects.filter(pk=blocked.pk).delete()
        _blocked_prefixes_changed()


# --- Rating now ----------------------------------------------------------------------


def cdrs_rate_queued(*, max_seconds: float) -> RunResult:
    """Rate the CDRs queued now, batch by batch, for at most about `max_seconds` (the
    scheduled job, and the edge's import right after each batch it imports). Any number of
    callers at once is safe: batches take the engine's lock one at a time, and a CDR is
    rated once."""
    # A bundle period must exist before the calls made in it are rated, or they would be
    # charged at the standard rate: start the periods due (one cheap query when none is).
    try:
        bundles_renew(limit=1000)
    except Exception:
        logger.exception("US minute bundle renewal before rating failed")
    return rate_pending(max_seconds=max_seconds)
