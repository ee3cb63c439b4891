"""Every report as a PDF (issue 14, item 3): on the page (`?format=pdf`, the "Download PDF" link)
and in the API, read back with pypdf: the product's and the company's names, the report's
title and month on every page, and the figures, to 2 places, equal to what this test sums
itself from the CDRs and the ledger (tests/reports/test_monthly_reports.py); a long table runs
onto more pages with its header row repeated."""

from __future__ import annotations

import io
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest
import time_machine
from pypdf import PdfReader

from apps.companies.models import Company, Role
from apps.reports.monthly.pdf import cell
from tests.factories import CompanyFactory, member
from tests.reports.test_monthly_reports import (
    MARCH,
    NOW,
    deck,
    expected_ledger,
    expected_usage,
    signed_in,
    world,
)

pytestmark = pytest.mark.django_db
__all__ = ["deck"]  # the rate deck fixture


def shown(amount: Decimal) -> str:
    """An amount as people read it, worked out here: 2 places half up, thousands grouped."""
    return f"{amount.quantize(Decimal('0.01'), rounding=ROUND_HALF_UP):,.2f}"


def pages(response: Any) -> list[str]:
    assert response.status_code == 200, response.content[:500]
    assert response["Content-Type"] == "application/pdf"
    body = response.content
    assert body.startswith(b"%PDF-")
    # The layout mode keeps a table's row on one line; runs of spaces become one.
    texts = [page.extract_text(extraction_mode="layout") for page in PdfReader(io.BytesIO(body)).pages]
    return ["\n".join(" ".join(line.split()) for line in text.splitlines() if line.strip()) for text in texts]


def line_with(text: str, start: str) -> str:
    found = [line for line in text.splitlines() if line.startswith(start)]
    assert found, f"no line starting {start!r} in:\n{text}"
    return found[0]


@pytest.fixture
def named_company(db: Any) -> Company:
    return CompanyFactory(name="Printed Calls & Co", currency="GBP")


@time_machine.travel(NOW, tick=False)
def test_the_usage_pdf_has_every_profile_destination_and_day_with_the_totals_of_the_calls(named_company, deck) -> None:
    owner = member(named_company, Role.OWNER)
    profiles = world(named_company, owner, profiles=3, calls=90)
    client = signed_in(member(named_company, Role.VIEWER))
    text = "\n".join(pages(client.get("/reports/usage/", {"month": MARCH, "format": "pdf"})))
    expected = expected_usage(named_company, date(2027, 3, 1), date(2027, 4, 1))

    assert "Skype Manager: Usage" in text
    assert "Printed Calls & Co · March 2027" in text
    for profile in profiles:
        want = expected["profile"][profile.pk]
        row = line_with(text, f"{profile.name} ")
        assert f" {want['calls']:,} {want['answered']:,} " in f" {row} "
        assert row.split()[-4] == shown(want["cost"]), row
    total_cost = sum((w["cost"] for w in expected["profile"].values()), Decimal(0))
    total_calls = sum(w["calls"] for w in expected["profile"].values())
    totals = [line for line in text.splitlines() if line.startswith("Total ")]
    assert len(totals) == 3  # per profile, per destination, per day: the same sums
    for line in totals:
        assert line.split()[1] == f"{total_calls:,}"
        assert line.split()[-4] == shown(total_cost)
    for day, want in expected["day"].items():
        row = line_with(text, day)
        assert row.split()[1] == f"{want['calls']:,}", row


@time_machine.travel(NOW, tick=False)
def test_the_summary_pdf_runs_onto_a_second_page_with_the_header_row_repeated(named_company, deck) -> None:
    owner = member(named_company, Role.OWNER)
    world(named_company, owner)
    sums = expected_ledger(named_company, date(2027, 3, 1), date(2027, 4, 1))
    texts = pages(signed_in(owner).get("/api/v1/reports/summary/", {"month": MARCH, "format": "pdf"}))

    assert len(texts) >= 2
    for text in texts:  # who and what on every page
        assert "Skype Manager · Printed Calls & Co · Where the credit went · March 2027" in text
    whole = "\n".join(texts)
    assert line_with(whole, "Credit bought ").split()[-1] == shown(sums["purchases"])
    assert line_with(whole, "Allocated to profiles ").split()[-1] == shown(sums["allocated"])
    assert line_with(whole, "Taken back from profiles ").split()[-1] == shown(sums["taken_back"])
    assert line_with(whole, "Channels ").split()[-1] == shown(sums["channels"])
    # The per-day table goes on over the page break, under its header row again.
    last = texts[-1]
    assert "Day Calls Channels Bundles Numbers Total" in last
    assert "2027-03-31" in last
    assert "Day Calls Channels Bundles Numbers Total" in "\n".join(texts[:-1])


@time_machine.travel(NOW, tick=False)
def test_the_purchases_and_allocations_pdfs_list_each_line_and_the_totals(named_company, deck) -> None:
    owner = member(named_company, Role.OWNER)
    profiles = world(named_company, owner, profiles=2)
    sums = expected_ledger(named_company, date(2027, 3, 1), date(2027, 4, 1))
    client = signed_in(owner)

    purchases = "\n".join(pages(client.get("/reports/purchases/", {"month": MARCH, "format": "pdf"})))
    assert "Skype Manager: Purchases" in purchases
    assert line_with(purchases, "Credited ").split()[-1] == shown(sums["purchases"])
    assert "400.00" in purchases  # the paid wire
    assert "25.00" in purchases  # and the one never paid

    response = client.get(
        "/api/v1/reports/allocations/", {"month": MARCH, "format": "pdf", "profile": str(profiles[1].public_id)}
    )
    assert response["Content-Disposition"] == (
        f'attachment; filename="report-allocations-{profiles[1].public_id}-2027-03.pdf"'
    )
    allocations = "\n".join(pages(response))
    assert "Allocations · March 2027 · PBX 1" in allocations
    row = line_with(allocations, "PBX 1 ")
    assert row.split()[4] == shown(sums[f"allocated:{profiles[1].pk}"])
    assert "PBX 0" not in allocations


@time_machine.travel(NOW, tick=False)
def test_every_report_page_links_its_pdf_and_a_bad_month_is_json_in_the_api(named_company, owner) -> None:
    client = signed_in(owner)
    for path in ("/reports/", "/reports/usage/", "/reports/purchases/", "/reports/allocations/"):
        page = client.get(path, {"month": MARCH}).content.decode()
        assert f'href="{path}?month={MARCH}&amp;format=pdf"' in page
        assert "Download PDF" in page
        assert pages(client.get(path, {"month": MARCH, "format": "pdf"}))
    response = client.get("/api/v1/reports/usage/", {"month": "2027-13", "format": "pdf"})
    assert response.status_code == 400
    assert response.json()["errors"]["month"]


def test_amounts_show_2_places_rates_4_and_minutes_as_given() -> None:
    assert cell("cost", Decimal("1234.5650")) == "1,234.57"
    assert cell("rate_per_minute", Decimal("0.012345")) == "0.0123"
    assert cell("minutes", Decimal("12.5")) == "12.5"
    assert cell("calls", 12000) == "12,000"
    assert cell("amount", Decimal("-0.0010")) == "0.00"
