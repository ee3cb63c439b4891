"""Issue 13, item 6: the sidebar lists only the pages the role may open (it asks each page's
view for the capability it checks), and the dashboard asks only those who may to verify."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from apps.companies.models import Role
from tests.factories import member

pytestmark = pytest.mark.django_db

EVERY_SECTION = [
    "Dashboard",
    "SIP Profiles",
    "Business accounts",
    "Numbers",
    "Caller ID",
    "Credit",
    "Calls",
    "Rates",
    "Planning",
    "Reports",
    "Company",
    "Members",
    "Verification",
    "API keys",
    "Audit",
    "API docs",
    "Status",
]


def sidebar(client: Client, path: str = "/") -> list[tuple[str, str]]:
    html = client.get(path).content.decode()
    nav = re.search(r'<nav class="sidebar" id="sections"[^>]*>(.*?)</nav>', html, re.S)
    assert nav, "no sidebar on the page"
    return re.findall(r'<a href="([^"]+)"[^>]*>([^<]+)</a>', nav.group(1))


def signed_in(company, role: str) -> Client:
    client = Client()
    client.force_login(member(company, role))
    return client


@pytest.mark.parametrize("role", [Role.OWNER, Role.ADMIN, Role.BILLING, Role.VIEWER])
def test_every_link_in_the_sidebar_opens_for_the_role(company, role) -> None:
    client = signed_in(company, role)

    links = sidebar(client)

    assert links
    for url, label in links:
        assert client.get(url).status_code == 200, f"{role} sees {label} ({url}) but may not open it"


def test_a_viewer_is_not_shown_api_keys_or_audit_which_it_may_not_open(company) -> None:
    client = signed_in(company, Role.VIEWER)

    labels = [label for _, label in sidebar(client)]

    assert labels == [s for s in EVERY_SECTION if s not in ("API keys", "Audit")]
    assert client.get("/api-keys/").status_code == 403
    assert client.get("/audit/").status_code == 403


def test_an_owner_is_shown_every_section(company) -> None:
    assert [label for _, label in sidebar(signed_in(company, Role.OWNER))] == EVERY_SECTION


def test_the_current_section_is_marked_on_its_sub_pages(company) -> None:
    client = signed_in(company, Role.OWNER)
    html = client.get("/credit/statement/").content.decode()

    assert re.search(r'<a href="/credit/" aria-current="page">Credit</a>', html)
    assert html.count('aria-current="page"') == 1


def test_the_dashboard_asks_only_those_who_may_verify_to_verify_the_company(company) -> None:
    viewer = signed_in(company, Role.VIEWER).get("/").content.decode()
    admin = signed_in(company, Role.ADMIN).get("/").content.decode()

    assert "Verify your company" not in viewer
    assert "Verify your company" in admin


def switcher(client: Client) -> str:
    html = client.get("/").content.decode()
    found = re.search(r'<form method="post" action="/companies/switch/" class="switcher">(.*?)</form>', html, re.S)
    assert found, "no company switcher on the page"
    return found.group(1)


@pytest.mark.parametrize("role", [Role.OWNER, Role.VIEWER])
def test_the_company_switcher_links_to_creating_another_company_which_is_then_offered_in_it(company, role) -> None:
    client = signed_in(company, role)
    links = re.findall(r'<a class="switcher-new" href="([^"]+)">([^<]+)</a>', switcher(client))
    assert links == [("/companies/new/", "New company")]

    assert client.get(links[0][0]).status_code == 200
    created = client.post(links[0][0], {"name": "Second Branch Ltd", "country": "GB", "currency": "EUR"})
    assert created.status_code == 302

    options = re.findall(r"<option [^>]*>([^<]+)</option>", switcher(client))
    assert sorted(options) == sorted([company.name, "Second Branch Ltd"])
    assert re.search(r"<option [^>]*selected>Second Branch Ltd</option>", switcher(client))
