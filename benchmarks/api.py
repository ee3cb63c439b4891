"""API benchmark (issue 15): what one request to the API and the portal costs, measured from
outside against gunicorn, beside a Django hello-world served the same way.

    make bench-api                               # 2 × 1,000,000 calls, 3 rounds of 15 s (~30 min)
    make bench-api ARGS="--quick"                # 2 × 20,000 calls, 1 round of 3 s (~2-3 min)
    .venv/bin/python benchmarks/api.py --calls 200000 --rounds 1

Everything runs on loopback: a throwaway PostgreSQL (benchmarks/_pgtemp.py, with
pg_stat_statements loaded to count queries) and Redis; one company with 50 SIP profiles,
2,000 ledger entries, 2,000 audit events and N rated calls, and a second company with another
N calls (so tenant scoping matters); an API key and a browser session of the first company's
owner. The portal is served by gunicorn with the production settings and gunicorn
configuration (skypemanager/gunicorn_conf.py, 4 processes; WEB_MAX_REQUESTS=0 so the workers
whose CPU is read are not replaced mid-run), and the baseline, benchmarks/_hello.py, by the
same configuration. `wrk` (Debian package `wrk`) drives each with 16 connections for the
run's duration after a warm-up, baseline and endpoint interleaved, for each round.

For each endpoint it prints requests/s, p50, p99, the gunicorn workers' CPU ms per request
(from /proc: utime + stime of every worker, all threads), PostgreSQL's CPU ms per request (the
backends of the benchmark database), queries per request (pg_stat_statements' calls), and the
ratio of its requests/s to the hello-world run just before it. The last line is

    RESULT api: worst_ratio=X worst_p99_ms=N worst_cpu_ms=X queries_constant=yes|no

queries_constant: every endpoint's queries per request are the same in every round, and the
ledger's and the audit events' deep pages (the 40th, by cursor) cost the queries of their
first. Every process it starts is stopped by pid (its process group); the whole run is
bounded by --time-limit.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import re
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.edge import Processes, free_port, start_redis  # noqa: E402

TARGET_RATIO = 0.10
TARGET_P99_MS = 50.0
TARGET_CPU_SINGLE_MS = 3.0
TARGET_CPU_LIST_MS = 6.0
TARGET_STAFF_P50_MS = 200.0
PROFILES = 50
LEDGER_ENTRIES = 2_000
AUDIT_EVENTS = 2_000
# The ledger's and audit events' deep page: the 40th page of 50 rows, reached by cursor (keyset pages).
DEEP_PAGE = 40
DEEP_LEDGER = f"ledger/ page {DEEP_PAGE}"
DEEP_AUDIT = f"audit-events/ page {DEEP_PAGE}"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(message: str) -> None:
    print(message, flush=True)


@dataclass
class Endpoint:
    name: str
    path: str
    kind: str  # "single" (one object or a summary), "list" (a page of up to 50 rows) or "staff"
    session: bool = False  # a browser session instead of the API key


@dataclass
class Run:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    requests: int
    worker_cpu_ms: float = 0.0
    pg_cpu_ms: float = 0.0
    queries: float = 0.0


# --- Services -----------------------------------------------------------------------------


def app_env(database_url: str, redis_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "SECRET_KEY": os.environ.get("SECRET_KEY", "benchmark-only-" + "x" * 40),
        "DJANGO_SETTINGS_MODULE": "skypemanager.settings",
        "DEBUG": "false",
        "ALLOWED_HOSTS": "127.0.0.1",
        # Plain HTTP on loopback: no redirect to HTTPS (a TLS proxy does it in production).
        "SECURE_SSL_REDIRECT": "false",
        "EDGE_SYNC_ENABLED": "false",
        "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
        # The benchmark measures the limit's cost, not its refusals.
        "API_RATE_LIMIT": "100000000/minute",
    }


def start_gunicorn(procs: Processes, name: str, env: dict[str, str], app: str | None) -> tuple[Any, int]:
    port = free_port()
    server_env = {
        **env,
        "WEB_LISTEN": f"127.0.0.1:{port}",
        "WEB_CONCURRENCY": "4",
        "WEB_MAX_REQUESTS": "0",
        "WEB_LOG_LEVEL": "warning",
    }
    argv = [sys.executable, "-m", "gunicorn", "-c", "python:skypemanager.gunicorn_conf"]
    proc = procs.start(name, [*argv, *([app] if app else [])], env=server_env, cwd=ROOT)
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"gunicorn ({name}) exited:\n{procs.log_tail(name)}")
        with contextlib.suppress(OSError):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/health/" if app is None else "/")
            conn.getresponse().read()
            conn.close()
            if len(_workers(proc.pid)) >= 4:
                return proc, port
        if time.monotonic() > deadline:
            raise RuntimeError(f"gunicorn ({name}) did not answer within 60 s:\n{procs.log_tail(name)}")
        time.sleep(0.2)


def _stat(pid: int) -> tuple[int, int, int] | None:
    """(ppid, pgrp, utime + stime in clock ticks) of a live process, all its threads counted."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return int(fields[1]), int(fields[2]), int(fields[11]) + int(fields[12])


