"""A trunk's live state (issue 11, item 3): GET sip-profiles/{id}/status/ and the profile page's
card ask the real nodes over JSON-RPC what the PBX registered and how many calls are up, and a
node that is down or never answers is shown as not answering, within the time bound."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from apps.companies.models import Role
from apps.core.actor import Actor
from apps.edge import clients, live
from apps.edge.live import Registration
from apps.edge.models import EdgeNode
from apps.sip_profiles.models import SipProfile
from apps.sip_profiles.services import sip_profile_delete
from tests.conftest import client_as
from tests.edge.conftest import CarrierUas, Edge, explain, free_port, run_sipp, scenario, sipp_command
from tests.edge.sip import Dialog, Peer, register, sdp
from tests.edge.test_edge_calls import US_NUMBER, provisioned, synced
from tests.edge.test_edge_nat import NAT_EXPIRES
from tests.edge.test_inbound import DID, Pbx, carrier_call, routed
from tests.factories import member
from tests.helpers.queries import SIGNED_IN, expect_queries
from tests.sip_profiles.factories import ip_profile

PBX_IP = "127.0.0.31"
USER_AGENT = "Acme PBX 7.2 (live-state test)"


def status_url(profile: SipProfile) -> str:
    return f"/api/v1/sip-profiles/{profile.public_id}/status/"


def status(api: APIClient, profile: SipProfile) -> dict[str, Any]:
    response = api.get(status_url(profile))
    assert response.status_code == 200, response.content
    return dict(response.json())


def node_of(body: dict[str, Any], name: str) -> dict[str, Any]:
    return next(n for n in body["nodes"] if n["node"] == name)


def eventually(read: Callable[[], dict[str, Any]], until: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """Read until the condition holds (a loaded machine may be slow to pass a message on)."""
    deadline = time.monotonic() + 5
    body = read()
    while not until(body) and time.monotonic() < deadline:
        time.sleep(0.1)
        body = read()
    return body


@contextmanager
def rpc_server(handle: Callable[[socket.socket, threading.Event], None]) -> Iterator[str]:
    """A JSON-RPC URL on loopback whose connections `handle` is given in turn (with the event
    set at the end); every connection is closed and the thread joined at the end."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    server.settimeout(0.1)
    held: list[socket.socket] = []
    stopping = threading.Event()

    def serve() -> None:
        while not stopping.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            held.append(conn)
            handle(conn, stopping)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}/RPC"
    finally:
        stopping.set()
        thread.join(timeout=5)
        for conn in held:
            conn.close()
        server.close()


def never_answer(conn: socket.socket, stopping: threading.Event) -> None:
    """A hung node: the connection is accepted and held open, and nothing is ever sent."""


def trickle(conn: socket.socket, stopping: threading.Event) -> None:
    """Headers at once, then one byte of body every 0.2 s: no single read ever times out."""
    conn.recv(65535)
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n")
    while not stopping.wait(0.2):
        try:
            conn.sendall(b" ")
        except OSError:
            return


def broken_node(name: str, rpc_url: str, edge: Edge) -> EdgeNode:
    return EdgeNode.objects.create(
        name=name,
        role=EdgeNode.Role.SECONDARY,
        sip_host="127.0.0.1",
        sip_port=free_port(),
        rpc_url=rpc_url,
        database_url=edge.node.database_url,
    )


