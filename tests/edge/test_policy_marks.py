"""What the bundles and billing do to a profile's calls reaches the edge through the one marking
function (sip_profile_mark_for_provisioning) and the real sync task: minutes used up, a bundle
period renewed, a profile suspended for an unpaid charge. Each test makes the change through its
service, lets the commit queue the task, and reads the node (htable and database), then calls."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import time_machine
from django.utils import timezone

from apps.billing.charges.services import charges_settle
from apps.bundles.models import BundlePeriod
from apps.bundles.services import bundles_buy, bundles_renew
from apps.core.actor import Actor
from apps.edge.models import EdgeNode
from apps.rating.engine import rate_pending
from apps.sip_profiles.models import SipProfile
from tests.bundles.helpers import credit
from tests.edge.conftest import CarrierUas, Edge, explain, run_sipp
from tests.edge.test_call_policy_push import marks
from tests.edge.test_edge_calls import US_NUMBER, call, refused, synced
from tests.rating.factories import Call, queue_calls, small_deck
from tests.sip_profiles.factories import digest_profile


def node_policy(edge: Edge, profile: SipProfile, name: str) -> tuple[int, str | None]:
    """The attribute as the node's memory and its database hold it."""
    key = f"{profile.pk}:{name}"
    memory = edge.rpc("htable.get", "prof", key)["item"]["value"]
    with psycopg.connect(edge.node.database_url) as conn:
        row = conn.execute("SELECT key_value FROM sm_profile_attrs WHERE key_name = %s", (key,)).fetchone()
    return int(memory), (row[0] if row else None)


def bundle_profile(company: Any, owner: Any) -> tuple[SipProfile, str]:
    """A profile with one US minute bundle and no balance of its own: only US calls on bundle
    minutes may go out."""
    credit(company)
    profile, password = digest_profile(company, owner, tls_required=False, srtp_required=False)
    bundles_buy(actor=Actor(user=owner), profile=profile, count=1)
    synced(profile)
    profile.refresh_from_db()
    return profile, password


def carried(edge: Edge, tmp_path: Path, profile: SipProfile, password: str) -> None:
    carried_through(edge, tmp_path, call(edge, tmp_path, number=US_NUMBER, profile=profile, password=password))


def carried_through(edge: Edge, tmp_path: Path, command: list[str]) -> None:
    """The SIPp call `command` reaches the carrier (a SIPp UAS), is answered and hung up."""
    uas = CarrierUas(edge, tmp_path)
    try:
        result = run_sipp(command, edge=edge)
        assert result.returncode == 0, explain(command, result, edge)
        assert uas.wait() == 0
    finally:
        uas.stop()


def test_the_call_that_uses_up_the_bundle_minutes_turns_bundle_calls_off_at_the_edge(
    edge: Edge, edge_node: EdgeNode, company: Any, owner: Any, tmp_path: Path, django_capture_on_commit_callbacks: Any
) -> None:
    small_deck(currency=company.currency)
    profile, password = bundle_profile(company, owner)
    assert node_policy(edge, profile, "bundle") == (1, "1")
    assert node_policy(edge, profile, "out") == (0, "0")
    carried(edge, tmp_path, profile, password)
    # All but one minute used (as rating leaves a period; the engine has its own tests) ...
    period = BundlePeriod.objects.get(sip_profile=profile)
    BundlePeriod.objects.filter(pk=period.pk).update(minutes_used=period.minutes_included - 1)

    # ... and a two-minute US call is rated: the period is used up.
    queue_calls(
        [
            Call(
                edge_id=1,
                profile_id=profile.pk,
                company_id=company.pk,
                currency=company.currency,
                callee=US_NUMBER,
                started_at=max(period.period_start, timezone.now() - timedelta(minutes=5)),
                billable=120,
            )
        ]
    )
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        rate_pending()

    assert marks(callbacks) == [profile.pk]
    assert node_policy(edge, profile, "bundle") == (0, "0")
    refused(edge, tmp_path, code=402, number=US_NUMBER, profile=profile, password=password)


def test_a_renewed_bundle_period_turns_bundle_calls_back_on_at_the_edge(
    edge: Edge, edge_node: EdgeNode, company: Any, owner: Any, tmp_path: Path, django_capture_on_commit_callbacks: Any
) -> None:
    profile, password = bundle_profile(company, owner)
    period = BundlePeriod.objects.get(sip_profile=profile)
    with time_machine.travel(period.period_end + timedelta(minutes=1), tick=False):
        # The period is over and not renewed yet: no minutes (the reconciliation's view of it).
        synced(profile)
        assert node_policy(edge, profile, "bundle") == (0, "0")
    refused(edge, tmp_path, code=402, number=US_NUMBER, profile=profile, password=password)

    with (
        time_machine.travel(period.period_end + timedelta(minutes=2), tick=False),
        django_capture_on_commit_callbacks(execute=True) as callbacks,
    ):
        assert bundles_renew()["renewed"] == 1

    assert marks(callbacks) == [profile.pk]
    assert node_policy(edge, profile, "bundle") == (1, "1")
    carried(edge, tmp_path, profile, password)


def test_a_profile_suspended_for_an_unpaid_charge_carries_no_calls_at_the_edge(
    edge: Edge, edge_node: EdgeNode, company: Any, owner: Any, tmp_path: Path, django_capture_on_commit_callbacks: Any
) -> None:
    # No credit: the channels' charge stays unpaid for its grace period, the profile active.
    profile, password = digest_profile(company, owner, tls_required=False, srtp_required=False)
    synced(profile)
    assert node_policy(edge, profile, "active") == (1, "1")

    with (
        time_machine.travel(timezone.now() + timedelta(days=7, hours=1), tick=False),
        django_capture_on_commit_callbacks(execute=True) as callbacks,
    ):
        assert charges_settle()["suspended"] == 1

    assert marks(callbacks) == [profile.pk]
    profile.refresh_from_db()
    assert profile.suspended_for_billing
    assert node_policy(edge, profile, "active") == (0, "0")
    refused(edge, tmp_path, code=403, number=US_NUMBER, profile=profile, password=password)
