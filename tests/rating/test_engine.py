"""The rating engine on CDRs loaded like the edge's: what each call costs, and where the money goes."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from apps.audit.models import AuditEvent
from apps.billing.models import LedgerAccount, LedgerEntry, LedgerTransaction
from apps.bundles.models import BundlePeriod
from apps.cdrs.models import Cdr, CdrRating, PendingCdr
from apps.companies.models import Notice
from apps.rating.engine import rate_pending
from apps.rating.models import BlockedPrefix
from apps.rating.tasks import rate_cdrs
from tests.cdrs.factories import cdr_csv, csv_row, load
from tests.rating.factories import RateFactory, small_deck

pytestmark = pytest.mark.django_db


def _balance(profile) -> Decimal:
    account = LedgerAccount.objects.filter(sip_profile=profile).first()
    return account.balance if account else Decimal("0")


def test_outbound_calls_are_charged_to_the_profile_once(staff, branch) -> None:
    deck = small_deck()
    RateFactory(
        deck=deck,
        prefix="4479",
        destination="UK mobile",
        destination_class="mobile",
        price_per_minute=Decimal("0.090000"),
        connection_fee=Decimal("0.015000"),
        first_increment=30,
        next_increment=6,
    )
    rows = [
        # 120 s to London at 0.008/min, 60/60: 0.0160
        csv_row(1, branch.public_id, callee="+442079460000"),
        # 61 s to a UK mobile at 0.09/min, 30/6, fee 0.015: 0.015 + 0.09 × 66/60 = 0.114
        csv_row(2, branch.public_id, callee="+447911123456", billable="61", duration="70"),
        csv_row(3, branch.public_id, direction="inbound", callee="+442079460001"),
        csv_row(4, branch.public_id, disposition="busy", answer="", billable="0", sip_code="486"),
    ]
    load(cdr_csv(*rows), staff)
    assert PendingCdr.objects.count() == 4

    run = rate_pending()

    assert (run.cdrs, run.charged, run.errors) == (4, 2, 0)
    assert not PendingCdr.objects.exists()
    ratings = {r.cdr.edge_id: r for r in CdrRating.objects.select_related("cdr")}
    assert (ratings[1].status, ratings[1].cost, ratings[1].rate_prefix) == ("rated", Decimal("0.0160"), "4420")
    assert (ratings[2].status, ratings[2].cost, ratings[2].rate_prefix) == ("rated", Decimal("0.1140"), "4479")
    assert (ratings[3].status, ratings[3].cost) == ("zero_rated", Decimal("0"))
    assert (ratings[4].status, ratings[4].cost) == ("zero_rated", Decimal("0"))
    assert ratings[1].ledger_key == "cdr:edge-1:1"
    assert _balance(branch) == Decimal("-0.1300")
    txn = LedgerTransaction.objects.get(kind="call")
    assert ratings[1].ledger_transaction_id == txn.pk == ratings[2].ledger_transaction_id
    assert sorted(txn.entries.values_list("amount", flat=True)) == [Decimal("-0.1300"), Decimal("0.1300")]

    # Loading the same file again and running again changes nothing.
    load(cdr_csv(*rows), staff)
    assert rate_pending().cdrs == 0
    assert _balance(branch) == Decimal("-0.1300")
    assert LedgerEntry.objects.filter(transaction__kind="call").count() == 2


def test_blocked_and_unknown_destinations_are_never_priced(staff, branch) -> None:
    small_deck(
        rows=[("1", "North America", "US", "landline", "0.005000"), ("1900", "US premium", "US", "premium", "1.000000")]
    )
    BlockedPrefix.objects.create(country="US", prefix="+1473", kind="premium_rate", reason="Premium")
    job = load(
        cdr_csv(
            csv_row(1, branch.public_id, callee="+19005550100"),
            csv_row(2, branch.public_id, callee="+14734403456"),
            csv_row(3, branch.public_id, callee="+442079460000"),
        ),
        staff,
    )

    assert job.errors == []
    run = rate_pending()

    statuses = dict(CdrRating.objects.values_list("cdr__edge_id", "status"))
    assert statuses == {1: "blocked", 2: "blocked", 3: "error"}
    assert (run.charged, run.errors) == (0, 1)
    assert not LedgerTransaction.objects.filter(kind="call").exists()


def test_us_calls_use_bundle_minutes_first_then_the_standard_rate(staff, branch) -> None:
    small_deck()
    BundlePeriod.objects.create(
        sip_profile=branch,
        company=branch.company,
        bundles=1,
        period_start=datetime(2026, 1, 1, tzinfo=UTC),
        period_end=datetime(2026, 2, 1, tzinfo=UTC),
        minutes_included=5000,
        minutes_used=4998,
    )
    # 121 s to New York = 3 whole minutes; 2 are left: 120 s from the bundle, 1 s at 0.004/min (60/60).
    load(
        cdr_csv(
            csv_row(
                1, branch.public_id, callee="+12125550100", billable="121", duration="128", end="2026-01-05T10:02:08Z"
            ),
            csv_row(2, branch.public_id, callee="+12125550100", billable="30", duration="40"),
        ),
        staff,
    )

    rate_pending()

    first, second = CdrRating.objects.order_by("cdr_id")
    assert (first.status, first.bundle_minutes, first.bundle_seconds, first.cost) == (
        "rated",
        2,
        120,
        Decimal("0.0040"),
    )
    assert (second.status, second.bundle_minutes, second.cost) == ("rated", 0, Decimal("0.0040"))
    assert BundlePeriod.objects.get().minutes_used == 5000
    assert Cdr.objects.count() == 2


def test_staff_rate_again_the_calls_no_deck_covered(staff, branch) -> None:
    load(cdr_csv(csv_row(1, branch.public_id, callee="+442079460000")), staff)
    rate_pending()
    assert CdrRating.objects.get().status == "error"

    small_deck()  # the missing rates arrive
    client = Client()
    client.force_login(staff)
    response = client.post(
        reverse("admin:cdrs_cdr_changelist"),
        {"action": "rate_again", "_selected_action": list(Cdr.objects.values_list("pk", flat=True))},
    )
    assert response.status_code == 302
    assert PendingCdr.objects.count() == 1
    assert AuditEvent.objects.filter(action="cdr.requeued").exists()

    rate_pending()
    rating = CdrRating.objects.get()
    assert (rating.status, rating.cost) == ("rated", Decimal("0.0160"))
    assert _balance(branch) == Decimal("-0.0160")


def test_the_job_tells_the_company_at_once_when_calls_empty_a_profile(staff, branch) -> None:
    small_deck()
    load(cdr_csv(csv_row(1, branch.public_id, callee="+442079460000")), staff)

    result = rate_cdrs()

    assert result is not None
    assert result["charged"] == 1
    assert _balance(branch) == Decimal("-0.0160")
    notice = Notice.objects.get(company=branch.company, kind="profile_balance_empty")
    assert branch.name in notice.message


def test_a_deck_is_loaded_once_per_process_and_a_newly_activated_one_is_seen_at_once(staff, branch) -> None:
    """The edge's import rates every second: the deck in force is not read again each run,
    but which deck is in force is (a deck activated in between prices the next calls)."""
    small_deck(effective_from=datetime(2026, 1, 1, tzinfo=UTC))
    load(cdr_csv(csv_row(1, branch.public_id, callee="+442079460000")), staff)
    rate_pending()
    load(cdr_csv(csv_row(2, branch.public_id, callee="+442079460000")), staff)

    with CaptureQueriesContext(connection) as queries:
        rate_pending()

    assert not [q for q in queries.captured_queries if 'FROM "rating_rate"' in q["sql"]]
    small_deck(effective_from=datetime(2026, 1, 2, tzinfo=UTC), markup=Decimal("0.001"))
    load(cdr_csv(csv_row(3, branch.public_id, callee="+442079460000")), staff)
    rate_pending()
    costs = dict(CdrRating.objects.values_list("cdr__edge_id", "cost"))
    assert (costs[1], costs[2], costs[3]) == (Decimal("0.0160"), Decimal("0.0160"), Decimal("0.0180"))
