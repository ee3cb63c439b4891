"""Writes of the cdrs app: the records of the SIP edge's nodes (apps.edge.cdr_import brings
them) and the staff CSV load of CDRs (back-fills). Rating fields are written by the rating
engine only."""

from __future__ import annotations

import io
import logging
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

from django.conf import settings
from django.core.files import File
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from apps.audit.services import audit_record
from apps.cdrs import imports
from apps.cdrs.exports import calls_csv
from apps.cdrs.filters import CallFilter
from apps.cdrs.models import Cdr, CdrPurge, CdrRating, Export, PendingCdr, RejectedCdr, exports_storage
from apps.cdrs.selectors import (
    call_list,
    call_retention_cutoff,
    calls_in_chunks,
    cdrs_purged_before,
    purged_call_error,
)
from apps.core.actor import Actor
from apps.core.enqueue import enqueue_on_commit
from apps.core.exceptions import ApplicationError
from apps.core.import_jobs import CsvImport, RowError, csv_import_queue, csv_import_run
from apps.core.models import ImportJob
from apps.sip_profiles.models import SipProfile

logger = logging.getLogger(__name__)

IMPORT_KIND = "cdrs"
IMPORT_PROGRESS_EVERY = 5_000
IMPORT_INSERT_BATCH = 5_000
# The file's columns as loaded; the rest (public id, created_at, rating fields) take their
# defaults in the INSERT … SELECT.
LOAD_COLUMNS = (
    "node",
    "edge_id",
    "call_id",
    "sip_profile_id",
    "company_id",
    "direction",
    "caller",
    "callee",
    "started_at",
    "answered_at",
    "ended_at",
    "duration_seconds",
    "billable_seconds",
    "sip_code",
    "disposition",
    "auth_method",
    "source_address",
    "refusal_reason",
)

# COPY's text format gives these characters a meaning; a node or Call-ID may hold them.
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def cdr_import_create(*, actor: Actor, filename: str, content: bytes | str) -> ImportJob:
    """Keep the uploaded file and queue its load. The header is checked now, so a wrong
    file is refused on the upload form."""
    # Lazy: apps.cdrs.tasks imports this module (import cycle).
    from apps.cdrs.tasks import run_cdr_import

    return csv_import_queue(CdrImport, actor=actor, filename=filename, content=content, task=run_cdr_import)


def _profiles(rows: list[imports.CdrValues]) -> dict[str, tuple[int, int]]:
    """{the file's profile text: (profile id, company id)} for the profiles it names that
    exist (deleted ones included: their calls still happened)."""
    public_ids, usernames = imports.profile_keys({values.profile for values in rows})
    found: dict[str, tuple[int, int]] = {}
    if not public_ids and not usernames:
        return found
    query = SipProfile.objects.filter(Q(public_id__in=public_ids) | Q(sip_username__in=usernames))
    for pk, company_id, public_id, username in query.values_list("pk", "company_id", "public_id", "sip_username"):
        found[str(public_id)] = (pk, company_id)
        if username:
            found[username] = (pk, company_id)
    return found


def _copy_field(value: Any) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, str):
        return value.translate(_COPY_ESCAPES)
    return str(value)