def test_a_registered_pbx_shows_on_the_node_it_registered_to_with_contact_user_agent_and_expiry_until_it_unregisters(
    edge: Edge, edge_node: EdgeNode, quick_edge: Edge, quick_edge_node: EdgeNode, company: Any, owner: Any
) -> None:
    profile, password = provisioned(company, owner, channels=3)
    api = client_as(owner)
    before = status(api, profile)
    assert (before["registration_applies"], before["registered"], before["complete"]) == (True, False, True)
    assert [(n["node"], n["reachable"], n["registered"], n["registrations"]) for n in before["nodes"]] == [
        ("test-edge", True, False, []),
        ("quick-edge", True, False, []),
    ]

    pbx = Peer(ip=PBX_IP, edge=("127.0.0.1", edge.node.sip_port))
    try:
        assert register(pbx, profile.sip_username or "", password, expires=120, user_agent=USER_AGENT).status == 200
        body = status(api, profile)
        primary = node_of(body, "test-edge")
        assert (body["registered"], primary["registered"], primary["error"]) == (True, True, "")
        [contact] = primary["registrations"]
        assert contact["contact"] == f"sip:peer@{PBX_IP}:{pbx.port}"
        assert contact["user_agent"] == USER_AGENT
        assert 110 <= contact["expires_in"] <= 120
        assert contact["socket"] == f"udp:127.0.0.1:{edge.node.sip_port}"
        # Registered on the primary only: the secondary has no contact for it.
        assert node_of(body, "quick-edge")["registered"] is False

        assert register(pbx, profile.sip_username or "", password, expires=0, user_agent=USER_AGENT).status == 200
        after = status(api, profile)
    finally:
        pbx.close()
    assert after["registered"] is False
    assert node_of(after, "test-edge")["registrations"] == []


def test_a_pbx_behind_nat_shows_the_address_it_registered_from_and_its_short_expiry(
    edge: Edge, edge_node: EdgeNode, company: Any, owner: Any, tmp_path: Path
) -> None:
    profile, password = provisioned(company, owner)
    user = str(profile.sip_username)
    port = free_port()
    file = scenario(tmp_path, "register_nat.xml")  # SIPp: Contact 192.168.1.10:5060, sent from 127.0.0.1
    file.write_text(file.read_text().replace("EXPIRES_RE", f"{NAT_EXPIRES}([^0-9]|$)"))
    command = sipp_command(edge, file, service=user, user=user, password=password, port=port)
    try:
        result = run_sipp(command, edge=edge)
        assert result.returncode == 0, explain(command, result, edge)
        body = status(client_as(owner), profile)
        browser = Client()
        browser.force_login(owner)
        card = browser.get(reverse("sip-profile-status", args=[profile.public_id]), HTTP_HX_REQUEST="true")
    finally:
        edge.rpc("ul.rm", "location", user)  # usrloc's memory outlives the test's rows

    [contact] = node_of(body, "test-edge")["registrations"]
    assert contact["contact"].startswith(f"sip:{user}@192.168.1.10:5060")
    assert contact["received"] == f"sip:127.0.0.1:{port}"
    assert 0 < contact["expires_in"] <= NAT_EXPIRES
    assert f'<span class="muted">from</span> <span class="mono">sip:127.0.0.1:{port}</span>' in card.content.decode()


def test_a_call_in_progress_takes_one_of_the_profiles_channels_and_none_once_it_is_hung_up(
    edge: Edge, edge_node: EdgeNode, company: Any, owner: Any, tmp_path: Path
) -> None:
    profile, password = provisioned(company, owner, channels=3)
    api = client_as(owner)
    uas = CarrierUas(edge, tmp_path)  # SIPp: answers, then holds the call until the PBX's BYE
    pbx = Peer(ip=PBX_IP, edge=("127.0.0.1", edge.node.sip_port))
    try:
        dialog = Dialog.call(pbx, US_NUMBER, sdp(PBX_IP, 43100), user=profile.sip_username, password=password)
        assert dialog.final(timeout=10).status == 200

        during = eventually(lambda: status(api, profile), lambda b: b["active_calls"] == 1)
        assert (during["active_calls"], during["channels"]) == (1, 3)
        assert node_of(during, "test-edge")["active_calls"] == 1

        dialog.request("BYE")
        assert dialog.final_to("BYE").status == 200
        assert uas.wait() == 0
    finally:
        pbx.close()
        uas.stop()
    after = eventually(lambda: status(api, profile), lambda b: b["active_calls"] == 0)
    assert (after["active_calls"], node_of(after, "test-edge")["active_calls"]) == (0, 0)


