"""The one pipeline of every staff CSV import (Online Number stock, rate decks, CDRs).

`csv_import_queue` keeps the uploaded file and queues its job; `csv_import_run`, in the
worker, claims the job (so no two workers run one job), reads the file, cleans and checks
every row (saving progress where the status page sees it at once), checks the rows
together, then inserts all of them in one transaction or none if any row is bad, and
finishes the job (succeeded, or failed with every bad row and its line) with its audit
event. Each import supplies only what differs, as a `CsvImport`: its columns and limits,
its row cleaner, the key that makes two rows duplicates, its checks and its insert.

Core knows no other app, so the audit app registers how an event is written
(`import_audit_register`, from AuditConfig.ready()).
"""

from __future__ import annotations

import gc
from collections.abc import Hashable, Mapping
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from django.db import IntegrityError, models, transaction
from django.utils import timezone

from apps.core import csvfiles
from apps.core.actor import Actor
from apps.core.csvfiles import Row
from apps.core.enqueue import enqueue_on_commit
from apps.core.exceptions import ApplicationError
from apps.core.models import ImportJob

# {"line": 3, "error": "..."}: one bad row, as ImportJob.errors keeps it.
RowError = dict[str, Any]
V = TypeVar("V")


class AuditRecorder(Protocol):
    def __call__(
        self,
        *,
        actor: Actor,
        action: str,
        company: None,
        target: models.Model | None = None,
        changes: Mapping[str, Any] | None = None,
    ) -> object: ...


_recorders: list[AuditRecorder] = []


def import_audit_register(recorder: AuditRecorder) -> None:
    if recorder not in _recorders:
        _recorders.append(recorder)


def _audit(*, actor: Actor, action: str, target: models.Model, changes: Mapping[str, Any]) -> None:
    if not _recorders:
        # An import that wrote no audit event would be a silent hole in who changed what.
        raise RuntimeError("No audit recorder is registered (apps.audit is not installed).")
    for recorder in _recorders:
        recorder(actor=actor, action=action, company=None, target=target, changes=changes)


class ImportRejected(Exception):
    """Raised by CsvImport.insert when a check made under the job's lock fails: nothing is
    inserted and the job fails with these errors."""

    def __init__(self, errors: list[RowError]) -> None:
        super().__init__(errors)
        self.errors = errors


class CsvImport(Generic[V]):
    """One kind of staff import. The pipeline makes one per run, after claiming the job.

    `V` is one checked row. Subclasses set the class attributes and write clean_row, key,
    insert and audit_changes; the other steps do nothing unless overridden."""

    kind: ClassVar[str]  # ImportJob.kind
    columns: ClassVar[tuple[str, ...]]
    max_bytes: ClassVar[int]
    max_rows: ClassVar[int]
    default_filename: ClassVar[str]
    audit_action: ClassVar[str]  # "cdr_import": cdr_import.queued, .succeeded, .failed
    progress_every: ClassVar[int] = 5_000

    def __init__(self, job: ImportJob) -> None:
        self.job = job

    # --- the upload -------------------------------------------------------------------

    @classmethod
    def decode(cls, content: bytes | str) -> str:
        return csvfiles.decode(content, max_bytes=cls.max_bytes)

    @classmethod
    def read_rows(cls, text: str) -> list[Row]:
        return csvfiles.read_rows(text, columns=cls.columns, max_rows=cls.max_rows)

    @classmethod
    def queued(cls, job: ImportJob, **options: Any) -> tuple[models.Model, dict[str, Any]]:
        """Rows to create with the job (a draft deck) in its transaction: the audit event's
        target and the changes it records besides the file's name."""
        return job, {}

    # --- the run ------------------------------------------------------------------------

    def clean_row(self, row: Row) -> V:
        """One row, checked. Raises ApplicationError whose message names every problem."""
        raise NotImplementedError

    def key(self, values: V) -> Hashable:
        """What no two rows of a file may share."""
        raise NotImplementedError

    def duplicate(self, values: V, first_line: int) -> str:
        """The error of a row whose key is also on `first_line`."""
        raise NotImplementedError

    def check_row(self, values: V, line: int) -> str | None:
        """A check of a row against the rows before it; the error, or None."""
        return None

    def check(self, valid: list[tuple[int, V]]) -> list[RowError]:
        """Checks of the good rows together (against the database), after every row was cleaned."""
        return []

    def lock(self) -> None:
        """Lock (select_for_update) the rows finishing writes, besides the job."""

    def insert(self, valid: list[tuple[int, V]]) -> int:
        """Insert every row (all were good), in the run's transaction; how many are new.
        May raise ImportRejected, or IntegrityError (then `conflict` says why)."""
        raise NotImplementedError

    def conflict(self, valid: list[tuple[int, V]]) -> list[RowError]:
        """Why the insert broke a constraint: someone wrote a clashing row meanwhile."""
        return [{"line": 1, "error": "The data changed during the import; upload again."}]

    def finished(self, *, succeeded: bool, imported: int) -> None:
        """Write what the import's own rows say about its end (the deck becomes active)."""

    def audit_target(self) -> models.Model:
        return self.job

    def audit_changes(self, *, succeeded: bool, imported: int) -> dict[str, Any]:
        raise NotImplementedError


I = TypeVar("I", bound=CsvImport[Any])  # noqa: E741


