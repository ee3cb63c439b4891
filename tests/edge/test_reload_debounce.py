"""The address table's reload is debounced across workers (apps/edge/reloads.py): two real
Celery workers syncing many IP profiles at once reload the node at most once per interval, and
the last change is still loaded (a trailing reload), so every address is enforced."""

from __future__ import annotations

import itertools
import re
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from apps.edge.models import EdgeNode, EdgeProvisioning
from apps.edge.reloads import INTERVAL_MS
from apps.edge.tasks import edge_sync_profile_task
from tests.edge.conftest import Edge, free_port, scenario, sipp_command
from tests.edge.test_edge_calls import US_NUMBER
from tests.edge.test_edge_ip_profiles import from_address
from tests.edge.test_policy_marks import carried_through
from tests.factories import CompanyFactory, member, move_profile_balance
from tests.helpers.workers import celery_worker
from tests.sip_profiles.factories import ip_profile

PROFILES = 24
RELOAD_LINE = re.compile(
    r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) INFO apps\.edge\.reloads permissions\.addressReload on"
)


def loaded_addresses(edge: Edge) -> set[tuple[int, str]]:
    """(group, address) of every row in the node's memory (permissions.addressDump)."""
    return {(int(row["group"]), str(row["item"]["ip"])) for row in edge.rpc("permissions.addressDump") or []}


def reload_times(*logs: str) -> list[datetime]:
    stamps = [m.group(1) for log in logs for line in log.splitlines() if (m := RELOAD_LINE.match(line))]
    return sorted(datetime.strptime(s, "%Y-%m-%d %H:%M:%S,%f") for s in stamps)  # noqa: DTZ007 (one clock)


@pytest.mark.django_db(transaction=True)
def test_two_workers_syncing_many_ip_profiles_at_once_reload_at_most_once_per_interval_and_load_every_address(
    edge: Edge, edge_node: EdgeNode, settings: Any, tmp_path: Path
) -> None:
    company = CompanyFactory(name="Reload Ltd")
    owner = member(company)
    settings.EDGE_SYNC_ENABLED = False  # the profiles are made here; the workers sync them
    port = free_port()
    profiles = [
        ip_profile(company, owner, f"127.0.9.{i}", f"Branch {i}", port=port, tls_required=False, srtp_required=False)
        for i in range(1, PROFILES + 1)
    ]
    last = profiles[-1]
    move_profile_balance(last, "10")
    wanted = {(p.pk, f"127.0.9.{i}") for i, p in enumerate(profiles, start=1)}
    assert not wanted & loaded_addresses(edge)

    queue = f"test-{uuid.uuid4().hex[:12]}"
    env = {"EDGE_SYNC_ENABLED": "true", "TEST_CELERY_WORKER": "1"}
    with (
        celery_worker(tmp_path / "one.log", env=env, queue=queue) as one,
        celery_worker(tmp_path / "two.log", env=env, queue=queue) as two,
    ):
        for profile in profiles:
            edge_sync_profile_task.apply_async((profile.pk,), queue=queue)
        deadline = time.monotonic() + 30
        while not wanted <= loaded_addresses(edge):
            assert time.monotonic() < deadline, (
                f"not loaded: {edge.rpc('permissions.addressDump')}\n{one.output()[-3000:]}\n{two.output()[-3000:]}"
            )
            time.sleep(0.2)
        synced = EdgeProvisioning.objects.filter(node=edge_node, state=EdgeProvisioning.State.SYNCED)
        while synced.count() < PROFILES:
            assert time.monotonic() < deadline, "not every profile was recorded as synced"
            time.sleep(0.2)
        logs = (one.output(), two.output())

    # Both workers synced profiles: the syncs ran side by side.
    assert all("edge_sync_profile_task" in log and "succeeded" in log for log in logs), logs
    reloads = reload_times(*logs)
    assert 1 <= len(reloads) < PROFILES, reloads
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(reloads)]
    # The interval is the lock's (INTERVAL_MS), taken before each reload; a line is logged after
    # its reload returns, so two lines may be closer by one reload's duration (slow when loaded).
    # Without the debounce, 24 syncs in about a second would reload tens of milliseconds apart.
    assert all(gap >= INTERVAL_MS / 1000 - 0.5 for gap in gaps), gaps

    # The last profile's address calls out: it is enforced, not only listed.
    command = sipp_command(edge, scenario(tmp_path, "invite_uac.xml"), service=US_NUMBER, port=port)
    carried_through(edge, tmp_path, from_address(command, "127.0.9.24"))
