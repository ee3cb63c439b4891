"""Background exports (issue 14, item 3): a Calls CSV past EXPORT_ASYNC_ROWS rows is written by a
Celery task (a real worker here) whose progress moves while it writes, then downloaded by the
company's members only; the same through the API (`POST exports/`, `GET exports/{id}/`); a
finished export is never written twice, and the file and its row are gone after a day."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.test import Client

from apps.cdrs.models import Cdr, Export, exports_storage
from apps.cdrs.services import export_run, exports_purge_expired
from apps.companies.models import Company, Role
from tests.factories import CompanyFactory, member
from tests.helpers.workers import celery_worker
from tests.rating.factories import Call, copy_calls
from tests.sip_profiles.factories import digest_profile

STARTED = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def calls(company: Company, owner: Any, count: int, *, node: str = "edge-x") -> None:
    profile, _ = digest_profile(company, owner)
    made = [
        Call(n + 1, profile.pk, company.pk, "GBP", "+442079460000", STARTED + timedelta(seconds=n), 30 + n % 90)
        for n in range(count)
    ]
    copy_calls(made, node=node)


def signed_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def csv_rows(body: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(body.decode("utf-8"))))


def content(response: Any) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[None]:
    with celery_worker(tmp_path / "worker.log", env={"EXPORT_PROGRESS_EVERY": "500"}):
        yield


@pytest.mark.django_db(transaction=True)
def test_a_large_calls_csv_is_written_by_the_worker_with_moving_progress_then_downloaded(worker) -> None:
    company = CompanyFactory(currency="GBP")
    owner = member(company, Role.OWNER)
    calls(company, owner, 20_000)  # past the default EXPORT_ASYNC_ROWS (10,000)
    client = signed_in(member(company, Role.VIEWER))

    response = client.get("/calls/", {"format": "csv", "direction": "outbound"})
    assert response.status_code == 302
    export = Export.objects.get()
    assert response["Location"] == f"/exports/{export.public_id}/"
    assert export.params == {"direction": "outbound"}
    page = client.get(response["Location"])
    assert b'id="export-bar"' in page.content

    seen: set[int] = set()
    deadline = time.monotonic() + 120
    while export.status not in (Export.Status.DONE, Export.Status.FAILED) and time.monotonic() < deadline:
        export.refresh_from_db()
        seen.add(export.rows_done)
        time.sleep(0.005)
    assert export.status == Export.Status.DONE, export.error
    assert (export.rows_done, export.rows_total) == (20_000, 20_000)
    assert any(0 < done < 20_000 for done in seen), seen  # the bar moved while it wrote

    progress = client.get(f"/exports/{export.public_id}/", headers={"HX-Request": "true"}).content.decode()
    assert "hx-trigger" not in progress  # finished: the page stops asking
    assert f'href="/exports/{export.public_id}/download/"' in progress
    download = client.get(f"/exports/{export.public_id}/download/")
    assert download.status_code == 200
    assert download["Content-Disposition"] == 'attachment; filename="calls.csv"'
    rows = csv_rows(content(download))
    expected = {str(p) for p in Cdr.objects.filter(company=company).values_list("public_id", flat=True)}
    assert {row["id"] for row in rows} == expected
    assert len(rows) == 20_000

    data = client.get(f"/api/v1/exports/{export.public_id}/").json()
    assert data["status"] == "done"
    assert data["percent"] == 100
    assert data["download_url"] == f"http://testserver/api/v1/exports/{export.public_id}/download/"
    assert len(csv_rows(content(client.get(data["download_url"])))) == 20_000

    # Only the company's members: another company's owner gets 404 on every door.
    stranger = signed_in(member(CompanyFactory(), Role.OWNER))
    for url in (f"/exports/{export.public_id}/", f"/exports/{export.public_id}/download/"):
        assert stranger.get(url).status_code == 404
        assert Client().get(url).status_code == 302  # to sign in
    assert stranger.get(f"/api/v1/exports/{export.public_id}/download/").status_code == 404


@pytest.mark.django_db(transaction=True)
def test_the_api_starts_an_export_that_the_worker_finishes(worker) -> None:
    company = CompanyFactory(currency="GBP")
    owner = member(company, Role.OWNER)
    calls(company, owner, 30)
    client = signed_in(owner)

    response = client.post(
        "/api/v1/exports/", {"kind": "calls", "filters": {"number": "2079460000"}}, content_type="application/json"
    )
    assert response.status_code == 202, response.content
    assert response.json()["status"] in ("queued", "running", "done")
    url = f"/api/v1/exports/{response.json()['id']}/"
    deadline = time.monotonic() + 60
    while (data := client.get(url).json())["status"] != "done" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert data["rows_total"] == 30
    assert len(csv_rows(content(client.get(data["download_url"])))) == 30


@pytest.mark.django_db
def test_a_small_csv_is_streamed_at_once_and_a_large_one_runs_in_process_with_make_runs_settings(
    company, owner, settings, django_capture_on_commit_callbacks
) -> None:
    calls(company, owner, 12)
    client = signed_in(owner)
    settings.EXPORT_ASYNC_ROWS = 12
    small = client.get("/calls/", {"format": "csv"})
    assert small.status_code == 200
    assert len(csv_rows(content(small))) == 12
    assert not Export.objects.exists()

    settings.EXPORT_ASYNC_ROWS = 11  # tasks run in-process here, as with `make run`
    with django_capture_on_commit_callbacks(execute=True):
        started = client.get("/calls/", {"format": "csv"})
    response = client.get(started["Location"])
    export = Export.objects.get()
    assert export.status == Export.Status.DONE
    assert f"/exports/{export.public_id}/download/" in response.content.decode()
    assert len(csv_rows(content(client.get(f"/exports/{export.public_id}/download/")))) == 12

    # A redelivered task finds it done and writes nothing again.
    name = export.file.name
    assert export_run(export_id=export.pk) is None
    export.refresh_from_db()
    assert (export.file.name, export.attempt) == (name, 1)


@pytest.mark.django_db
def test_an_export_and_its_file_are_deleted_after_a_day(
    company, owner, settings, django_capture_on_commit_callbacks
) -> None:
    calls(company, owner, 5)
    settings.EXPORT_ASYNC_ROWS = 1
    client = signed_in(owner)
    for moment in (datetime(2026, 12, 1, 9, 0, tzinfo=UTC), datetime(2026, 12, 2, 8, 0, tzinfo=UTC)):
        with time_machine.travel(moment, tick=False), django_capture_on_commit_callbacks(execute=True):
            client.get("/calls/", {"format": "csv"})
    old, new = Export.objects.order_by("created_at")
    assert exports_storage().exists(old.file.name)

    with time_machine.travel(datetime(2026, 12, 2, 9, 30, tzinfo=UTC), tick=False):
        assert exports_purge_expired() == 1
    assert not exports_storage().exists(old.file.name)
    assert not Export.objects.filter(pk=old.pk).exists()
    assert exports_storage().exists(new.file.name)
    assert client.get(f"/exports/{old.public_id}/download/").status_code == 404


@pytest.mark.django_db
def test_bad_export_requests_are_400s_naming_the_field(company, owner) -> None:
    client = signed_in(owner)
    for body, field in (
        ({"kind": "everything"}, "kind"),
        ({"kind": "calls", "filters": {"direction": "sideways"}}, "filters.direction"),
        ({"kind": "calls", "filters": {"colour": "red"}}, "filters.colour"),
        ({"kind": "calls", "filters": {"date_from": "2026-13-01"}}, "filters.date_from"),
    ):
        response = client.post("/api/v1/exports/", body, content_type="application/json")
        assert response.status_code == 400, (body, response.content)
        assert field in response.json()["errors"], response.json()
    assert not Export.objects.exists()
