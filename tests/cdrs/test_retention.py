"""Call retention (issue 14, item 3): CDRs and their ratings older than CALL_RETENTION_MONTHS
are deleted by a periodic task in bounded batches, while the daily figures the reports read
stay, so an old month's report reads the same after the purge; PostgreSQL still refuses any
other delete; the reports' month picker stops at the retention period; a retention under 6
months stops the process at start."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.core.management import CommandError, call_command
from django.db import DatabaseError, transaction

from apps.cdrs.imports import EdgeRecord
from apps.cdrs.models import Cdr, CdrPurge, CdrRating, DailyCalls, PendingCdr, RejectedCdr
from apps.cdrs.selectors import call_retention_cutoff, cdrs_purged_before, months_before
from apps.cdrs.services import cdrs_import_edge_records, cdrs_purge_expired
from apps.cdrs.tasks import purge_expired_cdrs
from apps.companies.models import Role
from apps.rating.engine import rate_pending
from skypemanager.schedule import BEAT_SCHEDULE
from tests.cdrs.factories import cdr_csv, csv_row, load
from tests.factories import UserFactory, member
from tests.rating.factories import Call, cdr_for
from tests.reports.test_monthly_reports import NOW, api_get, deck, make_calls, signed_in, world

pytestmark = pytest.mark.django_db
__all__ = ["deck"]

ROOT = Path(__file__).resolve().parents[2]
# The world's calls are from 1 to 19 March 2027 (and a few in February); six months after
# LATER the cutoff falls in the middle of them.
LATER = datetime(2027, 9, 10, 12, 0, tzinfo=UTC)
CUTOFF = datetime(2027, 3, 10, 12, 0, tzinfo=UTC)


def daily_figures(company: Any) -> list[tuple[Any, ...]]:
    return sorted(DailyCalls.objects.filter(company=company).values_list("day", "sip_profile_id", "calls", "cost"))


def test_the_cutoff_is_the_same_moment_the_retention_months_before() -> None:
    assert call_retention_cutoff(now=LATER) == CUTOFF
    assert months_before(datetime(2027, 8, 31, 9, 0, tzinfo=UTC), 6) == datetime(2027, 2, 28, 9, 0, tzinfo=UTC)
    assert months_before(datetime(2027, 1, 15, tzinfo=UTC), 13) == datetime(2025, 12, 15, tzinfo=UTC)


def test_old_cdrs_are_deleted_and_the_old_months_report_still_reads_the_daily_figures(company, owner, deck) -> None:
    with time_machine.travel(NOW, tick=False):
        world(company, owner, profiles=2, calls=60)
    viewer = member(company, Role.VIEWER)
    with time_machine.travel(LATER, tick=False):
        client = signed_in(viewer)
        march_before = api_get(client, "usage", month="2027-03")
        summary_before = api_get(client, "summary", month="2027-03")
    figures = daily_figures(company)
    old = set(Cdr.objects.filter(started_at__lt=CUTOFF).values_list("pk", flat=True))
    kept = set(Cdr.objects.filter(started_at__gte=CUTOFF).values_list("pk", flat=True))
    assert old  # February's calls and March's before the 10th, noon
    assert kept  # March's after it
    assert march_before["total"]["calls"] == 60

    with time_machine.travel(LATER, tick=False):
        purged = purge_expired_cdrs.delay().get()  # eager here, as with `make run`

    assert purged == len(old)
    assert not Cdr.objects.filter(pk__in=old).exists()
    assert not CdrRating.objects.filter(cdr_id__in=old).exists()
    assert set(Cdr.objects.values_list("pk", flat=True)) >= kept
    assert daily_figures(company) == figures  # the reports' figures are kept
    with time_machine.travel(LATER, tick=False):
        assert api_get(client, "usage", month="2027-03") == march_before
        assert api_get(client, "summary", month="2027-03") == summary_before
        # February is past retention: the month picker does not go there.
        response = client.get("/api/v1/reports/usage/", {"month": "2027-02"})
        assert response.status_code == 400
        assert response.json()["errors"]["month"] == ["Reports go back 6 months, to March 2027."]
        page = client.get("/reports/usage/", {"month": "2027-03"}).content.decode()
        assert 'rel="prev"' not in page
        assert 'min="2027-03"' in page
        assert 'rel="prev"' in client.get("/reports/usage/", {"month": "2027-04"}).content.decode()


def test_the_purge_works_in_bounded_batches_and_keeps_calls_not_rated_yet(company, owner, deck, settings) -> None:
    with time_machine.travel(NOW, tick=False):
        profiles = world(company, owner, profiles=1, calls=30)
    old = Cdr.objects.filter(started_at__lt=CUTOFF)
    profile = profiles[0]
    call = Call(9_999_999, profile.pk, company.pk, "GBP", "+442079460000", datetime(2027, 1, 2, tzinfo=UTC), 60)
    waiting = cdr_for(call)
    waiting.save()
    PendingCdr.objects.create(cdr=waiting)
    total = old.count() - 1
    settings.CALL_RETENTION_BATCH_SIZE = 7
    settings.CALL_RETENTION_MAX_BATCHES = 2

    with time_machine.travel(LATER, tick=False):
        first = cdrs_purge_expired()
        assert (first.deleted, first.batches, first.more) == (14, 2, True)
        assert old.count() == total + 1 - 14
        runs, more = 1, first.more
        while more:
            more = cdrs_purge_expired().more
            runs += 1
    assert runs == -(-total // 14)  # 14 a run, never more
    assert list(old.values_list("pk", flat=True)) == [waiting.pk]  # kept until it is rated


def test_postgresql_refuses_any_other_delete_of_a_cdr_or_its_rating(company, owner, deck) -> None:
    with time_machine.travel(NOW, tick=False):
        world(company, owner, profiles=1, calls=10)
    cdr = Cdr.objects.order_by("started_at").first()
    assert cdr is not None
    for rows in (Cdr.objects.filter(pk=cdr.pk), CdrRating.objects.filter(cdr_id=cdr.pk)):
        with pytest.raises(DatabaseError, match="never changed or deleted"), transaction.atomic():
            rows.delete()
    with pytest.raises(DatabaseError, match="never changed or deleted"), transaction.atomic():
        Cdr.objects.filter(pk=cdr.pk).update(billable_seconds=1)
    assert Cdr.objects.filter(pk=cdr.pk).exists()


def test_after_a_purge_the_figures_are_rebuilt_only_from_the_months_whose_calls_are_all_kept(
    company, owner, deck
) -> None:
    with time_machine.travel(NOW, tick=False):
        profiles = world(company, owner, profiles=1, calls=20)
    make_calls(profiles, 15, first_edge_id=company.pk * 100_000 + 70_000, month=4)
    rate_pending()
    figures = daily_figures(company)
    with time_machine.travel(LATER, tick=False):
        assert cdrs_purge_expired().deleted
    # April's figures go wrong (a restore, a bug); March's calls are partly purged.
    DailyCalls.objects.filter(day__gte=date(2027, 4, 1)).update(calls=999)

    call_command("rating_daily_rebuild", since="2027-04", verbosity=0)
    assert daily_figures(company) == figures  # April recomputed, March (and February) kept
    with pytest.raises(CommandError, match="YYYY-MM"):
        call_command("rating_daily_rebuild", since="April", verbosity=0)


def test_the_purge_is_in_the_beat_schedule() -> None:
    assert BEAT_SCHEDULE["cdrs-purge-expired"]["task"] == "apps.cdrs.tasks.purge_expired_cdrs"


def test_a_retention_under_six_months_stops_the_process_at_start() -> None:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "skypemanager.settings", "DEBUG": "true"}
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env={**env, "CALL_RETENTION_MONTHS": "3"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode != 0
    assert "CALL_RETENTION_MONTHS must be at least 6, not 3." in result.stderr


def test_a_call_deleted_by_the_purge_is_never_loaded_again_so_never_charged_twice(company, owner, deck) -> None:
    """A staff CSV or a late edge record of a call from before the purge's cutoff is refused
    (its first rating's row and ledger key were deleted with it); a later call still loads."""
    with time_machine.travel(NOW, tick=False):
        profile = world(company, owner, profiles=1, calls=20)[0]
    staff = UserFactory(is_staff=True, is_superuser=True, email="retention@platform.example")
    assert cdrs_purged_before() is None
    with time_machine.travel(LATER, tick=False):
        purged = cdrs_purge_expired()
    assert purged.deleted > 0
    assert cdrs_purged_before() == CUTOFF
    assert list(CdrPurge.objects.values_list("cutoff", "deleted")) == [(CUTOFF, purged.deleted)]
    calls_before = Cdr.objects.count()

    old_start = CUTOFF - timedelta(days=2)
    new_start = CUTOFF + timedelta(days=100)

    def row(edge_id: int, start: datetime) -> str:
        stamp = "%Y-%m-%dT%H:%M:%SZ"
        return csv_row(
            edge_id, profile.public_id, node="edge-9", start=start.strftime(stamp),
            answer=(start + timedelta(seconds=5)).strftime(stamp), end=(start + timedelta(seconds=65)).strftime(stamp),
            duration=65, billable=60,
        )  # fmt: skip

    with time_machine.travel(LATER, tick=False):
        job = load(cdr_csv(row(1, new_start), row(2, old_start)), staff)
    assert job.status == "failed"  # a file loads whole or not at all
    assert [e["line"] for e in job.errors] == [3]
    assert job.errors[0]["error"].startswith(
        "start: calls before 2027-03-10 12:00 UTC were deleted by the call retention"
    )
    assert Cdr.objects.count() == calls_before

    def record(edge_id: int, start: datetime) -> EdgeRecord:
        return EdgeRecord(
            edge_id=edge_id, call_id=f"late-{edge_id}@pbx.example", profile_id=profile.pk, dest_profile_id=None,
            direction="outbound", auth_method="digest", source_ip="198.51.100.7", caller="+442079460958",
            callee="+14155550123", started_at=start, answered_at=start + timedelta(seconds=5),
            ended_at=start + timedelta(seconds=65), sip_code=200, refusal="",
        )  # fmt: skip

    with time_machine.travel(LATER, tick=False), transaction.atomic():
        imported = cdrs_import_edge_records(node="edge-9", records=[record(11, old_start), record(12, new_start)])
    assert (imported.cdrs, imported.rejected) == (1, 1)
    assert Cdr.objects.filter(node="edge-9").values_list("edge_id", flat=True).get() == 12
    assert RejectedCdr.objects.get(node="edge-9").reason.startswith("start: calls before 2027-03-10 12:00 UTC")
