"""Rows for the staff lists over growing tables, written straight to the tables (the lists read
what the edge, Stripe, rating and the ledger wrote; none of their services is under test here).

Each builder adds `n` rows for one company (and its profile) and varies what the list shows:
rated and unrated CDRs, CDRs with and without a profile, purchases by card and by wire."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.db import connection
from django.utils import timezone

from apps.billing.models import Charge, CreditPurchase, StripeEvent
from apps.cdrs.models import RejectedCdr
from apps.rating.models import Rate, RateDeck

BATCH = 5_000


def cdrs(n: int, company: Any, profile: Any) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO cdrs_cdr (public_id, created_at, node, edge_id, call_id, direction, caller, callee,
                started_at, answered_at, ended_at, duration_seconds, billable_seconds, sip_code, disposition,
                refusal_reason, auth_method, source_address, company_id, sip_profile_id)
            SELECT gen_random_uuid(), now(), 'node-' || (n %% 2), n, 'call-' || n || '@pbx.example', 'outbound',
                   '+1202555' || lpad((n %% 10000)::text, 4, '0'), '+44207946' || lpad(n::text, 5, '0'),
                   s.t, s.t, s.t + interval '60 seconds', 60, 60, 200, 'answered', '', 'registration',
                   '192.0.2.1', %(company)s, CASE WHEN n %% 3 = 0 THEN NULL ELSE %(profile)s END
              FROM generate_series(1, %(rows)s) AS n,
                   LATERAL (SELECT now() - n * interval '2 minutes' AS t) AS s
            """,
            {"company": company.pk, "profile": profile.pk, "rows": n},
        )
        # Every other CDR rated (one of 500 failed): the list shows both.
        cursor.execute(
            "INSERT INTO cdrs_cdrrating (cdr_id, status, cost, currency, rate_prefix, bundle_seconds,"
            " bundle_minutes, note, rated_at) SELECT id, CASE WHEN id %% 500 = 0 THEN 'error' ELSE 'zero_rated' END,"
            " 0, 'GBP', '', 0, 0, '', now() FROM cdrs_cdr WHERE id %% 2 = 0",
            [],
        )


def audit_events(n: int, company: Any, profile: Any) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO audit_auditevent (public_id, created_at, company_id, actor_label, action, object_type,"
            " object_id, object_repr, changes, user_agent) SELECT gen_random_uuid(), now() - n * interval '1 minute',"
            " %(c)s, 'person' || (n %% 50) || '@example.com', 'action.' || (n %% 20), 'thing', n::text, 'thing',"
            " '{}', '' FROM generate_series(1, %(rows)s) AS n",
            {"c": company.pk, "rows": n},
        )


def ledger_transactions(n: int, company: Any, profile: Any) -> None:
    """Transactions without entries: the caller rolls them back to a savepoint before the
    deferred check (every transaction balances) runs at commit."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO billing_ledgertransaction (public_id, created_at, kind, company_id, currency, description,"
            " idempotency_key, actor_label) SELECT gen_random_uuid(), now() - n * interval '1 minute', 'adjustment',"
            " %(c)s, 'GBP', 'Adjustment', 'test:' || n, '' FROM generate_series(1, %(rows)s) AS n",
            {"c": company.pk, "rows": n},
        )


def rejected_cdrs(n: int, company: Any, profile: Any) -> None:
    RejectedCdr.objects.bulk_create(
        (
            RejectedCdr(node=f"node-{i % 2}", edge_id=i, reason="unknown profile", record={"id": i})
            for i in range(1, n + 1)
        ),
        batch_size=BATCH,
    )


def stripe_events(n: int, company: Any, profile: Any) -> None:
    types = ("payment_intent.succeeded", "payment_intent.payment_failed", "charge.refunded")
    StripeEvent.objects.bulk_create(
        (StripeEvent(event_id=f"evt_{i}", type=types[i % 3], payload={}) for i in range(1, n + 1)),
        batch_size=BATCH,
    )


def purchases(n: int, company: Any, profile: Any) -> None:
    def purchase(i: int) -> CreditPurchase:
        if i % 2:
            return CreditPurchase(
                company=company, amount=Decimal(50), currency="GBP", method="card", stripe_payment_intent=f"pi_{i}"
            )
        return CreditPurchase(
            company=company, amount=Decimal(50), currency="GBP", method="bank_wire", wire_reference=f"SM-{i:08d}"
        )

    CreditPurchase.objects.bulk_create((purchase(i) for i in range(1, n + 1)), batch_size=BATCH)


def charges(n: int, company: Any, profile: Any) -> None:
    now = timezone.now()
    Charge.objects.bulk_create(
        (
            Charge(
                company=company,
                kind="channels",
                description="2 channels",
                unit_price=Decimal(5),
                amount=Decimal(10),
                currency="GBP",
                period_start=now,
                period_end=now + timedelta(days=30),
                item=f"sip_profiles.sipprofile:{profile.public_id}",
                idempotency_key=f"test:{i}",
                status="paid",
                paid_at=now,
            )
            for i in range(1, n + 1)
        ),
        batch_size=BATCH,
    )


def rates(n: int, company: Any, profile: Any) -> None:
    decks = [RateDeck.objects.create(currency=currency, name=f"{currency} test") for currency in ("GBP", "USD")]
    Rate.objects.bulk_create(
        (
            Rate(
                deck=decks[i % 2],
                prefix=str(440000000 + i),
                destination="United Kingdom",
                country="GB",
                destination_class="landline",
                price_per_minute=Decimal("0.01"),
                connection_fee=Decimal(0),
                first_increment=60,
                next_increment=60,
            )
            for i in range(1, n + 1)
        ),
        batch_size=BATCH,
    )


# The staff list of each growing table and what fills it.
LISTS: dict[str, Callable[[int, Any, Any], None]] = {
    "/staff/cdrs/cdr/": cdrs,
    "/staff/audit/auditevent/": audit_events,
    "/staff/billing/ledgertransaction/": ledger_transactions,
    "/staff/cdrs/rejectedcdr/": rejected_cdrs,
    "/staff/billing/stripeevent/": stripe_events,
    "/staff/billing/creditpurchase/": purchases,
    "/staff/billing/charge/": charges,
    "/staff/rating/rate/": rates,
}
