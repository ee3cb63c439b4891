"""Staff CSV imports benchmark: how long a 100,000-row rate deck and a 100,000-row CDR file take,
through the import jobs' own code (the task's function run in-process, as the worker runs it),
on a throwaway PostgreSQL.

    .venv/bin/python benchmarks/imports.py                 # 100,000 rows each
    .venv/bin/python benchmarks/imports.py --rows 20000

Each import is checked (every row arrived, the deck is active and matched by its longest
prefix); a wrong result exits non-zero. The last line sums it up as
`RESULT imports: rows=N deck_s=X cdrs_s=X` (targets: deck ≤ 30 s, CDRs ≤ 60 s on 2 cores).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TARGET_DECK_SECONDS = 30
TARGET_CDR_SECONDS = 60


def _django(database_url: str) -> None:
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("SECRET_KEY", "benchmark-only-" + "x" * 40)
    os.environ["REDIS_URL"] = ""  # job lock in process memory, tasks in-process
    os.environ["EMAIL_BACKEND"] = "django.core.mail.backends.locmem.EmailBackend"  # no SMTP here
    os.environ["DJANGO_SETTINGS_MODULE"] = "skypemanager.settings"
    import django

    django.setup()


def run(rows: int, url: str) -> int:
    _django(url)
    from django.core.management import call_command

    call_command("migrate", verbosity=0)

    from apps.cdrs.models import Cdr
    from apps.core.actor import Actor
    from apps.rating.models import Rate
    from apps.rating.selectors import rate_for
    from apps.rating.services import rate_deck_import_create, rate_deck_import_run
    from tests.cdrs.factories import big_cdr_csv, load
    from tests.factories import CompanyFactory, UserFactory, member
    from tests.rating.factories import big_deck_csv
    from tests.sip_profiles.factories import digest_profile

    staff = UserFactory(is_staff=True, is_superuser=True)
    company = CompanyFactory()
    owner = member(company)

    text = big_deck_csv(rows)
    started = time.perf_counter()
    deck = rate_deck_import_create(actor=Actor(user=staff), currency="GBP", filename="deck.csv", content=text.encode())
    assert deck.import_job is not None
    rate_deck_import_run(job_id=deck.import_job.pk)
    deck_seconds = time.perf_counter() - started
    deck.refresh_from_db()
    matched = rate_for(digits=f"44{10_000_000 + rows - 1}99", currency="GBP", at=datetime(2026, 2, 1, tzinfo=UTC))
    deck_ok = (
        deck.status == "active"
        and Rate.objects.filter(deck=deck).count() == rows
        and matched is not None
        and matched.prefix == f"44{10_000_000 + rows - 1}"
    )
    print(f"rate deck: {rows:,} rows in {deck_seconds:.2f} s ({rows / deck_seconds:,.0f} rows/s)", flush=True)

    names = [digest_profile(company, owner, name=f"PBX {n}")[0].sip_username or "" for n in range(5)]
    text = big_cdr_csv(rows, names)
    started = time.perf_counter()
    job = load(text, staff)
    cdr_seconds = time.perf_counter() - started
    cdrs_ok = (job.status, job.imported_rows, job.errors) == ("succeeded", rows, []) and Cdr.objects.filter(
        node="edge-big"
    ).count() == rows
    print(f"CDR file: {rows:,} rows in {cdr_seconds:.2f} s ({rows / cdr_seconds:,.0f} rows/s)", flush=True)

    if not (deck_ok and cdrs_ok):
        print(f"WRONG RESULT: deck ok={deck_ok}, CDRs ok={cdrs_ok}", flush=True)
        return 1
    if rows >= 100_000:
        print(
            f"targets: deck ≤ {TARGET_DECK_SECONDS} s {'met' if deck_seconds <= TARGET_DECK_SECONDS else 'MISSED'}, "
            f"CDRs ≤ {TARGET_CDR_SECONDS} s {'met' if cdr_seconds <= TARGET_CDR_SECONDS else 'MISSED'}",
            flush=True,
        )
    print(f"RESULT imports: rows={rows} deck_s={deck_seconds:.2f} cdrs_s={cdr_seconds:.2f}", flush=True)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    from benchmarks._pgtemp import throwaway_postgres

    with throwaway_postgres() as url:
        return run(args.rows, url)


if __name__ == "__main__":
    sys.exit(main())
