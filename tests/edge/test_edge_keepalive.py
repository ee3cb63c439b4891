"""What the edge does with a PBX that has gone silent: a NATed contact that stops answering the
OPTIONS pings is dropped before its registration runs out (quick node: pings every 1 s, 3 s
keep-alive timeout, usrloc's timer every 1 s), and a call whose PBX stops answering the
dialog's keep-alives is ended, BYE to the carrier, its channel free (a node of its own with
Kamailio's shortest dialog keep-alive interval, 30 s: the slow test of the suite, about 45 s)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from apps.edge import services
from apps.edge.models import EdgeNode
from tests.edge.conftest import (
    Edge,
    forget_profiles,
    node_database,
    node_row,
    running_edge,
    wait_until,
)
from tests.edge.sip import Dialog, Peer, sdp
from tests.edge.test_edge_calls import US_NUMBER, provisioned
from tests.edge.test_edge_nat import NAT_EXPIRES, contacts, ok, registered_behind_nat

KA_INTERVAL = 30  # the dialog module's minimum in Kamailio 5.6 ("has to be at least 30")
FR_TIMER_MS = 4000  # an unanswered keep-alive is a 408 after 4 s (30 s by default)
# Then the dialog module ends the call 10 s later.
ENDS_BY = KA_INTERVAL + FR_TIMER_MS / 1000 + 10
PBX_IP = "127.0.0.27"


def test_a_nated_contact_that_stops_answering_its_pings_is_dropped_before_its_registration_expires(
    quick_edge: Edge, quick_edge_node: EdgeNode, company: Any, owner: Any, tmp_path: Path
) -> None:
    profile, password = provisioned(company, owner)
    user = str(profile.sip_username)
    port = registered_behind_nat(quick_edge, tmp_path, profile, password)
    registered = time.monotonic()
    try:
        # While the PBX answers, its contact stays, past the keep-alive timeout (3 s).
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as pbx:
            pbx.bind(("127.0.0.1", port))
            pbx.settimeout(2)
            while time.monotonic() - registered < 6:
                ping, sender = pbx.recvfrom(65535)
                pbx.sendto(ok(ping), sender)
            assert len(contacts(quick_edge, user)) == 1
            silent = time.monotonic()

            # Then it answers nothing: gone well before its 60 s registration would end.
            wait_until(lambda: contacts(quick_edge, user) == [], "the silent contact dropped", timeout=30)
        dropped = time.monotonic() - silent
        assert dropped < NAT_EXPIRES - 20, dropped
    finally:
        quick_edge.rpc("ul.rm", "location", user)


@pytest.fixture(scope="module")
def ka_edge(edge: Edge) -> Iterator[Edge]:
    """A node whose dialogs send keep-alives every 30 s, checked every second (and whose
    longest call is the default 4 h: only the keep-alives can end a call here)."""
    defines = [f"EDGE_DLG_KA_INTERVAL={KA_INTERVAL}", "EDGE_DLG_KA_TIMER=1", f"EDGE_TM_FR_TIMER={FR_TIMER_MS}"]
    with (
        node_database("ka") as url,
        running_edge(url, name="ka-edge", carrier_port=edge.carrier_port, extra_defines=defines) as running,
    ):
        yield running


@pytest.fixture
def ka_edge_node(ka_edge: Edge, edge_node: EdgeNode) -> Iterator[EdgeNode]:
    node = node_row(ka_edge)
    assert [r.error for r in services.edge_sync_global(node_names=[node.name])] == [""]
    yield node
    forget_profiles(ka_edge)


def test_a_call_whose_pbx_stops_answering_the_dialogs_keep_alives_is_ended_and_gives_its_channel_back(
    ka_edge: Edge, ka_edge_node: EdgeNode, company: Any, owner: Any
) -> None:
    profile, password = provisioned(company, owner, channels=1)
    assert profile.sip_username
    pbx = Peer(ip=PBX_IP, edge=("127.0.0.1", ka_edge.node.sip_port))
    carrier = Peer.bound(ip="127.0.0.1", port=ka_edge.carrier_port, edge=("127.0.0.1", ka_edge.node.sip_port))
    try:
        dialog = Dialog.call(pbx, US_NUMBER, sdp(PBX_IP, 43000), user=profile.sip_username, password=password)
        invite = carrier.expect_request("INVITE")
        carrier_dialog = Dialog.answering(carrier, invite, sdp("127.0.0.28", 44000))
        assert dialog.final().status == 200
        carrier_dialog.acked()
        answered = time.monotonic()
        assert ka_edge.channels_in_use(profile.pk) == 1

        # From now on the PBX answers nothing; the carrier answers its keep-alives, until the
        # edge hangs up on it.
        pinged = 0
        while True:
            left = ENDS_BY + 8 - (time.monotonic() - answered)
            assert left > 0, f"the edge did not end the call ({pinged} keep-alives to the carrier)"
            request = carrier.expect(lambda m: m.method in ("OPTIONS", "BYE"), timeout=left, what="OPTIONS or BYE")
            carrier.respond(request, 200, "OK")
            if request.method == "BYE":
                break
            pinged += 1
        ended = time.monotonic() - answered
    finally:
        pbx.close()
        carrier.close()

    assert pinged >= 1  # the carrier's side of the call was kept alive, the PBX's was not
    assert KA_INTERVAL <= ended <= ENDS_BY + 8, ended
    # The channel comes back when the dialog goes, once both of the edge's BYEs are done: the
    # carrier's is answered, the silent PBX's times out (fr_timer) - the PBX can take it again.
    wait_until(
        lambda: ka_edge.channels_in_use(profile.pk) == 0,
        "the channel given back after the BYE to the silent PBX timed out",
        timeout=FR_TIMER_MS / 1000 + 4,
    )
