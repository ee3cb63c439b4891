from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction

from apps.cdrs.models import Cdr, CdrRating
from apps.sip_profiles.models import SipProfile
from tests.cdrs.factories import cdr_csv, csv_row, load

pytestmark = pytest.mark.django_db


@pytest.fixture
def cdr(staff, profile: SipProfile) -> Cdr:
    assert profile.sip_username
    load(cdr_csv(csv_row(1, profile.sip_username)), staff)
    return Cdr.objects.get()


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("callee", "+14155550199"),
        ("billable_seconds", 60),
        ("node", "edge-9"),
        ("edge_id", 2),
        ("started_at", datetime(2026, 1, 5, 9, 0, tzinfo=UTC)),
        ("source_address", "192.0.2.99"),
        ("sip_profile", None),
    ],
)
def test_the_database_refuses_to_change_what_the_edge_recorded(cdr: Cdr, column: str, value: object) -> None:
    refused = pytest.raises(IntegrityError, match="never changed or deleted")
    with refused, transaction.atomic():
        Cdr.objects.filter(pk=cdr.pk).update(**{column: value})

    cdr.refresh_from_db()
    assert cdr.callee == "+14155550123"


def test_the_database_refuses_to_delete_a_cdr(cdr: Cdr) -> None:
    with pytest.raises(IntegrityError, match="never changed or deleted"), transaction.atomic():
        Cdr.objects.filter(pk=cdr.pk).delete()

    assert Cdr.objects.filter(pk=cdr.pk).exists()


def test_a_rating_is_written_once_and_only_a_failed_one_may_be_removed(cdr: Cdr) -> None:
    rated_at = datetime(2026, 1, 5, 10, 3, tzinfo=UTC)
    rating = CdrRating.objects.create(cdr=cdr, status=CdrRating.Status.ERROR, currency="GBP", rated_at=rated_at)

    with pytest.raises(IntegrityError, match="never changed or deleted"), transaction.atomic():
        CdrRating.objects.filter(pk=rating.pk).update(status=CdrRating.Status.ZERO_RATED)
    CdrRating.objects.filter(pk=rating.pk).delete()  # a failed rating: staff may queue the CDR again

    CdrRating.objects.create(cdr=cdr, status=CdrRating.Status.ZERO_RATED, currency="GBP", rated_at=rated_at)
    with pytest.raises(IntegrityError, match="never changed or deleted"), transaction.atomic():
        CdrRating.objects.filter(pk=cdr.pk).delete()
    with pytest.raises(IntegrityError, match="cdr_rating_cost_has_ledger_transaction"), transaction.atomic():
        CdrRating.objects.create(
            cdr=Cdr.objects.create(**{**_values(cdr), "edge_id": 99}),
            status=CdrRating.Status.RATED,
            cost=Decimal("0.1234"),
            currency="GBP",
            rated_at=rated_at,
        )
    assert CdrRating.objects.get().status == "zero_rated"


def _values(cdr: Cdr) -> dict[str, object]:
    return {
        f.attname: getattr(cdr, f.attname)
        for f in Cdr._meta.concrete_fields
        if f.attname not in ("id", "public_id", "created_at")
    }


def test_the_database_refuses_billable_seconds_beyond_the_duration(staff, profile: SipProfile) -> None:
    values = {
        "node": "edge-1",
        "edge_id": 5,
        "call_id": "x@pbx",
        "sip_profile": profile,
        "company": profile.company,
        "direction": "outbound",
        "caller": "+442079460958",
        "callee": "+14155550123",
        "started_at": datetime(2026, 1, 5, 10, 0, tzinfo=UTC),
        "ended_at": datetime(2026, 1, 5, 10, 1, tzinfo=UTC),
        "duration_seconds": 60,
        "billable_seconds": 61,
        "sip_code": 200,
        "disposition": "answered",
        "auth_method": "ip",
        "source_address": "192.0.2.1",
    }
    with pytest.raises(IntegrityError, match="cdr_billable_le_duration"), transaction.atomic():
        Cdr.objects.create(**values)
    with pytest.raises(IntegrityError, match="cdr_ends_after_start"), transaction.atomic():
        Cdr.objects.create(**{**values, "billable_seconds": 0, "ended_at": datetime(2026, 1, 5, 9, tzinfo=UTC)})