def test_a_node_that_refuses_and_one_that_never_answers_are_shown_as_not_answering_within_a_second(
    edge: Edge, edge_node: EdgeNode, company: Any, owner: Any, settings: Any
) -> None:
    settings.EDGE_STATUS_TIMEOUT_MS = 600
    profile, _ = provisioned(company, owner)
    api = client_as(owner)
    browser = Client()
    browser.force_login(owner)
    status_page = reverse("sip-profile-status", args=[profile.public_id])
    timed: dict[str, float] = {}

    def timing(name: str, get: Callable[[], Any]) -> Any:
        started = time.monotonic()
        result = get()
        timed[name] = time.monotonic() - started
        return result

    # Once before timing: a process's first template render loads every tag library (about
    # a second on a busy machine), a cost of its start, not of the nodes.
    assert browser.get(status_page, HTTP_HX_REQUEST="true").status_code == 200
    with rpc_server(never_answer) as hung_url:
        # Added after the sync: the sync has its own bounds and retries; this is about reads.
        broken_node("refusing-edge", f"http://127.0.0.1:{free_port()}/RPC", edge)
        broken_node("hung-edge", hung_url, edge)

        body = timing("the API", lambda: status(api, profile))
        card = timing("the card's poll", lambda: browser.get(status_page, HTTP_HX_REQUEST="true"))
        page = timing("the card as a page", lambda: browser.get(status_page))
        detail = timing("the profile page", lambda: browser.get(f"/sip-profiles/{profile.public_id}/"))
        # The calls still waiting on the hung node when the answer went out end at their own
        # deadline, while it still holds their connections: nothing is left running.
        deadline = time.monotonic() + 3
        while (left := [t.name for t in threading.enumerate() if t.name.startswith("edge-live")]) and (
            time.monotonic() < deadline
        ):
            time.sleep(0.05)
        assert left == []

    assert all(seconds < 1.0 for seconds in timed.values()), timed
    assert (body["complete"], body["nodes_answering"]) == (False, 1)
    assert node_of(body, "test-edge") == {
        "node": "test-edge",
        "role": "primary",
        "reachable": True,
        "error": "",
        "registered": False,
        "registrations": [],
        "active_calls": 0,
    }
    refusing, hung = node_of(body, "refusing-edge"), node_of(body, "hung-edge")
    assert (refusing["reachable"], refusing["registered"], refusing["active_calls"]) == (False, None, None)
    assert "refused" in refusing["error"].lower()
    assert (hung["reachable"], hung["error"]) == (False, "no answer within 600 ms")

    for response in (card, page):
        assert response.status_code == 200
        html = response.content.decode()
        assert html.count("Not answering") == 2
        # The reason is the logs' and staff's: the customer reads a plain sentence.
        assert html.count("The SIP edge is not answering right now") == 2
        assert "no answer within 600 ms" not in html
        assert "0</strong> of 2 channels in use" in html
    assert "<html" not in card.content.decode()  # htmx swaps in the content only
    # The profile page never waits for the nodes: its card asks once shown, then every 5 s.
    assert detail.status_code == 200
    html = detail.content.decode()
    assert f'hx-get="{status_page}" hx-trigger="load, every 5s"' in html
    assert "Not answering" not in html


def test_a_node_that_trickles_its_answer_is_cut_off_at_the_deadline() -> None:
    with rpc_server(trickle) as url:
        started = time.monotonic()
        with pytest.raises(clients.EdgeNodeError, match="no whole answer within 500 ms"):
            clients.rpc(url, "core.uptime", timeout=0.5)
        elapsed = time.monotonic() - started
    # Each read gets a byte within 0.2 s: only the deadline ends it (at most one read late).
    assert 0.5 <= elapsed < 0.9, elapsed


def test_a_call_a_busy_machine_never_started_is_a_node_not_answering_not_an_error() -> None:
    # The pool's shutdown cancels a call still queued when the wait ends (a loaded server).
    answered, queued = Future[int](), Future[list[Registration]]()
    answered.set_result(2)
    queued.cancel()
    node = EdgeNode(name="busy-edge", role=EdgeNode.Role.PRIMARY)

    state = live._node_state(node, answered, queued, 0.6)

    assert (state.reachable, state.error, state.active_calls, state.registered) == (
        False,
        "no answer within 600 ms",
        None,
        None,
    )