def _insert(rows: list[tuple[Any, ...]]) -> int:
    """Insert the checked rows, skipping those already loaded. Returns how many were new.

    On PostgreSQL: COPY into a temporary table (100,000 rows in about a second), then one
    INSERT … SELECT … ON CONFLICT DO NOTHING, which also makes two loads of overlapping files
    at once safe (the second waits for the first's rows and skips them)."""
    if connection.vendor == "postgresql":
        table = Cdr._meta.db_table
        columns = ", ".join(LOAD_COLUMNS)
        # The table and column names are this module's constants; the values go through COPY.
        with connection.cursor() as cursor:
            cursor.execute(
                f"CREATE TEMPORARY TABLE cdr_load ON COMMIT DROP AS SELECT {columns} FROM {table} WITH NO DATA"  # noqa: S608
            )
            with cursor.cursor.copy(f"COPY cdr_load ({columns}) FROM STDIN") as copy:
                buffer = io.StringIO()
                for row in rows:
                    buffer.write("\t".join(map(_copy_field, row)))
                    buffer.write("\n")
                    if buffer.tell() > 1 << 20:
                        copy.write(buffer.getvalue())
                        buffer = io.StringIO()
                copy.write(buffer.getvalue())
            # The new CDRs join the rating queue in the same statement.
            cursor.execute(
                f"WITH inserted AS (INSERT INTO {table} ({columns}, public_id, created_at)"  # noqa: S608
                f" SELECT {columns}, gen_random_uuid(), now() FROM cdr_load ORDER BY node, edge_id"
                " ON CONFLICT (node, edge_id) DO NOTHING RETURNING id)"
                f" INSERT INTO {PendingCdr._meta.db_table} (cdr_id) SELECT id FROM inserted"
            )
            inserted = cursor.rowcount
            cursor.execute("DROP TABLE cdr_load")
        return inserted
    # Elsewhere (SQLite on a laptop): count the rows already there, under the same transaction.
    by_node: dict[str, list[int]] = {}
    for row in rows:
        by_node.setdefault(row[0], []).append(row[1])
    existing = sum(Cdr.objects.filter(node=node, edge_id__in=edge_ids).count() for node, edge_ids in by_node.items())
    Cdr.objects.bulk_create(
        [Cdr(**dict(zip(LOAD_COLUMNS, row, strict=True))) for row in rows],
        batch_size=IMPORT_INSERT_BATCH,
        ignore_conflicts=True,
    )
    for node, edge_ids in by_node.items():
        new = Cdr.objects.filter(node=node, edge_id__in=edge_ids, rating__isnull=True).exclude(
            pk__in=PendingCdr.objects.values("cdr_id")
        )
        PendingCdr.objects.bulk_create([PendingCdr(cdr_id=pk) for pk in new.values_list("pk", flat=True)])
    return len(rows) - existing


class CdrImport(CsvImport[imports.CdrValues]):
    """The staff CSV load of CDRs, in the shared import pipeline. All or nothing: rows
    already loaded (same node and edge id) are skipped, so loading a file twice is harmless."""

    kind = IMPORT_KIND
    columns = imports.COLUMNS
    max_bytes = imports.MAX_FILE_BYTES
    max_rows = imports.MAX_ROWS
    default_filename = "cdrs.csv"
    audit_action = "cdr_import"
    progress_every = IMPORT_PROGRESS_EVERY

    load: list[tuple[Any, ...]]

    # The app's own cleaner, called directly (no wrapper per row).
    clean_row = staticmethod(imports.clean_row)

    def key(self, values: imports.CdrValues) -> tuple[str, int]:
        return values.node, values.edge_id

    def duplicate(self, values: imports.CdrValues, first_line: int) -> str:
        return f"{values.node} edge_id {values.edge_id} is also on line {first_line}."

    def check(self, valid: list[tuple[int, imports.CdrValues]]) -> list[RowError]:
        """Each row's profile must exist; the rows to load, with its ids."""
        profiles = _profiles([values for _, values in valid])
        purged_before = cdrs_purged_before()
        errors: list[RowError] = []
        self.load = []
        for line, v in valid:
            if purged_before is not None and v.started_at < purged_before:
                errors.append({"line": line, "error": purged_call_error(v.started_at, purged_before)})
                continue
            found = profiles.get(v.profile)
            if found is None:
                errors.append(
                    {"line": line, "error": f"profile: no SIP profile has the public id or username “{v.profile}”."}
                )
                continue
            self.load.append(
                (
                    v.node,
                    v.edge_id,
                    v.call_id,
                    found[0],
                    found[1],
                    v.direction,
                    v.caller,
                    v.callee,
                    v.started_at,
                    v.answered_at,
                    v.ended_at,
                    v.duration_seconds,
                    v.billable_seconds,
                    v.sip_code,
                    v.disposition,
                    v.auth_method,
                    v.source_address,
                    "",  # a back-filled call was not refused by the edge
                )
            )
        return errors

    def insert(self, valid: list[tuple[int, imports.CdrValues]]) -> int:
        inserted = _insert(self.load)
        logger.info("cdr import %s: %s loaded, %s skipped", self.job.pk, inserted, len(self.load) - inserted)
        if inserted:
            # Rate what was loaded now rather than at the next minute.
            _cdrs_queued()
        return inserted

    def audit_changes(self, *, succeeded: bool, imported: int) -> dict[str, Any]:
        changes: dict[str, Any] = {"loaded": {"before": None, "after": imported}}
        if succeeded:
            changes["skipped"] = {"before": None, "after": self.job.total_rows - imported}
        return changes