def _pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def _workers(master: int) -> list[int]:
    return [pid for pid in _pids() if (s := _stat(pid)) is not None and s[0] == master]


def _cpu_ticks(master: int, postmaster: int) -> tuple[dict[int, int], dict[int, int]]:
    """CPU ticks so far of each gunicorn worker of `master` and each PostgreSQL backend."""
    workers, backends = {}, {}
    for pid in _pids():
        s = _stat(pid)
        if s is None:
            continue
        if s[0] == master:
            workers[pid] = s[2]
        elif s[0] == postmaster:
            backends[pid] = s[2]
    return workers, backends


def _delta(before: dict[int, int], after: dict[int, int]) -> float:
    """Seconds of CPU between two readings (a process born meanwhile counts from zero)."""
    return sum(ticks - before.get(pid, 0) for pid, ticks in after.items()) / CLK_TCK


# --- Data ---------------------------------------------------------------------------------


def build_data(calls: int) -> dict[str, Any]:
    from allauth.account.models import EmailAddress
    from django.db import connection, transaction
    from django.test import Client

    from apps.accounts.models import User
    from apps.accounts.services import api_key_create
    from apps.audit.models import AuditEvent
    from apps.billing.ledger.allocations import credit_allocate
    from apps.billing.ledger.services import (
        Leg,
        Posting,
        company_account,
        ledger_post,
        ledger_post_many,
        platform_account,
    )
    from apps.billing.models import LedgerAccount, LedgerTransaction
    from apps.companies.services import company_create
    from apps.core.actor import Actor
    from apps.numbers.services import number_stock_create
    from apps.rating.models import Rate, RateDeck
    from apps.sip_profiles.services import sip_profile_create

    companies, profiles = [], {}
    for n, email in enumerate(("owner@bench.example", "other@bench.example")):
        user = User.objects.create_user(email=email, password=f"bench-password-{n}-2026", full_name=f"Owner {n}")
        EmailAddress.objects.create(user=user, email=email, verified=True, primary=True)
        company = company_create(
            actor=Actor(user=user), owner=user, name=f"Bench {n} Inc", country="US", currency="USD"
        )
        ledger_post(
            actor=Actor.system(),
            key=f"bench:{company.pk}",
            kind=LedgerTransaction.Kind.ADJUSTMENT,
            company=company,
            currency="USD",
            description="Benchmark credit",
            legs=[
                Leg(platform_account(LedgerAccount.Kind.BANK_CASH, "USD"), Decimal("-1000000")),
                Leg(company_account(company), Decimal("1000000")),
            ],
        )
        made = []
        for p in range(PROFILES if n == 0 else 5):
            profile, _ = sip_profile_create(
                actor=Actor(user=user), company=company, name=f"trunk-{p:02d}", auth_method="registration", channels=2
            )
            credit_allocate(actor=Actor(user=user), profile=profile, amount="10", key=f"bench:{profile.public_id}")
            made.append(profile)
        companies.append((user, company))
        profiles[company.pk] = made
    owner, company = companies[0]

    # The first company's statement: LEDGER_ENTRIES entries on its balance in all.
    account = company_account(company)
    bank = platform_account(LedgerAccount.Kind.BANK_CASH, "USD")
    missing = LEDGER_ENTRIES - account.entries.count()
    with transaction.atomic():
        ledger_post_many(
            actor=Actor.system(),
            kind=LedgerTransaction.Kind.ADJUSTMENT,
            postings=[
                Posting(
                    key=f"bench:adjust:{n}",
                    company_id=company.pk,
                    currency="USD",
                    description=f"Adjustment {n}",
                    legs=[(bank.pk, Decimal("-1.2500")), (account.pk, Decimal("1.2500"))],
                )
                for n in range(max(0, missing))
            ],
        )
    missing = AUDIT_EVENTS - AuditEvent.objects.filter(company=company).count()
    AuditEvent.objects.bulk_create(
        [
            AuditEvent(
                company=company,
                actor_user=owner,
                actor_label=owner.email,
                action="sip_profile.updated",
                object_type="sip_profile",
                object_id=str(profiles[company.pk][n % PROFILES].public_id),
                object_repr=f"trunk-{n % PROFILES:02d}",
                changes={"channels": [1, 2]},
                ip_address="127.0.0.1",
            )
            for n in range(max(0, missing))
        ],
        batch_size=1000,
    )
    for n in range(100):
        number_stock_create(
            actor=Actor.system(),
            number=f"+1{(202, 212, 312, 415)[n % 4]}555{n:04d}",
            country="US",
            area="",
            number_type="geographic",
            **{f"price_{t}_{c}": p for c in ("usd", "eur", "gbp") for t, p in (("3m", "6.00"), ("12m", "20.00"))},
        )
    deck = RateDeck.objects.create(
        currency="USD", name="Benchmark deck", effective_from="2026-01-01T00:00:00Z", status="draft"
    )
    Rate.objects.bulk_create(
        [
            Rate(deck=deck, prefix="1", destination="United States", country="US", destination_class="landline",
                 price_per_minute=Decimal("0.010000"), connection_fee=0, first_increment=6, next_increment=6),
            Rate(deck=deck, prefix="44", destination="United Kingdom", country="GB", destination_class="landline",
                 price_per_minute=Decimal("0.012000"), connection_fee=0, first_increment=60, next_increment=60),
            Rate(deck=deck, prefix="447", destination="United Kingdom mobile", country="GB",
                 destination_class="mobile", price_per_minute=Decimal("0.060000"), connection_fee=0,
                 first_increment=1, next_increment=1),
        ]
    )  # fmt: skip
    RateDeck.objects.filter(pk=deck.pk).update(status="active", rate_count=3)

    # N rated calls per company, generated in the database (a plain INSERT … SELECT over
    # generate_series: 2,000,000 rows in well under a minute, nothing held in Python).
    any_transaction = LedgerTransaction.objects.filter(company=company).values_list("pk", flat=True).first()
    with connection.cursor() as cursor:
        for number, (_, each) in enumerate(companies):
            ids = [p.pk for p in profiles[each.pk]]
            cursor.execute(
                """
                INSERT INTO cdrs_cdr (public_id, created_at, node, edge_id, call_id, direction, caller, callee,
                    started_at, answered_at, ended_at, duration_seconds, billable_seconds, sip_code, disposition,
                    refusal_reason, auth_method, source_address, company_id, sip_profile_id)
                SELECT gen_random_uuid(), now(), %(node)s, n, 'call-' || n || '@bench', 'outbound', '+12025550100',
                       '+1212' || lpad((n %% 10000000)::text, 7, '0'),
                       t, t + interval '5 seconds', t + interval '5 seconds' + (n %% 600) * interval '1 second',
                       5 + n %% 600, n %% 600, 200, 'answered', '', 'registration', '192.0.2.10', %(company)s,
                       (%(profiles)s::bigint[])[1 + n %% %(count)s]
                  FROM generate_series(1, %(calls)s) AS n,
                       LATERAL (SELECT now() - (n %% (60 * 24 * 60)) * interval '1 minute' AS t) AS s
                """,
                {"node": f"bench-{number + 1}", "company": each.pk, "profiles": ids, "count": len(ids), "calls": calls},
            )
        cursor.execute(
            "INSERT INTO cdrs_cdrrating (cdr_id, status, cost, currency, rate_prefix, bundle_seconds, bundle_minutes,"
            " note, rated_at, ledger_transaction_id)"
            " SELECT id, 'rated', 0.0100 + billable_seconds * 0.0001, 'USD', '1212', 0, 0, '', ended_at, %s"
            " FROM cdrs_cdr",
            [any_transaction],
        )
        cursor.execute("VACUUM ANALYZE")

    key_owner = owner
    _, secret = api_key_create(actor=Actor(user=key_owner), company=company, name="Benchmark", role="admin")
    client = Client()
    client.force_login(owner)
    from django.conf import settings

    session = client.cookies[settings.SESSION_COOKIE_NAME].value
    staff = User.objects.create_user(email="staff@bench.example", password=None, full_name="Staff")
    User.objects.filter(pk=staff.pk).update(is_staff=True, is_superuser=True)
    staff_client = Client()
    staff_client.force_login(User.objects.get(pk=staff.pk))
    staff_session = staff_client.cookies[settings.SESSION_COOKIE_NAME].value
    return {
        "key": secret,
        "session_cookie": f"{settings.SESSION_COOKIE_NAME}={session}",
        "staff_cookie": f"{settings.SESSION_COOKIE_NAME}={staff_session}",
        "profile": str(profiles[company.pk][0].public_id),
        "ledger_deep": deep_cursor(account.entries.order_by("-id").values_list("id", flat=True), None),
        "audit_deep": deep_cursor(
            AuditEvent.objects.filter(company=company).order_by("-created_at", "-id").values_list("created_at", "id"),
            True,
        ),
    }


