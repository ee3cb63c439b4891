"""SIP edge benchmark (issue 11): the edge's Kamailio under SIPp load with 10,000 profiles
provisioned, on loopback, against a bare digest-auth Kamailio in the same run.

    make bench-edge                                  # the full run (≤ 10 minutes)
    .venv/bin/python benchmarks/edge.py --quick      # 1,000 profiles, fewer steps and samples
    .venv/bin/python benchmarks/edge.py --profiles 2000 --rates 100,200 --samples 5

It starts its own PostgreSQL (the portal's database and the node's), Redis, a Celery worker
and Kamailio (deploy/kamailio/kamailio.cfg as `edge_run` starts it, then
benchmarks/kamailio-bare.cfg), and SIPp for the PBXs and the carrier, all on 127.0.0.1, each
stopped by its pid (its own process group) at the end, also on Ctrl-C, an error or the time
limit. Then:

1. 10,000 digest profiles in 100 companies, written in bulk (rows, and their credit through
   the ledger's bulk posting), then provisioned on the node by the real sync task
   (apps.edge.tasks.edge_sync_profile_task, one per profile) on the Celery worker: its time is
   printed. When the provisioning budget (all but about 5 minutes of the time limit) runs
   out, the syncs still queued are dropped, the time 10,000 would take at the rate reached is
   printed, and the other profiles' node rows are written in bulk (one COPY per table and an
   htable.reload; the rows checked against the sync's own selector on a sample), so the
   calls still run against 10,000 profiles.
2. Calls per second: SIPp calls through the edge, each INVITE challenged and answered with
   the digest of the next profile of an injection file (-inf), a SIPp UAS as the carrier;
   the rate is stepped up (100, 200, 300, ... 1,200) for a bounded number of calls each; the
   highest step with no failed call is reported (calls set up per second), with its p95
   set-up time (first INVITE to 200 OK, SIPp's response-time trace).
3. A burst of 600 calls at a 300-channel profile, held long enough to overlap: the most
   simultaneous calls (the node's dialog profile, polled, and the carrier's concurrent calls)
   and how many the edge refused (486).
4. Provisioning latency: a profile's channels changed through the REST API; the on-commit
   task runs on the worker; the node's htable is polled over JSON-RPC until it holds the new
   value: p50 and p95.
5. Hangup to debited balance: 10 s of calls at 200 calls/s, 2 s each (a GBP rate for +44),
   with the CDR import running as in production (a 1-second tick queueing
   edge_cdrs_import_all, as beat does; import and rating on the worker): from each call's
   end on the edge (its CDR's ended_at) to its rating and ledger debit seen committed
   (polled every 100 ms): p50 and p95. The calls of the steps before are imported first.
6. The calls-per-second steps again on the bare config: the ratio is the cost of our rules.

Each step also prints the CPU time per call of Kamailio (all its processes) and of the node
database's backends it is connected to (auth_db's query per INVITE), read from /proc: on a
shared machine the rates fall with the load, the work per call does not. `--ablate` runs the
edge once more per part of its request route taken out (the channel count, the number checks,
the media rules, the CDR writes, pike) at half the highest clean rate, so the cost of each part
is a figure.

The last line sums it up:
`RESULT edge: cps=N failed=N setup_p95_ms=N max_concurrent=N cap=300 refused=N provision_p95_s=X
debit_p95_s=X bare_cps=N` (`failed`: the failed calls at the rate reported). It exits non-zero
when the channel cap was exceeded or a phase could not run. Targets on 2 cores: ≥ 500 calls/s
with no failures, caps never exceeded, provisioning p95 ≤ 2 s, debit p95 ≤ 5 s.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import http.client
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SCENARIOS = ROOT / "tests" / "edge" / "scenarios"
BARE_CFG = ROOT / "benchmarks" / "kamailio-bare.cfg"
TARGET_CPS = 500
TARGET_PROVISION_P95 = 2.0
TARGET_DEBIT_P95 = 5.0
CAP = 300  # the burst profile's channels (the most a profile may have)
NUMBER = "+442079460123"  # a paid call: the profiles have credit
COMPANIES = 100
CREDIT = Decimal("1000.0000")
CHANNELS = 10  # every other profile's channels
RATES = "100,200,300,400,500,600,700,800,1000,1200"
QUICK_RATES = "100,300,600"
# Pike bans a source above EDGE_PIKE_DENSITY requests per 2 s; here every PBX is SIPp on
# 127.0.0.1, so that limit is lifted (pike still counts every request: its cost stays in).
PIKE_DENSITY = 1_000_000
NODE_DATABASE = "edge"
# Hangup to debited balance is measured at 200 calls/s (the target's rate), with calls long
# enough to cost something (the deck's first increment is a minute).
DEBIT_RATE = 200
DEBIT_HOLD_MS = 2000


def log(message: str) -> None:
    print(message, flush=True)


def free_port() -> int:
    """A port free on loopback for both UDP and TCP."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port = int(udp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no free port")


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(p) - 1]


