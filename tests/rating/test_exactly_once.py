"""Every CDR is rated and charged exactly once: when the job runs twice, when two jobs run at
once, and when a real Celery worker is killed with SIGKILL in the middle of a batch and started
again. In each case the totals equal a clean run, computed independently by
tests.rating.factories.reference_rating."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from apps.billing.ledger.services import platform_account
from apps.billing.models import LedgerAccount, LedgerEntry, LedgerTransaction
from apps.bundles.models import BundlePeriod
from apps.cdrs.models import Cdr, CdrRating, PendingCdr
from apps.core.locks import job_lock
from apps.rating.engine import rate_pending
from apps.rating.tasks import rate_cdrs
from skypemanager.celery import app as celery_app
from tests.factories import CompanyFactory, member
from tests.helpers.races import run_concurrently
from tests.rating.factories import (
    TEST_NODE,
    Call,
    Outcome,
    RefDeck,
    RefPeriod,
    RefRate,
    blocked_ranges,
    copy_calls,
    make_deck,
    make_period,
    queue_calls,
    reference_rating,
)
from tests.sip_profiles.factories import digest_profile

ROOT = Path(__file__).resolve().parents[2]
JAN_1 = datetime(2026, 1, 1, tzinfo=UTC)
FEB_1 = datetime(2026, 2, 1, tzinfo=UTC)
MAR_1 = datetime(2026, 3, 1, tzinfo=UTC)
CALLEES = ("+12125550100", "+13125550100", "+18005550100", "+14165550100", "+442079460000", "+447911123456", "+8190")


def _rates(markup: str) -> tuple[RefRate, ...]:
    extra = Decimal(markup)
    return (
        RefRate("1", "US", "landline", Decimal("0.004000") + extra, Decimal("0.010000"), 30, 6),
        RefRate("1212", "US", "mobile", Decimal("0.006000") + extra, Decimal("0"), 60, 60),
        RefRate("1416", "CA", "landline", Decimal("0.007000") + extra, Decimal("0.015000"), 1, 1),
        RefRate("1800", "US", "toll_free", Decimal("0"), Decimal("0"), 60, 60),
        RefRate("44", "GB", "landline", Decimal("0.010000") + extra, Decimal("0"), 60, 1),
        RefRate("447", "GB", "mobile", Decimal("0.050000") + extra, Decimal("0.015000"), 30, 6),
    )


@dataclass
class World:
    """Two companies (GBP and USD) with two profiles each, a deck per currency (the USD one
    in two versions), and the bundle periods of some profiles."""

    parties: list[tuple[int, int, str]]  # (profile id, company id, currency)
    decks: list[RefDeck]
    periods: list[RefPeriod]

    def calls(
        self, count: int, *, first_edge_id: int = 1, seed: int = 5, parties: list[int] | None = None
    ) -> list[Call]:
        """`count` answered and unanswered, inbound and outbound calls (mostly outbound) of a
        fixed pseudo-random mix, in January and February."""
        chance = random.Random(seed)
        which = parties if parties is not None else list(range(len(self.parties)))
        made = []
        for n in range(count):
            profile_id, company_id, currency = self.parties[chance.choice(which)]
            made.append(
                Call(
                    edge_id=first_edge_id + n,
                    profile_id=profile_id,
                    company_id=company_id,
                    currency=currency,
                    callee=chance.choice(CALLEES),
                    started_at=JAN_1 + timedelta(seconds=chance.randrange(59 * 86_400)),
                    billable=chance.choice((0, 1, 59, 60, 61, chance.randrange(3600))),
                    direction="inbound" if chance.random() < 0.05 else "outbound",
                    answered=chance.random() > 0.05,
                )
            )
        return made


def make_world(*, minutes: tuple[int, int] = (5000, 5000)) -> World:
    parties = []
    for currency in ("USD", "GBP"):
        company = CompanyFactory(currency=currency, name=f"{currency} Calls Ltd")
        owner = member(company)
        for n in range(2):
            profile, _ = digest_profile(company, owner, name=f"{currency} PBX {n}")
            parties.append((profile.pk, company.pk, currency))
    decks = [
        RefDeck("USD", datetime(2025, 12, 1, tzinfo=UTC), _rates("0")),
        RefDeck("USD", datetime(2026, 1, 20, tzinfo=UTC), _rates("0.001")),
        RefDeck("GBP", datetime(2025, 12, 1, tzinfo=UTC), _rates("0.002")),
    ]
    for deck in decks:
        make_deck(deck)
    # The first profile of each company has bundles in both months.
    periods = []
    for index in (0, 2):
        profile_id, company_id, _ = parties[index]
        for (start, end), included in zip(((JAN_1, FEB_1), (FEB_1, MAR_1)), minutes, strict=True):
            periods.append(RefPeriod(profile_id, start, end, included=included, used=0))
            make_period(periods[-1], company_id)
    return World(parties, decks, periods)


@dataclass
class Totals:
    ratings: dict[int, tuple[str, Decimal, int, int]]
    balances: dict[int, Decimal]
    revenue: dict[str, Decimal]
    minutes: dict[int, int]


def expected_totals(world: World, calls: list[Call]) -> Totals:
    """A clean run, computed by the reference (on copies of the periods)."""
    periods = [RefPeriod(p.profile_id, p.start, p.end, p.included, p.used, p.suspended, p.pk) for p in world.periods]
    outcomes: dict[int, Outcome] = reference_rating(calls, decks=world.decks, periods=periods, blocked=blocked_ranges())
    balances: dict[int, Decimal] = defaultdict(Decimal)
    revenue: dict[str, Decimal] = defaultdict(Decimal)
    for call in calls:
        balances[call.profile_id] -= outcomes[call.edge_id].cost
        revenue[call.currency] += outcomes[call.edge_id].cost
    return Totals(
        ratings={k: (o.status, o.cost, o.bundle_minutes, o.bundle_seconds) for k, o in outcomes.items()},
        balances={pk: balances[pk] for pk, _, _ in world.parties},
        revenue=dict(revenue),
        minutes={p.pk: p.used for p in periods if p.pk is not None},
    )


def actual_totals(world: World) -> Totals:
    accounts = dict(
        LedgerAccount.objects.filter(kind=LedgerAccount.Kind.PROFILE_BALANCE).values_list("sip_profile_id", "balance")
    )
    revenue = dict(
        LedgerAccount.objects.filter(kind=LedgerAccount.Kind.REVENUE_CALLS, company__isnull=True).values_list(
            "currency", "balance"
        )
    )
    return Totals(
        ratings={
            edge_id: (status, cost, minutes, seconds)
            for edge_id, status, cost, minutes, seconds in CdrRating.objects.filter(cdr__node=TEST_NODE).values_list(
                "cdr__edge_id", "status", "cost", "bundle_minutes", "bundle_seconds"
            )
        },
        balances={pk: accounts.get(pk, Decimal(0)) for pk, _, _ in world.parties},
        revenue={currency: amount for currency, amount in revenue.items() if amount},
        minutes=dict(BundlePeriod.objects.values_list("pk", "minutes_used")),
    )


def assert_charged_exactly_once(world: World, calls: list[Call]) -> None:
    """Every CDR has one rating and left the queue; ratings, balances, revenue and minutes are
    a clean run's; every balance is the sum of its ledger entries."""
    assert Cdr.objects.count() == CdrRating.objects.count() == len(calls)
    assert not PendingCdr.objects.exists()
    expected, actual = expected_totals(world, calls), actual_totals(world)
    assert actual.ratings == expected.ratings
    assert actual.balances == expected.balances
    assert actual.revenue == {c: t for c, t in expected.revenue.items() if t}
    assert actual.minutes == expected.minutes
    for account_id, balance in LedgerAccount.objects.values_list("pk", "balance"):
        entries = LedgerEntry.objects.filter(account_id=account_id).values_list("amount", flat=True)
        assert sum(entries, Decimal(0)) == balance
    # The call debits in the ledger are the ratings' costs, no more.
    call_debits = LedgerEntry.objects.filter(
        transaction__kind=LedgerTransaction.Kind.CALL, account__kind=LedgerAccount.Kind.PROFILE_BALANCE
    ).values_list("amount", flat=True)
    assert -sum(call_debits, Decimal(0)) == sum(r[1] for r in expected.ratings.values())


