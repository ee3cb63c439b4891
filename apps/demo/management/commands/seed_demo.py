"""Demo data for the laptop default: one company with an owner who can sign in, and a month of
its calls (so the dashboard, the Calls list and the reports show something)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from allauth.account.models import EmailAddress
from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from apps.accounts.models import User
from apps.billing.ledger.allocations import credit_allocate
from apps.billing.ledger.services import Leg, company_account, ledger_post, platform_account
from apps.billing.models import LedgerAccount, LedgerTransaction
from apps.bundles.models import BundlePeriod
from apps.bundles.services import bundles_buy
from apps.cdrs.imports import COLUMNS as CDR_COLUMNS
from apps.cdrs.imports import EdgeRecord
from apps.cdrs.services import cdr_import_create, cdrs_import_edge_records
from apps.companies.services import company_create
from apps.core.actor import Actor
from apps.numbers.models import OnlineNumber
from apps.numbers.services import number_stock_create
from apps.rating.imports import COLUMNS as RATE_COLUMNS
from apps.rating.models import RateDeck
from apps.rating.services import cdrs_rate_queued, rate_deck_import_create
from apps.sip_profiles.services import sip_profile_create

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
DEMO_CREDIT = Decimal("300")
# What the demo profile is given: enough for its month of calls.
DEMO_ALLOCATION = "150"
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
# Calls of the demo SIP profile, rated like the edge's: to a US landline (from its minute
# bundle), London, a UK mobile, Berlin; one inbound call and one unanswered.
DEMO_CALLS = [
    ("outbound", "+12125550123", 754, "answered"),
    ("outbound", "+442079460958", 1260, "answered"),
    ("outbound", "+447400123456", 95, "answered"),
    ("outbound", "+493012345678", 430, "answered"),
    ("inbound", "+12025550104", 300, "answered"),
    ("outbound", "+442079460959", 0, "no_answer"),
]
# The month before today: (share of the calls, the number dialled (random digits appended up to
# its length, with the "+"), the longest answered call in seconds). A number no rate covers is "not rated".
MONTH_DESTINATIONS = [
    (30, "+4420794", 13, 900),  # London
    (14, "+447400", 13, 300),  # UK mobile
    (14, "+1212555", 12, 1500),  # US: today's calls from the bundle, earlier ones at the rate
    (8, "+4930123", 13, 700),  # Berlin
    (5, "+4915112", 14, 240),  # German mobile
    (4, "+3314567", 12, 600),  # Paris
    (1, "+8613800", 14, 120),  # China: no rate covers it
]
MONTH_DAYS = 30
# Calls on a weekday and on a weekend day, spread over the working hours (UTC).
WEEKDAY_CALLS, WEEKEND_CALLS = 75, 8
HOURS = [8, 9, 9, 10, 10, 10, 11, 11, 11, 12, 13, 14, 14, 14, 15, 15, 15, 16, 16, 17, 18, 20]
MONTH_EDGE_IDS = 1000  # the month's edge ids start after the few calls above
DEMO_EMAIL = "owner@demo.example"
DEMO_PASSWORD = "demo-owner-password-2026"
STAFF_EMAIL = "staff@demo.example"
STAFF_PASSWORD = "demo-staff-password-2026"


class Command(BaseCommand):
    help = "Create a demo company and its owner (idempotent) and print the login."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--email", default=DEMO_EMAIL)
        parser.add_argument("--password", default=DEMO_PASSWORD)
        parser.add_argument(
            "--staff",
            action="store_true",
            help=f"Also create a platform staff user ({STAFF_EMAIL}), separate from the customer's owner.",
        )

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
            if staff:
                self._staff_user()
        if created:
            self._demo_calls(user)
        verb = "Created" if created else "Found"
        site = settings.SITE_URL.rstrip("/")
        self.stdout.write(self.style.SUCCESS(f"{verb} the demo company."))
        self.stdout.write(f"Sign in at {site}/accounts/login/ as {email} / {password}")
        if staff:
            self.stdout.write(f"Platform staff: {site}/staff/ as {STAFF_EMAIL} / {STAFF_PASSWORD}")

    def _staff_user(self) -> None:
        """Platform staff of their own, not a member of any company: what staff see is the
        staff side, and the customer's owner stays a customer."""
        user = User.objects.filter(email__iexact=STAFF_EMAIL).first()
        if user is None:
            user = User.objects.create_user(email=STAFF_EMAIL, password=STAFF_PASSWORD, full_name="Demo Staff")
            EmailAddress.objects.create(user=user, email=STAFF_EMAIL, verified=True, primary=True)
        if not (user.is_staff and user.is_superuser):
            user.is_staff = user.is_superuser = True
            user.save(update_fields=["is_staff", "is_superuser"])

    def _demo_calls(self, user: User) -> None:
        """A SIP profile with credit and a US minute bundle, and a few of its calls loaded and
        rated as the edge's would be (tasks run in-process on a laptop)."""
        company = user.memberships.get().company
        actor = Actor(user=user)
        with transaction.atomic():
            profile, _ = sip_profile_create(
                actor=actor, company=company, name="Demo PBX", auth_method="registration", channels=2
            )
            credit_allocate(actor=actor, profile=profile, amount=DEMO_ALLOCATION, key=f"demo:{profile.public_id}")
            bundles_buy(actor=actor, profile=profile, count=1)
        # Two hours ago, but never before the bundle's period began (a profile made just after
        # midnight UTC on its renewal day has a period only minutes old), so the US call is the
        # bundle's whatever the time of day.
        period = BundlePeriod.objects.filter(sip_profile=profile).latest("period_start")
        start = max(timezone.now() - timedelta(hours=2), period.period_start)
        lines = [",".join(CDR_COLUMNS)]
        for n, (direction, other, seconds, disposition) in enumerate(DEMO_CALLS, start=1):
            begin = start + timedelta(minutes=10 * n)
            answer = begin + timedelta(seconds=5) if seconds or disposition == "answered" else None
            end = (answer or begin) + timedelta(seconds=seconds or 20)
            caller, callee = ("+442079460100", other) if direction == "outbound" else (other, "+442079460100")
            values = {
                "node": "demo-edge",
                "edge_id": str(n),
                "call_id": f"demo-{n}@pbx.demo.example",
                "profile": str(profile.public_id),
                "direction": direction,
                "caller": caller,
                "callee": callee,
                "start": begin.isoformat(),
                "answer": answer.isoformat() if answer else "",
                "end": end.isoformat(),
                "duration": str(int((end - begin).total_seconds())),
                "billable": str(seconds),
                "sip_code": "200" if disposition == "answered" else "480",
                "disposition": disposition,
                "auth_method": "registration",
                "source": "198.51.100.20",
            }
            lines.append(",".join(values[column] for column in CDR_COLUMNS))
        # Loaded, then rated right after the load (in-process here; by the workers in production).
        cdr_import_create(actor=Actor.system(), filename="demo-cdrs.csv", content="\n".join(lines) + "\n")
        # After the rate decks' import jobs (queued on commit too), or no call would find its rate.
        transaction.on_commit(lambda: self._demo_month(profile))

    def _demo_month(self, profile: Any) -> None:
        """A month of the profile's calls, as the edge writes them (answered, unanswered and
        refused at the channel limit; inbound ones; a few to a number no rate covers),
        imported and rated by the real path, so the daily figures, the reports and the
        profile's credit agree. Today's US calls come from its minute bundle. Seeded: every
        demo has the same calls."""
        rng = random.Random(2026)  # noqa: S311 (the same demo calls every time, not a secret)
        now = timezone.now()
        today = datetime(now.year, now.month, now.day, tzinfo=UTC)
        shares = [share for share, *_ in MONTH_DESTINATIONS]
        records: list[EdgeRecord] = []
        for days_ago in range(MONTH_DAYS, -1, -1):
            day = today - timedelta(days=days_ago)
            count = WEEKDAY_CALLS if day.weekday() < 5 else WEEKEND_CALLS
            for _ in range(count):
                begin = day + timedelta(hours=rng.choice(HOURS), seconds=rng.randrange(3600))
                if begin > now - timedelta(minutes=30):
                    continue  # today's calls only until a little before now
                edge_id = MONTH_EDGE_IDS + len(records)
                roll = rng.random()
                _, prefix, length, longest = rng.choices(MONTH_DESTINATIONS, weights=shares)[0]
                number = prefix + "".join(rng.choices("0123456789", k=length - len(prefix)))
                inbound = rng.random() < 0.08
                refused = roll < 0.03  # every channel was in use
                answered = roll >= 0.12
                seconds = min(longest, int(rng.expovariate(1 / 150)) + 5) if answered else 0
                answer = begin + timedelta(seconds=rng.randint(3, 12)) if answered and not refused else None
                end = answer + timedelta(seconds=seconds) if answer else begin + timedelta(seconds=0 if refused else 25)
                records.append(
                    EdgeRecord(
                        edge_id=edge_id,
                        call_id=f"month-{edge_id}@pbx.demo.example",
                        profile_id=profile.pk,
                        dest_profile_id=None,
                        direction="inbound" if inbound else "outbound",
                        auth_method="digest",
                        source_ip="198.51.100.20",
                        caller=number if inbound else "+442079460100",
                        callee="+442079460100" if inbound else number,
                        started_at=begin,
                        answered_at=answer,
                        ended_at=end,
                        sip_code=200 if answer else (486 if refused else 480),
                        refusal="channel_limit" if refused else "",
                    )
                )
        with transaction.atomic():
            cdrs_import_edge_records(node="demo-edge", records=records)
        cdrs_rate_queued(max_seconds=60)
