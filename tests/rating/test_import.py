from __future__ import annotations

import time
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from apps.audit.models import AuditEvent
from apps.core.actor import Actor
from apps.core.exceptions import ApplicationError
from apps.core.models import ImportJob
from apps.rating.models import BlockedPrefix, Rate, RateDeck
from apps.rating.selectors import rate_for
from apps.rating.services import rate_deck_import_create, rate_deck_import_run
from tests.conftest import client_as
from tests.factories import UserFactory
from tests.rating.factories import big_deck_csv, csv_row, deck_csv, small_deck

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff():
    return UserFactory(is_staff=True, is_superuser=True, email="rates@platform.example")


def run(text: str, staff, currency: str = "GBP") -> RateDeck:
    """Queue an import as staff do and run its task (in-process, as the worker would)."""
    deck = rate_deck_import_create(
        actor=Actor(user=staff), currency=currency, filename="deck.csv", content=text.encode()
    )
    assert deck.import_job is not None
    rate_deck_import_run(job_id=deck.import_job.pk)
    deck.refresh_from_db()
    deck.import_job.refresh_from_db()
    return deck


def test_a_good_file_becomes_the_active_deck_of_its_date(staff) -> None:
    text = deck_csv(
        csv_row("44", "United Kingdom", "GB", "landline", "0.010000", "0", "60", "60"),
        csv_row("+447", "UK mobile", "gb", "Mobile", "0.05", "0.012345", "1", "1"),
        csv_row("44800", "UK toll-free", "GB", "toll-free", "0", "0", "60", "60"),
        csv_row("882", "International networks", "", "special service", "1.5", "0", "60", "60"),
    )

    deck = run(text, staff)

    job = deck.import_job
    assert job is not None
    assert (job.status, job.total_rows, job.imported_rows, job.errors) == ("succeeded", 4, 4, [])
    assert (deck.status, deck.currency, deck.rate_count) == ("active", "GBP", 4)
    assert deck.effective_from == datetime(2026, 1, 1, tzinfo=UTC)
    mobile = Rate.objects.get(deck=deck, prefix="447")
    assert (mobile.country, mobile.destination_class) == ("GB", "mobile")
    assert (mobile.price_per_minute, mobile.connection_fee) == (Decimal("0.050000"), Decimal("0.012345"))
    assert (mobile.first_increment, mobile.next_increment) == (1, 1)
    assert Rate.objects.get(deck=deck, prefix="44800").destination_class == "toll_free"
    assert rate_for(digits="447400123456", currency="GBP", at=datetime(2026, 2, 1, tzinfo=UTC)) == mobile
    assert AuditEvent.objects.filter(action="rate_deck_import.succeeded", object_id=str(deck.public_id)).exists()


def test_a_file_with_bad_rows_imports_nothing_and_reports_every_bad_line(staff) -> None:
    text = deck_csv(
        csv_row("44", "United Kingdom", "GB"),  # line 2: good
        csv_row("44a", "Bad prefix", "GB"),  # 3
        csv_row("33", "France said to be British", "GB"),  # 4
        csv_row("49", "", "DE"),  # 5: no destination
        csv_row("4915", "Germany mobile", "DE", "satellite"),  # 6: unknown class
        csv_row("4930", "Berlin", "DE", price="-0.01"),  # 7
        csv_row("4940", "Hamburg", "DE", price="0.0000001", fee="abc"),  # 8: two price problems
        csv_row("4950", "Somewhere", "DE", first="0", next_="1.5"),  # 9: two increment problems
        csv_row("4960", "Somewhere", "DE", effective="2026-13-01"),  # 10
        csv_row("44", "United Kingdom again", "GB"),  # 11: repeats line 2
        csv_row("4970", "Somewhere", "DE", effective="2026-02-01"),  # 12: another deck's date
        "4980,Too few,DE",  # 13
        csv_row("4990", "Somewhere", "XX"),  # 14: unknown country
        csv_row("4999", "Good", "DE"),  # 15: good
    )

    deck = run(text, staff)

    job = deck.import_job
    assert job is not None
    assert (job.status, job.imported_rows, deck.status, deck.effective_from) == ("failed", 0, "failed", None)
    assert Rate.objects.count() == 0
    errors = {e["line"]: e["error"] for e in job.errors}
    assert sorted(errors) == [3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14]
    assert "prefix: “44a” is not 1 to 15 digits" in errors[3]
    assert "+33 is not in GB (its numbers start with +44)" in errors[4]
    assert "destination is required" in errors[5]
    assert "class: “satellite”" in errors[6]
    assert "price_per_minute cannot be negative" in errors[7]
    assert "more than 6 decimal places" in errors[8]
    assert "connection_fee: “abc” is not a number" in errors[8]
    assert "first_increment" in errors[9]
    assert "next_increment" in errors[9]
    assert "effective_date: “2026-13-01” is not a date" in errors[10]
    assert "+44 is also on line 2" in errors[11]
    assert "one file is one deck" in errors[12]
    assert "has 3 fields; expected 9" in errors[13]
    assert "country: “XX”" in errors[14]
    assert AuditEvent.objects.filter(action="rate_deck_import.failed").count() == 1


