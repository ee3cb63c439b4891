"""A change to the blocked list (apps.rating's blocked prefixes, through their service) reaches
every node when it commits, per key (its row and its htable entry), without `edge_sync` or the
reconciliation; a burst of changes is pushed once, not once each."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from django.core.cache import cache

from apps.core.actor import Actor
from apps.edge import clients, services
from apps.edge.models import EdgeNode
from apps.rating.models import BlockedPrefix
from apps.rating.services import blocked_prefix_create, blocked_prefix_delete, blocked_prefix_update
from apps.sip_profiles.models import SipProfile
from tests.edge.conftest import Edge
from tests.edge.sip import Dialog, Message, Peer, sdp
from tests.edge.test_edge_calls import provisioned
from tests.helpers.races import overtaken_while_held

PBX_IP = "127.0.0.21"
JAMAICA = "+18765550123"  # a fraud-prone range staff may block; callable until they do


@pytest.fixture
def pbx(edge: Edge) -> Iterator[Peer]:
    peer = Peer(ip=PBX_IP, edge=("127.0.0.1", edge.node.sip_port))
    yield peer
    peer.close()


def within(seconds: float, check: Callable[[], bool]) -> bool:
    """Poll `check` until it is true or `seconds` have passed (a loaded machine is slow)."""
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def in_memory(edge: Edge, key: str) -> str | None:
    try:
        return str(edge.rpc("htable.get", "blocked", key)["item"]["value"])
    except clients.EdgeNodeError:
        return None  # "key not found"


def in_database(edge: Edge, key: str) -> str | None:
    with psycopg.connect(edge.node.database_url) as conn:
        row = conn.execute("SELECT key_value FROM sm_blocked WHERE key_name = %s", (key,)).fetchone()
    return row[0] if row else None


def place(pbx: Peer, profile: SipProfile, password: str, number: str) -> Message:
    assert profile.sip_username
    return Dialog.call(pbx, number, sdp(PBX_IP, 44000), user=profile.sip_username, password=password).final()


def carried(pbx: Peer, carrier: Peer, profile: SipProfile, password: str, number: str) -> None:
    """The call reaches the carrier, is answered and hung up."""
    assert profile.sip_username
    dialog = Dialog.call(pbx, number, sdp(PBX_IP, 44000), user=profile.sip_username, password=password)
    invite = carrier.expect_request("INVITE")
    assert invite.uri.startswith(f"sip:{number}@")
    carrier_dialog = Dialog.answering(carrier, invite, sdp("127.0.0.1", 45000))
    assert dialog.final().status == 200
    carrier_dialog.acked()
    dialog.request("BYE")
    carrier_dialog.answer_request("BYE")
    assert dialog.final_to("BYE").status == 200


def test_a_prefix_blocked_through_its_service_is_refused_at_once_and_callable_again_once_removed(
    edge: Edge,
    edge_node: EdgeNode,
    company: Any,
    owner: Any,
    pbx: Peer,
    carrier: Peer,
    django_capture_on_commit_callbacks: Any,
) -> None:
    profile, password = provisioned(company, owner)
    carried(pbx, carrier, profile, password, JAMAICA)
    staff = Actor.system()

    with django_capture_on_commit_callbacks(execute=True):
        blocked = blocked_prefix_create(
            actor=staff, country="US", prefix="+1876", kind="premium_rate", reason="Fraud range (+1 876)"
        )

    assert within(5, lambda: in_memory(edge, "+1876") == "Fraud range (+1 876)")
    assert in_database(edge, "+1876") == "Fraud range (+1 876)"
    final = place(pbx, profile, password, JAMAICA)
    assert final.status == 403
    assert 'text="Fraud range (+1 876)"' in final.header("Reason")
    assert carrier.nothing() == []

    # A new reason is the key's new value, on the node and in what callers are told.
    with django_capture_on_commit_callbacks(execute=True):
        blocked = blocked_prefix_update(
            actor=staff,
            blocked=blocked,
            country="US",
            prefix="+1876",
            kind="premium_rate",
            reason="Jamaica: fraud",
            exact=False,
        )
    assert within(5, lambda: in_memory(edge, "+1876") == "Jamaica: fraud")
    assert 'text="Jamaica: fraud"' in place(pbx, profile, password, JAMAICA).header("Reason")

    with django_capture_on_commit_callbacks(execute=True):
        blocked_prefix_delete(actor=staff, blocked=blocked)

    assert within(5, lambda: in_memory(edge, "+1876") is None)
    assert in_database(edge, "+1876") is None
    carried(pbx, carrier, profile, password, JAMAICA)


def test_a_change_that_does_not_commit_pushes_nothing(
    edge: Edge, edge_node: EdgeNode, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        blocked_prefix_create(actor=Actor.system(), country="*", prefix="+8816", kind="premium_rate", reason="Sat")

    assert [c for c in callbacks if c is services.blocked_prefixes_changed] == [services.blocked_prefixes_changed]
    assert in_memory(edge, "+8816") is None  # nothing before the commit (here: never)


def test_changes_committed_while_a_push_is_queued_ride_on_it_and_the_push_sends_only_what_differs(
    edge: Edge, edge_node: EdgeNode, monkeypatch: pytest.MonkeyPatch
) -> None:
    queued: list[Any] = []
    monkeypatch.setattr(services, "enqueue", lambda task, *args: queued.append(task) or True)
    cache.delete(services.BLOCKED_PUSH_QUEUED)

    # Three changes commit (no test transaction callbacks here: each listener call is made by
    # hand as on_commit would) while the first push waits in the queue.
    for prefix in ("+88160", "+88161", "+88162"):
        BlockedPrefix.objects.create(country="*", prefix=prefix, kind="premium_rate", reason=f"Sat {prefix}")
        services.blocked_prefixes_changed()
    assert len(queued) == 1

    calls: list[tuple[str, ...]] = []
    real_rpc = clients.rpc
    monkeypatch.setattr(
        clients, "rpc", lambda url, method, *p: calls.append((method, *map(str, p))) or real_rpc(url, method, *p)
    )
    [result] = services.edge_sync_blocked()

    assert result.error == ""
    assert sorted(c for c in calls if c[0] == "htable.sets") == [
        ("htable.sets", "blocked", p, f"Sat {p}") for p in ("+88160", "+88161", "+88162")
    ]
    assert [c for c in calls if c[0] in ("htable.reload", "htable.delete")] == []
    assert {p: in_memory(edge, p) for p in ("+88160", "+88161", "+88162")} == {
        p: f"Sat {p}" for p in ("+88160", "+88161", "+88162")
    }
    # The push has started: the next change queues a push of its own.
    services.blocked_prefixes_changed()
    assert len(queued) == 2
    # Pushed again with nothing new: not one call to the node.
    calls.clear()
    assert services.edge_sync_blocked()[0].changes == []
    assert calls == []
    BlockedPrefix.objects.filter(prefix__startswith="+8816").delete()
    services.edge_sync_blocked()


def test_a_bulk_change_is_one_reload_not_a_call_per_key(
    edge: Edge, edge_node: EdgeNode, monkeypatch: pytest.MonkeyPatch
) -> None:
    count = services.BLOCKED_PER_KEY_MAX + 50
    BlockedPrefix.objects.bulk_create(
        BlockedPrefix(country="*", prefix=f"+8817{i:04d}", kind="premium_rate", reason="Bulk") for i in range(count)
    )
    calls: list[str] = []
    real_rpc = clients.rpc
    monkeypatch.setattr(clients, "rpc", lambda url, method, *p: calls.append(method) or real_rpc(url, method, *p))

    [result] = services.edge_sync_blocked()

    assert result.error == ""
    assert calls == ["htable.reload"]
    assert in_memory(edge, "+88170123") == "Bulk"
    BlockedPrefix.objects.filter(prefix__startswith="+8817").delete()
    services.edge_sync_blocked()
    assert in_memory(edge, "+88170123") is None


@pytest.mark.django_db(transaction=True)
def test_a_push_that_read_the_list_before_a_change_cannot_overwrite_the_push_that_read_it(
    edge: Edge, edge_node: EdgeNode, monkeypatch: pytest.MonkeyPatch
) -> None:
    BlockedPrefix.objects.create(country="*", prefix="+88190", kind="premium_rate", reason="Old reason")
    services.edge_sync_blocked()
    assert in_memory(edge, "+88190") == "Old reason"

    # The first push is held up on its way to the node (a slow node), after it read the list;
    # the change commits meanwhile (its own push is the second run).
    finished = overtaken_while_held(
        monkeypatch,
        clients,
        "node_blocked_write",
        run=services.edge_sync_blocked,
        change=lambda: BlockedPrefix.objects.filter(prefix="+88190").update(reason="New reason"),
    )

    assert finished == ["first", "second"]
    assert (in_memory(edge, "+88190"), in_database(edge, "+88190")) == ("New reason", "New reason")
    BlockedPrefix.objects.filter(prefix="+88190").delete()
    services.edge_sync_blocked()