def cdr_import_run(*, job_id: int) -> ImportJob | None:
    """Check and load one staff CDR file (CdrImport). Safe to run twice: a finished job is
    left alone."""
    run = csv_import_run(CdrImport, job_id=job_id)
    return run.job if run is not None else None


@dataclass(frozen=True)
class EdgeRecordsImported:
    cdrs: int  # new CDRs (queued to be rated)
    rejected: int  # new records kept as RejectedCdr
    skipped: int  # already imported (or already rejected) before


def cdrs_import_edge_records(*, node: str, records: Sequence[imports.EdgeRecord]) -> EdgeRecordsImported:
    """Import one batch of a node's call records: each becomes a CDR queued to be rated, or,
    when the portal cannot accept it (unknown profile, malformed number, ...), a RejectedCdr
    with why. A record already imported (the same node and edge id) is skipped, so a batch
    read twice changes nothing. Runs in the caller's transaction (the edge's import commits
    the rows and its watermark together); queues no rating (the caller rates at once)."""
    if not records:
        return EdgeRecordsImported(cdrs=0, rejected=0, skipped=0)
    profile_ids = {r.profile_id for r in records if r.profile_id is not None}
    profiles = {
        pk: (company_id, auth_method)
        for pk, company_id, auth_method in SipProfile.objects.filter(pk__in=profile_ids).values_list(
            "pk", "company_id", "auth_method"
        )
    }
    purged_before = cdrs_purged_before()
    load: list[tuple[Any, ...]] = []
    rejected: list[RejectedCdr] = []
    for record in records:
        found = profiles.get(record.profile_id) if record.profile_id is not None else None
        if purged_before is not None and record.started_at < purged_before:
            reason = purged_call_error(record.started_at, purged_before)
            rejected.append(
                RejectedCdr(node=node, edge_id=record.edge_id, reason=reason[:300], record=record.as_json())
            )
            continue
        if found is None:
            reason = f"profile: no SIP profile has the id {record.profile_id}" if record.profile_id else "no profile"
            rejected.append(RejectedCdr(node=node, edge_id=record.edge_id, reason=reason, record=record.as_json()))
            continue
        try:
            values = imports.clean_edge_record(record, profile_auth_method=found[1])
        except ApplicationError as error:
            rejected.append(
                RejectedCdr(node=node, edge_id=record.edge_id, reason=error.message[:300], record=record.as_json())
            )
            continue
        values.update(node=node, sip_profile_id=record.profile_id, company_id=found[0])
        load.append(tuple(values[column] for column in LOAD_COLUMNS))
    with transaction.atomic():
        inserted = _insert(load) if load else 0
        kept = 0
        if rejected:
            seen = set(
                RejectedCdr.objects.filter(node=node, edge_id__in=[r.edge_id for r in rejected]).values_list(
                    "edge_id", flat=True
                )
            )
            new = [r for r in rejected if r.edge_id not in seen]
            # ignore_conflicts: two imports of one node never overlap (a lock), but if they did
            # the second would skip the first's rows rather than fail.
            RejectedCdr.objects.bulk_create(new, ignore_conflicts=True)
            kept = len(new)
    if kept:
        logger.warning("edge %s: %s CDR records rejected (see the admin's rejected edge CDRs)", node, kept)
    return EdgeRecordsImported(cdrs=inserted, rejected=kept, skipped=len(records) - inserted - kept)


