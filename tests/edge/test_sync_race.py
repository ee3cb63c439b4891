"""Two syncs of one profile at once do not interleave: the one that read the profile before a
change cannot write its stale state after the one that read the change."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from apps.core.actor import Actor
from apps.edge import clients, services
from apps.edge.models import EdgeNode
from apps.sip_profiles.services import sip_profile_update
from tests.edge.conftest import Edge
from tests.factories import CompanyFactory, member
from tests.helpers.races import overtaken_while_held
from tests.sip_profiles.factories import digest_profile


def node_channels(edge: Edge, profile_id: int) -> tuple[str | None, Any]:
    with psycopg.connect(edge.node.database_url) as conn:
        row = conn.execute(
            "SELECT key_value FROM sm_profile_attrs WHERE key_name = %s", (f"{profile_id}:channels",)
        ).fetchone()
    return (row[0] if row else None), edge.rpc("htable.get", "prof", f"{profile_id}:channels")["item"]["value"]


@pytest.mark.django_db(transaction=True)
def test_a_sync_that_read_the_old_state_cannot_overwrite_the_newer_one(
    edge: Edge, edge_node: EdgeNode, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    company = CompanyFactory(name="Race Ltd")
    owner = member(company)
    profile, _ = digest_profile(company, owner, tls_required=False, srtp_required=False)
    services.edge_sync_profile(profile_id=profile.pk)
    assert node_channels(edge, profile.pk) == ("2", 2)

    def change() -> None:
        # Its own sync is the second run.
        settings.EDGE_SYNC_ENABLED = False
        sip_profile_update(actor=Actor(user=owner), profile=profile, channels=1)

    # The first sync is held up on its way to the node (a slow node), after it read the state.
    finished = overtaken_while_held(
        monkeypatch,
        clients,
        "node_profile_write",
        run=lambda: services.edge_sync_profile(profile_id=profile.pk),
        change=change,
    )

    assert finished == ["first", "second"]
    assert node_channels(edge, profile.pk) == ("1", 1)
