"""Stock and subscriptions for tests. Numbers are London 020 7 numbers, unique per test run.

Stock rows (OnlineNumberFactory) are plain factory_boy rows; subscriptions are service-driven:
`populate_numbers` buys through number_buy, so the charge and the audit row exist as in the product."""

from __future__ import annotations

import itertools
from decimal import Decimal
from typing import Any

import factory

from apps.companies.models import Company
from apps.core.actor import Actor
from apps.numbers.models import NumberSubscription, OnlineNumber
from apps.numbers.services import number_buy

_serial = itertools.count(1)


def london_number() -> str:
    return f"+44207{next(_serial):07d}"


class OnlineNumberFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = OnlineNumber

    number = factory.LazyFunction(london_number)
    country = "GB"
    area = "London"
    number_type = OnlineNumber.Type.GEOGRAPHIC
    price_3m_usd = Decimal("5.0000")
    price_12m_usd = Decimal("18.0000")
    price_3m_eur = Decimal("4.6000")
    price_12m_eur = Decimal("16.5000")
    price_3m_gbp = Decimal("4.0000")
    price_12m_gbp = Decimal("14.0000")


def populate_numbers(company: Company, owner: Any) -> NumberSubscription:
    """One number in stock, bought by the company through the service (for tenant isolation)."""
    stock = OnlineNumberFactory()
    return number_buy(actor=Actor(user=owner), company=company, number=str(stock.number), months=3, auto_renew=True)
