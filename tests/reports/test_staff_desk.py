"""The staff side's index (/staff/) is titled for this product, names its sections for staff, and
starts with what needs a person: each kind of waiting work with its count, linking to the staff
list filtered to exactly those rows, from one query whatever the counts."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.billing.models import CreditPurchase
from apps.companies.models import Company, VerificationRequest
from apps.core.models import ImportJob
from apps.edge.models import EdgeNode, EdgeProvisioning
from apps.reports.staff_desk import staff_waiting_work
from tests.billing.factories import wire_purchase
from tests.factories import CompanyFactory, UserFactory
from tests.sip_profiles.factories import digest_profile

pytestmark = pytest.mark.django_db

KINDS = ["verifications", "landlines", "wires", "imports", "provisioning"]


@pytest.fixture
def staff_client(db: Any) -> Client:
    client = Client()
    client.force_login(UserFactory(is_staff=True, is_superuser=True, email="desk@platform.example"))
    return client


def counts_on_the_page(html: str) -> dict[str, int]:
    """Each waiting kind's count as the index shows it (its row's second cell)."""
    found = {}
    for kind, count in re.findall(r'<tr class="waiting-(\w+)[^"]*">.*?<td><a [^>]*>(?:<strong>)?(\d+)', html, re.S):
        found[kind] = int(count)
    return found


def links_on_the_page(html: str) -> dict[str, str]:
    return dict(re.findall(r'<tr class="waiting-(\w+)[^"]*">\s*<th scope="row"><a href="([^"]+)"', html))


def waiting_work_of_every_kind(company: Company, owner: Any) -> None:
    """Two of each kind, and one of each that does not need a person (done, or old)."""
    for n, status in enumerate(["pending", "pending", "approved"]):
        VerificationRequest.objects.create(
            company=CompanyFactory() if n else company, legal_name=f"Acme {n}", registration_number=str(n),
            address_line1="1 Road", city="London", status=status,
        )  # fmt: skip
    for n, status in enumerate(["pending", "pending", "verified"]):
        company.landlines.create(
            number=f"+44207123456{n}", proof="x.pdf", proof_name="x.pdf", status=status,
            verified_at=timezone.now() if status == "verified" else None,
            expires_at=timezone.now() + timedelta(days=300) if status == "verified" else None,
        )  # fmt: skip
    wire_purchase(company, owner)
    wire_purchase(company, owner)
    canceled = wire_purchase(company, owner)
    CreditPurchase.objects.filter(pk=canceled.pk).update(status="canceled")
    for status, age in (("failed", 1), ("failed", 6), ("failed", 9), ("succeeded", 1)):
        job = ImportJob.objects.create(kind="cdrs", filename=f"{status}-{age}.csv", content="", status=status)
        ImportJob.objects.filter(pk=job.pk).update(created_at=timezone.now() - timedelta(days=age))
    node = EdgeNode.objects.create(
        name="edge1", role="primary", sip_host="203.0.113.10", rpc_url="http://127.0.0.1:9/RPC",
        database_url="postgres://k@127.0.0.1:9/edge1",
    )  # fmt: skip
    for name, state in (("A", "failed"), ("B", "failed"), ("C", "synced")):
        profile, _ = digest_profile(company, owner, name=f"PBX {name}")
        EdgeProvisioning.objects.update_or_create(profile=profile, node=node, defaults={"state": state})


def test_the_staff_side_is_titled_for_the_product_and_names_its_sections(staff_client: Client, settings: Any) -> None:
    html = staff_client.get("/staff/").content.decode()

    assert f"<title>Staff desk | {settings.PRODUCT_NAME} staff</title>" in html
    assert f">{settings.PRODUCT_NAME} staff</a>" in html
    for section in ("Billing", "SIP edge", "Calls (CDRs)", "Caller ID", "Online Numbers", "Imports", "Audit log"):
        assert f">{section}</a>" in html, section


def test_with_nothing_waiting_the_index_says_so_with_every_kind_at_zero(staff_client: Client) -> None:
    html = staff_client.get("/staff/").content.decode()

    assert "Needs a person: nothing waiting" in html
    assert counts_on_the_page(html) == dict.fromkeys(KINDS, 0)


def test_each_kind_of_waiting_work_shows_its_count_and_links_to_exactly_those_rows(
    staff_client: Client, company: Company, owner: Any
) -> None:
    waiting_work_of_every_kind(company, owner)

    html = staff_client.get("/staff/").content.decode()
    links = links_on_the_page(html)

    assert counts_on_the_page(html) == dict.fromkeys(KINDS, 2)
    assert "nothing waiting" not in html
    assert list(links) == KINDS
    for kind, url in links.items():
        listed = staff_client.get(url.replace("&amp;", "&"))
        assert listed.status_code == 200, kind
        assert listed.context["cl"].result_count == 2, kind


def test_the_counts_come_from_one_query_whatever_is_waiting(company: Company, owner: Any) -> None:
    with CaptureQueriesContext(connection) as empty:
        staff_waiting_work()
    waiting_work_of_every_kind(company, owner)
    with CaptureQueriesContext(connection) as full:
        work = staff_waiting_work()

    assert len(empty.captured_queries) == len(full.captured_queries) == 1
    assert [(item.key, item.count) for item in work] == [(kind, 2) for kind in KINDS]
