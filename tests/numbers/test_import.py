from __future__ import annotations

import time
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from apps.audit.models import AuditEvent
from apps.core.actor import Actor
from apps.core.exceptions import ApplicationError
from apps.core.models import ImportJob
from apps.numbers.imports import COLUMNS
from apps.numbers.models import OnlineNumber
from apps.numbers.services import number_import_create, number_import_run
from tests.factories import UserFactory
from tests.numbers.factories import OnlineNumberFactory

pytestmark = pytest.mark.django_db

HEADER = ",".join(COLUMNS)
PRICES = "5.00,18.00,4.60,16.50,4.00,14.00"


def csv_of(*rows: str, header: str = HEADER) -> str:
    return "\n".join([header, *rows]) + "\n"


@pytest.fixture
def staff():
    return UserFactory(is_staff=True, is_superuser=True, email="stock@platform.example")


def run(text: str, staff) -> ImportJob:
    """Queue an import as staff do and run its task (in-process, as the worker would)."""
    job = number_import_create(actor=Actor(user=staff), filename="stock.csv", content=text.encode())
    number_import_run(job_id=job.pk)
    job.refresh_from_db()
    return job


def test_a_good_file_imports_every_row_in_e164(staff) -> None:
    text = csv_of(
        f"+442079460958,GB,London,geographic,{PRICES}",
        f"020 3000 1234,gb,London,geographic,{PRICES}",  # national, read in the row's country
        f"+44 7400 123456,GB,,mobile,{PRICES}",
        f"0800 123 4567,GB,,toll-free,{PRICES}",
        "+1 (212) 555-0123,US,New York,geographic,1,10.5,0.9,9.25,0.8,8.0001",
    )

    job = run(text, staff)

    assert (job.status, job.total_rows, job.imported_rows, job.processed_rows) == ("succeeded", 5, 5, 5)
    assert job.errors == []
    assert sorted(str(n) for n in OnlineNumber.objects.values_list("number", flat=True)) == [
        "+12125550123",
        "+442030001234",
        "+442079460958",
        "+447400123456",
        "+448001234567",
    ]
    new_york = OnlineNumber.objects.get(number="+12125550123")
    assert (new_york.country, new_york.area, new_york.status) == ("US", "New York", "available")
    assert new_york.price_12m_gbp == Decimal("8.0001")
    assert OnlineNumber.objects.get(number="+448001234567").number_type == "toll_free"
    assert AuditEvent.objects.filter(action="number_import.succeeded", object_id=str(job.public_id)).exists()


def test_columns_may_come_in_any_order_with_a_byte_order_mark(staff) -> None:
    columns = list(reversed(COLUMNS))
    values = dict(zip(COLUMNS, ["+442079460958", "GB", "London", "geographic", *PRICES.split(",")], strict=True))
    text = "\ufeff" + csv_of(",".join(values[c] for c in columns), header=",".join(c.upper() for c in columns))

    assert run(text, staff).imported_rows == 1