def cdrs_requeue_failed(*, actor: Actor, cdr_ids: list[int] | None = None) -> int:
    """Queue CDRs whose rating failed (no rate covered them, no deck was in force) to be rated
    again, e.g. after staff imported the missing rates. Only failed ratings can be removed (no
    money moved for them; the database refuses removing any other). Returns how many."""
    with transaction.atomic():
        failed = CdrRating.objects.select_for_update().filter(status=CdrRating.Status.ERROR)
        if cdr_ids is not None:
            failed = failed.filter(cdr_id__any=cdr_ids)
        ids = list(failed.order_by("cdr_id").values_list("cdr_id", flat=True))
        if not ids:
            return 0
        CdrRating.objects.filter(cdr_id__any=ids, status=CdrRating.Status.ERROR).delete()
        PendingCdr.objects.bulk_create([PendingCdr(cdr_id=pk) for pk in ids], ignore_conflicts=True)
        audit_record(actor=actor, action="cdr.requeued", company=None, changes={"cdrs": len(ids)})
        _cdrs_queued()
    return len(ids)


# --- Rating hears of new CDRs ---------------------------------------------------------------

# The rating app (above this one) registers what to queue when CDRs join the rating queue, from
# RatingConfig.ready(): cdrs imports nothing of rating.
_queued_tasks: list[Any] = []


def cdrs_queued_task_register(task: Any) -> None:
    if task not in _queued_tasks:
        _queued_tasks.append(task)


def _cdrs_queued() -> None:
    for task in _queued_tasks:
        enqueue_on_commit(task, robust=True)


# pg_try_advisory_xact_lock key of the retention purge: two runs never delete side by side.
PURGE_LOCK = 0x5C_D0_0001


@dataclass(frozen=True)
class CdrsPurged:
    cutoff: datetime
    deleted: int
    batches: int
    more: bool  # the run stopped at CALL_RETENTION_MAX_BATCHES with rows still to delete


def cdrs_purge_expired(*, now: datetime | None = None) -> CdrsPurged:
    """Delete the CDRs (and their ratings) of calls that started before the retention cutoff
    (CALL_RETENTION_MONTHS), oldest first, CALL_RETENTION_BATCH_SIZE per transaction and at most
    CALL_RETENTION_MAX_BATCHES transactions per run. The daily call figures (DailyCalls) are
    left alone, so reports of those months read the same. A CDR still waiting to be rated is
    kept until it is rated. On PostgreSQL the triggers allow these deletes only inside a
    transaction that names the cutoff (SET LOCAL skypemanager.cdr_purge_before), and only of
    calls before it; a run that finds another one holding the lock does nothing."""
    cutoff = call_retention_cutoff(now=now or timezone.now())
    size, deleted, batches, more = settings.CALL_RETENTION_BATCH_SIZE, 0, 0, False
    expired = Cdr.objects.filter(started_at__lt=cutoff).exclude(pk__in=PendingCdr.objects.values("cdr_id"))
    mark: CdrPurge | None = None
    while True:
        if batches == settings.CALL_RETENTION_MAX_BATCHES:
            more = expired.exists()  # the next run goes on
            break
        with transaction.atomic():
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [PURGE_LOCK])
                    if not cursor.fetchone()[0]:
                        logger.info("CDR retention purge: another run holds the lock")
                        return CdrsPurged(cutoff, deleted, batches, more=True)
                    cursor.execute("SELECT set_config('skypemanager.cdr_purge_before', %s, true)", [cutoff.isoformat()])
            ids = list(expired.order_by("started_at", "id").values_list("pk", flat=True)[:size])
            if not ids:
                break
            CdrRating.objects.filter(cdr_id__in=ids).delete()
            removed = Cdr.objects.filter(pk__in=ids).delete()[0]
            deleted += removed
            batches += 1
            # In the deletes' transaction: a deleted call is never loaded again (CdrPurge).
            if mark is None:
                mark = CdrPurge.objects.create(cutoff=cutoff, deleted=removed)
            else:
                CdrPurge.objects.filter(pk=mark.pk).update(deleted=F("deleted") + removed)
        if len(ids) < size:
            break
    if deleted:
        logger.info("CDR retention purge: %s CDRs before %s deleted (more to go: %s)", deleted, cutoff, more)
    return CdrsPurged(cutoff, deleted, batches, more)


# --- Background exports ----------------------------------------------------------------------

# kind → (the export's rows as CSV text lines, header first, and how many rows): each kind's
# producer; the calls' is below, a higher app may register more (its AppConfig.ready()).
ExportProducer = Callable[[Export], tuple[int, Iterator[str]]]
_export_producers: dict[str, ExportProducer] = {}


