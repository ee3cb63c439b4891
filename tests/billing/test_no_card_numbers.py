"""The card-number scan that runs after every billing test (conftest.py) finds what it must."""

from __future__ import annotations

import pytest

from apps.companies.models import Notice
from tests.billing.card_numbers import card_numbers_in, card_numbers_in_database, luhn_valid


@pytest.mark.parametrize(
    "text",
    ["4242424242424242", "card 4242 4242 4242 4242 ok", "4000-0000-0000-0341", '{"n": "378282246310005"}'],
)
def test_card_numbers_are_found_however_they_are_written(text) -> None:
    assert card_numbers_in(text)


@pytest.mark.parametrize(
    "text",
    [
        "4242424242424241",  # fails the Luhn check
        "424242424242",  # too short
        "c9a1b2d3-1234-5678-9012-345678901234",  # a UUID
        "2026-11-26T04:32:10.123456+00:00",
        "+442079460958",
        "1795667511 | 2500",
        "ab75692629772330cd",  # digits inside a hex digest
        "75692629772330ab33",
    ],
)
def test_ids_dates_phone_numbers_and_amounts_are_not_card_numbers(text) -> None:
    assert not card_numbers_in(text)


def test_luhn() -> None:
    assert luhn_valid("79927398713")
    assert not luhn_valid("79927398710")


@pytest.mark.django_db
def test_the_database_scan_finds_a_card_number_in_any_text_column(company) -> None:
    notice = Notice.objects.create(company=company, kind="test", message="Paid with 4242 4242 4242 4242")

    found = card_numbers_in_database()
    notice.delete()

    assert found == {"companies_notice": ["4242424242424242"]}
