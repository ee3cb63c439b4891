"""Rating benchmark (issue 5): how fast queued CDRs become money, end to end, on PostgreSQL.

    make bench-rating                       # 1,000,000 CDRs on a throwaway PostgreSQL
    .venv/bin/python benchmarks/rating.py --cdrs 200000
    DATABASE_URL=postgres://… .venv/bin/python benchmarks/rating.py   # an existing, EMPTY database

It builds a 100,000-prefix rate deck, 10,000 SIP profiles in 1,000 companies (30% with US minute
bundles, some nearly used up), and N CDRs (outbound mostly; some inbound, unanswered, zero
seconds and blocked), loads the CDRs with a plain COPY (timed: the machine's floor) and queues
them, then rates them in a separate process through the scheduled job's own code
(apps.rating.tasks.rate_cdrs), timing it and reading its peak memory (VmHWM).

Then it checks the result against an independent computation in SQL (longest prefix by join,
increments, rounding, bundle minutes taken greedily in CDR order by window functions): every
CDR's status, cost and bundle minutes, each profile's balance, the revenue account, the sum of
the ledger's call entries and each bundle period's minutes. Any difference exits non-zero.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import resource
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TARGET_CDRS_PER_SECOND = 50_000
TARGET_COPY_RATIO = 6.0

COUNTRIES = [
    ("44", "GB"), ("33", "FR"), ("49", "DE"), ("34", "ES"), ("39", "IT"), ("61", "AU"), ("81", "JP"),
    ("91", "IN"), ("52", "MX"), ("55", "BR"), ("86", "CN"), ("27", "ZA"), ("31", "NL"), ("46", "SE"),
    ("48", "PL"), ("353", "IE"), ("971", "AE"), ("65", "SG"),
]  # fmt: skip
INCREMENTS = [(60, 60), (1, 1), (30, 6), (6, 6), (60, 1), (30, 30)]


def _django(database_url: str) -> None:
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("SECRET_KEY", "benchmark-only-" + "x" * 40)
    os.environ["REDIS_URL"] = ""  # job lock in process memory, tasks in-process
    os.environ["DJANGO_SETTINGS_MODULE"] = "skypemanager.settings"
    import django

    django.setup()


def _log(message: str) -> None:
    print(message, flush=True)


# --- Data -----------------------------------------------------------------------------


def _deck_rows(rng: random.Random, count: int) -> list[tuple[str, str, str, str, Decimal, Decimal, int, int]]:
    """(prefix, destination, country, class, price per minute, connection fee, first, next)."""
    prefixes: dict[str, tuple[str, str, str]] = {}
    npas = [n for n in range(201, 990) if n % 100 != 11][:780]
    for npa in npas:
        prefixes[f"1{npa}"] = (f"United States {npa}", "US", "landline")
    prefixes["1900"] = ("United States premium", "US", "premium")
    us_target = int(count * 0.6)
    while len(prefixes) < us_target:
        npa, nxx = rng.choice(npas), rng.randint(200, 999)
        prefixes[f"1{npa}{nxx}"] = (f"United States {npa}-{nxx}", "US", rng.choice(("landline", "mobile")))
    for code, country in COUNTRIES:
        prefixes[code] = (country, country, "landline")
    while len(prefixes) < count:
        code, country = rng.choice(COUNTRIES)
        prefix = code + "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 5)))
        kind = rng.choices(("landline", "mobile", "toll_free", "premium"), weights=(50, 45, 4, 1))[0]
        prefixes[prefix] = (f"{country} {prefix}", country, kind)
    rows = []
    for prefix, (destination, country, kind) in prefixes.items():
        first, following = rng.choice(INCREMENTS)
        price = Decimal(rng.randint(500, 200_000)) / 1_000_000
        fee = Decimal(rng.choice((0, 0, 0, rng.randint(1, 30_000)))) / 1_000_000
        rows.append((prefix, destination, country, kind, price, fee, first, following))
    return rows


def _setup(rng: random.Random, *, prefixes: int, profiles: int, now: datetime) -> dict[str, object]:
    from django.db import connection

    from apps.billing.pricing import monthly_period
    from apps.bundles.models import MINUTES_PER_BUNDLE, BundlePeriod
    from apps.companies.models import Company
    from apps.rating.models import RateDeck
    from apps.sip_profiles.models import SipProfile

    period_start, period_end = monthly_period(renewal_day=1, at=now)
    companies = Company.objects.bulk_create(
        [Company(name=f"Bench {n} Inc", country="US", currency="USD") for n in range(max(1, profiles // 10))]
    )
    rows = []
    for n in range(profiles):
        channels = rng.randint(1, 30)
        bundles = rng.randint(1, min(3, channels)) if rng.random() < 0.3 else 0
        rows.append(
            SipProfile(
                company=companies[n % len(companies)],
                name=f"trunk-{n}",
                auth_method="ip",
                channels=channels,
                us_minute_bundles=bundles,
                renewal_day=1,
            )
        )
    made = SipProfile.objects.bulk_create(rows, batch_size=2000)
    periods = []
    for profile in made:
        if profile.us_minute_bundles:
            included = profile.us_minute_bundles * MINUTES_PER_BUNDLE
            # Some periods are nearly used up, so that bundles run out during the run.
            used = included - rng.randint(0, 300) if rng.random() < 0.3 else rng.randint(0, included // 2)
            periods.append(
                BundlePeriod(
                    sip_profile=profile,
                    company_id=profile.company_id,
                    period_start=period_start,
                    period_end=period_end,
                    bundles=profile.us_minute_bundles,
                    minutes_included=included,
                    minutes_used=used,
                )
            )
    BundlePeriod.objects.bulk_create(periods, batch_size=2000)

    deck = RateDeck.objects.create(
        currency="USD", name="Benchmark deck", effective_from=period_start - timedelta(days=60), status="draft"
    )
    deck_rows = _deck_rows(rng, prefixes)
    buffer = io.StringIO()
    for prefix, destination, country, kind, price, fee, first, following in deck_rows:
        buffer.write(f"{deck.pk}\t{prefix}\t{destination}\t{country}\t{kind}\t{price}\t{fee}\t{first}\t{following}\n")
    with (
        connection.cursor() as cursor,
        cursor.cursor.copy(
            "COPY rating_rate (deck_id, prefix, destination, country, destination_class, price_per_minute,"
            " connection_fee, first_increment, next_increment) FROM STDIN"
        ) as copy,
    ):
        copy.write(buffer.getvalue())
    RateDeck.objects.filter(pk=deck.pk).update(status="active", rate_count=len(deck_rows))
    profile_rows = [(p.pk, p.company_id) for p in made]
    return {
        "deck_id": deck.pk,
        "prefixes": [r[0] for r in deck_rows if r[3] != "premium"],
        "profiles": profile_rows,
        "period_start": period_start,
    }


def _cdr_text(rng: random.Random, count: int, data: dict[str, object], now: datetime) -> str:
    prefixes: list[str] = data["prefixes"]  # type: ignore[assignment]
    us = [p for p in prefixes if p.startswith("1")]
    other = [p for p in prefixes if not p.startswith("1")]
    profiles: list[tuple[int, int]] = data["profiles"]  # type: ignore[assignment]
    start: datetime = data["period_start"]  # type: ignore[assignment]
    span = max(60, int((now - start).total_seconds()) - 3600)
    created = now.isoformat()
    out = io.StringIO()
    digits = "0123456789"
    for n in range(count):
        profile_id, company_id = profiles[rng.randrange(len(profiles))]
        roll = rng.random()
        if roll < 0.005:
            callee = "1900" + "".join(rng.choices(digits, k=7))
        elif roll < 0.62:
            prefix = rng.choice(us)
            callee = prefix + "".join(rng.choices(digits, k=11 - len(prefix)))
        else:
            prefix = rng.choice(other)
            callee = prefix + "".join(rng.choices(digits, k=max(12 - len(prefix), 2)))
        inbound = rng.random() < 0.05
        answered = rng.random() < 0.92
        begin = start + timedelta(seconds=rng.randrange(span))
        ring = rng.randint(0, 20)
        if answered:
            kind = rng.random()
            billable = 0 if kind < 0.02 else rng.randint(1, 300) if kind < 0.75 else rng.randint(300, 1800)
            answer = begin + timedelta(seconds=ring)
            end = answer + timedelta(seconds=billable)
            answered_at, disposition, code = answer.isoformat(), "answered", 200
        else:
            billable, end = 0, begin + timedelta(seconds=ring)
            answered_at, disposition, code = "\\N", "no_answer", 480
        duration = int((end - begin).total_seconds())
        out.write(
            f"{uuid.uuid4()}\t{created}\tbench-1\t{n + 1}\tcall-{n}@bench\t{'inbound' if inbound else 'outbound'}\t"
            f"+12025550100\t+{callee}\t{begin.isoformat()}\t{answered_at}\t{end.isoformat()}\t{duration}\t{billable}\t"
            f"{code}\t{disposition}\tip\t192.0.2.{n % 250 + 1}\t{company_id}\t{profile_id}\t\n"
        )
    return out.getvalue()


CDR_COLUMNS = (
    "public_id, created_at, node, edge_id, call_id, direction, caller, callee, started_at, answered_at, ended_at,"
    " duration_seconds, billable_seconds, sip_code, disposition, auth_method, source_address, company_id,"
    " sip_profile_id, refusal_reason"
)


# --- The rating run (a separate process: its own peak memory) ------------------------------


def rate_only() -> None:
    _django(os.environ["DATABASE_URL"])
    from apps.rating.tasks import rate_cdrs
    from skypemanager.celery import app

    # What the job hands to other tasks (bundle notices) is queued, as with a real broker, not
    # run inline: in production another worker sends them while rating goes on.
    app.conf.update(task_always_eager=False, broker_url="memory://")

    started = time.perf_counter()
    result = rate_cdrs()  # the scheduled job's own code, called in this process
    seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds, "result": result, "peak_mib": _peak_kib() / 1024}))


def _peak_kib() -> int:
    """This process's peak resident memory. VmHWM, not ru_maxrss: Linux carries ru_maxrss over
    exec, so it would report the parent's memory at the fork (the generated CDR text)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