def test_an_ip_profile_is_said_not_to_register_and_its_calls_are_counted(
    edge: Edge, edge_node: EdgeNode, company: Any, owner: Any, settings: Any
) -> None:
    settings.ALLOW_PRIVATE_SIP_ADDRESSES = True
    profile = ip_profile(company, owner, address="127.0.0.32", channels=2)
    synced(profile)
    api = client_as(owner)

    body = status(api, profile)

    assert (body["auth_method"], body["registration_applies"], body["registered"]) == ("ip", False, None)
    assert (body["active_calls"], body["channels"]) == (0, 2)
    assert node_of(body, "test-edge") == {
        "node": "test-edge",
        "role": "primary",
        "reachable": True,
        "error": "",
        "registered": None,
        "registrations": None,
        "active_calls": 0,
    }
    browser = Client()
    browser.force_login(owner)
    html = browser.get(reverse("sip-profile-status", args=[profile.public_id]), HTTP_HX_REQUEST="true")
    assert "An IP profile is recognised by its address; it does not register." in html.content.decode()


def test_an_inbound_call_to_an_ip_profiles_number_counts_against_its_channels_while_it_lasts(
    edge: Edge, edge_node: EdgeNode, company: Any, owner: Any, tmp_path: Path, django_capture_on_commit_callbacks: Any
) -> None:
    port = free_port()
    profile = ip_profile(company, owner, "127.0.0.1", port=port, channels=2, tls_required=False, srtp_required=False)
    routed(company, owner, profile, name="front-desk", number=DID, capture=django_capture_on_commit_callbacks)
    api = client_as(owner)
    pbx = Pbx(tmp_path, port)  # SIPp: the PBX answers and holds until the carrier's BYE
    carrier = subprocess.Popen(carrier_call(edge, tmp_path, to=DID, hold_ms=4000))  # noqa: S603
    try:
        during = eventually(lambda: status(api, profile), lambda b: b["active_calls"] == 1)
        assert (during["active_calls"], during["channels"], during["registered"]) == (1, 2, None)
        assert carrier.wait(timeout=20) == 0
        assert pbx.wait() == 0
    finally:
        if carrier.poll() is None:
            carrier.kill()
            carrier.wait()
        pbx.stop()
    after = eventually(lambda: status(api, profile), lambda b: b["active_calls"] == 0)
    assert after["active_calls"] == 0


def test_the_status_is_the_profiles_company_only_and_any_member_may_read_it(
    edge: Edge, edge_node: EdgeNode, company: Any, owner: Any, other_company: Any
) -> None:
    profile, _ = provisioned(company, owner, balance="")  # no credit held: it may be deleted
    viewer = member(company, Role.VIEWER)
    stranger = member(other_company, Role.OWNER)

    assert client_as(viewer).get(status_url(profile)).status_code == 200
    assert client_as(stranger).get(status_url(profile)).status_code == 404
    assert client_as(owner).post(status_url(profile)).status_code == 405
    assert APIClient().get(status_url(profile)).status_code in (401, 403)
    page = Client()
    page.force_login(stranger)
    assert page.get(reverse("sip-profile-status", args=[profile.public_id])).status_code == 404
    # The card's poll after the session ended reloads the page (to sign in), and stops once
    # the profile is deleted, instead of swapping a sign-in page or an error into the card.
    poll = Client().get(reverse("sip-profile-status", args=[profile.public_id]), HTTP_HX_REQUEST="true")
    assert (poll.status_code, poll.headers.get("HX-Refresh")) == (200, "true")

    api = client_as(owner)
    with expect_queries(*SIGNED_IN, "the profile", "the enabled edge nodes"):
        assert api.get(status_url(profile)).status_code == 200

    sip_profile_delete(actor=Actor(user=owner), profile=profile)
    page.force_login(owner)
    assert page.get(reverse("sip-profile-status", args=[profile.public_id]), HTTP_HX_REQUEST="true").status_code == 286
    assert page.get(reverse("sip-profile-status", args=[profile.public_id])).status_code == 404