# --- (a) The job run twice -----------------------------------------------------------------------


@pytest.mark.django_db
def test_running_the_job_again_rates_nothing_and_changes_no_total() -> None:
    world = make_world(minutes=(40, 30))  # bundles that run out
    calls = world.calls(300)
    queue_calls(calls)

    with job_lock("rate-cdrs") as held:  # another run holds the job's lock: this one does nothing
        assert held
        assert rate_cdrs.delay().get() is None
    assert PendingCdr.objects.count() == 300
    first = rate_cdrs.delay().get()  # the scheduled task (run in-process in the tests)
    totals = actual_totals(world)
    entries = LedgerEntry.objects.count()
    again = rate_cdrs.delay().get()
    once_more = rate_pending(batch_size=7)

    assert first is not None
    assert (first["cdrs"], first["more"]) == (300, False)
    assert again == {"cdrs": 0, "batches": 0, "charged": 0, "errors": 0, "more": False, "seconds": {}}
    assert once_more.cdrs == 0
    assert actual_totals(world) == totals
    assert LedgerEntry.objects.count() == entries
    assert_charged_exactly_once(world, calls)


# --- (b) Two jobs at once ------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_jobs_at_once_rate_every_cdr_exactly_once() -> None:
    # Enough bundle minutes that no call's outcome depends on which job rated it first (see
    # test_two_jobs_at_once_spend_bundle_minutes_in_cdr_order for when they run out).
    world = make_world()
    calls = world.calls(2000)
    queue_calls(calls)

    runs = run_concurrently(lambda: rate_pending(batch_size=25), lambda: rate_pending(batch_size=25))

    assert sum(run.cdrs for run in runs) == len(calls)  # no CDR rated by both
    assert all(run.cdrs > 0 for run in runs), "the two jobs did not overlap: the test proved nothing"
    assert_charged_exactly_once(world, calls)
    # The runs' own totals add up to the ledger's.
    revenue: dict[str, Decimal] = defaultdict(Decimal)
    for run in runs:
        for currency, amount in run.total.items():
            revenue[currency] += amount
    assert dict(revenue) == actual_totals(world).revenue


