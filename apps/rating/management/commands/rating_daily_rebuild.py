from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from apps.cdrs.models import DailyCalls
from apps.rating.daily import daily_rebuild


class Command(BaseCommand):
    help = (
        "Recompute the daily call figures that reports read from every CDR's rating (once after the"
        " upgrade that added them, or after a restore). Rating waits while it runs."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--chunk", type=int, default=50_000, help="Ratings read per query (default 50,000).")

    def handle(self, *args: Any, **options: Any) -> None:
        read = daily_rebuild(chunk=options["chunk"])
        self.stdout.write(f"{read:,} rated calls summed into {DailyCalls.objects.count():,} daily rows")
