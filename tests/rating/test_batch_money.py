"""The money of a rating batch, summed by pure functions (no database): what each company's
profiles owe, the bundle minutes used, and the ledger postings made from them."""

from __future__ import annotations

from decimal import Decimal

from apps.rating.engine import Call, Decision, Status, batch_money, batch_postings, rating_rows


def call(cdr: int, company: int, profile: int | None, currency: str = "GBP") -> Call:
    return Call(cdr, profile, company, currency, True, "+442079460958", 0, 60, True, "outbound", "")


def rated(cost: str, *, minutes: int = 0, period: int = 0) -> Decision:
    return Decision(Status.RATED, cost=Decimal(cost), prefix="44", bundle_minutes=minutes, period_id=period)


FREE = Decision(Status.ZERO_RATED, note="Inbound call")
ON_BUNDLE = Decision(Status.BUNDLE, prefix="1", bundle_seconds=120, bundle_minutes=2, period_id=7)

CALLS = [
    call(10, 1, 100),
    call(11, 2, 200, "USD"),
    call(12, 1, 101),
    call(13, 1, 100),
    call(14, 1, 100),
    call(15, 2, 200),
]
DECISIONS = [rated("0.1000"), rated("1.2345", minutes=3, period=8), rated("0.0100"), FREE, rated("0.2000"), ON_BUNDLE]


def test_each_company_owes_the_sum_of_its_profiles_calls_and_free_calls_are_not_charged() -> None:
    money = batch_money(CALLS, DECISIONS)

    assert [c.company_id for c in money.companies] == [1, 2]  # the order of their first charged call
    first, second = money.companies
    assert dict(first.by_profile) == {100: Decimal("0.3000"), 101: Decimal("0.0100")}
    assert (first.total, first.calls, first.currency) == (Decimal("0.3100"), 3, "GBP")
    assert (second.total, second.calls, second.currency) == (Decimal("1.2345"), 1, "USD")
    assert money.charged == 4
    assert money.profiles == {100, 101, 200}
    assert money.totals() == {"GBP": Decimal("0.3100"), "USD": Decimal("1.2345")}


def test_bundle_minutes_are_added_up_by_period_whether_or_not_the_call_cost_anything() -> None:
    money = batch_money(CALLS, DECISIONS)

    assert money.minutes == {8: 3, 7: 2}


def test_the_key_and_description_name_the_companys_first_charged_call_and_its_count() -> None:
    first, second = batch_money(CALLS, DECISIONS).companies

    assert (first.key, first.description) == ("calls:1:10", "Calls: 3 calls rated")
    assert (second.key, second.description) == ("calls:2:11", "Calls: 1 call rated")


def test_a_batch_of_free_calls_moves_no_money() -> None:
    money = batch_money([call(1, 1, 100), call(2, 1, None)], [FREE, FREE])

    assert (money.companies, money.minutes, money.charged) == ([], {}, 0)
    assert batch_postings(money, account_of={}, revenue_of={}) == []


def test_each_posting_debits_every_profile_in_order_and_credits_the_revenue_of_its_currency() -> None:
    money = batch_money(CALLS, DECISIONS)

    postings = batch_postings(money, account_of={100: 5100, 101: 5101, 200: 5200}, revenue_of={"GBP": 9, "USD": 19})

    assert [(p.key, p.company_id, p.currency, p.description) for p in postings] == [
        ("calls:1:10", 1, "GBP", "Calls: 3 calls rated"),
        ("calls:2:11", 2, "USD", "Calls: 1 call rated"),
    ]
    assert list(postings[0].legs) == [(5100, Decimal("-0.3000")), (5101, Decimal("-0.0100")), (9, Decimal("0.3100"))]
    assert list(postings[1].legs) == [(5200, Decimal("-1.2345")), (19, Decimal("1.2345"))]
    assert all(sum(amount for _, amount in p.legs) == 0 for p in postings)  # every posting balances


def test_only_charged_calls_name_the_ledger_transaction_in_their_rating_row() -> None:
    rows = rating_rows(CALLS[:4], DECISIONS[:4], txn_of={1: 71, 2: 72}, stamp="2026-01-01T00:00:00+00:00")

    assert [(row[0], row[1], row[2], row[-1]) for row in rows] == [
        (10, Status.RATED, Decimal("0.1000"), 71),
        (11, Status.RATED, Decimal("1.2345"), 72),
        (12, Status.RATED, Decimal("0.0100"), 71),
        (13, Status.ZERO_RATED, Decimal("0"), None),
    ]
