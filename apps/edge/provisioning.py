"""Where each profile stands on each edge node: read for the profile page and the API (through
apps.sip_profiles.hooks, which sip_profiles reads without importing the edge), and marked
pending when a change is committed."""

from __future__ import annotations

from collections.abc import Collection

from django.db.models import FilteredRelation, Q

from apps.edge.models import EdgeNode, EdgeProvisioning
from apps.sip_profiles.hooks import NodeProvisioning


def provisioning_by_profile(profile_ids: Collection[int]) -> dict[int, list[NodeProvisioning]]:
    """{profile id: one entry per enabled node, primary first}, in one query whatever the
    number of profiles: the enabled nodes LEFT JOINed to their rows for these profiles. A node
    with no row for a profile (it was never synced there, e.g. a node added since) is pending."""
    ids = sorted(set(profile_ids))
    if not ids:
        return {}
    rows = (
        EdgeNode.objects.filter(enabled=True)
        .annotate(row=FilteredRelation("provisioning", condition=Q(provisioning__profile_id__in=ids)))
        .order_by("role", "name")
        .values_list(
            "pk",
            "name",
            "role",
            "public_host",
            "row__profile_id",
            "row__state",
            "row__synced_at",
            "row__error",
            "row__attempts",
        )
    )
    nodes: dict[int, tuple[str, str, str]] = {}
    found: dict[tuple[int, int], NodeProvisioning] = {}
    for node_id, name, role, public_host, profile_id, state, synced_at, error, attempts in rows:
        nodes.setdefault(node_id, (name, role, public_host))
        if profile_id is not None:
            found[(profile_id, node_id)] = NodeProvisioning(
                node=name,
                role=role,
                public_host=public_host,
                state=state,
                synced_at=synced_at,
                error=error if state == EdgeProvisioning.State.FAILED else "",
                attempts=attempts,
            )
    return {
        pid: [
            found.get((pid, node_id))
            or NodeProvisioning(
                node=name,
                role=role,
                public_host=public_host,
                state=EdgeProvisioning.State.PENDING,
                synced_at=None,
                error="",
                attempts=0,
            )
            for node_id, (name, role, public_host) in nodes.items()
        ]
        for pid in ids
    }


def provisioning_mark_pending(profile_id: int) -> None:
    """A change of the profile was committed: each node's row waits for the sync (a failed row
    keeps its error and attempt count until an attempt succeeds)."""
    EdgeProvisioning.objects.filter(profile_id=profile_id, state=EdgeProvisioning.State.SYNCED).update(
        state=EdgeProvisioning.State.PENDING
    )