def test_a_file_with_bad_rows_imports_nothing_and_reports_every_bad_line(staff) -> None:
    OnlineNumberFactory(number="+442079460001")
    text = csv_of(
        f"+442079460958,GB,London,geographic,{PRICES}",  # line 2: good
        f"not a number,GB,London,geographic,{PRICES}",  # 3
        f"+44207,GB,London,geographic,{PRICES}",  # 4: too short
        f"+44 909 879 0000,GB,,geographic,{PRICES}",  # 5: premium rate
        f"+442079460958,GB,London,geographic,{PRICES}",  # 6: repeats line 2
        f"+442079460001,GB,London,geographic,{PRICES}",  # 7: already in stock
        f"+33123456789,GB,Paris,geographic,{PRICES}",  # 8: a French number said to be British
        f"+442079460002,GB,London,fax,{PRICES}",  # 9: unknown type
        "+442079460003,GB,London,geographic,-1,18.00,4.60,16.50,4.00,14.00",  # 10: negative
        "+442079460004,GB,London,geographic,5.00001,abc,NaN,16.50,4.00,",  # 11: several price problems
        f"+447400123456,GB,,geographic,{PRICES}",  # 12: a mobile number said to be geographic
        "+442079460005,GB,London",  # 13: too few fields
        f"2079460006,XX,London,geographic,{PRICES}",  # 14: unknown country, no country code
        f"+442079460007,GB,London,geographic,{PRICES}",  # 15: good
    )

    job = run(text, staff)

    assert job.status == "failed"
    assert job.imported_rows == 0
    assert OnlineNumber.objects.count() == 1  # only the row that was there before
    errors = {e["line"]: e["error"] for e in job.errors}
    assert sorted(errors) == [3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14]
    assert "not a phone number" in errors[3]
    assert "too short" in errors[4]
    assert "premium-rate" in errors[5]
    assert "also on line 2" in errors[6]
    assert "already in stock (available)" in errors[7]
    assert "a number of FR, not GB" in errors[8]
    assert errors[9].startswith("type:")
    assert "price_3m_usd cannot be negative" in errors[10]
    assert all(p in errors[11] for p in ("price_3m_usd", "price_12m_usd", "price_3m_eur", "price_12m_gbp"))
    assert "more than 4 decimal places" in errors[11]
    assert "is a mobile number, not geographic" in errors[12]
    assert "has 3 fields; expected 10" in errors[13]
    assert "country:" in errors[14]
    assert AuditEvent.objects.filter(action="number_import.failed").count() == 1


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (f"020 7946 0958,GB,London,geographic,{PRICES}", None),  # national
        (f"+44 20 7946 0958,GB,London,geographic,{PRICES}", None),  # international
        (f"0044 20 7946 0958,GB,London,geographic,{PRICES}", None),  # international, 00 prefix
        (f"020 7946 095,GB,London,geographic,{PRICES}", "not a valid number"),  # invalid
        (f"020 79,GB,London,geographic,{PRICES}", "lacks its area code"),  # too short for a full number
        (f"12,GB,London,geographic,{PRICES}", "too short"),  # too short
        (f"+44 20 7946 09581,GB,London,geographic,{PRICES}", "too long"),
        (f"0909 879 0000,GB,,toll_free,{PRICES}", "premium-rate number"),  # premium
        (f"0871 234 5678,GB,,geographic,{PRICES}", "premium-rate number"),
        (f"+44 1481 123456,GB,,geographic,{PRICES}", "is not a valid number"),  # not a GB range
    ],
)
def test_e164_parsing_of_imported_numbers(staff, row, message) -> None:
    job = run(csv_of(row), staff)

    if message is None:
        assert job.status == "succeeded", job.errors
        assert str(OnlineNumber.objects.get().number) == "+442079460958"
    else:
        assert job.status == "failed"
        assert message in job.errors[0]["error"], job.errors


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "The file is empty."),
        (HEADER + "\n", "The file has a header but no rows."),
        ("number,country\n+442079460958,GB\n", "missing columns: area, type, price_3m_usd"),
        (HEADER + ",colour\n", "unknown columns: colour"),
    ],
)
def test_a_file_without_the_right_header_or_rows_is_refused_on_upload(staff, text, message) -> None:
    with pytest.raises(ApplicationError) as error:
        number_import_create(actor=Actor(user=staff), filename="stock.csv", content=text.encode())

    assert message in error.value.errors["file"][0]
    assert not ImportJob.objects.exists()


def test_a_file_that_is_not_utf8_is_refused(staff) -> None:
    with pytest.raises(ApplicationError) as error:
        number_import_create(
            actor=Actor(user=staff), filename="stock.csv", content=(HEADER + "\n+44,Zürich").encode("latin-1")
        )

    assert "not UTF-8" in error.value.message


def test_running_the_import_twice_imports_once(staff) -> None:
    job = number_import_create(
        actor=Actor(user=staff), filename="stock.csv", content=csv_of(f"+442079460958,GB,London,geographic,{PRICES}")
    )

    number_import_run(job_id=job.pk)
    again = number_import_run(job_id=job.pk)

    assert again is None
    job.refresh_from_db()
    assert (job.status, job.imported_rows) == ("succeeded", 1)
    assert OnlineNumber.objects.count() == 1


def big_file(rows: int, *, start: int = 0) -> str:
    lines = [f"+44207{start + i:07d},GB,London,geographic,{PRICES}" for i in range(rows)]
    return csv_of(*lines)


def test_twenty_thousand_rows_import_in_one_job(staff) -> None:
    text = big_file(20_000)

    started = time.perf_counter()
    job = run(text, staff)
    elapsed = time.perf_counter() - started

    assert job.status == "succeeded", job.errors[:3]
    assert job.imported_rows == OnlineNumber.objects.count() == 20_000
    # A figure, not a target: the suite shares 2 cores with the fault test's whole stack, so a
    # time bound here fails with the machine's load, not with the code (2.7 s on an idle box).
    print(f"20,000 number rows imported in {elapsed:.1f} s")  # noqa: T201


def test_progress_is_saved_while_rows_are_checked(staff, monkeypatch) -> None:
    from apps.core import import_jobs

    seen: list[tuple[int, int]] = []
    original = import_jobs.import_job_progress

    def spy(job_id: int, **fields) -> None:
        original(job_id, **fields)
        job = ImportJob.objects.get(pk=job_id)
        seen.append((job.processed_rows, job.total_rows))

    monkeypatch.setattr(import_jobs, "import_job_progress", spy)
    run(big_file(1_200), staff)

    assert seen == [(0, 1_200), (500, 1_200), (1_000, 1_200), (1_200, 1_200)]


# --- The admin --------------------------------------------------------------------


@pytest.fixture
def admin_client(staff) -> Client:
    client = Client()
    client.force_login(staff)
    return client


