from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from apps.cdrs.models import Cdr
from apps.core.models import ImportJob
from apps.sip_profiles.models import SipProfile
from tests.cdrs.factories import cdr_csv, csv_row, load

pytestmark = pytest.mark.django_db


@pytest.fixture
def client(staff) -> Client:
    client = Client()
    client.force_login(staff)
    return client


def test_staff_upload_cdrs_and_follow_the_load(
    client: Client, profile: SipProfile, django_capture_on_commit_callbacks
) -> None:
    assert profile.sip_username
    text = cdr_csv(csv_row(1, profile.sip_username), csv_row(2, profile.sip_username))
    upload = SimpleUploadedFile("jan.csv", text.encode(), "text/csv")

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post("/staff/cdrs/cdr/import/", {"file": upload})

    job = ImportJob.objects.get(kind="cdrs")
    assert response.status_code == 302
    assert response["Location"] == f"/staff/cdrs/cdr/import/{job.public_id}/"
    assert len(callbacks) == 1  # the task is queued once the upload is committed
    queued = client.get(response["Location"]).content.decode()
    assert 'hx-trigger="every 1s"' in queued
    assert "CDR file “jan.csv”" in queued

    callbacks[0]()  # the worker runs the task
    progress = client.get(f"/staff/cdrs/cdr/import/{job.public_id}/progress/").content.decode()

    assert "hx-trigger" not in progress  # finished: the page stops polling
    assert "Loaded 2 new CDRs; skipped 0 already loaded" in progress
    assert Cdr.objects.count() == 2


def test_a_second_load_of_the_same_file_says_every_row_was_skipped(client: Client, staff, profile: SipProfile) -> None:
    assert profile.sip_username
    text = cdr_csv(csv_row(1, profile.sip_username), csv_row(2, profile.sip_username))
    load(text, staff)
    job = load(text, staff)

    page = client.get(f"/staff/cdrs/cdr/import/{job.public_id}/").content.decode()

    assert "Loaded 0 new CDRs; skipped 2 already loaded (same node and edge_id), of 2 rows." in page


def test_a_failed_load_lists_every_bad_row_on_its_status_page(client: Client, staff, profile: SipProfile) -> None:
    assert profile.sip_username
    job = load(cdr_csv(csv_row(1, profile.sip_username, caller="12345"), csv_row(2, "nobody")), staff)

    page = client.get(f"/staff/cdrs/cdr/import/{job.public_id}/").content.decode()
    errors_csv = client.get(f"/staff/cdrs/cdr/import/{job.public_id}/errors.csv").content.decode()

    assert "Nothing was loaded: 2 rows are wrong." in page
    assert "<td>2</td><td>caller: “12345” is not in E.164" in page
    assert "<td>3</td><td>profile: no SIP profile has the public id or username “nobody”.</td>" in page
    assert len(errors_csv.splitlines()) == 3


def test_a_file_with_a_wrong_header_is_refused_on_the_upload_page(client: Client) -> None:
    upload = SimpleUploadedFile("x.csv", b"node,edge_id\nedge-1,1\n", "text/csv")

    response = client.post("/staff/cdrs/cdr/import/", {"file": upload})

    assert response.status_code == 200
    assert "missing columns: call_id" in response.content.decode()
    assert not ImportJob.objects.filter(kind="cdrs").exists()


def test_the_staff_pages_of_the_cdrs_app_open(client: Client, staff, profile: SipProfile) -> None:
    assert profile.sip_username
    load(cdr_csv(csv_row(1, profile.sip_username)), staff)
    cdr = Cdr.objects.get()

    for url in (
        "/staff/cdrs/cdr/",
        "/staff/cdrs/cdr/?q=%2B14155550123",
        f"/staff/cdrs/cdr/{cdr.pk}/change/",
        "/staff/cdrs/cdr/import/",
        "/staff/cdrs/cdr/import/template.csv",
    ):
        assert client.get(url).status_code == 200, url
    assert 'id="import-csv"' in client.get("/staff/cdrs/cdr/").content.decode()


def test_the_template_file_loads_as_it_is(staff, profile: SipProfile) -> None:
    from apps.cdrs.imports import TEMPLATE

    assert profile.sip_username
    job = load(TEMPLATE.replace("sip_3f9a2c", profile.sip_username), staff)

    assert (job.status, job.imported_rows, job.errors) == ("succeeded", 2, [])