def csv_import_queue(
    importer: type[CsvImport[Any]], *, actor: Actor, filename: str, content: bytes | str, task: Any, **options: Any
) -> ImportJob:
    """Keep the uploaded file and queue `task` (the worker's csv_import_run) for it. The
    header is checked now, so a wrong file is refused on the upload form; the rows are
    checked by the task."""
    text = importer.decode(content)
    importer.read_rows(text)
    filename = (filename or importer.default_filename)[:200]
    with transaction.atomic():
        job = ImportJob.objects.create(kind=importer.kind, filename=filename, content=text, created_by=actor.user)
        target, changes = importer.queued(job, **options)
        _audit(
            actor=actor,
            action=f"{importer.audit_action}.queued",
            target=target,
            changes={**changes, "filename": {"before": None, "after": filename}},
        )
        job_id = job.pk
        enqueue_on_commit(task, job_id)
    return job


def import_job_claim(*, job_id: int, kind: str) -> tuple[ImportJob, Actor] | None:
    """Start (or, after a worker died, restart) a queued or running job of `kind`, and who
    runs it: the staff member who uploaded the file. None when the job is finished: a task
    delivered twice leaves it alone."""
    claimed = ImportJob.objects.filter(
        pk=job_id, kind=kind, status__in=[ImportJob.Status.QUEUED, ImportJob.Status.RUNNING]
    ).update(status=ImportJob.Status.RUNNING, processed_rows=0, imported_rows=0, errors=[], finished_at=None)
    if not claimed:
        return None
    job = ImportJob.objects.select_related("created_by").get(pk=job_id)
    return job, Actor(user=job.created_by) if job.created_by else Actor.system()


def import_job_progress(job_id: int, **fields: Any) -> None:
    # Runs outside any transaction (autocommit), so the status page sees it at once.
    ImportJob.objects.filter(pk=job_id).update(**fields)


def _finish(run: CsvImport[Any], *, actor: Actor, errors: list[RowError], imported: int) -> None:
    job = run.job
    succeeded = not errors
    job.status = ImportJob.Status.SUCCEEDED if succeeded else ImportJob.Status.FAILED
    job.errors = sorted(errors, key=lambda e: e["line"])
    job.imported_rows = imported
    job.processed_rows = job.total_rows
    job.finished_at = timezone.now()
    job.save(update_fields=["status", "errors", "imported_rows", "processed_rows", "finished_at"])
    run.finished(succeeded=succeeded, imported=imported)
    changes = run.audit_changes(succeeded=succeeded, imported=imported)
    if errors:
        changes["bad_rows"] = {"before": None, "after": len(errors)}
    _audit(
        actor=actor,
        action=f"{run.audit_action}.{'succeeded' if succeeded else 'failed'}",
        target=run.audit_target(),
        changes=changes,
    )


def _clean_rows(run: CsvImport[V], rows: list[Row], errors: list[RowError]) -> list[tuple[int, V]]:
    """Every good row with its line; the bad ones' errors go into `errors`."""
    job_id = run.job.pk
    every = run.progress_every
    valid: list[tuple[int, V]] = []
    first_line: dict[Hashable, int] = {}
    # Bound once: this loop runs for every row of files of 100,000 rows and more.
    clean, key, duplicate, check_row = run.clean_row, run.key, run.duplicate, run.check_row
    seen_at, keep, report = first_line.setdefault, valid.append, errors.append
    # The loop makes a few objects per row and no reference cycles; the cyclic collector,
    # woken by those allocations, would walk every row kept so far again and again.
    collecting = gc.isenabled()
    gc.disable()
    try:
        for index, row in enumerate(rows, start=1):
            line = row.line
            try:
                values = clean(row)
            except ApplicationError as error:
                report({"line": line, "error": error.message})
            else:
                seen = seen_at(key(values), line)
                problem = duplicate(values, seen) if seen != line else check_row(values, line)
                if problem is None:
                    keep((line, values))
                else:
                    report({"line": line, "error": problem})
            if index % every == 0:
                import_job_progress(job_id, processed_rows=index)
    finally:
        if collecting:
            gc.enable()
    return valid


def csv_import_run(importer: type[I], *, job_id: int) -> I | None:
    """Run one import job: check every row (progress is saved every few thousand rows), then
    insert all of them in one transaction, or none if any row is bad: every bad row is
    reported with its line number. Safe to run twice: a finished job is left alone (None
    when this run did not claim it)."""
    claimed = import_job_claim(job_id=job_id, kind=importer.kind)
    if claimed is None:
        return None
    job, actor = claimed
    run = importer(job)
    try:
        rows = run.read_rows(job.content)
    except ApplicationError as error:
        with transaction.atomic():
            _finish(run, actor=actor, errors=[{"line": 1, "error": error.message}], imported=0)
        return run
    job.total_rows = len(rows)
    import_job_progress(job_id, total_rows=job.total_rows)

    errors: list[RowError] = []
    valid = _clean_rows(run, rows, errors)
    errors += run.check(valid)
    import_job_progress(job_id, processed_rows=job.total_rows)

    with transaction.atomic():
        # A second delivery of the task waits here and then finds the job finished.
        run.job = ImportJob.objects.select_for_update().get(pk=job_id)
        run.lock()
        if run.job.status != ImportJob.Status.RUNNING:
            return run
        if errors:
            _finish(run, actor=actor, errors=errors, imported=0)
            return run
        try:
            with transaction.atomic():
                imported = run.insert(valid)
                _finish(run, actor=actor, errors=[], imported=imported)
        except ImportRejected as rejected:
            _finish(run, actor=actor, errors=rejected.errors, imported=0)
        except IntegrityError:
            # A clashing row was written while the file was checked; the savepoint is undone.
            _finish(run, actor=actor, errors=run.conflict(valid), imported=0)
    return run