def test_the_stock_list_has_an_import_button(admin_client) -> None:
    page = admin_client.get("/staff/numbers/onlinenumber/").content.decode()

    assert 'id="import-csv"' in page
    assert "/staff/numbers/onlinenumber/import/" in page


def test_staff_upload_a_file_and_follow_its_progress(admin_client, django_capture_on_commit_callbacks) -> None:
    upload = SimpleUploadedFile("stock.csv", csv_of(f"+442079460958,GB,London,geographic,{PRICES}").encode())

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = admin_client.post("/staff/numbers/onlinenumber/import/", {"file": upload})

    job = ImportJob.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/staff/numbers/onlinenumber/import/{job.public_id}/"
    assert len(callbacks) == 1  # the task is queued once the upload is committed
    queued = admin_client.get(response["Location"]).content.decode()
    assert "htmx" in queued  # the admin page loads htmx for the polling
    assert 'hx-trigger="every 1s"' in queued
    assert "Queued" in queued

    callbacks[0]()  # the worker runs the task
    progress = admin_client.get(f"/staff/numbers/onlinenumber/import/{job.public_id}/progress/").content.decode()

    assert "hx-trigger" not in progress  # finished: the page stops polling
    assert "Imported 1 numbers from 1 rows." in progress
    assert 'value="1" max="1"' in progress


def test_a_failed_import_lists_every_bad_row_on_its_status_page(admin_client, staff) -> None:
    job = run(csv_of(f"bad,GB,London,geographic,{PRICES}", f"+44207,GB,London,geographic,{PRICES}"), staff)

    page = admin_client.get(f"/staff/numbers/onlinenumber/import/{job.public_id}/").content.decode()
    errors_csv = admin_client.get(f"/staff/numbers/onlinenumber/import/{job.public_id}/errors.csv").content.decode()

    assert "Nothing was imported: 2 rows are wrong." in page
    assert "<td>2</td><td>number: bad is not a phone number.</td>" in page
    assert "<td>3</td>" in page
    assert errors_csv.splitlines()[0] == "line,error"
    assert len(errors_csv.splitlines()) == 3


def test_a_wrong_file_is_an_error_on_the_upload_form(admin_client) -> None:
    upload = SimpleUploadedFile("stock.csv", b"number,price\n+442079460958,4\n")

    response = admin_client.post("/staff/numbers/onlinenumber/import/", {"file": upload})

    assert response.status_code == 200
    assert "missing columns" in response.content.decode()
    assert not ImportJob.objects.exists()


def test_a_non_staff_user_cannot_reach_the_import(db) -> None:
    client = Client()
    client.force_login(UserFactory())

    response = client.get("/staff/numbers/onlinenumber/import/")

    assert response.status_code == 302
    assert "/staff/login/" in response["Location"]


def test_staff_add_a_single_number_through_the_service_with_the_import_rules(admin_client) -> None:
    form = {"number": "020 7946 0958", "country": "GB", "area": "London", "number_type": "geographic"}
    prices = dict(
        zip(
            ("price_3m_usd", "price_12m_usd", "price_3m_eur", "price_12m_eur", "price_3m_gbp", "price_12m_gbp"),
            PRICES.split(","),
            strict=True,
        )
    )

    premium = admin_client.post("/staff/numbers/onlinenumber/add/", {**form, "number": "0909 879 0000", **prices})
    added = admin_client.post("/staff/numbers/onlinenumber/add/", {**form, **prices})

    assert premium.status_code == 200
    assert "premium-rate number" in premium.content.decode()
    assert added.status_code == 302
    stock = OnlineNumber.objects.get()
    assert str(stock.number) == "+442079460958"
    assert AuditEvent.objects.filter(action="number_stock.created", object_id=str(stock.public_id)).exists()


def test_staff_edit_prices_and_area_but_not_the_number(admin_client) -> None:
    stock = OnlineNumberFactory(number="+442079460958")
    data = {
        "area": "City of London",
        "number_type": "geographic",
        "price_3m_usd": "6",
        "price_12m_usd": "20",
        "price_3m_eur": "5",
        "price_12m_eur": "18",
        "price_3m_gbp": "4.5",
        "price_12m_gbp": "15",
        "number": "+442079460959",
    }

    response = admin_client.post(f"/staff/numbers/onlinenumber/{stock.pk}/change/", data)

    assert response.status_code == 302
    stock.refresh_from_db()
    assert (str(stock.number), stock.area, stock.price_3m_gbp) == ("+442079460958", "City of London", Decimal("4.5"))
    event = AuditEvent.objects.get(action="number_stock.updated")
    assert event.changes["price_3m_gbp"] == {"before": "4.0000", "after": "4.5000"}


def test_staff_cannot_delete_stock(admin_client) -> None:
    stock = OnlineNumberFactory()

    assert admin_client.post(f"/staff/numbers/onlinenumber/{stock.pk}/delete/", {"post": "yes"}).status_code == 403
    assert OnlineNumber.objects.filter(pk=stock.pk).exists()