def _wait_for_lock_wait(table: str, *, timeout: float = 30) -> int:
    """The pid of the backend of this database that waits for a row lock on `table`."""
    deadline = time.monotonic() + timeout
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
                " AND wait_event_type = 'Lock' AND query LIKE %s",
                [f"%{table}%FOR UPDATE%"],
            )
            row = cursor.fetchone()
            if row:
                return int(row[0])
            time.sleep(0.02)
        cursor.execute(
            "SELECT pid, state, wait_event_type, wait_event, left(query, 300) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        sessions = cursor.fetchall()
    raise AssertionError(f"no backend waited for a lock on {table} within {timeout} s; sessions: {sessions}")


def _wait_for_advisory_lock_wait(*, timeout: float = 30) -> None:
    """Until a backend of this database waits for the rating engine's batch lock."""
    deadline = time.monotonic() + timeout
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute(
                "SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
                " AND wait_event_type = 'Lock' AND wait_event = 'advisory'"
            )
            if cursor.fetchone():
                return
            time.sleep(0.02)
    raise AssertionError(f"no backend waited for the rating batch lock within {timeout} s")


def _database_url() -> str:
    db = connection.settings_dict
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgresql://{db['USER']}{password}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


class RowLock:
    """A row held FOR UPDATE by another database connection until release()."""

    def __init__(self, table: str, pk: int) -> None:
        self._connection = psycopg.connect(_database_url())
        self._connection.execute(f"SELECT 1 FROM {table} WHERE id = %s FOR UPDATE", [pk])  # noqa: S608 (our table)

    def release(self) -> None:
        if not self._connection.closed:
            self._connection.rollback()
            self._connection.close()


class Job(threading.Thread):
    """rate_pending in a thread of its own (so on a database connection of its own)."""

    def __init__(self, batch_size: int) -> None:
        super().__init__()
        self.batch_size = batch_size
        self.result: Any = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.result = rate_pending(batch_size=self.batch_size)
        except BaseException as error:
            self.error = error
        finally:
            connection.close()


@pytest.mark.django_db(transaction=True)
def test_two_jobs_at_once_spend_bundle_minutes_in_cdr_order() -> None:
    company = CompanyFactory(currency="USD")
    profile, _ = digest_profile(company, member(company))
    deck = RefDeck(
        "USD", datetime(2025, 12, 1, tzinfo=UTC), (RefRate("1", "US", "landline", Decimal("0.6"), Decimal(0), 1, 1),)
    )
    make_deck(deck)
    january = RefPeriod(profile.pk, JAN_1, FEB_1, included=10, used=0)
    february = RefPeriod(profile.pk, FEB_1, MAR_1, included=5, used=0)
    for period in (january, february):
        make_period(period, company.pk)
    party = {"profile_id": profile.pk, "company_id": company.pk, "currency": "USD", "callee": "+12125550100"}
    calls = [
        Call(edge_id=1, started_at=datetime(2026, 1, 15, tzinfo=UTC), billable=60, **party),
        Call(edge_id=2, started_at=datetime(2026, 2, 10, tzinfo=UTC), billable=150, **party),  # 3 minutes
        Call(edge_id=3, started_at=datetime(2026, 2, 11, tzinfo=UTC), billable=200, **party),  # 4 minutes
    ]
    queue_calls(calls)
    expected = reference_rating(calls, decks=[deck], periods=[january, february], blocked=[])

    # The first job claims calls 1 and 2 and waits for January's period (held here a moment,
    # as any slow step would). The second must not claim call 3 and take February's minutes
    # before: it waits for the first batch to commit.
    assert january.pk is not None
    lock = RowLock(BundlePeriod._meta.db_table, january.pk)
    try:
        first, second = Job(batch_size=2), Job(batch_size=2)
        first.start()
        _wait_for_lock_wait(BundlePeriod._meta.db_table)
        second.start()
        _wait_for_advisory_lock_wait()
        assert not CdrRating.objects.exists()
    finally:
        lock.release()
    first.join(timeout=30)
    second.join(timeout=30)
    assert first.error is None
    assert second.error is None

    got = {
        edge_id: (status, cost, minutes, seconds)
        for edge_id, status, cost, minutes, seconds in CdrRating.objects.values_list(
            "cdr__edge_id", "status", "cost", "bundle_minutes", "bundle_seconds"
        )
    }
    # As a clean run: call 2 from the bundle (3 minutes), call 3 gets the last 2 and pays 80 s
    # (0.80), not call 3 taking 4 minutes first and call 2 paying 90 s (0.90).
    assert got == {k: (o.status, o.cost, o.bundle_minutes, o.bundle_seconds) for k, o in expected.items()}


# --- (c) A real worker killed in the middle of a batch -------------------------------------------


@pytest.fixture
def celery_queue() -> Iterator[str]:
    """Tasks go through Redis to a queue of the test's own (no other worker listens to it)."""
    assert settings.CELERY_BROKER_URL.startswith("redis://"), "make test provides REDIS_URL"
    assert connection.vendor == "postgresql", "make test provides DATABASE_URL"
    queue = f"test-{uuid.uuid4().hex[:12]}"
    saved = {
        "task_always_eager": celery_app.conf.task_always_eager,
        "task_default_queue": celery_app.conf.task_default_queue,
    }
    celery_app.conf.update(task_always_eager=False, task_default_queue=queue)
    try:
        yield queue
    finally:
        celery_app.conf.update(saved)


# The worker's batches (RATING_BATCH_SIZE): small enough to load quickly, large enough that
# the kill lands with a whole committed batch behind and a claimed one in progress.
WORKER_BATCH_SIZE = 20_000


def _start_worker(queue: str, log: Path) -> subprocess.Popen[bytes]:
    """A worker process (solo pool: the task runs in this very process) on the test database."""
    with log.open("wb") as output:
        return subprocess.Popen(  # noqa: S603 - our own worker
            [
                sys.executable, "-m", "celery", "-A", "skypemanager", "worker", "-Q", queue, "--pool=solo",
                "--without-mingle", "--without-gossip", "--without-heartbeat", "--loglevel=INFO",
            ],
            cwd=ROOT,
            env={
                **os.environ,
                "DATABASE_URL": _database_url(),
                "PYTHONUNBUFFERED": "1",
                "RATING_BATCH_SIZE": str(WORKER_BATCH_SIZE),
            },
            stdout=output,
            stderr=subprocess.STDOUT,
        )  # fmt: skip


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait(condition: Callable[[], bool], what: str, *, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.05)


def _backend_gone(pid: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid])
        return cursor.fetchone() is None


