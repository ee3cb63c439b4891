"""The profile page's live status card tells a customer in plain words that a node is not
answering (issue 13, item 8): the technical reason ("urlopen error [Errno 111] Connection
refused") goes to the logs and is shown to platform staff only. Real JSON-RPC calls to a
loopback port nothing listens on; no Kamailio needed."""

from __future__ import annotations

import logging
import socket
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from apps.companies.models import Role
from apps.edge.models import EdgeNode
from tests.factories import member
from tests.sip_profiles.factories import ip_profile

pytestmark = pytest.mark.django_db

PLAIN = "The SIP edge is not answering right now"


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def refusing_node(db: Any) -> EdgeNode:
    return EdgeNode.objects.create(
        name="edge-refusing",
        role=EdgeNode.Role.PRIMARY,
        sip_host="127.0.0.1",
        sip_port=_closed_port(),
        rpc_url=f"http://127.0.0.1:{_closed_port()}/RPC",
        database_url="postgresql://edge@127.0.0.1:1/edge",
    )


def _card(user: Any, profile: Any) -> str:
    browser = Client()
    browser.force_login(user)
    response = browser.get(reverse("sip-profile-status", args=[profile.public_id]), HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    return response.content.decode()


def test_a_customer_reads_a_plain_message_and_the_reason_goes_to_the_logs(
    refusing_node: EdgeNode, company: Any, owner: Any, caplog: Any
) -> None:
    profile = ip_profile(company, owner)
    with caplog.at_level(logging.INFO, logger="apps.edge.live"):
        html = _card(member(company, Role.VIEWER), profile)

    assert "Not answering" in html
    assert PLAIN in html
    for technical in ("refused", "Errno", "urlopen", "111"):
        assert technical not in html
    logged = [r.getMessage() for r in caplog.records if r.name == "apps.edge.live"]
    assert len(logged) == 1
    assert "edge-refusing" in logged[0]
    assert "refused" in logged[0].lower()


def test_staff_see_the_technical_reason_under_the_plain_message(
    refusing_node: EdgeNode, company: Any, owner: Any
) -> None:
    profile = ip_profile(company, owner)
    html = _card(member(company, Role.VIEWER, is_staff=True), profile)

    assert PLAIN in html
    assert "refused" in html.lower()
