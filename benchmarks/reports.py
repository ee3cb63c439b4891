"""Reports benchmark (issue 14, item 4): every report page and report API on a month of
1,000,000 calls, on PostgreSQL.

    .venv/bin/python benchmarks/reports.py                  # 1,000,000 calls on a throwaway PostgreSQL
    .venv/bin/python benchmarks/reports.py --calls 200000   # fewer
    DATABASE_URL=postgres://… .venv/bin/python benchmarks/reports.py   # an existing, EMPTY database

It builds one company with 200 SIP profiles and N calls last month (outbound mostly, to about
400 destinations; some inbound, unanswered and refused at the channel limit), loads them with
COPY and rates them with the rating job's own code (which keeps the daily figures the reports
read), adds the month's money through the billing services (bank wires credited, credit
allocated to every profile), and a second company with a handful of calls. Then it asks for
every report page and API (JSON and CSV) of that month through Django's test client, in this
process (server time: middleware, session, queries, rendering; no network), 30 times each after
a warm-up, and prints p50 and p95 per report and the queries of each for the two companies.
The last line: `RESULT reports: worst_p95_ms=X queries_constant=yes|no`; it exits non-zero
when a report is over 150 ms at p95 or its queries differ between the companies.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TARGET_P95_MS = 150.0
RUNS = 30
PROFILES = 200


def _log(message: str) -> None:
    print(message, flush=True)


COUNTRIES = [
    ("44", "GB"), ("33", "FR"), ("49", "DE"), ("34", "ES"), ("39", "IT"), ("61", "AU"), ("81", "JP"),
    ("91", "IN"), ("52", "MX"), ("55", "BR"), ("86", "CN"), ("27", "ZA"), ("31", "NL"), ("46", "SE"),
    ("48", "PL"), ("353", "IE"), ("971", "AE"), ("65", "SG"), ("1", "US"),
]  # fmt: skip


def _deck(currency: str, effective: datetime) -> list[str]:
    """A deck of about 400 prefixes (landline and mobile ranges of 19 countries); its prefixes."""
    from apps.rating.models import Rate, RateDeck

    deck = RateDeck.objects.create(currency=currency, name="Benchmark", effective_from=effective, status="active")
    rates = []
    for code, country in COUNTRIES:
        rates.append(Rate(deck=deck, prefix=code, destination=country, country=country, destination_class="landline",
                          price_per_minute=Decimal("0.010000"), connection_fee=Decimal(0), first_increment=60,
                          next_increment=1))  # fmt: skip
        for n in range(20):
            rates.append(Rate(deck=deck, prefix=f"{code}{n + 10}", destination=f"{country} {n}", country=country,
                              destination_class="mobile" if n % 2 else "landline",
                              price_per_minute=Decimal("0.020000") + Decimal(n) / 1000, connection_fee=Decimal(0),
                              first_increment=1, next_increment=1))  # fmt: skip
    Rate.objects.bulk_create(rates)
    return [r.prefix for r in rates]


def _calls_text(rng: random.Random, count: int, *, company_id: int, profiles: list[int], prefixes: list[str],
                start: datetime, seconds: int, first_edge_id: int) -> str:  # fmt: skip
    created = datetime.now(UTC).isoformat()
    out = io.StringIO()
    for n in range(count):
        edge_id = first_edge_id + n
        begin = start + timedelta(seconds=rng.randrange(seconds))
        prefix = rng.choice(prefixes)
        callee = prefix + "".join(rng.choices("0123456789", k=max(2, 11 - len(prefix))))
        inbound = rng.random() < 0.05
        roll = rng.random()
        refusal, answered_at = "", "\\N"
        if roll < 0.02:
            billable, end, disposition, code, refusal = 0, begin, "refused", 486, "channel_limit"
        elif roll < 0.10:
            billable, end, disposition, code = 0, begin + timedelta(seconds=15), "no_answer", 480
        else:
            billable = rng.randint(1, 600)
            answer = begin + timedelta(seconds=3)
            answered_at, end, disposition, code = (
                answer.isoformat(),
                answer + timedelta(seconds=billable),
                "answered",
                200,
            )
        out.write(
            f"{uuid.uuid4()}\t{created}\tbench-1\t{edge_id}\tcall-{edge_id}@bench\t"
            f"{'inbound' if inbound else 'outbound'}\t"
            f"+12025550100\t+{callee}\t{begin.isoformat()}\t{answered_at}\t{end.isoformat()}\t"
            f"{int((end - begin).total_seconds())}\t{billable}\t{code}\t{disposition}\tip\t192.0.2.1\t{company_id}\t"
            f"{rng.choice(profiles)}\t{refusal}\n"
        )  # fmt: skip
    return out.getvalue()


def _company(name: str, *, profiles: int, calls: int, month_start: datetime, month_end: datetime, prefixes: list[str],
             rng: random.Random, first_edge_id: int) -> object:  # fmt: skip
    """A company, its owner, profiles, a month of calls (loaded and queued) and of money."""
    import time_machine
    from django.db import connection

    from apps.billing.ledger.allocations import credit_allocate
    from apps.billing.models import CreditPurchase
    from apps.billing.purchases.wires import purchase_confirm_wire
    from apps.companies.models import Company, Membership, Role
    from apps.core.actor import Actor
    from apps.sip_profiles.models import SipProfile
    from benchmarks.rating import CDR_COLUMNS
    from tests.factories import UserFactory

    company = Company.objects.create(name=name, country="GB", currency="GBP")
    owner = UserFactory(email=f"owner@{name.lower().replace(' ', '-')}.example")
    Membership.objects.create(company=company, user=owner, role=Role.OWNER)
    made = SipProfile.objects.bulk_create(
        [SipProfile(company=company, name=f"trunk-{n:03d}", auth_method="ip", channels=10, renewal_day=1)
         for n in range(profiles)]
    )  # fmt: skip
    text = _calls_text(rng, calls, company_id=company.pk, profiles=[p.pk for p in made], prefixes=prefixes,
                       start=month_start, seconds=int((month_end - month_start).total_seconds()) - 3600,
                       first_edge_id=first_edge_id)  # fmt: skip
    with connection.cursor() as cursor:
        with cursor.cursor.copy(f"COPY cdrs_cdr ({CDR_COLUMNS}) FROM STDIN") as copy:
            copy.write(text)
        cursor.execute(
            "INSERT INTO cdrs_pendingcdr (cdr_id) SELECT id FROM cdrs_cdr WHERE company_id = %s", [company.pk]
        )
    actor = Actor(user=owner)

    for n in range(min(12, profiles + 2)):
        with time_machine.travel(month_start + timedelta(days=n * 2, hours=9), tick=False):
            purchase = CreditPurchase.objects.create(
                company=company, amount=Decimal("500"), currency="GBP", method="bank_wire",
                wire_reference=f"SM-B{company.pk:03d}-{n:04d}", created_by=owner,
            )  # fmt: skip
            purchase_confirm_wire(actor=actor, purchase=purchase, amount_received="500.00")
    for n, profile in enumerate(made):
        with time_machine.travel(month_start + timedelta(days=n % 25, hours=10), tick=False):
            credit_allocate(actor=actor, profile=profile, amount="25.00", key=f"bench-alloc-{profile.pk}")
    return owner


def _time(client: object, url: str) -> list[float]:
    times = []
    for n in range(RUNS + 3):
        started = time.perf_counter()
        response = client.get(url)  # type: ignore[attr-defined]
        elapsed = (time.perf_counter() - started) * 1000
        if response.status_code != 200:
            raise SystemExit(f"{url}: {response.status_code} {response.content[:300]!r}")
        if n >= 3:
            times.append(elapsed)
    return times


def _queries(client: object, url: str) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        client.get(url)  # type: ignore[attr-defined]
    return len(captured)


def _explain_peaks() -> None:
    """How the rating batch recomputes the channel peaks of the pairs 10,000 calls touch: the
    plan's index scans and its time (EXPLAIN ANALYZE, rolled back)."""
    from django.db import connection, transaction

    from apps.cdrs.models import Cdr, ChannelPeakDay
    from apps.cdrs.peaks import recompute_sql

    ids = list(Cdr.objects.order_by("-id").values_list("id", flat=True)[:10_000])
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, COSTS OFF) " + recompute_sql("c.id = ANY(%(ids)s)"), {"ids": ids})
        plan = [row[0] for row in cursor.fetchall()]
        transaction.set_rollback(True)
    _log(f"  channel peaks: {ChannelPeakDay.objects.count():,} daily rows; recomputing 10,000 calls' pairs:")
    for line in plan:
        if ("Scan" in line or "Execution Time" in line) and "ANY" not in line:
            _log(f"    {line.strip()[:150]}")


