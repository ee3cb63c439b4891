"""The rating engine agrees with an independent reference computation on generated decks and calls.

Hypothesis draws rate decks (overlapping prefixes, increments, connection fees, versions taking
effect at different times, in three currencies), US minute bundle periods (small, so they run
out mid-call; some suspended), staff-blocked ranges, and calls around deck changes and period
boundaries. The engine rates them in batches of a drawn size; every CDR's rating, every
profile's balance, the calls revenue and every period's minutes must equal what
tests.rating.factories.reference_rating (naive code sharing nothing with the engine) decides.

Each example runs inside its own savepoint and is rolled back, so the examples share the
companies and profiles made once per test and nothing else. (The engine's own atomic blocks
become nested savepoints there; its after-commit auto-recharge check never runs, which
test_engine_rules covers.)
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import transaction
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from apps.billing.models import LedgerAccount, LedgerEntry
from apps.bundles.models import BundlePeriod
from apps.cdrs.models import CdrRating
from apps.rating.engine import rate_pending
from apps.rating.models import BlockedPrefix
from tests.factories import CompanyFactory, member
from tests.rating.factories import (
    TEST_NODE,
    Call,
    RefDeck,
    RefPeriod,
    RefRate,
    blocked_ranges,
    make_deck,
    make_period,
    queue_calls,
    reference_rating,
)
from tests.sip_profiles.factories import digest_profile

pytestmark = pytest.mark.django_db

CURRENCIES = ("GBP", "USD", "EUR")
PROFILES_PER_COMPANY = 2

# Prefixes that overlap (1 ⊂ 1212 ⊂ 12125, 44 ⊂ 447 ⊂ 4479 ⊂ 44791) with their country.
# +1900 and +449 are also seeded blocked ranges; +1416 is Canada, under the US's +1.
PREFIXES = {
    "1": "US",
    "1212": "US",
    "12125": "US",
    "1213": "US",
    "1416": "CA",
    "1800": "US",
    "1900": "US",
    "44": "GB",
    "4420": "GB",
    "447": "GB",
    "4479": "GB",
    "44791": "GB",
    "449": "GB",
    "49": "DE",
    "4915": "DE",
}
# What calls dial: weighted to the US, where bundles apply; "81" and "7" no deck covers.
DIALLED = (*sorted(PREFIXES), *("1", "1212", "12125", "1213") * 3, "81", "7")
# Repeats weight the draw towards the classes that are priced.
CLASSES = (
    "landline",
    "landline",
    "landline",
    "mobile",
    "mobile",
    "toll_free",
    "premium",
    "special_service",
    "emergency",
)
INCREMENTS = ((1, 1), (6, 6), (30, 6), (60, 60), (60, 1), (1, 60), (30, 30))
FEES = ("0", "0", "0.01", "0.015", "0.000050", "0.123456")

JAN_1 = datetime(2026, 1, 1, tzinfo=UTC)
FEB_1 = datetime(2026, 2, 1, tzinfo=UTC)
MAR_1 = datetime(2026, 3, 1, tzinfo=UTC)
# When deck versions take effect: long before the calls, mid-January, just after the period change.
EFFECTIVE = (
    datetime(2025, 12, 1, tzinfo=UTC),
    datetime(2026, 1, 20, 12, 0, tzinfo=UTC),
    datetime(2026, 2, 1, 0, 0, 30, tzinfo=UTC),
)
# Calls start around these moments: the deck changes and the bundle period boundary among them.
ANCHORS = (
    datetime(2026, 1, 10, 9, 0, tzinfo=UTC),
    EFFECTIVE[1],
    FEB_1,
    EFFECTIVE[2],
    datetime(2026, 2, 14, 10, 0, tzinfo=UTC),
)
# Call lengths at increment and minute edges (0 s, which costs nothing, is drawn less often).
SECONDS = (1, 5, 6, 7, 29, 30, 31, 59, 60, 61, 119, 120, 121, 179, 180, 181, 599, 600, 601)


@dataclass(frozen=True)
class Party:
    profile_id: int
    company_id: int
    currency: str


@dataclass
class Scenario:
    decks: list[RefDeck]
    periods: list[RefPeriod]
    # (profile index, callee, start, billable seconds, direction, answered)
    calls: list[tuple[int, str, datetime, int, str, bool]]
    extra_block: tuple[str, bool] | None
    batch_size: int


def _price(n: int) -> Decimal:
    return Decimal(n).scaleb(-6)


@st.composite
def rates(draw: st.DrawFn) -> tuple[RefRate, ...]:
    prefixes = draw(st.lists(st.sampled_from(sorted(PREFIXES)), min_size=1, max_size=9, unique=True))
    # Most decks price all of +1 as a US landline or mobile, as real ones do.
    covers_us = "1" not in prefixes and draw(st.integers(0, 4)) > 0
    if covers_us:
        prefixes.insert(0, "1")
    made = []
    for prefix in prefixes:
        first, following = draw(
            st.one_of(st.sampled_from(INCREMENTS), st.tuples(st.integers(1, 90), st.integers(1, 90)))
        )
        made.append(
            RefRate(
                prefix=prefix,
                country=PREFIXES[prefix],
                destination_class=draw(
                    st.sampled_from(("landline", "mobile") if covers_us and prefix == "1" else CLASSES)
                ),
                price_per_minute=_price(draw(st.integers(0, 250_000))),
                connection_fee=Decimal(draw(st.sampled_from(FEES))),
                first_increment=first,
                next_increment=following,
            )
        )
    return tuple(made)


@st.composite
def scenarios(draw: st.DrawFn, profiles: int) -> Scenario:
    decks = [
        RefDeck(currency=currency, effective_from=effective, rates=draw(rates()))
        for currency in CURRENCIES
        # Mostly a first version long before the calls, so fewer calls find no deck.
        for effective in draw(
            st.lists(st.sampled_from((EFFECTIVE[0], *EFFECTIVE)), min_size=1, max_size=2, unique=True)
        )
    ]
    periods = []
    for index in range(profiles):
        for start, end in ((JAN_1, FEB_1), (FEB_1, MAR_1)):
            if draw(st.integers(0, 3)):
                included = draw(st.integers(0, 12))
                periods.append(
                    RefPeriod(
                        profile_id=index,  # an index here; the profile's id once made
                        start=start,
                        end=end,
                        included=included,
                        used=draw(st.integers(0, included)),
                        suspended=draw(st.sampled_from((False, False, False, True))),
                    )
                )
    calls = draw(
        st.lists(
            st.tuples(
                st.integers(0, profiles - 1),
                st.tuples(st.sampled_from(DIALLED), st.text("0123456789", min_size=5, max_size=9)).map(
                    lambda p: f"+{p[0]}{p[1]}"
                ),
                st.tuples(st.sampled_from(ANCHORS), st.one_of(st.sampled_from((-1, 0, 1)), st.integers(-90, 90))).map(
                    lambda a: a[0] + timedelta(seconds=a[1])
                ),
                st.one_of(st.sampled_from(SECONDS), st.integers(1, 1200), st.integers(0, 1200)),
                st.sampled_from(("outbound",) * 5 + ("inbound",)),
                st.sampled_from((True,) * 6 + (False,)),
            ),
            min_size=3,
            max_size=30,
        )
    )
    extra_block = draw(st.sampled_from((None, None, ("+1213", False), ("+12125550100", True))))
    return Scenario(decks, periods, calls, extra_block, draw(st.integers(1, 30)))


@st.composite
def bundle_scenarios(draw: st.DrawFn, profiles: int) -> Scenario:
    """Many US calls of the USD company's two profiles around a renewal, small bundle periods
    and small batches: minutes running out mid-call, spent in CDR order across batches."""
    first, following = draw(st.sampled_from(INCREMENTS))
    rate = RefRate(
        prefix="1",
        country="US",
        destination_class=draw(st.sampled_from(("landline", "mobile"))),
        price_per_minute=_price(draw(st.integers(1, 250_000))),
        connection_fee=Decimal(draw(st.sampled_from(FEES))),
        first_increment=first,
        next_increment=following,
    )
    usd = [index for index in range(profiles) if CURRENCIES[index // PROFILES_PER_COMPANY] == "USD"]
    periods = []
    for index in usd:
        for start, end in ((JAN_1, FEB_1), (FEB_1, MAR_1)):
            included = draw(st.integers(0, 20))
            periods.append(RefPeriod(index, start, end, included=included, used=draw(st.integers(0, included))))
    calls = draw(
        st.lists(
            st.tuples(
                st.sampled_from(usd),
                st.text("0123456789", min_size=10, max_size=10).map(lambda digits: f"+1{digits}"),
                st.integers(-7200, 7200).map(lambda s: FEB_1 + timedelta(seconds=s)),
                st.integers(1, 400),
                st.just("outbound"),
                st.just(True),
            ),
            min_size=5,
            max_size=40,
        )
    )
    return Scenario([RefDeck("USD", EFFECTIVE[0], (rate,))], periods, calls, None, draw(st.integers(1, 10)))


@pytest.fixture
def parties(db: Any) -> list[Party]:
    """Two SIP profiles in each of a GBP, a USD and a EUR company (made once per test)."""
    made = []
    for currency in CURRENCIES:
        company = CompanyFactory(currency=currency, name=f"{currency} Calls Ltd")
        owner = member(company)
        for n in range(PROFILES_PER_COMPANY):
            profile, _ = digest_profile(company, owner, name=f"{currency} PBX {n}")
            made.append(Party(profile.pk, company.pk, currency))
    return made


def _profile_balances(ids: list[int]) -> dict[int, Decimal]:
    found = dict(
        LedgerAccount.objects.filter(kind=LedgerAccount.Kind.PROFILE_BALANCE, sip_profile_id__in=ids).values_list(
            "sip_profile_id", "balance"
        )
    )
    return {pk: found.get(pk, Decimal(0)) for pk in ids}


def _revenue() -> dict[str, Decimal]:
    found = dict(
        LedgerAccount.objects.filter(kind=LedgerAccount.Kind.REVENUE_CALLS, company__isnull=True).values_list(
            "currency", "balance"
        )
    )
    return {currency: found.get(currency, Decimal(0)) for currency in CURRENCIES}


def _check(parties: list[Party], scenario: Scenario) -> None:
    if scenario.extra_block:
        prefix, exact = scenario.extra_block
        BlockedPrefix.objects.create(country="US", prefix=prefix, exact=exact, kind="premium_rate", reason="Test")
    for deck in scenario.decks:
        make_deck(deck)
    periods = []
    for period in scenario.periods:
        party = parties[period.profile_id]
        period.profile_id = party.profile_id
        make_period(period, party.company_id)
        periods.append(period)
    calls = [
        Call(
            edge_id=n,
            profile_id=parties[index].profile_id,
            company_id=parties[index].company_id,
            currency=parties[index].currency,
            callee=callee,
            started_at=started_at,
            billable=billable,
            direction=direction,
            answered=answered,
        )
        for n, (index, callee, started_at, billable, direction, answered) in enumerate(scenario.calls, start=1)
    ]
    profile_ids = [p.profile_id for p in parties]
    balances_before, revenue_before = _profile_balances(profile_ids), _revenue()
    cdrs = queue_calls(calls)
    assert [c.pk for c in cdrs] == sorted(c.pk for c in cdrs)  # CDR ids follow the list: the reference's order

    expected = reference_rating(calls, decks=scenario.decks, periods=periods, blocked=blocked_ranges())
    run = rate_pending(batch_size=scenario.batch_size)

    # Every CDR rated once, as the reference decides.
    got = {
        r["cdr__edge_id"]: (r["status"], r["cost"], r["bundle_minutes"], r["bundle_seconds"], r["rate_prefix"])
        for r in CdrRating.objects.filter(cdr__node=TEST_NODE).values(
            "cdr__edge_id", "status", "cost", "bundle_minutes", "bundle_seconds", "rate_prefix"
        )
    }
    want = {k: (o.status, o.cost, o.bundle_minutes, o.bundle_seconds, o.prefix) for k, o in expected.items()}
    assert got == want
    assert (run.cdrs, run.charged, run.errors) == (
        len(calls),
        sum(o.cost > 0 for o in expected.values()),
        sum(o.status == "error" for o in expected.values()),
    )

    # The money: each profile debited its calls' costs, the revenue credited in each currency.
    debits: dict[int, Decimal] = defaultdict(Decimal)
    revenue: dict[str, Decimal] = defaultdict(Decimal)
    for call in calls:
        debits[call.profile_id] += expected[call.edge_id].cost
        revenue[call.currency] += expected[call.edge_id].cost
    balances_after, revenue_after = _profile_balances(profile_ids), _revenue()
    assert {pk: balances_after[pk] - balances_before[pk] for pk in profile_ids} == {
        pk: -debits[pk] for pk in profile_ids
    }
    assert {c: revenue_after[c] - revenue_before[c] for c in CURRENCIES} == {c: revenue[c] for c in CURRENCIES}
    assert run.total == {c: t for c, t in revenue.items() if t > 0}
    # A rating carries a ledger transaction exactly when it cost something (a CHECK constraint
    # too), and the call entries of the run are the ratings' costs, leg by leg.
    charged = CdrRating.objects.filter(cdr__node=TEST_NODE, cost__gt=0)
    assert not charged.filter(ledger_transaction__isnull=True).exists()
    entries = LedgerEntry.objects.filter(
        transaction_id__in=charged.values("ledger_transaction_id"), account__kind=LedgerAccount.Kind.PROFILE_BALANCE
    )
    assert sum((e.amount for e in entries), Decimal(0)) == -sum(revenue.values(), Decimal(0))

    # The bundle minutes.
    used = dict(BundlePeriod.objects.filter(pk__in=[p.pk for p in periods]).values_list("pk", "minutes_used"))
    assert used == {p.pk: p.used for p in periods}

    for outcome in expected.values():
        event(f"status {outcome.status}")
        if outcome.bundle_minutes and outcome.status == "rated":
            event("bundle minutes ran out mid-call")
    if any(c.started_at < FEB_1 <= c.started_at + timedelta(seconds=c.billable + 4) for c in calls):
        event("a call straddles the bundle period boundary")


@settings(
    max_examples=40,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_rating_matches_an_independent_reference_computation(parties: list[Party], data: st.DataObject) -> None:
    scenario = data.draw(scenarios(len(parties)))
    with transaction.atomic():
        _check(parties, scenario)
        # Undo the example (an assertion error rolls it back too): the next starts clean.
        transaction.set_rollback(True)


@settings(
    max_examples=25,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_bundle_minutes_are_spent_in_cdr_order_across_batches(parties: list[Party], data: st.DataObject) -> None:
    scenario = data.draw(bundle_scenarios(len(parties)))
    with transaction.atomic():
        _check(parties, scenario)
        transaction.set_rollback(True)
