"""Writes of the rating app: rate deck imports, retiring a deck, and the staff list of
blocked prefixes. Each write is atomic and audited."""

from __future__ import annotations

import io
import logging
from collections.abc import Callable
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from apps.audit.services import audit_record
from apps.companies.models import Currency
from apps.core.actor import Actor
from apps.core.enqueue import enqueue_on_commit
from apps.core.exceptions import ApplicationError
from apps.core.import_jobs import import_job_claim
from apps.core.import_jobs import import_job_progress as _progress
from apps.core.models import ImportJob
from apps.rating import imports
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
    text = imports.decode(content)
    imports.check_file(text)
    filename = (filename or "rates.csv")[:200]
    with transaction.atomic():
        job = ImportJob.objects.create(kind=IMPORT_KIND, filename=filename, content=text, created_by=actor.user)
        deck = RateDeck.objects.create(
            currency=currency, name=(name or filename)[:200], import_job=job, created_by=actor.user
        )
        audit_record(
            actor=actor,
            action="rate_deck_import.queued",
            company=None,
            target=deck,
            changes={"currency": {"before": None, "after": currency}, "filename": {"before": None, "after": filename}},
        )
        # Lazy: apps.rating.tasks imports this module (import cycle).
        from apps.rating.tasks import run_rate_deck_import

        job_id = job.pk
        enqueue_on_commit(run_rate_deck_import, job_id)
    return deck


def _finish(
    *, actor: Actor, job: ImportJob, deck: RateDeck, status: str, errors: list[dict[str, Any]], imported: int
) -> None:
    job.status = status
    job.errors = sorted(errors, key=lambda e: e["line"])
    job.imported_rows = imported
    job.processed_rows = job.total_rows
    job.finished_at = timezone.now()
    job.save(update_fields=["status", "errors", "imported_rows", "processed_rows", "finished_at"])
    succeeded = status == ImportJob.Status.SUCCEEDED
    deck.status = RateDeck.Status.ACTIVE if succeeded else RateDeck.Status.FAILED
    deck.rate_count = imported
    deck.save(update_fields=["status", "rate_count", "effective_from"])
    audit_record(
        actor=actor,
        action="rate_deck_import.succeeded" if succeeded else "rate_deck_import.failed",
        company=None,
        target=deck,
        changes={
            "rate_count": {"before": None, "after": imported},
            **({"effective_from": {"before": None, "after": deck.effective_from}} if succeeded else {}),
            **({"bad_rows": {"before": None, "after": len(errors)}} if errors else {}),
        },
    )


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


def rate_deck_import_run(*, job_id: int) -> RateDeck | None:
    """Check every row (progress is saved every few thousand rows), then insert all of them
    in one transaction and activate the deck, or insert none if any row is bad: every bad
    row is reported with its line number. Safe to run twice: a finished job is left alone."""
    claimed = import_job_claim(job_id=job_id, kind=IMPORT_KIND)
    if claimed is None:
        return None
    job, actor = claimed
    deck = RateDeck.objects.get(import_job=job)
    try:
        rows = imports.read_rows(job.content)
    except ApplicationError as error:
        with transaction.atomic():
            _finish(
                actor=actor,
                job=job,
                deck=deck,
                status=ImportJob.Status.FAILED,
                errors=[{"line": 1, "error": error.message}],
                imported=0,
            )
        return deck
    job.total_rows = len(rows)
    _progress(job_id, total_rows=job.total_rows)

    errors: list[dict[str, Any]] = []
    valid: list[imports.RateValues] = []
    first_line: dict[str, int] = {}
    effective_line = 0
    effective_from = None
    for index, row in enumerate(rows, start=1):
        try:
            values = imports.clean_row(row)
        except ApplicationError as error:
            errors.append({"line": row.line, "error": error.message})
        else:
            seen = first_line.setdefault(values.prefix, row.line)
            if effective_from is None:
                effective_from, effective_line = values.effective_from, row.line
            if seen != row.line:
                errors.append({"line": row.line, "error": f"prefix: +{values.prefix} is also on line {seen}."})
            elif values.effective_from != effective_from:
                errors.append(
                    {
                        "line": row.line,
                        "error": f"effective_date: one file is one deck; line {effective_line} says "
                        f"{effective_from.isoformat()}, this line {values.effective_from.isoformat()}.",
                    }
                )
            else:
                valid.append(values)
        if index % IMPORT_PROGRESS_EVERY == 0:
            _progress(job_id, processed_rows=index)
    _progress(job_id, processed_rows=job.total_rows)

    with transaction.atomic():
        # A second delivery of the task waits here and then finds the job finished.
        job = ImportJob.objects.select_for_update().get(pk=job_id)
        deck = RateDeck.objects.select_for_update().get(pk=deck.pk)
        if job.status != ImportJob.Status.RUNNING:
            return deck
        if errors:
            _finish(actor=actor, job=job, deck=deck, status=ImportJob.Status.FAILED, errors=errors, imported=0)
            return deck
        assert effective_from is not None  # rows were read, and none was bad
        deck.effective_from = effective_from
        clash = RateDeck.objects.filter(
            currency=deck.currency, status=RateDeck.Status.ACTIVE, effective_from=effective_from
        ).first()
        if clash is None:
            try:
                with transaction.atomic():
                    _insert_rates(deck, valid)
                    succeeded = ImportJob.Status.SUCCEEDED
                    _finish(actor=actor, job=job, deck=deck, status=succeeded, errors=[], imported=len(valid))
                return deck
            except IntegrityError:
                # Another deck of the same time was activated while this file was checked.
                logger.info("rate deck %s lost the race for %s", deck.pk, effective_from)
                clash = RateDeck.objects.filter(
                    currency=deck.currency, status=RateDeck.Status.ACTIVE, effective_from=effective_from
                ).first()
        deck.effective_from = None
        message = (
            f"effective_date: the {deck.currency} deck “{clash.name}” already takes effect at "
            f"{effective_from.isoformat()}; retire it first or choose another date."
            if clash is not None
            else "The decks changed during the import; upload again."
        )
        _finish(
            actor=actor,
            job=job,
            deck=deck,
            status=ImportJob.Status.FAILED,
            errors=[{"line": effective_line, "error": message}],
            imported=0,
        )
    return deck


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