def deep_cursor(keys: Any, timed: bool | None) -> str:
    """The cursor of the list's DEEP_PAGE-th page of 50 (what following `next` would reach)."""
    from apps.core.keyset import EPOCH, Cursor

    key = keys[(DEEP_PAGE - 1) * 50 - 1]
    at, pk = key if timed else (EPOCH, key)
    return Cursor(older=True, at=at, id=pk).encode()


def endpoints(data: dict[str, Any]) -> list[Endpoint]:
    api = "/api/v1"
    listed = [
        Endpoint("sip-profiles/", f"{api}/sip-profiles/", "list"),
        Endpoint("sip-profiles/{id}/", f"{api}/sip-profiles/{data['profile']}/", "single"),
        Endpoint("credit/", f"{api}/credit/", "single"),
        Endpoint("ledger/", f"{api}/ledger/", "list"),
        Endpoint(DEEP_LEDGER, f"{api}/ledger/?cursor={data['ledger_deep']}", "list"),
        Endpoint("audit-events/", f"{api}/audit-events/", "list"),
        Endpoint(DEEP_AUDIT, f"{api}/audit-events/?cursor={data['audit_deep']}", "list"),
        Endpoint("numbers/available/?country=US", f"{api}/numbers/available/?country=US", "list"),
        Endpoint("rates/lookup/?number=…", f"{api}/rates/lookup/?number=%2B442079460958", "single"),
    ]
    if data.get("calls_api"):
        listed.append(Endpoint("calls/", f"{api}/calls/", "list"))
    listed += [
        Endpoint("page /", "/", "single", session=True),
        Endpoint("page /sip-profiles/", "/sip-profiles/", "list", session=True),
        # The staff CDR list over every call of both companies (target: p50 <= 200 ms).
        Endpoint("staff /staff/cdrs/cdr/", "/staff/cdrs/cdr/", "staff", session=True),
    ]
    return listed