def export_producer_register(kind: str, producer: ExportProducer) -> None:
    _export_producers[kind] = producer


def _calls_export(export: Export) -> tuple[int, Iterator[str]]:
    request = SimpleNamespace(tenancy=SimpleNamespace(company=export.company))
    filters = CallFilter(export.params, queryset=call_list(company=export.company), request=request)
    if not filters.is_valid():
        raise ApplicationError(f"The filters are no longer valid: {dict(filters.errors)}")
    calls = filters.qs
    return calls.count(), calls_csv(calls_in_chunks(calls, currency=export.company.currency))


export_producer_register(Export.Kind.CALLS, _calls_export)


def export_start(*, actor: Actor, company: Any, kind: str, params: dict[str, str], filename: str) -> Export:
    """Queue a background export of `kind` for the company (its task runs on commit)."""
    from apps.cdrs.tasks import run_export  # the tasks module imports this one

    if kind not in _export_producers:
        raise ApplicationError(f"Choose one of: {', '.join(sorted(_export_producers))}.", field="kind")
    with transaction.atomic():
        export = Export.objects.create(
            company=company,
            requested_by=actor.user,
            kind=kind,
            params=params,
            filename=filename,
            expires_at=timezone.now() + timedelta(hours=settings.EXPORT_TTL_HOURS),
        )
        audit_record(actor=actor, action="export.started", company=company, target=export, changes={"kind": kind})
        enqueue_on_commit(run_export, export.pk)
    return export


def export_run(*, export_id: int) -> Export | None:
    """Write one export's file. Claims the row (a new attempt) unless it is finished or gone;
    writes the CSV to a temporary file, reporting progress every EXPORT_PROGRESS_EVERY rows,
    saves it whole to storage and only then marks the row done, if this attempt still holds
    it (else its file is removed). A failure marks the row failed with the error."""
    claimed = Export.objects.filter(pk=export_id, status__in=[Export.Status.QUEUED, Export.Status.RUNNING]).update(
        status=Export.Status.RUNNING, attempt=F("attempt") + 1, started_at=timezone.now(), rows_done=0
    )
    if not claimed:
        return None
    export = Export.objects.select_related("company").get(pk=export_id)
    mine = Export.objects.filter(pk=export_id, attempt=export.attempt, status=Export.Status.RUNNING)
    storage = exports_storage()
    name = ""
    try:
        total, lines = _export_producers[export.kind](export)
        mine.update(rows_total=total)
        done, every = -1, settings.EXPORT_PROGRESS_EVERY  # the header is not a row
        with tempfile.TemporaryFile() as out:
            for line in lines:
                out.write(line.encode("utf-8"))
                done += 1
                if done and done % every == 0 and not mine.update(rows_done=done):
                    logger.info("export %s: attempt %s was superseded", export.public_id, export.attempt)
                    return None
            out.seek(0)
            name = storage.save(f"{export.company.public_id}/{export.public_id}-{export.attempt}.csv", File(out))
        finished = mine.update(
            status=Export.Status.DONE,
            file=name,
            rows_done=done,
            rows_total=max(total, done),
            finished_at=timezone.now(),
        )
        if not finished:
            storage.delete(name)
            return None
    except Exception as error:
        logger.exception("export %s failed", export.public_id)
        if name:
            storage.delete(name)
        message = error.message if isinstance(error, ApplicationError) else "The export could not be written."
        mine.update(status=Export.Status.FAILED, error=message[:500], finished_at=timezone.now())
    export.refresh_from_db()
    return export


def exports_purge_expired(*, now: datetime | None = None, batch: int = 500) -> int:
    """Delete the exports past their expiry, file first, then the row (a file that cannot be
    deleted keeps its row for the next run). At most `batch` a run. Returns how many."""
    now = now or timezone.now()
    storage = exports_storage()
    deleted = 0
    for export in Export.objects.filter(expires_at__lte=now).order_by("expires_at")[:batch]:
        if export.file.name:
            storage.delete(export.file.name)
        deleted += Export.objects.filter(pk=export.pk, expires_at__lte=now).delete()[0]
    return deleted
