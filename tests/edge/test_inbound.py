"""Inbound calls on real SIP traffic: a carrier (SIPp from 127.0.0.9, the test carrier's
inbound source) calls an Online Number or a business account name, and the edge, provisioned
by the real sync task, delivers it to the PBX (a SIPp UAS) of the profile it is routed to."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import psycopg
import pytest
from django.conf import settings
from django.core.cache import cache

from apps.business_accounts.models import BusinessAccount
from apps.business_accounts.services import business_account_assign, business_account_create
from apps.core.actor import Actor
from apps.edge.models import EdgeNode
from apps.edge.services import RECONCILE_CURSOR
from apps.edge.tasks import edge_reconcile_task
from apps.numbers.models import NumberSubscription
from apps.numbers.services import number_assign
from apps.sip_profiles.models import SipProfile
from apps.sip_profiles.services import sip_profile_update
from tests.edge.conftest import (
    CARRIER_SOURCE,
    CarrierUas,
    Edge,
    explain,
    free_port,
    received,
    run_sipp,
    scenario,
    sipp_command,
)
from tests.edge.test_edge_calls import US_NUMBER, call, provisioned, refused
from tests.sip_profiles.factories import held_number, ip_profile

DID = "+442079460100"
CALLER = "+14155550142"


class Pbx:
    """A SIPp UAS playing the customer's PBX on `port` for `calls` calls, in the background;
    every message it receives is kept, so a test reads the INVITE that arrived."""

    def __init__(self, tmp_path: Path, port: int, calls: int = 1, timeout: int = 15) -> None:
        self.file = scenario(tmp_path, "carrier_uas.xml")
        self.messages = self.file.with_suffix(".msg.log")
        command = [
            "sipp",
            "-sf",
            str(self.file),
            "-i",
            "127.0.0.1",
            "-p",
            str(port),
            "-m",
            str(calls),
            "-timeout",
            f"{timeout}s",
            "-timeout_error",
            "-nostdin",
            "-trace_msg",
            "-message_file",
            str(self.messages),
        ]
        self.proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603
        time.sleep(0.2)  # bound before the first INVITE comes

    def wait(self) -> int:
        try:
            return self.proc.wait(timeout=20)
        finally:
            self.stop()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def invites(self) -> list[dict[str, str]]:
        """The INVITEs received: their Request-URI and headers (first value of each)."""
        text = self.messages.read_text() if self.messages.exists() else ""
        found = []
        for block in re.split(r"\n-{20,}[^\n]*\n", text):
            if "message received" not in block:
                continue
            lines = block.split("message received", 1)[1].splitlines()[1:]
            lines = [line.strip() for line in lines if line.strip()]
            if not lines or not lines[0].startswith("INVITE "):
                continue
            invite = {"ruri": lines[0].split()[1]}
            for line in lines[1:]:
                name, sep, value = line.partition(":")
                if sep and name.lower() not in invite:
                    invite[name.lower()] = value.strip()
            found.append(invite)
        return found


def carrier_call(
    edge: Edge, tmp_path: Path, *, to: str, host: str | None = None, caller: str = CALLER, hold_ms: int = 200
) -> list[str]:
    """The carrier's call to `to` (at `host`, default the edge's own address), from its inbound source."""
    file = scenario(tmp_path, "carrier_uac.xml")
    file.write_text(file.read_text().replace("RURI_HOST", host or edge.sip).replace("CALLER", caller))
    command = sipp_command(edge, file, service=to, hold_ms=hold_ms)
    command[command.index("-i") + 1] = CARRIER_SOURCE
    return command


def carrier_refused(edge: Edge, tmp_path: Path, *, to: str, code: int, reason: str, host: str | None = None) -> None:
    file = scenario(tmp_path, "carrier_refused_uac.xml", expect=code)
    file.write_text(file.read_text().replace("RURI_HOST", host or edge.sip).replace("REASON_RE", escape(reason)))
    command = sipp_command(edge, file, service=to)
    command[command.index("-i") + 1] = CARRIER_SOURCE
    result = run_sipp(command, edge=edge)
    assert result.returncode == 0, f"{to} expecting {code} ({reason}): " + explain(command, result, edge)


def routed(
    company: Any, owner: Any, profile: SipProfile, *, name: str, number: str | None, capture: Any
) -> tuple[BusinessAccount, NumberSubscription | None]:
    """A business account `name` routed to the profile, holding `number`, through the services
    (which mark the profile); the on-commit sync runs."""
    actor = Actor(user=owner)
    with capture(execute=True):
        account = business_account_create(actor=actor, company=company, name=name, display_name=name.title())
        business_account_assign(actor=actor, account=account, profile=profile)
        subscription = None
        if number:
            subscription = number_assign(
                actor=actor, subscription=held_number(company, number=number), business_account=account
            )
    return account, subscription


def registered(edge: Edge, tmp_path: Path, profile: SipProfile, password: str, port: int) -> None:
    user = str(profile.sip_username)
    command = sipp_command(
        edge, scenario(tmp_path, "register.xml", expect=200), service=user, user=user, password=password, port=port
    )
    result = run_sipp(command, edge=edge)
    assert result.returncode == 0, explain(command, result, edge)


def answered(edge: Edge, command: list[str], pbx: Pbx) -> dict[str, str]:
    try:
        result = run_sipp(command, edge=edge)
        assert result.returncode == 0, explain(command, result, edge)
        assert pbx.wait() == 0
    finally:
        pbx.stop()
    invites = pbx.invites()
    assert len(invites) == 1, invites
    return invites[0]


@pytest.mark.parametrize("balance", ["10", ""], ids=["with-credit", "no-balance"])
def test_a_carriers_call_to_an_online_number_reaches_the_registered_pbx_with_the_number_and_the_callers_number(
    edge: Edge,
    edge_node: EdgeNode,
    company: Any,
    owner: Any,
    tmp_path: Path,
    django_capture_on_commit_callbacks: Any,
    balance: str,
) -> None:
    profile, password = provisioned(company, owner, balance=balance)
    routed(company, owner, profile, name="reception", number=DID, capture=django_capture_on_commit_callbacks)
    port = free_port()
    registered(edge, tmp_path, profile, password, port)

    pbx = Pbx(tmp_path, port)
    invite = answered(edge, carrier_call(edge, tmp_path, to=DID), pbx)

    # At the registered contact, with the Online Number as the user; To and From as the carrier sent them.
    assert invite["ruri"] == f"sip:{DID}@127.0.0.1:{port}"
    assert invite["to"].startswith(f"<sip:{DID}@")
    assert invite["from"].startswith(f"<sip:{CALLER}@")
    assert invite["p-asserted-identity"].startswith(f"<sip:{CALLER}@")
    assert edge.channels_in_use(profile.pk) == 0


def test_an_ip_profile_receives_its_numbers_calls_at_its_address(
    edge: Edge, edge_node: EdgeNode, company: Any, owner: Any, tmp_path: Path, django_capture_on_commit_callbacks: Any
) -> None:
    port = free_port()
    profile = ip_profile(company, owner, "127.0.0.1", "Branch PBX", port=port, tls_required=False, srtp_required=False)
    routed(company, owner, profile, name="branch-office", number=DID, capture=django_capture_on_commit_callbacks)

    pbx = Pbx(tmp_path, port)
    invite = answered(edge, carrier_call(edge, tmp_path, to=DID), pbx)

    assert invite["ruri"] == f"sip:{DID}@127.0.0.1:{port};transport=udp"
    assert invite["p-asserted-identity"].startswith(f"<sip:{CALLER}@")


def test_an_ip_profile_with_only_a_network_has_no_address_to_receive_at(
    edge: Edge, edge_node: EdgeNode, company: Any, owner: Any, tmp_path: Path, django_capture_on_commit_callbacks: Any
) -> None:
    profile = ip_profile(
        company, owner, "198.51.100.0/28", "Site LAN", port=5060, tls_required=False, srtp_required=False
    )
    routed(company, owner, profile, name="site-lan", number=DID, capture=django_capture_on_commit_callbacks)

    carrier_refused(edge, tmp_path, to=DID, code=480, reason="no address to deliver to")


def test_a_call_to_a_business_account_name_reaches_its_pbx_from_a_carrier_and_from_another_profile(
    edge: Edge, edge_node: EdgeNode, company: Any, owner: Any, tmp_path: Path, django_capture_on_commit_callbacks: Any
) -> None:
    profile, password = provisioned(company, owner)
    routed(company, owner, profile, name="salesdesk", number=None, capture=django_capture_on_commit_callbacks)
    port = free_port()
    registered(edge, tmp_path, profile, password, port)

    pbx = Pbx(tmp_path, port)
    invite = answered(edge, carrier_call(edge, tmp_path, to="salesdesk", host=settings.SIP_DOMAIN), pbx)
    assert invite["ruri"] == f"sip:salesdesk@127.0.0.1:{port}"
    assert invite["to"] == f"<sip:salesdesk@{settings.SIP_DOMAIN}>"

    # Another profile of the platform, with no credit: the call stays on the platform, free,
    # and the callee sees the caller's caller ID; nothing reaches the carrier.
    caller, caller_password = provisioned(company, owner, name="Caller PBX", balance="")
    pbx = Pbx(tmp_path, port)
    invite = answered(edge, call(edge, tmp_path, number="salesdesk", profile=caller, password=caller_password), pbx)
    assert invite["ruri"] == f"sip:salesdesk@127.0.0.1:{port}"
    assert invite["p-asserted-identity"] == "<sip:anonymous@anonymous.invalid>"  # the caller has no caller ID
    assert (edge.channels_in_use(profile.pk), edge.channels_in_use(caller.pk)) == (0, 0)


@pytest.mark.parametrize(
    ("to", "host"),
    [
        ("+442079460999", None),  # an Online Number nobody routes
        ("442079460999", None),  # the same, as a carrier may write it
        ("nobody-here", "SIP_DOMAIN"),  # a name that is no business account
        ("unrouted", "SIP_DOMAIN"),  # a business account routed to no profile
    ],
)
def test_a_number_or_name_that_is_not_routed_gets_404(
    edge: Edge, edge_node: EdgeNode, company: Any, owner: Any, tmp_path: Path, to: str, host: str | None
) -> None:
    business_account_create(actor=Actor(user=owner), company=company, name="unrouted", display_name="Nobody")

    carrier_refused(edge, tmp_path, to=to, code=404, reason="not routed", host=settings.SIP_DOMAIN if host else None)


def test_a_profile_calling_a_name_that_is_not_routed_gets_404_and_reaches_no_carrier(
    edge: Edge, edge_node: EdgeNode, company: Any, owner: Any, tmp_path: Path, carrier_listener: Any
) -> None:
    profile, password = provisioned(company, owner)

    refused(edge, tmp_path, code=404, number="nobody-here", profile=profile, password=password)

    assert received(carrier_listener) == []


def test_a_routed_profile_that_is_not_registered_gets_480(
    edge: Edge, edge_node: EdgeNode, company: Any, owner: Any, tmp_path: Path, django_capture_on_commit_callbacks: Any
) -> None:
    profile, _ = provisioned(company, owner)
    routed(company, owner, profile, name="reception", number=DID, capture=django_capture_on_commit_callbacks)

    carrier_refused(edge, tmp_path, to=DID, code=480, reason="not registered")


def test_a_suspended_profile_receives_no_calls(
    edge: Edge, edge_node: EdgeNode, company: Any, owner: Any, tmp_path: Path, django_capture_on_commit_callbacks: Any
) -> None:
    profile, password = provisioned(company, owner)
    routed(company, owner, profile, name="reception", number=DID, capture=django_capture_on_commit_callbacks)
    registered(edge, tmp_path, profile, password, free_port())
    with django_capture_on_commit_callbacks(execute=True):
        sip_profile_update(actor=Actor(user=owner), profile=profile, status="suspended")

    carrier_refused(edge, tmp_path, to=DID, code=480, reason="profile suspended")
    carrier_refused(edge, tmp_path, to="reception", host=settings.SIP_DOMAIN, code=480, reason="profile suspended")


def test_inbound_and_outbound_calls_share_the_profiles_channels(
    edge: Edge, edge_node: EdgeNode, company: Any, owner: Any, tmp_path: Path, django_capture_on_commit_callbacks: Any
) -> None:
    profile, password = provisioned(company, owner, channels=2)
    routed(company, owner, profile, name="reception", number=DID, capture=django_capture_on_commit_callbacks)
    port = free_port()
    registered(edge, tmp_path, profile, password, port)

    uas = CarrierUas(edge, tmp_path)
    pbx = Pbx(tmp_path, port)
    held = [
        subprocess.Popen(call(edge, tmp_path, number=US_NUMBER, profile=profile, password=password, hold_ms=2500)),  # noqa: S603
        subprocess.Popen(carrier_call(edge, tmp_path, to=DID, hold_ms=2500)),  # noqa: S603
    ]
    try:
        deadline = time.monotonic() + 5
        while edge.channels_in_use(profile.pk) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert edge.channels_in_use(profile.pk) == 2

        # The third call is refused in either direction.
        carrier_refused(edge, tmp_path, to=DID, code=486, reason="all 2 channels in use")
        refused(edge, tmp_path, code=486, number=US_NUMBER, profile=profile, password=password)

        assert [p.wait(timeout=15) for p in held] == [0, 0]
        assert (uas.wait(), pbx.wait()) == (0, 0)
    finally:
        for p in held:
            if p.poll() is None:
                p.kill()
        uas.stop()
        pbx.stop()
    assert edge.channels_in_use(profile.pk) == 0


def test_a_number_routed_to_another_profile_arrives_at_the_new_pbx_after_the_sync(
    edge: Edge, edge_node: EdgeNode, company: Any, owner: Any, tmp_path: Path, django_capture_on_commit_callbacks: Any
) -> None:
    first, first_password = provisioned(company, owner, name="Old PBX")
    second, second_password = provisioned(company, owner, name="New PBX")
    _, subscription = routed(
        company, owner, first, name="reception", number=DID, capture=django_capture_on_commit_callbacks
    )
    new_account, _ = routed(
        company, owner, second, name="newdesk", number=None, capture=django_capture_on_commit_callbacks
    )
    old_port, new_port = free_port(), free_port()
    registered(edge, tmp_path, first, first_password, old_port)
    registered(edge, tmp_path, second, second_password, new_port)
    assert subscription is not None

    with django_capture_on_commit_callbacks(execute=True):
        number_assign(actor=Actor(user=owner), subscription=subscription, business_account=new_account)

    with psycopg.connect(edge.node.database_url) as conn:
        owners = conn.execute("SELECT profile_id FROM sm_routes WHERE key_name = %s", (f"n:{DID}",)).fetchall()
    assert owners == [(second.pk,)]
    assert edge.rpc("htable.get", "route", f"n:{DID}")["item"]["value"] == second.pk
    old_pbx, new_pbx = Pbx(tmp_path, old_port, timeout=3), Pbx(tmp_path, new_port)
    try:
        invite = answered(edge, carrier_call(edge, tmp_path, to=DID), new_pbx)
    finally:
        old_pbx.stop()
    assert invite["ruri"] == f"sip:{DID}@127.0.0.1:{new_port}"
    assert old_pbx.invites() == []


def test_the_reconciliation_puts_back_a_route_deleted_by_hand_on_the_node(
    edge: Edge, edge_node: EdgeNode, company: Any, owner: Any, tmp_path: Path, django_capture_on_commit_callbacks: Any
) -> None:
    profile, password = provisioned(company, owner)
    routed(company, owner, profile, name="reception", number=DID, capture=django_capture_on_commit_callbacks)
    port = free_port()
    registered(edge, tmp_path, profile, password, port)
    with psycopg.connect(edge.node.database_url, autocommit=True) as conn:
        conn.execute("DELETE FROM sm_routes WHERE key_name = %s", (f"n:{DID}",))
    edge.rpc("htable.delete", "route", f"n:{DID}")
    carrier_refused(edge, tmp_path, to=DID, code=404, reason="not routed")
    cache.delete(RECONCILE_CURSOR)

    result = edge_reconcile_task.delay().get()

    assert profile.pk in result["repaired"]
    pbx = Pbx(tmp_path, port)
    invite = answered(edge, carrier_call(edge, tmp_path, to=DID), pbx)
    assert invite["ruri"] == f"sip:{DID}@127.0.0.1:{port}"
