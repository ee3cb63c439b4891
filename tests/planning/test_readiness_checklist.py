"""The readiness checklist (issue 14, item 6): one per company, ticked and saved by an owner or
admin, read by every member, another company's never touched, and shown on the dashboard until
every box is ticked."""

from __future__ import annotations

import re
from typing import Any

from django.template import Context, Template
from django.test import Client, RequestFactory

from apps.audit.models import AuditEvent
from apps.companies.models import Role
from apps.companies.tenancy import Tenancy
from apps.planning.models import CHECKLIST_FIELDS, ReadinessChecklist
from apps.planning.selectors import readiness_checklist_open
from tests.factories import member


def client_as(user: Any) -> Client:
    """A browser's client: forms post as form data (the API client's default is JSON)."""
    client = Client()
    client.force_login(user)
    return client


def ticked_on_page(html: str) -> set[str]:
    return set(re.findall(r'<input type="checkbox" name="(\w+)" id="id_\w+" checked', html))


def test_the_owner_ticks_boxes_and_they_are_there_next_time(company: Any, owner: Any) -> None:
    client = client_as(owner)

    response = client.post("/planning/checklist/", {"pbx_supports_sip": "on", "firewall_open": "on"})

    assert response.status_code == 302
    assert response["Location"] == "/planning/#checklist"
    row = ReadinessChecklist.objects.get(company=company)
    assert {f for f, done in row.ticked().items() if done} == {"pbx_supports_sip", "firewall_open"}
    assert row.updated_by == owner
    html = client.get("/planning/").content.decode()
    assert ticked_on_page(html) == {"pbx_supports_sip", "firewall_open"}
    assert "2 of 10 done" in html
    event = AuditEvent.objects.get(action="readiness_checklist.updated")
    assert event.company == company
    assert event.changes["firewall_open"] == {"from": False, "to": True}

    # Saving again unticks what is no longer sent, in the same row.
    client.post("/planning/checklist/", {"firewall_open": "on"})
    assert ReadinessChecklist.objects.count() == 1
    assert ReadinessChecklist.objects.get(company=company).pbx_supports_sip is False


def test_another_companys_checklist_is_neither_read_nor_written(company: Any, owner: Any, other_company: Any) -> None:
    other_owner = member(other_company, Role.OWNER)
    client_as(other_owner).post("/planning/checklist/", dict.fromkeys(CHECKLIST_FIELDS, "on"))

    client_as(owner).post("/planning/checklist/", {"qos_configured": "on"})

    assert all(ReadinessChecklist.objects.get(company=other_company).ticked().values())
    assert ticked_on_page(client_as(owner).get("/planning/").content.decode()) == {"qos_configured"}
    assert readiness_checklist_open(other_company) is None
    assert readiness_checklist_open(company) is not None


def test_a_viewer_reads_the_checklist_but_cannot_save_it(company: Any, owner: Any) -> None:
    viewer = member(company, Role.VIEWER)
    client_as(owner).post("/planning/checklist/", {"codecs_and_dtmf": "on"})

    html = client_as(viewer).get("/planning/").content.decode()
    response = client_as(viewer).post("/planning/checklist/", dict.fromkeys(CHECKLIST_FIELDS, "on"))

    assert 'name="codecs_and_dtmf" id="id_codecs_and_dtmf" checked disabled' in html
    assert "Save the checklist" not in html
    assert response.status_code == 403
    assert [f for f, done in ReadinessChecklist.objects.get(company=company).ticked().items() if done] == [
        "codecs_and_dtmf"
    ]


def render_card(company: Any) -> str:
    request = RequestFactory().get("/")
    tenancy = Tenancy(company=company, role=Role.OWNER)
    template = Template("{% load planning_cards %}{% readiness_checklist_card %}")
    return template.render(Context({"request": request, "tenancy": tenancy}))


def test_the_dashboard_shows_the_open_steps_until_every_box_is_ticked(company: Any, owner: Any) -> None:
    client = client_as(owner)
    assert "Readiness checklist" in render_card(company)
    assert "0 of 10 done" in render_card(company)

    client.post("/planning/checklist/", dict.fromkeys(CHECKLIST_FIELDS[:-1], "on"))
    card = render_card(company)
    assert "9 of 10 done" in card
    assert "Test calls made both ways" in card

    response = client.post("/planning/checklist/", dict.fromkeys(CHECKLIST_FIELDS, "on"), follow=True)
    assert "The checklist is complete" in response.content.decode()
    assert render_card(company).strip() == ""
