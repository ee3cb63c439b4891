"""Demo data for the laptop default: one company with an owner who can sign in."""

from __future__ import annotations

from typing import Any

from allauth.account.models import EmailAddress
from django.core.management.base import BaseCommand
from django.db import transaction

from apps.accounts.models import User
from apps.companies.services import company_create
from apps.core.actor import Actor

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
                company_create(
                    actor=Actor(user=user), owner=user, name="Demo Telecom Ltd", country="GB", currency="GBP"
                )
                created = True
            else:
                created = False
            if staff and not user.is_staff:
                user.is_staff = user.is_superuser = True
                user.save(update_fields=["is_staff", "is_superuser"])
        verb = "Created" if created else "Found"
        self.stdout.write(self.style.SUCCESS(f"{verb} the demo company."))
        self.stdout.write(f"Sign in at http://127.0.0.1:8000/accounts/login/ as {email} / {password}")