def run(args: argparse.Namespace, url: str) -> int:
    from benchmarks._django import setup_django

    # Receipts are sent in-process.
    setup_django(url, EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend")
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    from apps.cdrs.models import DailyCalls, MonthlyCalls, ProfileDayCalls
    from apps.rating.engine import rate_pending
    from apps.sip_profiles.models import SipProfile

    rng = random.Random(args.seed)
    now = datetime.now(UTC)
    this_month = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    month_start = (this_month - timedelta(days=1)).replace(day=1)
    month = month_start.strftime("%Y-%m")
    _log(f"reports benchmark: {args.calls:,} calls of {PROFILES} profiles in {month}")
    t = time.perf_counter()
    call_command("migrate", verbosity=0)
    prefixes = _deck("GBP", month_start - timedelta(days=90))
    big = _company("Busy Calls", profiles=PROFILES, calls=args.calls, month_start=month_start,
                   month_end=this_month, prefixes=prefixes, rng=rng, first_edge_id=1)  # fmt: skip
    small = _company("Quiet Calls", profiles=3, calls=20, month_start=month_start, month_end=this_month,
                     prefixes=prefixes, rng=rng, first_edge_id=args.calls + 1)  # fmt: skip
    _log(f"  data built in {time.perf_counter() - t:.1f} s")
    t = time.perf_counter()
    rated = rate_pending()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    _log(
        f"  rated {rated.cdrs:,} calls in {time.perf_counter() - t:.1f} s (the rating job, which writes the daily "
        f"figures: {DailyCalls.objects.count():,} rows; the reports' roll-ups: {MonthlyCalls.objects.count():,} "
        f"monthly and {ProfileDayCalls.objects.count():,} per day and profile)"
    )
    _log(f"  rating steps (s): { {k: round(v, 2) for k, v in rated.timings.items()} }")
    _explain_peaks()

    busiest = SipProfile.objects.filter(company__name="Busy Calls").order_by("pk").values_list("public_id", flat=True)
    first_profile = f"?profile={busiest[0]}"
    reports = [
        ("summary api", "/api/v1/reports/summary/"),
        ("usage api", "/api/v1/reports/usage/"),
        ("usage api, one profile", "/api/v1/reports/usage/" + first_profile),
        ("purchases api", "/api/v1/reports/purchases/"),
        ("allocations api", "/api/v1/reports/allocations/"),
        ("usage csv (per destination)", "/api/v1/reports/usage/?format=csv&by=destination"),
        ("usage csv (per day)", "/api/v1/reports/usage/?format=csv&by=day"),
        ("channel peaks api", "/api/v1/reports/channel-peaks/"),
        ("summary page", "/reports/"),
        ("usage page", "/reports/usage/"),
        ("purchases page", "/reports/purchases/"),
        ("allocations page", "/reports/allocations/"),
        ("usage page, one profile", "/reports/usage/" + first_profile),
        ("channel peaks page", "/reports/channel-peaks/"),
    ]
    clients = {}
    for name, owner in (("big", big), ("small", small)):
        client = Client()
        client.force_login(owner)  # type: ignore[arg-type]
        clients[name] = client
    worst = 0.0
    constant = True
    _log(f"  {'report':<30} {'p50 ms':>8} {'p95 ms':>8}  queries (busy company / quiet company)")
    for label, path in reports:
        sep = "&" if "?" in path else "?"
        full = f"{path}{sep}month={month}"
        small_path = full if "profile=" not in full else f"{path.split('?')[0]}?month={month}"
        times = _time(clients["big"], full)
        p50 = statistics.median(times)
        p95 = statistics.quantiles(times, n=20)[-1]
        worst = max(worst, p95)
        big_q, small_q = _queries(clients["big"], full), _queries(clients["small"], small_path)
        if "profile=" not in full and big_q != small_q:
            constant = False
        _log(f"  {label:<30} {p50:8.1f} {p95:8.1f}  {big_q} / {small_q}")
    _log("")
    _log(f"RESULT reports: worst_p95_ms={worst:.1f} queries_constant={'yes' if constant else 'no'}")
    return 0 if worst <= TARGET_P95_MS and constant else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()

    from benchmarks._pgtemp import throwaway_postgres

    if os.environ.get("DATABASE_URL", "").startswith("postgres"):
        return run(args, os.environ["DATABASE_URL"])
    with throwaway_postgres() as url:
        return run(args, url)


if __name__ == "__main__":
    sys.exit(main())