# --- The independent check -------------------------------------------------------------------

EXPECTED_SQL = """
CREATE TEMPORARY TABLE expected AS
WITH calls AS (
    SELECT c.id, c.sip_profile_id AS profile_id, substr(c.callee, 2) AS digits, c.billable_seconds AS secs,
           (c.direction = 'outbound' AND c.answered_at IS NOT NULL AND c.billable_seconds > 0) AS priced
      FROM cdrs_cdr c
), blocked AS (
    SELECT calls.id FROM calls JOIN rating_blockedprefix b
        ON b.prefix LIKE '+%%' AND (
            (NOT b.exact AND calls.digits LIKE substr(b.prefix, 2) || '%%')
            OR (b.exact AND calls.digits = substr(b.prefix, 2)))
     WHERE calls.priced
), matched AS (
    SELECT DISTINCT ON (calls.id) calls.id AS call_id, r.prefix, r.price_per_minute AS ppm, r.connection_fee AS fee,
           r.first_increment AS first, r.next_increment AS step, r.destination_class AS class, r.country
      FROM calls
      JOIN generate_series(1, 15) AS l(n) ON l.n <= length(calls.digits)
      JOIN rating_rate r ON r.deck_id = %(deck)s AND r.prefix = left(calls.digits, l.n)
     WHERE calls.priced AND calls.id NOT IN (SELECT id FROM blocked)
     ORDER BY calls.id, l.n DESC
), usable AS (
    SELECT calls.id, calls.profile_id, calls.secs, m.prefix, m.ppm, m.fee, m.first, m.step, m.class, m.country,
           ceil(calls.secs / 60.0)::int AS minutes,
           coalesce(b.id, 0) AS period_id, coalesce(b.minutes_included - b.minutes_used, 0) AS left0
      FROM calls JOIN matched m ON m.call_id = calls.id
      LEFT JOIN bench_periods b ON b.sip_profile_id = calls.profile_id
                               AND m.country = 'US' AND m.class IN ('landline', 'mobile')
     WHERE m.class NOT IN ('premium', 'special_service', 'emergency')
), taken AS (
    SELECT u.*, least(u.minutes, greatest(0, u.left0 - coalesce(sum(u.minutes) OVER (
               PARTITION BY u.period_id ORDER BY u.id ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0))) AS take
      FROM usable u
), priced AS (
    SELECT t.*, t.secs - least(t.secs, t.take * 60) AS rest FROM taken t
)
SELECT calls.id, calls.profile_id,
       CASE WHEN NOT calls.priced THEN 'zero_rated'
            WHEN calls.id IN (SELECT id FROM blocked) THEN 'blocked'
            WHEN m.call_id IS NULL THEN 'error'
            WHEN m.class IN ('premium', 'special_service', 'emergency') THEN 'blocked'
            WHEN p.rest = 0 THEN 'bundle'
            ELSE 'rated' END AS status,
       coalesce(CASE WHEN p.rest > 0 THEN round(p.fee + p.ppm * (
            CASE WHEN p.rest <= p.first THEN p.first
                 ELSE p.first + ceil((p.rest - p.first)::numeric / p.step) * p.step END) / 60, 4) END, 0) AS cost,
       coalesce(p.take, 0) AS take, coalesce(p.period_id, 0) AS period_id
  FROM calls LEFT JOIN matched m ON m.call_id = calls.id LEFT JOIN priced p ON p.id = calls.id
"""


