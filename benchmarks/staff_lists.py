"""Staff CDR list benchmark (issue 15, item 5): the staff CDR list (`/staff/cdrs/cdr/`) with
2,000,000 CDRs, on PostgreSQL.

    .venv/bin/python benchmarks/staff_lists.py                  # 2,000,000 CDRs on a throwaway PostgreSQL
    .venv/bin/python benchmarks/staff_lists.py --cdrs 200000    # fewer
    DATABASE_URL=postgres://… .venv/bin/python benchmarks/staff_lists.py   # an existing, EMPTY database

It writes N CDRs of two companies (four profiles, two edge nodes, one call every 5 seconds back
from now, every one rated: zero-rated, no ledger behind them, one in 500 failed) straight into
the table with generate_series, analyses it, and asks a staff session's Django test client, in
this process (server time: middleware, session, queries, rendering; no network), for the list
unfiltered, a day three days and a day a hundred days back, a node, the failed ratings, an exact
caller, callee and edge id search and a deep page, 20 times each after a warm-up. It prints p50
and p95 (wall clock), this process's CPU time (p50; on a shared, loaded machine the fairer
figure), the queries of each and their time in PostgreSQL (the rest is Python: the admin's
rendering). An existing database that already has the CDRs is reused as it is (DATABASE_URL,
to look again without building again). The last line is
`RESULT staff_lists: worst_p50_ms=X worst_p95_ms=X`; it exits non-zero when a page's p50 is
over 200 ms.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TARGET_P50_MS = 200.0
RUNS = 20
BATCH = 500_000


def _log(message: str) -> None:
    print(message, flush=True)


def _cdrs(count: int, profiles: list[tuple[int, int]]) -> None:
    """`count` CDRs, one every 5 s back from now, over the profiles (company, profile) given."""
    from django.db import connection

    company_of = " ".join(f"WHEN {i} THEN {c}" for i, (c, _) in enumerate(profiles))
    profile_of = " ".join(f"WHEN {i} THEN {p}" for i, (_, p) in enumerate(profiles))
    with connection.cursor() as cursor:
        for first in range(1, count + 1, BATCH):
            last = min(first + BATCH - 1, count)
            cursor.execute(
                f"""
                INSERT INTO cdrs_cdr (public_id, created_at, node, edge_id, call_id, direction, caller, callee,
                    started_at, answered_at, ended_at, duration_seconds, billable_seconds, sip_code, disposition,
                    refusal_reason, auth_method, source_address, company_id, sip_profile_id)
                SELECT gen_random_uuid(), s.t, 'edge-' || (n %% 2 + 1), n, 'call-' || n || '@pbx.example',
                       'outbound', '+1202555' || lpad((n %% 10000)::text, 4, '0'),
                       '+44207946' || lpad((n %% 100000)::text, 5, '0'),
                       s.t, s.t, s.t + interval '60 seconds', 60, 60, 200, 'answered', '', 'registration',
                       '192.0.2.1', CASE n %% {len(profiles)} {company_of} END,
                       CASE n %% {len(profiles)} {profile_of} END
                  FROM generate_series(%(first)s, %(last)s) AS n,
                       LATERAL (SELECT now() - (%(count)s - n) * interval '5 seconds' AS t) AS s
                """,
                {"first": first, "last": last, "count": count},
            )
            cursor.execute(
                "INSERT INTO cdrs_cdrrating (cdr_id, status, cost, currency, rate_prefix, bundle_seconds,"
                " bundle_minutes, note, rated_at) SELECT id,"
                " CASE WHEN id %% 500 = 0 THEN 'error' ELSE 'zero_rated' END, 0, 'GBP', '', 0, 0, '', now()"
                " FROM cdrs_cdr WHERE id BETWEEN %(first)s AND %(last)s",
                {"first": first, "last": last},
            )
            _log(f"  {last:,} CDRs")


def run(args: argparse.Namespace, url: str) -> int:
    from benchmarks._django import setup_django

    setup_django(url)
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from apps.accounts.models import User
    from apps.cdrs.models import Cdr
    from apps.companies.models import Company
    from apps.sip_profiles.models import SipProfile

    _log(f"staff CDR list benchmark: {args.cdrs:,} CDRs")
    t = time.perf_counter()
    call_command("migrate", verbosity=0)
    if Cdr.objects.exists():
        _log(f"  reusing the {Cdr.objects.count():,} CDRs already in the database")
    else:
        profiles = []
        for c in range(2):
            company = Company.objects.create(name=f"Company {c}", country="GB", currency="GBP")
            for p in range(2):
                profile = SipProfile.objects.create(company=company, name=f"PBX {c}-{p}", auth_method="ip", channels=10)
                profiles.append((company.pk, profile.pk))
        _cdrs(args.cdrs, profiles)
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE cdrs_cdr")
            cursor.execute("VACUUM ANALYZE cdrs_cdrrating")
    _log(f"  data built in {time.perf_counter() - t:.1f} s")

    staff, _ = User.objects.get_or_create(
        email="staff@bench.example", defaults={"is_staff": True, "is_superuser": True}
    )
    client = Client()
    client.force_login(staff)
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)

    def one_day(back: int) -> str:
        day = today - timedelta(days=back)
        return f"started_at__gte={quote(day.isoformat())}&started_at__lt={quote((day + timedelta(days=1)).isoformat())}"

    pages = [
        ("unfiltered", "/staff/cdrs/cdr/"),
        ("a day", f"/staff/cdrs/cdr/?{one_day(3)}"),
        ("a day long ago", f"/staff/cdrs/cdr/?{one_day(100)}"),
        ("one node", "/staff/cdrs/cdr/?node=edge-2"),
        ("failed ratings", "/staff/cdrs/cdr/?rating__status=error"),
        ("exact caller", f"/staff/cdrs/cdr/?q={quote('+12025550042')}"),
        ("exact callee", f"/staff/cdrs/cdr/?q={quote('+442079460042')}"),
        ("edge id", f"/staff/cdrs/cdr/?q={args.cdrs // 2}"),
        ("page 50", "/staff/cdrs/cdr/?p=50"),
    ]
    worst_p50 = worst_p95 = 0.0
    _log(f"  {'page':<16} {'p50 ms':>8} {'p95 ms':>8} {'cpu ms':>8} {'queries':>8} {'in db ms':>9}")
    for label, path in pages:
        response = client.get(path)
        if response.status_code != 200:
            _log(f"  {label}: HTTP {response.status_code}")
            return 1
        times, cpu = [], []
        for _ in range(RUNS):
            started, started_cpu = time.perf_counter(), time.process_time()
            client.get(path)
            times.append((time.perf_counter() - started) * 1000)
            cpu.append((time.process_time() - started_cpu) * 1000)
        with CaptureQueriesContext(connection) as captured:
            client.get(path)
        p50, p95 = statistics.median(times), statistics.quantiles(times, n=20)[-1]
        worst_p50, worst_p95 = max(worst_p50, p50), max(worst_p95, p95)
        in_db = sum(float(q["time"]) for q in captured.captured_queries) * 1000
        queries = len(captured.captured_queries)
        _log(f"  {label:<16} {p50:8.1f} {p95:8.1f} {statistics.median(cpu):8.1f} {queries:8d} {in_db:9.1f}")
    _log("")
    _log(f"RESULT staff_lists: worst_p50_ms={worst_p50:.1f} worst_p95_ms={worst_p95:.1f}")
    return 0 if worst_p50 <= TARGET_P50_MS else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cdrs", type=int, default=2_000_000)
    args = parser.parse_args()

    from benchmarks._pgtemp import throwaway_postgres

    if os.environ.get("DATABASE_URL", "").startswith("postgres"):
        return run(args, os.environ["DATABASE_URL"])
    with throwaway_postgres() as url:
        return run(args, url)


if __name__ == "__main__":
    sys.exit(main())
