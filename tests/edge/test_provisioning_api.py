"""Provisioning shown per edge node: in GET sip-profiles/{id}/ and the list (one query for all
listed profiles), in the OpenAPI schema, and on the profile page."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import yaml
from django.test import Client

from apps.edge.models import EdgeNode, EdgeProvisioning
from apps.sip_profiles.models import SipProfile
from tests.conftest import client_as
from tests.helpers.queries import SIGNED_IN, expect_queries
from tests.sip_profiles.factories import digest_profile, ip_profile

pytestmark = pytest.mark.django_db

URL = "/api/v1/sip-profiles/"
SYNCED_AT = datetime(2026, 12, 2, 16, 0, tzinfo=UTC)


def two_nodes() -> tuple[EdgeNode, EdgeNode]:
    fields = {"sip_port": 5060, "database_url": "postgres://kamailio@127.0.0.1/edge", "rpc_url": "http://127.0.0.1/RPC"}
    primary = EdgeNode.objects.create(
        name="edge1", role="primary", sip_host="127.0.0.1", public_host="sip1.example.com", **fields
    )
    secondary = EdgeNode.objects.create(
        name="edge2", role="secondary", sip_host="127.0.0.2", public_host="sip2.example.com", **fields
    )
    EdgeNode.objects.create(name="retired", role="secondary", sip_host="127.0.0.3", enabled=False, **fields)
    return primary, secondary


def test_the_profile_shows_its_state_on_each_node_with_the_error_and_attempts_of_a_failed_one(
    company: Any, owner: Any
) -> None:
    primary, secondary = two_nodes()
    profile, _ = digest_profile(company, owner)
    EdgeProvisioning.objects.create(profile=profile, node=primary, state="synced", synced_at=SYNCED_AT)
    EdgeProvisioning.objects.create(
        profile=profile, node=secondary, state="failed", error="node database unreachable", attempts=3
    )

    body = client_as(owner).get(f"{URL}{profile.public_id}/").json()

    assert body["provisioning"] == [
        {
            "node": "edge1",
            "role": "primary",
            "public_host": "sip1.example.com",
            "state": "synced",
            "synced_at": "2026-12-02T16:00:00Z",
            "error": "",
            "attempts": 0,
        },
        {
            "node": "edge2",
            "role": "secondary",
            "public_host": "sip2.example.com",
            "state": "failed",
            "synced_at": None,
            "error": "node database unreachable",
            "attempts": 3,
        },
    ]
    assert "provisioning_error" not in body


def test_a_node_that_never_took_the_profile_shows_it_pending(company: Any, owner: Any) -> None:
    two_nodes()
    profile, _ = digest_profile(company, owner)

    body = client_as(owner).get(f"{URL}{profile.public_id}/").json()

    assert [(n["node"], n["state"], n["synced_at"]) for n in body["provisioning"]] == [
        ("edge1", "pending", None),
        ("edge2", "pending", None),
    ]
    assert body["provisioning_state"] == "pending"


def test_a_committed_change_puts_the_synced_nodes_back_to_pending_and_a_failed_one_keeps_its_error(
    company: Any, owner: Any, django_capture_on_commit_callbacks: Any
) -> None:
    from apps.core.actor import Actor
    from apps.sip_profiles.services import sip_profile_update

    primary, secondary = two_nodes()
    profile, _ = digest_profile(company, owner)
    EdgeProvisioning.objects.create(profile=profile, node=primary, state="synced", synced_at=SYNCED_AT)
    EdgeProvisioning.objects.create(profile=profile, node=secondary, state="failed", error="timed out", attempts=2)

    with django_capture_on_commit_callbacks(execute=True):
        sip_profile_update(actor=Actor(user=owner), profile=profile, channels=1)

    rows = {r.node.name: (r.state, r.error, r.attempts) for r in EdgeProvisioning.objects.select_related("node")}
    assert rows == {"edge1": ("pending", "", 0), "edge2": ("failed", "timed out", 2)}


def test_the_list_reads_every_nodes_state_in_one_query_however_many_profiles(company: Any, owner: Any) -> None:
    primary, _ = two_nodes()
    client = client_as(owner)

    def listed() -> dict[str, list[tuple[str, str]]]:
        with expect_queries(
            *SIGNED_IN,
            "the count",
            "the page, joined with caller IDs",
            "their addresses",
            "their business accounts",
            "the enabled nodes joined with these profiles' rows: one query for every profile and node",
        ):
            body = client.get(URL, {"auth_method": "ip"}).json()
        return {p["name"]: [(n["node"], n["state"]) for n in p["provisioning"]] for p in body["results"]}

    ip_profile(company, owner, address="192.0.2.1", name="PBX 0")
    listed()
    for n in range(1, 8):
        profile = ip_profile(company, owner, address=f"192.0.2.{n + 1}", name=f"PBX {n}")
        EdgeProvisioning.objects.create(profile=profile, node=primary, state="synced", synced_at=SYNCED_AT)
    states = listed()

    assert states["PBX 0"] == [("edge1", "pending"), ("edge2", "pending")]
    assert states["PBX 7"] == [("edge1", "synced"), ("edge2", "pending")]


def test_the_schema_describes_provisioning_per_node(db: Any) -> None:
    schema = yaml.safe_load(Client().get("/api/v1/schema/").content)

    profile = schema["components"]["schemas"]["SipProfileOutput"]["properties"]
    assert profile["provisioning"]["type"] == "array"
    item = profile["provisioning"]["items"]["$ref"].rsplit("/", 1)[-1]
    node = schema["components"]["schemas"][item]
    assert set(node["properties"]) == {"node", "role", "public_host", "state", "synced_at", "error", "attempts"}
    assert set(node["required"]) == set(node["properties"])
    assert "provisioning_error" not in profile


def test_the_profile_page_has_a_card_with_each_nodes_state(company: Any, owner: Any) -> None:
    primary, secondary = two_nodes()
    profile, _ = digest_profile(company, owner)
    EdgeProvisioning.objects.create(profile=profile, node=primary, state="synced", synced_at=SYNCED_AT)
    EdgeProvisioning.objects.create(
        profile=profile, node=secondary, state="failed", error="JSON-RPC timed out", attempts=4
    )
    page = Client()
    page.force_login(owner)

    html = page.get(f"/sip-profiles/{profile.public_id}/").content.decode()

    card = html[html.index('id="profile-edge"') :]
    card = card[: card.index("</div>\n</div>") if "</div>\n</div>" in card else len(card)]
    for text in ("edge1", "sip1.example.com", "Provisioned", "edge2", "Failed", "4 failed attempts"):
        assert text in card
    # The technical reason is for staff: the customer reads a plain sentence.
    assert "the SIP edge is not taking the change right now" in card
    assert "JSON-RPC timed out" not in card
    assert "retired" not in card
    owner.is_staff = True
    owner.save(update_fields=["is_staff"])
    assert "JSON-RPC timed out" in page.get(f"/sip-profiles/{profile.public_id}/").content.decode()
    assert SipProfile.objects.get(pk=profile.pk).provisioning_state == "pending"
