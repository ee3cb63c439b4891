from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine

from apps.core.actor import Actor
from apps.core.exceptions import ApplicationError
from apps.rating.selectors import Blocked, RateMatch, deck_in_force, rate_for, rate_lookup
from apps.rating.services import rate_deck_retire
from tests.factories import UserFactory
from tests.helpers.queries import expect_queries
from tests.rating.factories import JAN_1, small_deck

pytestmark = pytest.mark.django_db


def lookup(number: str, *, currency: str = "GBP", region: str = "GB", at: datetime | None = None) -> RateMatch:
    found = rate_lookup(number=number, currency=currency, region=region, at=at)
    assert isinstance(found, RateMatch), found
    return found


@pytest.mark.parametrize(
    ("number", "prefix", "price"),
    [
        ("+12125550123", "1212", "0.004000"),  # 1212 beats 1
        ("+13125550123", "1", "0.005000"),  # only 1
        ("+442079460958", "4420", "0.008000"),  # 4420 beats 44
        ("+441612345678", "44", "0.010000"),
        ("+447400123456", "4474", "0.045000"),  # 4474 beats 447 beats 44
        ("+447911123456", "447", "0.050000"),
        ("+448001234567", "44800", "0.000000"),
        ("+4915123456789", "4915", "0.060000"),
        ("+493012345678", "49", "0.012000"),
    ],
)
def test_the_longest_matching_prefix_prices_the_number(number: str, prefix: str, price: str) -> None:
    small_deck()

    match = lookup(number)

    assert match.rate.prefix == prefix
    assert match.rate.price_per_minute == Decimal(price)


def test_a_national_number_is_read_in_the_company_country() -> None:
    small_deck()

    assert lookup("020 7946 0958", region="GB").rate.prefix == "4420"
    assert lookup("(212) 555-0123", region="US").number == "+12125550123"


def test_the_lookup_is_one_query_whatever_the_deck_size() -> None:
    small_deck()

    with expect_queries("the rate, with the deck in force as a subquery and the deck joined in"):
        rate = rate_for(digits="447400123456", currency="GBP")

    assert rate is not None
    assert rate.prefix == "4474"


def test_a_number_no_prefix_covers_and_a_currency_without_a_deck_are_errors() -> None:
    small_deck(rows=[("44", "United Kingdom", "GB", "landline", "0.01")])

    with pytest.raises(ApplicationError) as no_rate:
        lookup("+33123456789")
    with pytest.raises(ApplicationError) as no_deck:
        lookup("+442079460958", currency="EUR")

    assert (no_rate.value.code, no_rate.value.status_code) == ("no_rate", 404)
    assert "No GBP rate covers +33123456789" in no_rate.value.message
    assert "No EUR rate deck is in force" in no_deck.value.message


def test_decks_are_versioned_by_effective_date() -> None:
    small_deck(effective_from=JAN_1)
    small_deck(effective_from=JAN_1 + timedelta(days=31), markup=Decimal("1"))  # 1 February
    small_deck(effective_from=JAN_1 + timedelta(days=59), markup=Decimal("2"), status="draft")  # never activated
    small_deck(currency="EUR", effective_from=JAN_1 + timedelta(days=40), markup=Decimal("5"))

    with time_machine.travel(datetime(2026, 1, 31, 23, 59, 59, tzinfo=UTC), tick=False):
        january = lookup("+442079460958").rate.price_per_minute
    with time_machine.travel(datetime(2026, 2, 1, tzinfo=UTC), tick=False):
        february = lookup("+442079460958").rate.price_per_minute
    with time_machine.travel(datetime(2026, 6, 1, tzinfo=UTC), tick=False):
        june = lookup("+442079460958").rate.price_per_minute
    # A call is priced with the deck in force when it started, whatever the time now.
    started = lookup("+442079460958", at=datetime(2026, 1, 15, 12, tzinfo=UTC)).rate.price_per_minute

    assert (january, february, june, started) == (
        Decimal("0.008000"),
        Decimal("1.008000"),
        Decimal("1.008000"),
        Decimal("0.008000"),
    )
    with pytest.raises(ApplicationError):
        lookup("+442079460958", at=datetime(2025, 12, 31, 23, 59, tzinfo=UTC))


def test_retiring_a_deck_brings_back_the_previous_one() -> None:
    first = small_deck(effective_from=JAN_1)
    second = small_deck(effective_from=JAN_1 + timedelta(days=31), markup=Decimal("1"))
    at = JAN_1 + timedelta(days=40)
    assert deck_in_force(currency="GBP", at=at) == second

    rate_deck_retire(actor=Actor(user=UserFactory(is_staff=True)), deck=second)

    assert deck_in_force(currency="GBP", at=at) == first
    assert lookup("+442079460958", at=at).rate.price_per_minute == Decimal("0.008000")


def test_a_blocked_number_is_never_priced_even_when_a_deck_prefix_covers_it() -> None:
    # "1" covers +1 900 and "44" covers +44 9…, yet neither is priced.
    small_deck(rows=[("1", "North America", "US", "landline", "0.005"), ("44", "UK", "GB", "landline", "0.01")])

    for number, region in [("+19005550123", "US"), ("911", "US"), ("+449098790000", "GB"), ("999", "GB")]:
        found = rate_lookup(number=number, currency="GBP", region=region)
        assert isinstance(found, Blocked), number


def test_a_deck_row_of_a_never_priced_class_is_refused_not_priced() -> None:
    small_deck(
        rows=[
            ("44", "United Kingdom", "GB", "landline", "0.01"),
            ("443", "UK special services", "GB", "special_service", "0.50"),
        ]
    )

    found = rate_lookup(number="+443001234567", currency="GBP", region="GB")

    assert isinstance(found, Blocked)
    assert found.kind == "special_service"
    assert "UK special services" in found.reason
