"""The call policy is pushed again when it may have flipped: a rated call that empties a
profile's balance re-provisions it and the edge then refuses paid calls (402); a call that
leaves the balance above zero marks nothing."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from apps.edge.models import EdgeNode, EdgeProvisioning
from apps.edge.services import profile_changed
from apps.rating.engine import rate_pending
from apps.sip_profiles.models import SipProfile
from tests.edge.conftest import Edge
from tests.edge.test_edge_calls import provisioned, refused
from tests.rating.factories import Call, queue_calls, small_deck

UK_LANDLINE = "+442079460958"  # 0.008 a minute in small_deck (prefix 4420)


def rate_a_call(profile: SipProfile, *, seconds: int, edge_id: int) -> None:
    queue_calls(
        [
            Call(
                edge_id=edge_id,
                profile_id=profile.pk,
                company_id=profile.company_id,
                currency=profile.company.currency,
                callee=UK_LANDLINE,
                started_at=timezone.now() - timedelta(days=2),
                billable=seconds,
            )
        ]
    )
    assert rate_pending().charged == 1


def marks(callbacks: list[Any]) -> list[int]:
    return [c.args[0] for c in callbacks if getattr(c, "func", None) is profile_changed]


def test_a_call_that_empties_the_balance_reprovisions_the_profile_and_paid_calls_get_402(
    edge: Edge, edge_node: EdgeNode, company: Any, owner: Any, tmp_path: Path, django_capture_on_commit_callbacks: Any
) -> None:
    small_deck(currency=company.currency)
    profile, password = provisioned(company, owner, balance="10")
    assert edge.rpc("htable.get", "prof", f"{profile.pk}:out")["item"]["value"] == 1

    # 75,000 s at 0.008 a minute: exactly 10.0000, so the balance is 0 and paid calls stop.
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        rate_a_call(profile, seconds=75_000, edge_id=1)

    assert marks(callbacks) == [profile.pk]
    assert edge.rpc("htable.get", "prof", f"{profile.pk}:out")["item"]["value"] == 0
    assert EdgeProvisioning.objects.get(profile=profile, node=edge_node).state == "synced"
    refused(edge, tmp_path, code=402, number=UK_LANDLINE, profile=profile, password=password)


def test_a_call_that_leaves_the_balance_above_zero_marks_nothing(
    edge: Edge, edge_node: EdgeNode, company: Any, owner: Any, django_capture_on_commit_callbacks: Any
) -> None:
    small_deck(currency=company.currency)
    profile, _ = provisioned(company, owner, balance="10")

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        rate_a_call(profile, seconds=120, edge_id=2)

    assert marks(callbacks) == []
    profile.refresh_from_db()
    assert profile.provisioning_state == SipProfile.Provisioning.SYNCED
    assert EdgeProvisioning.objects.get(profile=profile, node=edge_node).state == "synced"


@pytest.mark.parametrize(("before", "move", "flips"), [("5", "-5", True), ("0", "1", True), ("5", "-1", False)])
def test_only_a_ledger_move_that_crosses_zero_marks_the_profile(
    company: Any, owner: Any, django_capture_on_commit_callbacks: Any, before: str, move: str, flips: bool
) -> None:
    from tests.factories import move_profile_balance
    from tests.sip_profiles.factories import digest_profile

    profile, _ = digest_profile(company, owner)
    if before != "0":
        move_profile_balance(profile, before)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        move_profile_balance(profile, move)

    assert marks(callbacks) == ([profile.pk] if flips else [])
