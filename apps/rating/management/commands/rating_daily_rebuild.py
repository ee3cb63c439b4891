from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.cdrs.models import DailyCalls
from apps.rating.daily import daily_rebuild


class Command(BaseCommand):
    help = (
        "Recompute the daily call figures that reports read from every CDR's rating, and the daily channel"
        " peaks from the CDRs (once after the upgrade that added them, or after a restore). Rating waits"
        " while it runs."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--chunk", type=int, default=50_000, help="Ratings read per query (default 50,000).")
        parser.add_argument(
            "--since",
            help="YYYY-MM: only the figures from that month on (older months' CDRs may have been deleted by the"
            " call retention purge, and a rebuild from their ratings would lose their figures).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        since = None
        if options.get("since"):
            try:
                since = datetime.strptime(options["since"], "%Y-%m").date()  # noqa: DTZ007 - a calendar month
            except ValueError:
                raise CommandError("--since: give a month as YYYY-MM, e.g. 2026-07.") from None
        read = daily_rebuild(chunk=options["chunk"], since=since)
        self.stdout.write(f"{read:,} rated calls summed into {DailyCalls.objects.count():,} daily rows")