def cpu_seconds(pgid: int, database: str) -> tuple[float, float]:
    """CPU time used so far by the live processes of a process group (a Kamailio and its
    children: this script starts each in a group of its own) and by the PostgreSQL backends
    connected to `database` (Kamailio's own connections: auth_db's query per INVITE, the CDR
    inserts), from /proc: each process's schedstat, in nanoseconds (its stat's clock ticks are
    10 ms, too coarse for a few hundred calls over 15 processes). Work done per call: a busy
    machine slows it down but does not inflate it."""
    proxy = backends = 0
    backend = f"postgres: postgres {database} ".encode()
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            text = (proc / "stat").read_text()
            pgrp = int(text[text.rindex(")") + 2 :].split()[2])  # field 5
            if pgrp == pgid:
                proxy += int((proc / "schedstat").read_text().split()[0])
            elif (proc / "cmdline").read_bytes().startswith(backend):
                backends += int((proc / "schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile
    return proxy / 1e9, backends / 1e9


# --- Processes -------------------------------------------------------------------------


class Processes:
    """Every process the benchmark starts, each in a session (process group) of its own, so a
    Ctrl-C reaches only this script, whose `finally` stops them: by pid, their group with them
    (Kamailio's and the worker's children), newest first."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.running: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(
        self, name: str, argv: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None
    ) -> subprocess.Popen[bytes]:
        out: IO[bytes]
        with (self.work / f"{name}.log").open("ab") as out:
            proc = subprocess.Popen(
                argv, cwd=cwd or self.work, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        self.running.append((name, proc))
        return proc

    def log_tail(self, name: str, chars: int = 3000) -> str:
        path = self.work / f"{name}.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""

    def stop(self, proc: subprocess.Popen[bytes], *, timeout: float = 10) -> None:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        self.running = [(n, p) for n, p in self.running if p is not proc]

    def stop_all(self) -> None:
        for _, proc in reversed(list(self.running)):
            self.stop(proc)


def _deadline_hit(signum: int, frame: Any) -> None:
    raise TimeoutError("the benchmark's time limit was reached")


def _terminated(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


# --- Services: PostgreSQL databases, Redis, Django, Kamailio, the worker --------------------


def _create_database(url: str, name: str) -> str:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return url.rsplit("/", 1)[0] + f"/{name}"


def start_redis(procs: Processes) -> str:
    import redis

    port = free_port()
    argv = ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"]
    proc = procs.start("redis", [*argv, "--daemonize", "no", "--dir", str(procs.work)])
    client = redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=1)
    deadline = time.monotonic() + 15
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"redis-server exited:\n{procs.log_tail('redis')}")
        with contextlib.suppress(redis.exceptions.ConnectionError):
            if int(client.info("server")["process_id"]) != proc.pid:
                raise RuntimeError(f"127.0.0.1:{port} is served by another Redis")
            return f"redis://127.0.0.1:{port}/0"
        if time.monotonic() > deadline:
            raise RuntimeError("redis-server did not start")
        time.sleep(0.1)


def app_env(database_url: str, redis_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "SECRET_KEY": os.environ.get("SECRET_KEY", "benchmark-only-" + "x" * 40),
        "DJANGO_SETTINGS_MODULE": "skypemanager.settings",
        "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
        "ALLOWED_HOSTS": "testserver",
        "SECURE_SSL_REDIRECT": "false",
        # Only what this script asks for is synced (the bulk setup marks thousands of profiles).
        "EDGE_SYNC_ENABLED": "false",
        "API_RATE_LIMIT": "100000/minute",
    }


def django_setup(env: dict[str, str]) -> None:
    os.environ.update(env)
    # The API calls run through the middleware, whose static files (never served here) are not built.
    warnings.filterwarnings("ignore", message="No directory at", category=UserWarning)
    import django

    django.setup()


def start_worker(procs: Processes, env: dict[str, str], concurrency: int) -> subprocess.Popen[bytes]:
    from skypemanager.celery import app

    argv = [sys.executable, "-m", "celery", "-A", "skypemanager", "worker", "--loglevel=WARNING"]
    argv += [f"--concurrency={concurrency}", "--without-gossip", "--without-mingle", "--without-heartbeat"]
    proc = procs.start("worker", argv, env={**env, "EDGE_SYNC_ENABLED": "true"}, cwd=ROOT)
    deadline = time.monotonic() + 60
    while not app.control.ping(timeout=0.5):
        if proc.poll() is not None:
            raise RuntimeError(f"the Celery worker exited:\n{procs.log_tail('worker')}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"the Celery worker did not answer within 60 s:\n{procs.log_tail('worker')}")
    return proc


def wait_rpc(procs: Processes, proc: subprocess.Popen[bytes], name: str, rpc_url: str) -> None:
    from apps.edge import clients

    deadline = time.monotonic() + 20
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"kamailio exited ({proc.returncode}):\n{procs.log_tail(name)}")
        try:
            clients.rpc(rpc_url, "core.uptime")
            return
        # While it starts, a connection may also get a garbled answer (http.client's errors).
        except (clients.EdgeNodeError, http.client.HTTPException):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def start_edge(procs: Processes, node: Any) -> subprocess.Popen[bytes]:
    """The node's Kamailio as `edge_run` starts it (kamailio_command), pike's limit lifted."""
    from apps.edge import services

    rundir = procs.work / "edge-run"
    rundir.mkdir(exist_ok=True)
    argv = services.kamailio_command(node, runtime_dir=str(rundir), extra_defines=[f"EDGE_PIKE_DENSITY={PIKE_DENSITY}"])
    proc = procs.start("kamailio-edge", argv)
    wait_rpc(procs, proc, "kamailio-edge", node.rpc_url)
    return proc


def start_bare(procs: Processes, node: Any, sip_port: int, carrier_port: int) -> subprocess.Popen[bytes]:
    from django.conf import settings

    from apps.edge import clients

    rundir = procs.work / "bare-run"
    rundir.mkdir(exist_ok=True)
    defines = [
        f'BARE_DB_URL="{clients.kamailio_db_url(node.database_url)}"',
        "BARE_SIP_IP=127.0.0.1",
        f"BARE_SIP_PORT={sip_port}",
        f'BARE_DOMAIN="{settings.SIP_DOMAIN}"',
        f'BARE_CARRIER="sip:127.0.0.1:{carrier_port}"',
    ]
    argv = ["kamailio", "-f", str(BARE_CFG), "-DD", "-E", "-m", "512", "-M", "16", "-Y", str(rundir)]
    for define in defines:
        argv += ["-A", define]
    proc = procs.start("kamailio-bare", argv)
    # No RPC in the bare config: it is up when it answers an OPTIONS (405, in-dialog rules aside).
    deadline = time.monotonic() + 20
    probe = (
        b"OPTIONS sip:probe@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;rport;branch=z9hG4bKprobe\r\n"
        b"From: <sip:probe@127.0.0.1>;tag=1\r\nTo: <sip:probe@127.0.0.1>\r\nCall-ID: probe\r\nCSeq: 1 OPTIONS\r\n"
        b"Max-Forwards: 5\r\nContent-Length: 0\r\n\r\n"
    )
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(0.2)
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"kamailio (bare) exited ({proc.returncode}):\n{procs.log_tail('kamailio-bare')}")
            sock.sendto(probe, ("127.0.0.1", sip_port))
            with contextlib.suppress(TimeoutError):
                if sock.recv(4096).startswith(b"SIP/2.0"):
                    return proc
            if time.monotonic() > deadline:
                raise RuntimeError("kamailio (bare) did not answer within 20 s")


# --- Data --------------------------------------------------------------------------------


@dataclass
class Data:
    burst_id: int
    burst_user: str
    burst_password: str
    users: list[tuple[int, str, str]]  # (profile id, username, password) of the call profiles
    owner_key: dict[int, str] = field(default_factory=dict)  # company id → API key


def build_profiles(count: int) -> Data:
    """`count` digest profiles (the first with 300 channels, for the burst) in 100 companies,
    with credit. Rows are written in bulk, as benchmarks/rating.py writes its 10,000; the HA1s
    come from the service's own digest_ha1, and the credit is one ledger posting per company
    through the ledger's bulk posting (balanced, balances updated with their entries)."""
    from django.conf import settings
    from django.db import transaction
    from django.utils import timezone

    from apps.accounts.services import api_key_create
    from apps.billing.ledger.services import Posting, ledger_post_many, platform_account, profile_accounts
    from apps.billing.models import LedgerAccount, LedgerTransaction
    from apps.companies.models import Company, Membership, Role
    from apps.core.actor import Actor
    from apps.sip_profiles.models import SipProfile
    from apps.sip_profiles.services import digest_ha1
    from tests.factories import UserFactory
    from tests.rating.factories import RateFactory

    realm = settings.SIP_DOMAIN
    companies = Company.objects.bulk_create(
        [Company(name=f"Bench {n} Ltd", country="GB", currency="GBP") for n in range(min(COMPANIES, count))]
    )
    owner = UserFactory()  # one owner of every company (a password hash costs ~0.5 s)
    Membership.objects.bulk_create([Membership(company=c, user=owner, role=Role.OWNER) for c in companies])
    keys = {
        company.pk: api_key_create(actor=Actor(user=owner), company=company, name="bench", role=Role.ADMIN)[1]
        for company in companies
    }
    now = timezone.now()
    rows, passwords = [], []
    for n in range(count):
        username = str(3_000_000_000 + n)
        password = f"bench-{n:05d}-secret"
        md5, sha256 = digest_ha1(username=username, realm=realm, password=password)
        rows.append(
            SipProfile(
                company=companies[n % len(companies)],
                name=f"PBX {n}",
                auth_method=SipProfile.AuthMethod.REGISTRATION,
                sip_username=username,
                sip_realm=realm,
                ha1_md5=md5,
                ha1_sha256=sha256,
                password_set_at=now,
                channels=CAP if n == 0 else CHANNELS,
                tls_required=False,
                srtp_required=False,
                renewal_day=min(now.day, 28),
            )
        )
        passwords.append(password)
    made = SipProfile.objects.bulk_create(rows, batch_size=2000)
    accounts = profile_accounts([p.pk for p in made])
    revenue = platform_account(LedgerAccount.Kind.REVENUE_CALLS, "GBP")
    by_company: dict[int, list[int]] = {}
    for profile in made:
        by_company.setdefault(profile.company_id, []).append(accounts[profile.pk])
    postings = [
        Posting(
            key=f"bench-credit:{company_id}",
            company_id=company_id,
            currency="GBP",
            description="Benchmark credit",
            legs=[*((account, CREDIT) for account in ids), (revenue.pk, -CREDIT * len(ids))],
        )
        for company_id, ids in by_company.items()
    ]
    with transaction.atomic():
        ledger_post_many(actor=Actor.system(), kind=LedgerTransaction.Kind.ADJUSTMENT, postings=postings)
    RateFactory(prefix="44", deck__currency="GBP")  # the calls' +44 20…: 0.01 GBP a minute
    users = [(p.pk, p.sip_username or "", pw) for p, pw in zip(made, passwords, strict=True)]
    return Data(
        burst_id=users[0][0], burst_user=users[0][1], burst_password=users[0][2], users=users[1:], owner_key=keys
    )


def provision_all(ids: list[int], node: Any, limit: float) -> tuple[float, set[int]]:
    """Queue the real sync task for every profile (what a change, or the reconciliation,
    queues) and wait until the worker has recorded each one synced on the node: (seconds, the
    ids synced). Past `limit` seconds the tasks still queued are dropped (purged)."""
    from apps.edge.models import EdgeProvisioning
    from apps.edge.tasks import edge_sync_profile_task
    from skypemanager.celery import app

    rows = EdgeProvisioning.objects.filter(node=node)
    started = time.perf_counter()
    for pid in ids:
        edge_sync_profile_task.delay(pid)
    last = time.monotonic()
    while True:
        done = rows.filter(state__in=["synced", "failed"]).count()
        if done >= len(ids):
            break
        if time.perf_counter() - started > limit:
            dropped = app.control.purge()
            log(f"  provisioning budget ({limit:.0f} s) used up: {dropped:,} queued syncs dropped")
            time.sleep(2)  # the syncs in progress finish
            break
        if time.monotonic() - last > 15:
            log(f"  … {done:,} of {len(ids):,} after {time.perf_counter() - started:.0f} s")
            last = time.monotonic()
        time.sleep(0.2)
    seconds = time.perf_counter() - started
    return seconds, set(rows.filter(state="synced").values_list("profile_id", flat=True))


def _bulk_state(ids: list[int]) -> dict[int, Any]:
    """The desired state (apps.edge.selectors.EdgeState) of the benchmark's profiles, for many
    at once: what profile_edge_state says of each, given what they all are here (digest, with
    credit, active, no caller ID, no routes). Checked against profile_edge_state itself on a
    sample before it is used (seed_in_bulk)."""
    from django.conf import settings

    from apps.edge.selectors import INT, STR, EdgeState, Subscriber
    from apps.sip_profiles.models import SipProfile

    states = {}
    rows = SipProfile.objects.filter(pk__in=ids).values_list(
        "pk", "sip_username", "sip_realm", "ha1_md5", "ha1_sha256", "channels", "tls_required", "srtp_required",
        "withhold_caller_id",
    )  # fmt: skip
    for pk, username, realm, md5, sha256, channels, tls, srtp, withhold in rows:
        flags = {"active": True, "out": True, "bundle": False, "tls": tls, "srtp": srtp, "withhold": withhold}
        attrs = {f"{pk}:{name}": (INT, "1" if on else "0") for name, on in flags.items()}
        attrs[f"{pk}:channels"] = (INT, str(channels))
        attrs[f"{pk}:user"] = (STR, username)
        subscriber = Subscriber(username=username, domain=realm or settings.SIP_DOMAIN, ha1=md5, ha1_sha256=sha256)
        states[pk] = EdgeState(profile_id=pk, subscriber=subscriber, attrs=attrs)
    return states


def seed_in_bulk(node: Any, ids: list[int]) -> float:
    """The node's rows for the profiles the provisioning budget left unsynced, written with one
    COPY per table and one htable.reload, so the calls still run against every profile. The
    rows are the desired state the sync would write; it is checked first against the sync's
    own selector (profile_edge_state) on 20 of them, and a difference stops the benchmark."""
    import psycopg

    from apps.edge import clients, selectors

    started = time.perf_counter()
    states = _bulk_state(ids)
    for pid in ids[:: max(1, len(ids) // 20)]:
        want = selectors.profile_edge_state(profile_id=pid)
        if (want.subscriber, want.attrs, want.addresses, want.routes) != (
            states[pid].subscriber, states[pid].attrs, frozenset(), frozenset()
        ):  # fmt: skip
            raise RuntimeError(f"the bulk rows of profile {pid} differ from the sync's: {want} != {states[pid]}")
    with psycopg.connect(node.database_url) as conn, conn.cursor() as cur:
        with cur.copy("COPY subscriber (username, domain, ha1, ha1b, ha1_sha256, profile_id) FROM STDIN") as copy:
            for state in states.values():
                sub = state.subscriber
                copy.write_row((sub.username, sub.domain, sub.ha1, "", sub.ha1_sha256, state.profile_id))
        with cur.copy("COPY sm_profile_attrs (profile_id, key_name, value_type, key_value) FROM STDIN") as copy:
            for state in states.values():
                for key, (vtype, value) in state.attrs.items():
                    copy.write_row((state.profile_id, key, vtype, value))
    clients.rpc(node.rpc_url, "htable.reload", "prof")
    return time.perf_counter() - started


def node_subscribers(node: Any) -> int:
    import psycopg

    with psycopg.connect(node.database_url) as conn:
        row = conn.execute("SELECT count(*) FROM subscriber").fetchone()
    return int(row[0]) if row else 0


# --- SIPp --------------------------------------------------------------------------------


def _edit(text: str, old: str, new: str, count: int = 1) -> str:
    if text.count(old) < count:
        raise RuntimeError(f"scenario text changed: {old!r} not found {count} time(s)")
    return text.replace(old, new, count)


def uac_scenario(work: Path, name: str, *, from_file: bool) -> Path:
    """The tests' PBX scenario, timing set-up (first INVITE to its 200 OK, SIPp's RTD 1) and,
    with `from_file`, answering the challenge with the credentials on the call's line of the
    injection file (field0: "[authentication username=… password=…]")."""
    text = (SCENARIOS / name).read_text()
    text = _edit(text, '<send retrans="500">', '<send retrans="500" start_rtd="1">')
    answered = '<recv response="200" rrs="true" next="answered" />'
    text = _edit(text, answered, answered.replace(" />", ' rtd="1" />'))
    text = re.sub(r'<recv response="200" rrs="true" />', '<recv response="200" rrs="true" rtd="1" />', text, count=1)
    if from_file:
        # SIPp 3.6 takes no [fieldN] inside [authentication …]; a field holding the whole
        # keyword is parsed when injected (its E_Message_Injection case).
        text = _edit(text, "[authentication]", "[field0]")
    path = work / f"bench-{name}"
    path.write_text(text)
    return path


@dataclass
class SippRun:
    returncode: int
    stats: dict[str, str]
    rtts: list[tuple[float, float]]
    elapsed: float
    peak_current: int = 0


def _stat_rows(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with path.open() as f:
        return list(csv.DictReader(f, delimiter=";"))


def _rtts(work: Path, scenario: Path, pid: int) -> list[tuple[float, float]]:
    """(when, set-up time), in ms, of each call SIPp timed (its -trace_rtt file)."""
    values = []
    for path in work.glob(f"{scenario.stem}_{pid}_rtt.csv"):
        with path.open() as f:
            for row in csv.DictReader(f, delimiter=";"):
                with contextlib.suppress(KeyError, ValueError):
                    values.append((float(row["Date_ms"]), float(row["response_time_ms"])))
    return values


def uas_scenario(work: Path) -> Path:
    """The tests' carrier, answering at once: no 180 and no ring time (the tests pause 50 ms
    between them), so the set-up time measured is the edge's, not the carrier's."""
    path = work / "bench-carrier_uas.xml"
    if not path.exists():
        text = (SCENARIOS / "carrier_uas.xml").read_text()
        ringing = re.compile(r"\s*<send>\s*<!\[CDATA\[\s*SIP/2\.0 180 Ringing.*?</send>\s*<pause[^>]*/>", re.DOTALL)
        text, found = ringing.subn("", text)
        if found != 1:
            raise RuntimeError("scenario text changed: the carrier's 180 and pause not found")
        path.write_text(text)
    return path


def sipp_uas(procs: Processes, work: Path, port: int, calls: int, timeout: int, tag: str) -> tuple[Any, Path]:
    stats = work / f"uas-{tag}.csv"
    argv = ["sipp", "-sf", str(uas_scenario(work)), "-i", "127.0.0.1", "-p", str(port)]
    argv += ["-m", str(calls), "-timeout", f"{timeout}s", "-nostdin", "-trace_stat", "-stf", str(stats), "-fd", "1"]
    argv += ["-max_recv_loops", "10000", "-trace_err", "-error_file", str(work / f"uas-{tag}.err")]
    proc = procs.start(f"sipp-uas-{tag}", argv)
    time.sleep(0.3)  # bound before the first INVITE arrives
    if proc.poll() is not None:
        raise RuntimeError(f"the carrier's SIPp exited:\n{procs.log_tail(f'sipp-uas-{tag}')}")
    return proc, stats


def sipp_uac(
    procs: Processes,
    work: Path,
    *,
    target: str,
    scenario: Path,
    rate: int,
    calls: int,
    hold_ms: int,
    limit: int,
    timeout: int,
    tag: str,
    inject: Path | None = None,
    user: tuple[str, str] | None = None,
) -> SippRun:
    stats = work / f"uac-{tag}.csv"
    argv = ["sipp", target, "-sf", str(scenario), "-s", NUMBER, "-i", "127.0.0.1", "-p", str(free_port())]
    argv += ["-r", str(rate), "-m", str(calls), "-l", str(limit), "-d", str(hold_ms)]
    argv += ["-timeout", f"{timeout}s", "-nostdin", "-trace_stat", "-stf", str(stats), "-fd", "1"]
    argv += ["-trace_rtt", "-rtt_freq", "1", "-max_recv_loops", "10000"]
    argv += ["-trace_err", "-error_file", str(work / f"uac-{tag}.err")]
    if inject is not None:
        argv += ["-inf", str(inject)]
    if user is not None:
        argv += ["-au", user[0], "-ap", user[1]]
    started = time.perf_counter()
    proc = procs.start(f"sipp-uac-{tag}", argv)
    try:
        proc.wait(timeout=timeout + 15)
    except subprocess.TimeoutExpired:
        pass
    finally:
        procs.stop(proc)
    elapsed = time.perf_counter() - started
    rows = _stat_rows(stats)
    return SippRun(
        returncode=proc.returncode,
        stats=rows[-1] if rows else {},
        rtts=_rtts(work, scenario, proc.pid),
        elapsed=elapsed,
    )


def _int(stats: dict[str, str], key: str) -> int:
    try:
        return int(stats.get(key, "0") or 0)
    except ValueError:
        return 0


@dataclass
class Step:
    rate: int
    calls: int
    ok: int
    failed: int
    achieved: float
    setup_p95_ms: float
    carrier_answered: int
    cpu_ms_per_call: float  # the proxy's CPU (all its processes) over the calls of the step
    db_cpu_ms_per_call: float  # the node database's (the proxy's connections)

    def clean(self) -> bool:
        return self.failed == 0 and self.ok == self.calls


def cps_steps(
    procs: Processes,
    work: Path,
    *,
    label: str,
    target: str,
    server: subprocess.Popen[bytes],
    database: str,
    carrier_port: int,
    inject: Path,
    rates: list[int],
    seconds_per_step: float,
    hold_ms: int,
    deadline: float,
) -> list[Step]:
    """Step the call rate up; stop after the first step with failures (or out of time)."""
    scenario = uac_scenario(work, "invite_uac.xml", from_file=True)
    steps: list[Step] = []
    for rate in rates:
        calls = max(50, int(rate * seconds_per_step))
        budget = int(calls / rate + hold_ms / 1000 + 20)
        if time.monotonic() + budget > deadline:
            log(f"  {label}: out of time before {rate} calls/s")
            break
        tag = f"{label}-{rate}"
        uas, uas_stats = sipp_uas(procs, work, carrier_port, calls, budget + 5, tag)
        cpu_before = cpu_seconds(server.pid, database)
        try:
            run = sipp_uac(
                procs, work, target=target, scenario=scenario, rate=rate, calls=calls, hold_ms=hold_ms,
                limit=max(200, rate * 4), timeout=budget, tag=tag, inject=inject,
            )  # fmt: skip
            with contextlib.suppress(subprocess.TimeoutExpired):
                uas.wait(timeout=5)
        finally:
            procs.stop(uas)
        cpu, db_cpu = (
            after - before for after, before in zip(cpu_seconds(server.pid, database), cpu_before, strict=True)
        )
        uas_rows = _stat_rows(uas_stats)
        ok, failed = _int(run.stats, "SuccessfulCall(C)"), _int(run.stats, "FailedCall(C)")
        # Calls set up per second, from the first set-up to the last: what the edge kept up with
        # (SIPp falls behind a rate it cannot keep).
        times = sorted(when for when, _ in run.rtts)
        achieved = (
            (len(times) - 1) / ((times[-1] - times[0]) / 1000) if len(times) > 1 and times[-1] > times[0] else 0.0
        )
        setups = [ms for _, ms in run.rtts]
        step = Step(
            rate=rate,
            calls=calls,
            ok=ok,
            failed=failed + max(0, calls - ok - failed),
            achieved=achieved,
            setup_p95_ms=percentile(setups, 95),
            carrier_answered=_int(uas_rows[-1], "SuccessfulCall(C)") if uas_rows else 0,
            cpu_ms_per_call=1000 * cpu / max(ok + failed, 1),
            db_cpu_ms_per_call=1000 * db_cpu / max(ok + failed, 1),
        )
        steps.append(step)
        log(
            f"  {label}: {rate:>5} calls/s asked, {achieved:7.1f} set up/s: {ok:,}/{calls:,} ok, "
            f"{step.failed} failed, set-up p50 {percentile(setups, 50):.1f} ms p95 {step.setup_p95_ms:.1f} ms"
            f" (carrier answered {step.carrier_answered:,}); CPU per call: Kamailio {step.cpu_ms_per_call:.2f} ms,"
            f" its database {step.db_cpu_ms_per_call:.2f} ms"
        )
        if not step.clean():
            break
    return steps


# Parts of the edge's request route taken out one at a time (--ablate): what each costs per call.
ABLATIONS: list[tuple[str, re.Pattern[str], str]] = [
    (
        # The dialog itself stays: the in-dialog rule refuses a BYE of no known dialog.
        "the channel count (lock, profile size, set_dlg_profile)",
        re.compile(
            r"(route\[CHANNELS\] \{.*?dlg_manage\(\);\n)\tlock\(.*?set_dlg_profile\([^\n]*\n\tunlock\([^\n]*\n", re.S
        ),
        r"\1",
    ),
    ("the number checks (E.164, blocked list)", re.compile(r"\troute\(NUMBER\);\n(\troute\(MONEY\);)"), r"\1"),
    (
        "the media rules (SDP checks, codec filter)",
        re.compile(r"(route\[CARRIER\] \{.*?)\troute\(MEDIA\);\n", re.S),
        r"\1",
    ),
    # The row is still built; only its INSERT (queued to the async workers) is not sent.
    (
        "the CDR writes (the INSERT)",
        re.compile(r"(route\[CDR_WRITE\] \{\n)\tsql_query_async\([^\n]*\n"),
        r"\1\treturn;\n",
    ),
    # Never true ($var(cg) is the carriers' group): the rest of the condition stays as it is.
    ("pike's flood check", re.compile(r"!pike_check_req\(\)"), r"$var(cg) == 0"),
]


def ablate(
    procs: Processes, work: Path, node: Any, *, rate: int, reference: Step | None, **steps: Any
) -> list[tuple[str, Step]]:
    """The edge's config with one part taken out, each at one rate: Kamailio's CPU per call
    against the whole config's at that rate (the edge must be stopped: same ports)."""
    from apps.edge import services

    cfg = (ROOT / "deploy" / "kamailio" / "kamailio.cfg").read_text()
    results = []
    for n, (name, pattern, replacement) in enumerate(ABLATIONS):
        text, found = pattern.subn(replacement, cfg, count=1)
        if found != 1:
            log(f"  without {name}: skipped (the config no longer has it where expected)")
            continue
        path = work / f"kamailio-without-{n}.cfg"
        path.write_text(text)
        rundir = work / f"without-{n}-run"
        rundir.mkdir(exist_ok=True)
        argv = services.kamailio_command(
            node, runtime_dir=str(rundir), extra_defines=[f"EDGE_PIKE_DENSITY={PIKE_DENSITY}"]
        )
        argv[argv.index("-f") + 1] = str(path)
        server = procs.start(f"kamailio-without-{n}", argv)
        try:
            wait_rpc(procs, server, f"kamailio-without-{n}", node.rpc_url)
            done = cps_steps(procs, work, label=f"without {n + 1}", server=server, rates=[rate], **steps)
        finally:
            procs.stop(server)
        if not done:
            break  # out of time
        step = done[0]
        results.append((name, step))
        delta = f" ({step.cpu_ms_per_call - reference.cpu_ms_per_call:+.2f} ms)" if reference else ""
        log(f"  without {name}: Kamailio CPU {step.cpu_ms_per_call:.2f} ms/call{delta}, {step.ok}/{step.calls} ok")
    return results


def best(steps: list[Step]) -> Step | None:
    clean = [s for s in steps if s.clean()]
    return max(clean, key=lambda s: s.achieved) if clean else None


# --- Phases -------------------------------------------------------------------------------


def burst(procs: Processes, work: Path, data: Data, node: Any, carrier_port: int, hold_ms: int) -> tuple[int, int]:
    """Twice the cap of calls at the 300-channel profile, overlapping: (most at once, refused)."""
    from apps.edge import clients

    calls = 2 * CAP
    peak = [0]
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            with contextlib.suppress(clients.EdgeNodeError):
                result = clients.rpc(node.rpc_url, "dlg.profile_get_size", "chan", str(data.burst_id))
                n = int(result.get("count", 0)) if isinstance(result, dict) else int(result or 0)
                peak[0] = max(peak[0], n)
            time.sleep(0.02)

    scenario = uac_scenario(work, "burst_uac.xml", from_file=False)
    uas, uas_stats = sipp_uas(procs, work, carrier_port, CAP, 60, "burst")
    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    try:
        run = sipp_uac(
            procs, work, target=f"127.0.0.1:{node.sip_port}", scenario=scenario, rate=400, calls=calls,
            hold_ms=hold_ms, limit=calls, timeout=40, tag="burst", user=(data.burst_user, data.burst_password),
        )  # fmt: skip
        with contextlib.suppress(subprocess.TimeoutExpired):
            uas.wait(timeout=5)
    finally:
        stop.set()
        poller.join(timeout=5)
        procs.stop(uas)
    # Every call ended (BYE): the profile's channels are free again.
    left = -1
    until = time.monotonic() + 10
    while left != 0 and time.monotonic() < until:
        with contextlib.suppress(clients.EdgeNodeError):
            result = clients.rpc(node.rpc_url, "dlg.profile_get_size", "chan", str(data.burst_id))
            left = int(result.get("count", 0)) if isinstance(result, dict) else int(result or 0)
        time.sleep(0.1)
    if left != 0:
        log(f"  WRONG: {left} channels still counted on the burst profile 10 s after its calls ended")
    carrier_peak = max((_int(row, "CurrentCall") for row in _stat_rows(uas_stats)), default=0)
    ok, refused = _int(run.stats, "SuccessfulCall(C)"), _int(run.stats, "FailedCall(C)")
    log(
        f"  burst: {calls} calls at a {CAP}-channel profile: {ok} carried, {refused} refused; most at once "
        f"{peak[0]} on the node's dialog profile, {carrier_peak} at the carrier (SIPp, sampled each second)"
    )
    return max(peak[0], carrier_peak), refused


def provisioning_latency(data: Data, node: Any, samples: int) -> list[float]:
    """A profile's channels changed through the REST API (service, on-commit task, the real
    worker); the node's htable polled over JSON-RPC until it holds the new value."""
    from django.conf import settings
    from rest_framework.test import APIClient

    from apps.edge import clients
    from apps.sip_profiles.models import SipProfile

    settings.EDGE_SYNC_ENABLED = True  # the listener queues the sync on commit, as in production
    latencies = []
    chosen = [pid for pid, _, _ in data.users[:: max(1, len(data.users) // max(samples, 1))]][:samples]
    for pid in chosen:
        profile = SipProfile.objects.select_related("company").get(pk=pid)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {data.owner_key[profile.company_id]}")
        want = profile.channels - 1  # a decrease: no charge to pay
        started = time.perf_counter()
        response = client.patch(f"/api/v1/sip-profiles/{profile.public_id}/", {"channels": want}, format="json")
        if response.status_code != 200:
            raise RuntimeError(f"PATCH channels: {response.status_code} {response.content[:300]!r}")
        while True:
            value = None
            with contextlib.suppress(clients.EdgeNodeError):
                value = clients.rpc(node.rpc_url, "htable.get", "prof", f"{pid}:channels")
            if _htable_value(value) == want:
                break
            if time.perf_counter() - started > 15:
                raise RuntimeError(f"profile {pid}'s channels not on the node after 15 s (last: {value!r})")
            time.sleep(0.005)
        latencies.append(time.perf_counter() - started)
        time.sleep(0.1)  # one change at a time, as a person makes them
    return latencies


def _htable_value(result: Any) -> int | None:
    """htable.get's answer, {"item": {"name": …, "value": 9}} in 5.6."""
    item = result.get("item", result) if isinstance(result, dict) else None
    try:
        return int(item["value"]) if isinstance(item, dict) else None
    except (KeyError, TypeError, ValueError):
        return None


def cdr_writes_on() -> bool:
    cfg = (ROOT / "deploy" / "kamailio" / "kamailio.cfg").read_text()
    return "INSERT INTO sm_cdrs" in cfg


def debit_latency(
    procs: Processes,
    work: Path,
    node: Any,
    *,
    rate: int,
    seconds: float,
    hold_ms: int,
    deadline: float,
    steps: dict[str, Any],
) -> tuple[list[float], int]:
    """Hangup to debited balance: calls at `rate` through the edge with the CDR import running
    as in production (a 1-second tick queueing edge_cdrs_import_all, as beat does; the import
    and its rating on the worker). Each call's latency is from its end on the edge (the CDR's
    ended_at, written by Kamailio) to the moment its rating, with its ledger debit, is seen
    committed (polled every 100 ms). Returns (latencies in seconds, answered calls)."""
    import psycopg
    from django.utils import timezone

    from apps.cdrs.models import Cdr, CdrRating
    from apps.edge.models import EdgeCdrWatermark
    from apps.edge.tasks import edge_cdrs_import_all

    stop = threading.Event()

    def tick() -> None:
        while not stop.wait(1.0):
            edge_cdrs_import_all.apply_async(expires=5)

    ticker = threading.Thread(target=tick, daemon=True)
    ticker.start()
    try:
        # The calls of the steps before are imported first, so they do not queue ahead of these.
        with psycopg.connect(node.database_url) as conn:
            row = conn.execute("SELECT coalesce(max(id), 0) FROM sm_cdrs").fetchone()
        backlog = int(row[0]) if row else 0
        until = min(time.monotonic() + 90, deadline)
        while time.monotonic() < until:
            mark = EdgeCdrWatermark.objects.filter(node=node).values_list("last_id", flat=True).first() or 0
            if mark >= backlog:
                break
            time.sleep(0.5)
        else:
            log(f"  the import did not catch up with the {backlog:,} records before the debit run")
        started = timezone.now()
        seen: dict[int, float] = {}
        ended: dict[int, float] = {}
        polling = threading.Event()

        def poll() -> None:
            from django.db import connection

            while not polling.is_set():
                now = time.time()
                rows = CdrRating.objects.filter(
                    cdr__node=node.name, cdr__ended_at__gte=started, ledger_transaction__isnull=False
                ).values_list("cdr_id", "cdr__ended_at")
                for cdr_id, ended_at in rows:
                    if cdr_id not in seen:
                        seen[cdr_id] = now
                        ended[cdr_id] = ended_at.timestamp()
                time.sleep(0.1)
            connection.close()

        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        try:
            done = cps_steps(
                procs, work, label="debit", rates=[rate], deadline=deadline,
                **{**steps, "seconds_per_step": seconds, "hold_ms": hold_ms},
            )  # fmt: skip
            answered = done[0].carrier_answered if done else 0
            # Then wait (bounded) until every call the carrier answered is seen debited.
            until = min(time.monotonic() + 30, deadline)
            while len(seen) < answered and time.monotonic() < until:
                time.sleep(0.2)
        finally:
            polling.set()
            poller.join(timeout=5)
    finally:
        stop.set()
        ticker.join(timeout=5)
    imported = Cdr.objects.filter(node=node.name, ended_at__gte=started)
    answered = imported.filter(answered_at__isnull=False).count()
    log(f"  {imported.count():,} CDRs of these calls imported ({answered:,} answered), {len(seen):,} seen debited")
    return [seen[c] - ended[c] for c in seen], answered


# --- The run --------------------------------------------------------------------------------


@dataclass
class Options:
    profiles: int
    rates: list[int]
    seconds_per_step: float
    hold_ms: int
    burst_hold_ms: int
    samples: int
    time_limit: int
    workers: int
    ablate: bool
    debit_seconds: float


def run(opts: Options, base_url: str, procs: Processes) -> int:
    t0 = time.monotonic()
    deadline = t0 + opts.time_limit
    work = procs.work
    node_url = _create_database(base_url.rsplit("/", 1)[0] + "/postgres", NODE_DATABASE)
    redis_url = start_redis(procs)
    env = app_env(base_url, redis_url)
    django_setup(env)
    from django.core.management import call_command

    started = time.perf_counter()
    call_command("migrate", verbosity=0)
    log(f"portal database migrated in {time.perf_counter() - started:.1f} s")

    from apps.edge import services
    from apps.edge.models import Carrier, EdgeNode

    carrier_port = free_port()
    node = EdgeNode.objects.create(
        name="bench-edge", role=EdgeNode.Role.PRIMARY, sip_host="127.0.0.1", sip_port=free_port(),
        rpc_url=f"http://127.0.0.1:{free_port()}/RPC", database_url=node_url, public_host="sip1.bench.invalid",
    )  # fmt: skip
    Carrier.objects.create(name="bench carrier", address="127.0.0.1", port=carrier_port)
    services.edge_db_init(node=node)
    started = time.perf_counter()
    data = build_profiles(opts.profiles)
    log(f"{opts.profiles:,} profiles with credit written in bulk in {time.perf_counter() - started:.1f} s")

    edge = start_edge(procs, node)
    errors = [r.error for r in services.edge_sync_global() if r.error]
    if errors:
        raise RuntimeError(f"the shared lists were not pushed: {errors}")
    start_worker(procs, env, opts.workers)
    ids = [data.burst_id, *(pid for pid, _, _ in data.users)]
    # What is left after it: about 5 minutes for the calls, the burst, the samples and the debits
    # (and 2 more for --ablate's runs).
    reserve = 300 + (120 if opts.ablate else 0)
    seconds, synced = provision_all(ids, node, limit=max(60.0, deadline - time.monotonic() - reserve))
    on_node = node_subscribers(node)
    log(
        f"provisioning: {len(synced):,} of {len(ids):,} profiles synced to the node by the real task on "
        f"{opts.workers} worker process(es) in {seconds:.1f} s ({len(synced) / seconds:,.1f} profiles/s); "
        f"{on_node:,} digest users in the node's subscriber table"
    )
    if on_node != len(synced) or data.burst_id not in synced or len(synced) < 2:
        log("WRONG RESULT: the node does not hold the profiles recorded as synced")
        return 1
    if len(synced) < len(ids):
        rest = [pid for pid in ids if pid not in synced]
        log(
            f"NOTE: at {len(synced) / seconds:,.1f} profiles/s, {len(ids):,} would take about "
            f"{len(ids) / max(len(synced), 1) * seconds:,.0f} s; the other {len(rest):,} are written in bulk:"
        )
        bulk_seconds = seed_in_bulk(node, rest)
        on_node = node_subscribers(node)
        log(
            f"  {len(rest):,} profiles' rows copied to the node (checked against the sync's selector on a sample) "
            f"in {bulk_seconds:.1f} s; {on_node:,} digest users on the node"
        )
        if on_node != len(ids):
            log("WRONG RESULT: the node does not hold every profile")
            return 1

    inject = work / "users.csv"
    with inject.open("w") as f:
        f.write("SEQUENTIAL\n")
        # Shuffled (fixed seed): every step reaches profiles synced by the task and, if any, written in bulk.
        users = random.Random(11).sample(data.users, len(data.users))
        f.writelines(f"[authentication username={user} password={password}]\n" for _, user, password in users)
    cdrs = cdr_writes_on()
    log(f"CDR writes in deploy/kamailio/kamailio.cfg: {'on' if cdrs else 'not there yet (issue 11 item 1)'}")

    log("calls per second through the edge (digest auth, channel check, dialogs, CDRs as configured):")
    step_args: dict[str, Any] = {
        "carrier_port": carrier_port, "inject": inject, "seconds_per_step": opts.seconds_per_step,
        "hold_ms": opts.hold_ms, "database": NODE_DATABASE,
    }  # fmt: skip
    edge_steps = cps_steps(
        procs, work, label="edge", target=f"127.0.0.1:{node.sip_port}", server=edge, rates=opts.rates,
        deadline=deadline - 90, **step_args,
    )  # fmt: skip
    max_concurrent, refused = burst(procs, work, data, node, carrier_port, opts.burst_hold_ms)
    latencies = provisioning_latency(data, node, opts.samples)
    log(
        f"provisioning latency (API change to enforced on the node), {len(latencies)} changes: "
        f"p50 {percentile(latencies, 50):.3f} s, p95 {percentile(latencies, 95):.3f} s, "
        f"max {max(latencies):.3f} s"
    )
    debit: list[float] = []
    if cdrs:
        log(f"hangup to debited balance, {DEBIT_RATE} calls/s of {DEBIT_HOLD_MS / 1000:.0f} s, the CDR import running:")
        debit, answered = debit_latency(
            procs, work, node, rate=DEBIT_RATE, seconds=opts.debit_seconds, hold_ms=DEBIT_HOLD_MS,
            deadline=deadline - 60, steps={**step_args, "target": f"127.0.0.1:{node.sip_port}", "server": edge},
        )  # fmt: skip
        log(
            f"  {len(debit):,} of {answered:,} answered calls seen debited: p50 {percentile(debit, 50):.2f} s, "
            f"p95 {percentile(debit, 95):.2f} s, max {max(debit, default=float('nan')):.2f} s"
        )
        if len(debit) < answered:
            log(f"  NOTE: {answered - len(debit):,} answered calls were not seen debited within 30 s of the last one")
    else:
        log("hangup to debited balance: not measured: no CDR writes in kamailio.cfg")

    procs.stop(edge)
    top = best(edge_steps)
    if opts.ablate:
        # Half the highest clean rate: CPU per call is compared where no run is near overload
        # (retransmissions would add work of their own).
        rate = max(opts.rates[0], (top.rate // 2) // 100 * 100) if top else opts.rates[0]
        log(f"the edge with one part of its request route taken out, {rate} calls/s each:")
        reference = next((s for s in edge_steps if s.rate == rate), None)
        ablate(
            procs, work, node, rate=rate, reference=reference, target=f"127.0.0.1:{node.sip_port}",
            deadline=deadline - 60, **step_args,
        )  # fmt: skip
    bare_port = free_port()
    bare = start_bare(procs, node, bare_port, carrier_port)
    log("calls per second through the bare digest-auth config (benchmarks/kamailio-bare.cfg):")
    bare_steps = cps_steps(
        procs, work, label="bare", target=f"127.0.0.1:{bare_port}", server=bare, rates=opts.rates,
        deadline=deadline - 10, **step_args,
    )  # fmt: skip

    bare_top = best(bare_steps)
    cps = round(top.achieved) if top else 0
    bare_cps = round(bare_top.achieved) if bare_top else 0
    # The failed calls at the rate reported (0 unless no step was clean: then the first step's).
    failed = 0 if top else (edge_steps[0].failed if edge_steps else 0)
    load = os.getloadavg()
    log(f"load average now {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores")
    if bare_cps:
        log(f"edge / bare: {cps / bare_cps:.2f} (the edge's rules cost {100 * (1 - cps / bare_cps):.0f}% of the rate)")
    both = [(e, b) for e in edge_steps for b in bare_steps if e.rate == b.rate and e.clean() and b.clean()]
    if both:
        e, b = both[-1]
        log(
            f"CPU per call at {e.rate}/s: Kamailio edge {e.cpu_ms_per_call:.2f} ms, bare {b.cpu_ms_per_call:.2f} ms "
            f"({e.cpu_ms_per_call / max(b.cpu_ms_per_call, 0.001):.1f}×); their database (auth_db's query, and the "
            f"edge's CDR insert) edge {e.db_cpu_ms_per_call:.2f} ms, bare {b.db_cpu_ms_per_call:.2f} ms"
        )
    if top and top.rate == opts.rates[-1] and top.clean():
        log(f"note: the highest step ({opts.rates[-1]}/s) had no failure: the edge may go higher (--rates)")
    ok_cap = max_concurrent <= CAP
    log(
        f"targets: ≥ {TARGET_CPS} calls/s with no failure {'met' if cps >= TARGET_CPS else 'MISSED'}; "
        f"cap {CAP} {'never exceeded' if ok_cap else 'EXCEEDED'}; provisioning p95 ≤ {TARGET_PROVISION_P95} s "
        f"{'met' if percentile(latencies, 95) <= TARGET_PROVISION_P95 else 'MISSED'}; debit p95 ≤ {TARGET_DEBIT_P95} s "
        f"{'met' if percentile(debit, 95) <= TARGET_DEBIT_P95 else 'MISSED' if debit else 'not measured'}"
    )
    log(f"total {time.monotonic() - t0:.0f} s")
    log(
        f"RESULT edge: cps={cps} failed={failed} "
        f"setup_p95_ms={round(top.setup_p95_ms) if top else 0} max_concurrent={max_concurrent} cap={CAP} "
        f"refused={refused} provision_p95_s={percentile(latencies, 95):.2f} "
        f"debit_p95_s={percentile(debit, 95):.2f} bare_cps={bare_cps}"
    )
    return 0 if ok_cap else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="1,000 profiles, 3 steps, 5 samples")
    parser.add_argument("--profiles", type=int, help="profiles provisioned (default 10,000)")
    parser.add_argument("--rates", help="calls per second of each step, comma-separated")
    parser.add_argument("--seconds-per-step", type=float, help="calls per step = rate × this (default 5)")
    parser.add_argument("--hold-ms", type=int, default=500, help="how long each call is held")
    parser.add_argument("--samples", type=int, help="provisioning changes timed (default 20)")
    parser.add_argument("--workers", type=int, default=4, help="Celery worker processes (default 4)")
    parser.add_argument("--time-limit", type=int, default=600, help="seconds; the run is stopped after it")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs, SIPp traces)")
    parser.add_argument(
        "--ablate", action="store_true", help="also run the edge without each part of its rules (CPU per call)"
    )
    args = parser.parse_args()
    opts = Options(
        profiles=args.profiles or (1_000 if args.quick else 10_000),
        rates=[int(r) for r in (args.rates or (QUICK_RATES if args.quick else RATES)).split(",")],
        seconds_per_step=args.seconds_per_step or (2.0 if args.quick else 5.0),
        hold_ms=args.hold_ms,
        burst_hold_ms=3000,
        samples=args.samples or (5 if args.quick else 20),
        time_limit=args.time_limit,
        workers=args.workers,
        ablate=args.ablate,
        debit_seconds=3.0 if args.quick else 10.0,
    )
    if opts.profiles < 2:
        parser.error("--profiles: at least 2 (one is the burst's)")
    missing = [p for p in ("kamailio", "sipp", "redis-server") if not shutil.which(p)]
    if missing:
        raise SystemExit(f"not installed: {', '.join(missing)} (make test installs them)")
    from benchmarks._pgtemp import throwaway_postgres

    # Ctrl-C stops it even when started from a shell that ignores SIGINT in background jobs.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _terminated)
    signal.signal(signal.SIGALRM, _deadline_hit)
    signal.alarm(opts.time_limit + 30)  # a hard stop, past the phases' own deadline
    work = Path(tempfile.mkdtemp(prefix="bench-edge-"))
    procs = Processes(work)
    try:
        with throwaway_postgres() as url:
            try:
                return run(opts, url, procs)
            except (KeyboardInterrupt, SystemExit, TimeoutError) as exc:
                log(f"stopped ({type(exc).__name__} {exc}): stopping every process it started")
                raise
            finally:
                procs.stop_all()
    finally:
        signal.alarm(0)
        if args.keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