def _check(deck_id: int, cdrs: int) -> list[str]:
    from django.db import connection

    problems = []
    with connection.cursor() as cursor:
        cursor.execute(EXPECTED_SQL, {"deck": deck_id})

        def one(sql: str) -> object:
            cursor.execute(sql)
            return cursor.fetchone()[0]

        rated, queued = one("SELECT count(*) FROM cdrs_cdrrating"), one("SELECT count(*) FROM cdrs_pendingcdr")
        if (rated, queued) != (cdrs, 0):
            problems.append(f"{rated} CDRs rated and {queued} still queued, of {cdrs}")
        wrong = one(
            "SELECT count(*) FROM expected e LEFT JOIN cdrs_cdrrating r ON r.cdr_id = e.id"
            " WHERE r.cdr_id IS NULL OR r.status <> e.status OR r.cost <> e.cost OR r.bundle_minutes <> e.take"
        )
        if wrong:
            cursor.execute(
                "SELECT e.id, e.status, r.status, e.cost, r.cost, e.take, r.bundle_minutes FROM expected e"
                " LEFT JOIN cdrs_cdrrating r ON r.cdr_id = e.id WHERE r.cdr_id IS NULL OR r.status <> e.status"
                " OR r.cost <> e.cost OR r.bundle_minutes <> e.take ORDER BY e.id LIMIT 5"
            )
            problems.append(f"{wrong} CDRs rated differently from the reference, e.g. {cursor.fetchall()}")
        expected_total = one("SELECT coalesce(sum(cost), 0) FROM expected")
        checks = {
            "ratings": "SELECT coalesce(sum(cost), 0) FROM cdrs_cdrrating",
            "ledger debits": "SELECT -coalesce(sum(e.amount), 0) FROM billing_ledgerentry e"
            " JOIN billing_ledgeraccount a ON a.id = e.account_id"
            " JOIN billing_ledgertransaction t ON t.id = e.transaction_id"
            " WHERE t.kind = 'call' AND a.kind = 'profile_balance'",
            "profile balances": "SELECT -coalesce(sum(balance), 0) FROM billing_ledgeraccount"
            " WHERE kind = 'profile_balance'",
            "revenue": "SELECT coalesce(sum(balance), 0) FROM billing_ledgeraccount WHERE kind = 'revenue_calls'",
        }
        for name, sql in checks.items():
            value = one(sql)
            if value != expected_total:
                problems.append(f"{name}: {value} but the reference says {expected_total}")
        profiles_off = one(
            "SELECT count(*) FROM (SELECT profile_id, sum(cost) AS cost FROM expected GROUP BY profile_id) e"
            " FULL JOIN (SELECT sip_profile_id, balance FROM billing_ledgeraccount WHERE kind = 'profile_balance') a"
            " ON a.sip_profile_id = e.profile_id"
            " WHERE coalesce(-a.balance, 0) <> coalesce(e.cost, 0)"
        )
        if profiles_off:
            problems.append(f"{profiles_off} profile balances differ from the reference")
        periods_off = one(
            "SELECT count(*) FROM bench_periods b JOIN bundles_bundleperiod p ON p.id = b.id"
            " LEFT JOIN (SELECT period_id, sum(take) AS take FROM expected GROUP BY period_id) e ON e.period_id = b.id"
            " WHERE p.minutes_used <> b.minutes_used + coalesce(e.take, 0)"
        )
        if periods_off:
            problems.append(f"{periods_off} bundle periods' minutes differ from the reference")
        cursor.execute(
            "SELECT count(*) FILTER (WHERE status = 'rated'), count(*) FILTER (WHERE status = 'bundle'),"
            " count(*) FILTER (WHERE status = 'zero_rated'), count(*) FILTER (WHERE status = 'blocked'),"
            " count(*) FILTER (WHERE status = 'error'), coalesce(sum(take), 0) FROM expected"
        )
        charged, bundle, zero, blocked, error, minutes = cursor.fetchone()
        _log(
            f"  reference: {charged:,} charged, {bundle:,} wholly on bundles, {zero:,} zero-rated, {blocked:,} blocked,"
            f" {error:,} unrated; {minutes:,} bundle minutes; total {expected_total} USD"
        )
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cdrs", type=int, default=1_000_000)
    parser.add_argument("--profiles", type=int, default=10_000)
    parser.add_argument("--prefixes", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--rate-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rate_only:
        rate_only()
        return 0

    from benchmarks._pgtemp import throwaway_postgres

    if os.environ.get("DATABASE_URL", "").startswith("postgres"):
        return run(args, os.environ["DATABASE_URL"])
    with throwaway_postgres() as url:
        return run(args, url)


def run(args: argparse.Namespace, url: str) -> int:
    _django(url)
    from django.core.management import call_command
    from django.db import connection

    rng = random.Random(args.seed)
    now = datetime.now(UTC)
    _log(f"rating benchmark: {args.cdrs:,} CDRs, {args.profiles:,} profiles, {args.prefixes:,}-prefix deck")
    t = time.perf_counter()
    call_command("migrate", verbosity=0)
    data = _setup(rng, prefixes=args.prefixes, profiles=args.profiles, now=now)
    _log(f"  schema and directory: {time.perf_counter() - t:.1f} s")
    t = time.perf_counter()
    text = _cdr_text(rng, args.cdrs, data, now)
    _log(
        f"  {args.cdrs:,} CDRs generated in {time.perf_counter() - t:.1f} s ({len(text) / 2**20:.0f} MiB of COPY text)"
    )

    with connection.cursor() as cursor:
        t = time.perf_counter()
        with cursor.cursor.copy(f"COPY cdrs_cdr ({CDR_COLUMNS}) FROM STDIN") as copy:
            copy.write(text)
        copy_seconds = time.perf_counter() - t
        del text
        t = time.perf_counter()
        cursor.execute("INSERT INTO cdrs_pendingcdr (cdr_id) SELECT id FROM cdrs_cdr")
        queue_seconds = time.perf_counter() - t
        periods = "SELECT id, sip_profile_id, minutes_included, minutes_used FROM bundles_bundleperiod"
        cursor.execute(f"CREATE TABLE bench_periods AS {periods}")
        cursor.execute("VACUUM ANALYZE")
    connection.close()
    _log(f"  plain COPY of the CDRs: {copy_seconds:.2f} s; queueing them: {queue_seconds:.2f} s")

    child = subprocess.run(
        [sys.executable, __file__, "--rate-only"],
        env={**os.environ, "DATABASE_URL": url},
        capture_output=True,
        text=True,
        check=False,
    )
    if child.returncode != 0:
        _log(child.stdout + child.stderr)
        _log("FAILED: the rating run failed")
        return 1
    report = json.loads(child.stdout.strip().splitlines()[-1])
    seconds, peak = report["seconds"], report["peak_mib"]
    rate = args.cdrs / seconds
    _log(f"  rating job: {report['result']}")
    _log("")
    _log(f"RESULT rating: {args.cdrs:,} CDRs in {seconds:.2f} s = {rate:,.0f} CDRs/s; peak memory {peak:.0f} MiB")
    _log(f"RESULT plain COPY of the same CDRs: {copy_seconds:.2f} s; rating / COPY = {seconds / copy_seconds:.2f}x")

    t = time.perf_counter()
    problems = _check(data["deck_id"], args.cdrs)  # type: ignore[arg-type]
    _log(f"  independent check: {time.perf_counter() - t:.1f} s")
    if problems:
        for problem in problems:
            _log(f"MISMATCH: {problem}")
        _log("FAILED: the rating differs from the independent computation")
        return 1
    _log("CHECK passed: every CDR, profile balance, the revenue, the ledger and the bundle minutes match")
    met = rate >= TARGET_CDRS_PER_SECOND and seconds <= TARGET_COPY_RATIO * copy_seconds
    _log(
        f"TARGET {'met' if met else 'NOT met'}: >= {TARGET_CDRS_PER_SECOND:,} CDRs/s and <= "
        f"{TARGET_COPY_RATIO:.0f}x the plain COPY"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
