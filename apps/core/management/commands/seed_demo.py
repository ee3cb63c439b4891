"""Demo data for the laptop default: one company with an owner who can sign in."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from allauth.account.models import EmailAddress
from django.core.management.base import BaseCommand
from django.db import transaction

from apps.accounts.models import User
from apps.billing.ledger import Leg, company_account, ledger_post, platform_account
from apps.billing.models import LedgerAccount, LedgerTransaction
from apps.companies.services import company_create
from apps.core.actor import Actor
from apps.numbers.models import OnlineNumber
from apps.numbers.services import number_stock_create
from apps.rating.imports import COLUMNS as RATE_COLUMNS
from apps.rating.models import RateDeck
from apps.rating.services import rate_deck_import_create

# A little Online Number stock so the demo can search and buy (valid numbers of
# each plan; prices per 3 and 12 months in USD, EUR and GBP).
DEMO_STOCK = [
    ("+442079460100", "GB", "London", "geographic"),
    ("+442079460101", "GB", "London", "geographic"),
    ("+441614960102", "GB", "Manchester", "geographic"),
    ("+448081570103", "GB", "", "toll_free"),
    ("+12025550104", "US", "Washington, DC", "geographic"),
    ("+12125550105", "US", "New York", "geographic"),
    ("+13125550106", "US", "Chicago", "geographic"),
    ("+493012345107", "DE", "Berlin", "geographic"),
]
DEMO_PRICES = {
    "price_3m_usd": "6.00",
    "price_12m_usd": "20.00",
    "price_3m_eur": "5.50",
    "price_12m_eur": "18.50",
    "price_3m_gbp": "4.80",
    "price_12m_gbp": "16.00",
}
DEMO_CREDIT = Decimal("100")
# A small rate deck per currency, so the price look-up and (later) rating have prices.
DEMO_RATES = [
    ("1", "United States and Canada", "US", "landline", "0.010000", "0", 6, 6),
    ("44", "United Kingdom", "GB", "landline", "0.012000", "0", 60, 60),
    ("447", "United Kingdom mobile", "GB", "mobile", "0.060000", "0.010000", 1, 1),
    ("49", "Germany", "DE", "landline", "0.015000", "0", 60, 60),
    ("4915", "Germany mobile", "DE", "mobile", "0.080000", "0", 1, 1),
    ("33", "France", "FR", "landline", "0.014000", "0", 60, 60),
    ("336", "France mobile", "FR", "mobile", "0.070000", "0", 1, 1),
]
DEMO_EMAIL = "owner@demo.example"
DEMO_PASSWORD = "demo-owner-password-2026"


class Command(BaseCommand):
    help = "Create a demo company and its owner (idempotent) and print the login."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--email", default=DEMO_EMAIL)
        parser.add_argument("--password", default=DEMO_PASSWORD)
        parser.add_argument("--staff", action="store_true", help="Also make the demo owner platform staff.")

    def handle(self, *args: Any, email: str, password: str, staff: bool, **options: Any) -> None:
        with transaction.atomic():
            user = User.objects.filter(email__iexact=email).first()
            if user is None:
                user = User.objects.create_user(email=email, password=password, full_name="Demo Owner")
                EmailAddress.objects.create(user=user, email=email, verified=True, primary=True)
                company = company_create(
                    actor=Actor(user=user), owner=user, name="Demo Telecom Ltd", country="GB", currency="GBP"
                )
                # Some credit to try profiles and numbers with, as if a wire had arrived.
                ledger_post(
                    actor=Actor.system(),
                    key=f"demo:{company.public_id}",
                    kind=LedgerTransaction.Kind.ADJUSTMENT,
                    company=company,
                    currency=company.currency,
                    description="Demo credit",
                    legs=[
                        Leg(platform_account(LedgerAccount.Kind.BANK_CASH, company.currency), -DEMO_CREDIT),
                        Leg(company_account(company), DEMO_CREDIT),
                    ],
                )
                created = True
            else:
                created = False
            for number, country, area, number_type in DEMO_STOCK:
                if not OnlineNumber.objects.filter(number=number).exists():
                    number_stock_create(
                        actor=Actor.system(),
                        number=number,
                        country=country,
                        area=area,
                        number_type=number_type,
                        **DEMO_PRICES,
                    )
            for currency in ("USD", "EUR", "GBP"):
                if not RateDeck.objects.filter(currency=currency).exists():
                    rows = "\n".join(
                        f"{p},{d},{c},{k},{price},{fee},{first},{nxt},2026-01-01"
                        for p, d, c, k, price, fee, first, nxt in DEMO_RATES
                    )
                    rate_deck_import_create(
                        actor=Actor.system(),
                        currency=currency,
                        filename=f"demo-{currency.lower()}.csv",
                        content=",".join(RATE_COLUMNS) + "\n" + rows + "\n",
                        name=f"Demo rates ({currency})",
                    )
            if staff and not user.is_staff:
                user.is_staff = user.is_superuser = True
                user.save(update_fields=["is_staff", "is_superuser"])
        verb = "Created" if created else "Found"
        self.stdout.write(self.style.SUCCESS(f"{verb} the demo company."))
        self.stdout.write(f"Sign in at http://127.0.0.1:8000/accounts/login/ as {email} / {password}")