# --- Load ---------------------------------------------------------------------------------

_LATENCY = re.compile(r"^\s+(50|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s)\s*$", re.MULTILINE)
_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def wrk(url: str, headers: list[str], *, seconds: float, connections: int) -> Run:
    import subprocess

    argv = ["wrk", "-t2", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency", "--timeout", "10s"]
    for header in headers:
        argv += ["-H", header]
    done = subprocess.run([*argv, url], capture_output=True, text=True, timeout=seconds + 60, check=False)
    out = done.stdout
    if done.returncode != 0 or "Requests/sec" not in out:
        raise RuntimeError(f"wrk failed ({done.returncode}):\n{out}\n{done.stderr}")
    latency = {p: float(v) * _UNITS[u] for p, v, u in _LATENCY.findall(out)}
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = int(bad.group(1)) if bad else 0
    if socket_errors:
        errors += sum(int(g) for g in socket_errors.groups())
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    return Run(rps=rps, p50_ms=latency.get("50", 0.0), p99_ms=latency.get("99", 0.0), errors=errors, requests=requests)


class Meter:
    """Worker and PostgreSQL CPU, and queries, over one wrk run."""

    def __init__(self, master: int, postmaster: int, stats_url: str) -> None:
        import psycopg

        self.master, self.postmaster = master, postmaster
        self.stats = psycopg.connect(stats_url, autocommit=True)  # another database: not counted

    def queries(self) -> int:
        row = self.stats.execute(
            "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid"
            " WHERE d.datname = 'bench'"
        ).fetchone()
        return int(row[0]) if row else 0

    def measure(self, url: str, headers: list[str], *, seconds: float, connections: int) -> Run:
        workers, backends = _cpu_ticks(self.master, self.postmaster)
        queries = self.queries()
        run = wrk(url, headers, seconds=seconds, connections=connections)
        workers_after, backends_after = _cpu_ticks(self.master, self.postmaster)
        count = max(1, run.requests)
        run.queries = (self.queries() - queries) / count
        run.worker_cpu_ms = _delta(workers, workers_after) * 1000 / count
        run.pg_cpu_ms = _delta(backends, backends_after) * 1000 / count
        return run


def _postmaster(url: str) -> int:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SHOW data_directory").fetchone()
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    return int(Path(str(row[0]), "postmaster.pid").read_text().split()[0])  # type: ignore[index]


def _check(port: int, endpoint: Endpoint, headers: list[str]) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", endpoint.path, headers=dict(h.split(": ", 1) for h in headers))
    response = conn.getresponse()
    body = response.read()
    conn.close()
    if response.status != 200:
        raise RuntimeError(f"{endpoint.name} answered {response.status}: {body[:500]!r}")


def _load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


# --- Main ---------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="2 × 20,000 calls, 1 round of 3 s (about 2-3 minutes)")
    parser.add_argument("--calls", type=int, help="rated calls per company (default 1,000,000; quick 20,000)")
    parser.add_argument("--rounds", type=int, help="rounds (default 3; quick 1)")
    parser.add_argument("--seconds", type=float, help="seconds per wrk run (default 15; quick 3)")
    parser.add_argument("--warmup", type=float, help="seconds of warm-up before each run (default 3; quick 1)")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--only", help="run only the endpoints whose name contains this")
    parser.add_argument("--time-limit", type=int, default=3600, help="stop everything after this many seconds")
    args = parser.parse_args()
    args.calls = args.calls if args.calls is not None else 20_000 if args.quick else 1_000_000
    args.rounds = args.rounds or (1 if args.quick else 3)
    args.seconds = args.seconds or (3.0 if args.quick else 15.0)
    args.warmup = args.warmup if args.warmup is not None else 1.0 if args.quick else 3.0
    missing = [p for p in ("wrk", "redis-server") if not shutil.which(p)]
    if missing:
        log(f"missing: {', '.join(missing)} (apt-get install -y {' '.join(missing).replace('redis-server', 'redis')})")
        return 2

    from benchmarks._pgtemp import throwaway_postgres

    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    signal.signal(signal.SIGALRM, lambda signum, frame: (_ for _ in ()).throw(TimeoutError("time limit reached")))
    signal.alarm(args.time_limit)
    work = Path(tempfile.mkdtemp(prefix="bench-api-"))
    procs = Processes(work)
    try:
        with throwaway_postgres({"shared_preload_libraries": "pg_stat_statements"}) as url:
            return run(args, url, procs)
    finally:
        signal.alarm(0)
        procs.stop_all()
        shutil.rmtree(work, ignore_errors=True)


def run(args: argparse.Namespace, url: str, procs: Processes) -> int:
    started = time.monotonic()
    postmaster = _postmaster(url)
    redis_url = start_redis(procs)
    env = app_env(url, redis_url)
    os.environ.update(env)
    import warnings

    warnings.filterwarnings("ignore", message="No directory at", category=UserWarning)
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.urls import Resolver404, resolve

    log(f"API benchmark: {PROFILES} profiles, {LEDGER_ENTRIES:,} ledger entries, {AUDIT_EVENTS:,} audit events,")
    log(f"  2 × {args.calls:,} rated calls; {args.rounds} round(s) of {args.seconds:.0f} s per run, 16 connections")
    t = time.perf_counter()
    call_command("migrate", verbosity=0)
    # The pages' static files are served from their manifest as in production (staticfiles/,
    # what the Docker image builds; git ignores it).
    call_command("collectstatic", interactive=False, verbosity=0)
    data = build_data(args.calls)
    try:
        resolve("/api/v1/calls/")
        data["calls_api"] = True
    except Resolver404:
        data["calls_api"] = False
    connection.close()
    log(f"  data: {time.perf_counter() - t:.1f} s")
    if not data["calls_api"]:
        log("  calls/: not in this version of the API (skipped)")

    portal, port = start_gunicorn(procs, "portal", env, None)
    hello, hello_port = start_gunicorn(procs, "hello", env, "benchmarks._hello:application")
    stats_url = url.rsplit("/", 1)[0] + "/postgres"
    with contextlib.closing(__import__("psycopg").connect(stats_url, autocommit=True)) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    meter = Meter(portal.pid, postmaster, stats_url)
    hello_meter = Meter(hello.pid, postmaster, stats_url)
    key_header = [f"Authorization: Bearer {data['key']}"]
    session_header = [f"Cookie: {data['session_cookie']}"]
    staff_header = [f"Cookie: {data['staff_cookie']}"]
    chosen = [e for e in endpoints(data) if not args.only or args.only in e.name]

    def headers_of(endpoint: Endpoint) -> list[str]:
        if endpoint.kind == "staff":
            return staff_header
        return session_header if endpoint.session else key_header

    for endpoint in chosen:
        try:
            _check(port, endpoint, headers_of(endpoint))
        except RuntimeError:
            log(procs.log_tail("portal"))
            raise

    results: dict[str, list[tuple[Run, Run]]] = {e.name: [] for e in chosen}
    loads = []
    for number in range(1, args.rounds + 1):
        loads.append(_load())
        log(f"  round {number}/{args.rounds} (load average {loads[-1]})")
        for endpoint in chosen:
            headers = headers_of(endpoint)
            target = f"http://127.0.0.1:{port}{endpoint.path}"
            baseline = f"http://127.0.0.1:{hello_port}/"
            wrk(baseline, [], seconds=args.warmup, connections=args.connections)
            base = hello_meter.measure(baseline, [], seconds=args.seconds, connections=args.connections)
            wrk(target, headers, seconds=args.warmup, connections=args.connections)
            measured = meter.measure(target, headers, seconds=args.seconds, connections=args.connections)
            results[endpoint.name].append((measured, base))
            log(
                f"    {endpoint.name:34} {measured.rps:7.0f} rps  p99 {measured.p99_ms:6.1f} ms"
                f"  cpu {measured.worker_cpu_ms:5.2f} ms  {measured.queries:4.1f} q  (hello {base.rps:6.0f} rps)"
            )
    loads.append(_load())

    log("")
    log(f"{'endpoint':34} {'rps':>7} {'p50 ms':>7} {'p99 ms':>7} {'cpu ms':>7} {'pg ms':>6} {'q/req':>6} {'ratio':>6}")
    worst_ratio, worst_p99, worst_cpu, constant, missed, errors = 1e9, 0.0, 0.0, True, [], 0
    per_request: dict[str, float] = {}
    for endpoint in chosen:
        runs = results[endpoint.name]
        n = len(runs)
        rps = sum(r.rps for r, _ in runs) / n
        p50 = sorted(r.p50_ms for r, _ in runs)[n // 2]
        p99 = max(r.p99_ms for r, _ in runs)
        cpu = sum(r.worker_cpu_ms for r, _ in runs) / n
        pg = sum(r.pg_cpu_ms for r, _ in runs) / n
        queries = [r.queries for r, _ in runs]
        ratio = min(r.rps / max(b.rps, 1e-9) for r, b in runs)
        errors += sum(r.errors for r, _ in runs)
        per_request[endpoint.name] = queries[0]
        if max(queries) - min(queries) > 0.2:
            constant = False
        log(
            f"{endpoint.name:34} {rps:7.0f} {p50:7.1f} {p99:7.1f} {cpu:7.2f} {pg:6.2f}"
            f" {sum(queries) / n:6.2f} {ratio:6.3f}"
        )
        if endpoint.kind == "staff":  # a staff page: its own target, not the API's
            if p50 > TARGET_STAFF_P50_MS:
                missed.append(endpoint.name)
            continue
        worst_ratio, worst_p99, worst_cpu = min(worst_ratio, ratio), max(worst_p99, p99), max(worst_cpu, cpu)
        limit = TARGET_CPU_LIST_MS if endpoint.kind == "list" else TARGET_CPU_SINGLE_MS
        if ratio < TARGET_RATIO or p99 > TARGET_P99_MS or cpu > limit:
            missed.append(endpoint.name)
    for top, far in (("ledger/", DEEP_LEDGER), ("audit-events/", DEEP_AUDIT)):
        first, deep = per_request.get(top), per_request.get(far)
        if first is not None and deep is not None and abs(first - deep) > 0.2:
            constant = False
    log("")
    log(f"load average (1, 5, 15 min) at each round's start and at the end: {' | '.join(loads)}")
    log(f"errors (non-2xx answers, socket errors): {errors}")
    log(f"targets: ratio >= {TARGET_RATIO}, p99 <= {TARGET_P99_MS:.0f} ms, worker CPU <= {TARGET_CPU_SINGLE_MS} ms")
    log(f"  (single objects, summaries, the dashboard) or <= {TARGET_CPU_LIST_MS} ms (pages of 50):")
    log(f"  and the staff CDR list p50 <= {TARGET_STAFF_P50_MS:.0f} ms (not in the RESULT line's worst figures)")
    log(f"  {'all met' if not missed else 'missed by ' + ', '.join(missed)}")
    log(f"  run time {time.monotonic() - started:.0f} s")
    log(
        f"RESULT api: worst_ratio={worst_ratio:.3f} worst_p99_ms={worst_p99:.0f} worst_cpu_ms={worst_cpu:.2f}"
        f" queries_constant={'yes' if constant else 'no'}"
    )
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
