"""The one pipeline of the staff CSV imports (apps.core.import_jobs) and its one upload page,
through the imports that plug into it."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from apps.audit.models import AuditEvent
from apps.core.actor import Actor
from apps.core.models import ImportJob
from apps.numbers.models import OnlineNumber
from apps.numbers.services import number_import_create, number_import_run
from apps.rating.imports import TEMPLATE as DECK_TEMPLATE
from tests.factories import UserFactory
from tests.helpers.races import run_concurrently
from tests.numbers.test_import import big_file


@pytest.mark.django_db(transaction=True)
def test_two_workers_running_one_job_at_once_import_it_once() -> None:
    staff = UserFactory(is_staff=True, is_superuser=True)
    job = number_import_create(actor=Actor(user=staff), filename="stock.csv", content=big_file(300))

    run_concurrently(lambda: number_import_run(job_id=job.pk), lambda: number_import_run(job_id=job.pk))

    job.refresh_from_db()
    assert (job.status, job.imported_rows, job.errors) == ("succeeded", 300, [])
    assert OnlineNumber.objects.count() == 300
    assert AuditEvent.objects.filter(action="number_import.succeeded", object_id=str(job.public_id)).count() == 1
    # A third delivery, after the job finished, is left alone.
    assert number_import_run(job_id=job.pk) is None


@pytest.mark.django_db
def test_the_one_upload_page_shows_each_imports_own_help_words_and_recent_jobs(
    django_capture_on_commit_callbacks,
) -> None:
    staff = UserFactory(is_staff=True, is_superuser=True, email="decks@platform.example")
    client = Client()
    client.force_login(staff)
    upload = SimpleUploadedFile("usd.csv", DECK_TEMPLATE.encode(), "text/csv")
    with django_capture_on_commit_callbacks(execute=False):
        client.post("/staff/rating/ratedeck/import/", {"currency": "USD", "name": "", "file": upload})

    decks = client.get("/staff/rating/ratedeck/import/").content.decode()
    cdrs = client.get("/staff/cdrs/cdr/import/").content.decode()
    numbers = client.get("/staff/numbers/onlinenumber/import/").content.decode()

    job = ImportJob.objects.get(kind="rate_deck")
    assert "One file is one deck of one currency" in decks
    assert '<a href="/staff/rating/ratedeck/">Rate decks</a> › Import CSV' in decks
    assert '<input type="submit" value="Upload and import"' in decks
    assert "<h2>Recent imports</h2>" in decks
    assert "<th>File</th><th>Currency</th><th>By</th>" in decks
    assert f'<a href="/staff/rating/ratedeck/import/{job.public_id}/">usd.csv</a></td><td>USD</td>' in decks
    assert "<td>decks@platform.example</td>" in decks
    assert 'name="currency"' in decks  # the deck's own form

    assert "one call leg per row" in cdrs
    assert '<a href="/staff/cdrs/cdr/">CDRs</a> › Load CSV' in cdrs
    assert '<input type="submit" value="Upload and load"' in cdrs
    assert "Recent loads" not in cdrs  # no CDR file yet
    assert "One number per row" in numbers
    assert '<a href="/staff/numbers/onlinenumber/">Online numbers</a> › Import CSV' in numbers