def test_a_wrong_header_is_refused_at_upload(staff) -> None:
    with pytest.raises(ApplicationError, match=r"missing columns: class, .*, effective_date\)"):
        rate_deck_import_create(
            actor=Actor(user=staff), currency="GBP", filename="x.csv", content=b"prefix,destination,country\n1,a,US\n"
        )
    with pytest.raises(ApplicationError, match="not a currency"):
        rate_deck_import_create(actor=Actor(user=staff), currency="JPY", filename="x.csv", content=deck_csv())


def test_a_second_active_deck_for_the_same_currency_and_time_is_refused(staff) -> None:
    small_deck(currency="GBP", name="Current")

    deck = run(deck_csv(csv_row("44", "United Kingdom", "GB")), staff)
    other_currency = run(deck_csv(csv_row("44", "United Kingdom", "GB")), staff, currency="USD")

    assert deck.status == "failed"
    assert deck.import_job is not None
    assert deck.import_job.errors == [
        {
            "line": 2,
            "error": "effective_date: the GBP deck “Current” already takes effect at 2026-01-01T00:00:00+00:00; "
            "retire it first or choose another date.",
        }
    ]
    assert other_currency.status == "active"


def test_running_the_import_twice_imports_once(staff) -> None:
    deck = run(deck_csv(csv_row("44", "United Kingdom", "GB")), staff)
    assert deck.import_job is not None

    assert rate_deck_import_run(job_id=deck.import_job.pk) is None
    assert Rate.objects.count() == 1


def test_a_hundred_thousand_rows_import_whole_and_say_how_long(staff) -> None:
    """The time is printed, not asserted: speed is a benchmark's to judge (on a loaded machine a
    limit here failed a correct import)."""
    text = big_deck_csv(100_000)

    started = time.perf_counter()
    deck = run(text, staff)
    seconds = time.perf_counter() - started

    print(f"\n100,000-row rate deck imported in {seconds:.2f} s")  # noqa: T201
    assert deck.status == "active"
    assert Rate.objects.filter(deck=deck).count() == 100_000
    assert rate_for(digits="441009999912", currency="GBP", at=datetime(2026, 2, 1, tzinfo=UTC)).prefix == "4410099999"  # type: ignore[union-attr]


def test_staff_upload_a_deck_and_follow_its_progress(staff, django_capture_on_commit_callbacks) -> None:
    client = Client()
    client.force_login(staff)
    upload = SimpleUploadedFile("gbp.csv", deck_csv(csv_row("44", "United Kingdom", "GB")).encode(), "text/csv")

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post("/staff/rating/ratedeck/import/", {"currency": "GBP", "name": "GBP Jan", "file": upload})

    job = ImportJob.objects.get(kind="rate_deck")
    assert response.status_code == 302
    assert response["Location"] == f"/staff/rating/ratedeck/import/{job.public_id}/"
    assert len(callbacks) == 1  # the task is queued once the upload is committed
    queued = client.get(response["Location"]).content.decode()
    assert 'hx-trigger="every 1s"' in queued
    assert "GBP deck “GBP Jan”" in queued

    callbacks[0]()  # the worker runs the task
    progress = client.get(f"/staff/rating/ratedeck/import/{job.public_id}/progress/").content.decode()

    assert "hx-trigger" not in progress  # finished: the page stops polling
    assert "Imported 1 rates" in progress
    assert "is active and takes effect 2026-01-01 00:00 UTC" in progress