@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_in_the_middle_of_a_batch_and_restarted_charges_every_cdr_once(
    celery_queue: str, tmp_path: Path
) -> None:

    world = make_world()
    # The task rates WORKER_BATCH_SIZE CDRs a batch: the first batch is USD calls only, the second
    # GBP calls only, so holding the GBP calls revenue account stops the second batch inside
    # its transaction (at the ledger's FOR UPDATE) after the first has committed.
    calls = world.calls(WORKER_BATCH_SIZE, parties=[0, 1]) + world.calls(
        4000, first_edge_id=WORKER_BATCH_SIZE + 1, seed=6, parties=[2, 3]
    )
    assert copy_calls(calls) == len(calls)
    revenue_gbp = platform_account(LedgerAccount.Kind.REVENUE_CALLS, "GBP")
    job_lock_key = "lock:rate-cdrs"

    lock = RowLock(LedgerAccount._meta.db_table, revenue_gbp.pk)
    workers = [_start_worker(celery_queue, tmp_path / "worker-1.log")]
    try:
        rate_cdrs.delay()
        backend = _wait_for_lock_wait(LedgerAccount._meta.db_table, timeout=120)
        # Mid-batch: the first batch committed, the second has claimed its CDRs (uncommitted).
        assert CdrRating.objects.count() == WORKER_BATCH_SIZE
        assert PendingCdr.objects.count() == 4000
        assert cache.get(job_lock_key) is not None

        os.kill(workers[0].pid, signal.SIGKILL)
        assert workers[0].wait(timeout=10) == -signal.SIGKILL
        lock.release()
        # The killed worker's database session notices it is alone once it has the lock, and
        # rolls back; until then it still holds the claimed CDRs (a new job would skip them).
        _wait(lambda: _backend_gone(backend), "the killed worker's session ended", timeout=30)
        assert CdrRating.objects.count() == WORKER_BATCH_SIZE
        assert PendingCdr.objects.count() == 4000
        assert LedgerTransaction.objects.filter(kind=LedgerTransaction.Kind.CALL).count() == 1

        # The killed run's lock survived it in Redis. In production its timeout frees it (and
        # the unacknowledged task is redelivered after the broker's visibility timeout, and beat
        # queues the job every minute); the test frees it at once instead of waiting minutes.
        assert cache.get(job_lock_key) is not None
        cache.delete(job_lock_key)
        workers.append(_start_worker(celery_queue, tmp_path / "worker-2.log"))
        rate_cdrs.delay()
        _wait(lambda: not PendingCdr.objects.exists(), "the restarted worker rated the queue", timeout=120)
        _wait(lambda: cache.get(job_lock_key) is None, "the restarted worker's run ended")
    except BaseException:
        for log in sorted(tmp_path.glob("worker-*.log")):
            print(log.name, log.read_text(errors="replace")[-5000:])  # noqa: T201 - shown when the test fails
        raise
    finally:
        lock.release()
        for worker in workers:
            _stop(worker)

    assert_charged_exactly_once(world, calls)
    # One ledger transaction per company and batch: the killed attempt left none.
    assert LedgerTransaction.objects.filter(kind=LedgerTransaction.Kind.CALL).count() == 2


# --- (d) The database's backstop ------------------------------------------------------------------


@pytest.mark.django_db
def test_a_cdr_can_never_be_rated_or_charged_twice() -> None:
    world = make_world()
    calls = world.calls(50)
    queue_calls(calls)
    rate_pending()
    rating = CdrRating.objects.filter(cost__gt=0).select_related("cdr").order_by("cdr_id").last()
    assert rating is not None

    with pytest.raises(IntegrityError), transaction.atomic():
        CdrRating.objects.create(
            cdr=rating.cdr,
            status=rating.status,
            cost=rating.cost,
            currency=rating.currency,
            rated_at=timezone.now(),
            ledger_transaction_id=rating.ledger_transaction_id,
        )

    # A rated CDR put back in the queue by mistake, before new calls: its batch fails as a whole
    # (nothing moves), the stale queue row is dropped and the new calls are rated all the same.
    totals, entries = actual_totals(world), LedgerEntry.objects.count()
    PendingCdr.objects.create(cdr=rating.cdr)
    assert rate_pending().cdrs == 0
    assert actual_totals(world) == totals
    assert LedgerEntry.objects.count() == entries
    assert not PendingCdr.objects.exists()