def test_a_failed_deck_import_lists_every_bad_row_on_its_status_page(staff) -> None:
    deck = run(deck_csv(csv_row("x", "Bad", "GB"), csv_row("44", "", "GB")), staff)
    assert deck.import_job is not None
    client = Client()
    client.force_login(staff)

    page = client.get(f"/staff/rating/ratedeck/import/{deck.import_job.public_id}/").content.decode()
    errors_csv = client.get(f"/staff/rating/ratedeck/import/{deck.import_job.public_id}/errors.csv").content.decode()

    assert "Nothing was imported: 2 rows are wrong." in page
    assert "<td>2</td><td>prefix: “x” is not 1 to 15 digits.</td>" in page
    assert len(errors_csv.splitlines()) == 3


def test_the_staff_pages_of_the_rating_app_open(staff) -> None:
    small_deck()
    client = Client()
    client.force_login(staff)

    for url in (
        "/staff/rating/ratedeck/",
        "/staff/rating/ratedeck/import/",
        "/staff/rating/ratedeck/import/template.csv",
        "/staff/rating/rate/",
        "/staff/rating/blockedprefix/",
        "/staff/rating/blockedprefix/add/",
    ):
        assert client.get(url).status_code == 200, url
    assert 'id="import-csv"' in client.get("/staff/rating/ratedeck/").content.decode()


def test_staff_block_a_prefix_in_the_admin_with_an_audit_row(staff) -> None:
    client = Client()
    client.force_login(staff)

    response = client.post(
        "/staff/rating/blockedprefix/add/",
        {"country": "fr", "prefix": "+33 89", "kind": "premium_rate", "reason": "Premium rate (+33 89)"},
    )

    assert response.status_code == 302
    blocked = BlockedPrefix.objects.get(prefix="+3389")
    assert blocked.country == "FR"
    assert AuditEvent.objects.filter(action="blocked_prefix.created", object_id=str(blocked.pk)).exists()


def test_a_deck_uploaded_without_a_name_is_shown_to_customers_by_currency_and_date_never_its_file(
    staff, company, owner
) -> None:
    text = deck_csv(csv_row("44", "United Kingdom", "GB", "landline", "0.010000", "0", "60", "60"))
    deck = rate_deck_import_create(
        actor=Actor(user=staff), currency="GBP", filename="ops-export-final-v7.csv", content=text.encode()
    )
    assert deck.import_job is not None
    rate_deck_import_run(job_id=deck.import_job.pk)
    client = client_as(owner)

    page = client.get("/rates/", {"number": "+44 20 7946 0958"}).content.decode()
    api = client.get("/api/v1/rates/lookup/", {"number": "+44 20 7946 0958"}).json()

    assert "GBP rates from 1 Jan 2026" in page
    assert api["rate"]["deck_name"] == "GBP rates from 1 Jan 2026"
    assert "ops-export-final-v7" not in page
    assert "ops-export-final-v7" not in str(api)
    assert deck.import_job.filename == "ops-export-final-v7.csv"  # staff still see the file they sent


def test_a_deck_named_by_staff_is_shown_by_that_name(staff, company, owner) -> None:
    text = deck_csv(csv_row("44", "United Kingdom", "GB", "landline", "0.010000", "0", "60", "60"))
    deck = rate_deck_import_create(
        actor=Actor(user=staff), currency="GBP", filename="x.csv", content=text.encode(), name="Standard rates 2026"
    )
    assert deck.import_job is not None
    rate_deck_import_run(job_id=deck.import_job.pk)

    api = client_as(owner).get("/api/v1/rates/lookup/", {"number": "+44 20 7946 0958"}).json()

    assert api["rate"]["deck_name"] == "Standard rates 2026"
