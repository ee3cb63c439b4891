"""The edge enforces the portal's rules on real SIP traffic: Kamailio provisioned by the real
sync task, driven by SIPp on loopback."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import psycopg
import pytest
from django.core.cache import cache

from apps.core.actor import Actor
from apps.edge.clients import rpc_htable_delete
from apps.edge.models import EdgeNode, EdgeProvisioning
from apps.edge.services import RECONCILE_CURSOR
from apps.edge.tasks import edge_reconcile_task, edge_sync_profile_task
from apps.sip_profiles.models import SipProfile
from apps.sip_profiles.services import sip_profile_update
from tests.edge.conftest import (
    SCENARIOS,
    CarrierUas,
    Edge,
    explain,
    free_port,
    received,
    run_sipp,
    scenario,
    sipp_command,
)
from tests.edge.sip import Dialog, Peer, sdp
from tests.factories import move_profile_balance
from tests.sip_profiles.factories import digest_profile, held_number, ip_profile

US_NUMBER = "+12025550123"


def provisioned(
    company: Any, owner: Any, *, name: str = "Edge PBX", channels: int = 2, balance: str = "10"
) -> tuple[SipProfile, str]:
    """A registration profile with credit, pushed to the edge by the real task."""
    profile, password = digest_profile(company, owner, name=name, tls_required=False, srtp_required=False)
    if channels != profile.channels:
        SipProfile.objects.filter(pk=profile.pk).update(channels=channels)
    if balance:
        move_profile_balance(profile, balance)
    synced(profile)
    profile.refresh_from_db()
    return profile, password


def synced(profile: SipProfile) -> None:
    """Run the real sync task; every node took it. (Eager: its result is already there, so
    reading it cannot block, even while a live server's thread is inside a task of its own.)"""
    results = edge_sync_profile_task.delay(profile.pk).get(disable_sync_subtasks=False)
    assert all(isinstance(changes, list) for changes in results.values()), results


def refused(edge: Edge, tmp_path: Path, *, code: int, number: str, profile: SipProfile, password: str) -> None:
    command = sipp_command(
        edge,
        scenario(tmp_path, "refused_uac.xml", expect=code),
        service=number,
        user=profile.sip_username,
        password=password,
    )
    result = run_sipp(command, edge=edge)
    assert result.returncode == 0, explain(command, result, edge)


def call(
    edge: Edge, tmp_path: Path, *, number: str, profile: SipProfile, password: str, hold_ms: int = 200
) -> list[str]:
    return sipp_command(
        edge,
        scenario(tmp_path, "invite_uac.xml"),
        service=number,
        user=profile.sip_username,
        password=password,
        hold_ms=hold_ms,
    )


def test_a_pbx_registers_with_its_password_and_is_refused_with_a_wrong_one_or_an_unknown_user(
    edge: Edge, edge_node: EdgeNode, company: Any, owner: Any, tmp_path: Path
) -> None:
    profile, password = provisioned(company, owner)
    user = profile.sip_username
    assert user

    for who, secret, code in ((user, password, 200), (user, password + "x", 403), ("nobody99", "secret", 403)):
        command = sipp_command(
            edge, scenario(tmp_path, "register.xml", expect=code), service=who, user=who, password=secret
        )
        result = run_sipp(command, edge=edge)
        assert result.returncode == 0, f"{who} expecting {code}: " + explain(command, result, edge)

    contacts = edge.rpc("ul.lookup", "location", user)
    assert "Contact" in str(contacts)


def test_a_call_from_a_profile_with_its_password_reaches_the_carrier_and_is_recorded_as_synced(
    edge: Edge, edge_node: EdgeNode, company: Any, owner: Any, tmp_path: Path
) -> None:
    profile, password = provisioned(company, owner)
    uas = CarrierUas(edge, tmp_path)
    command = call(edge, tmp_path, number=US_NUMBER, profile=profile, password=password)
    result = run_sipp(command, edge=edge)

    assert result.returncode == 0, explain(command, result, edge)
    assert uas.wait() == 0
    row = EdgeProvisioning.objects.get(profile=profile, node=edge_node)
    assert (row.state, row.error, row.attempts) == ("synced", "", 0)
    assert profile.provisioning_state == SipProfile.Provisioning.SYNCED
    assert edge.channels_in_use(profile.pk) == 0


def test_a_wrong_password_places_no_call(
    edge: Edge, edge_node: EdgeNode, company: Any, owner: Any, tmp_path: Path, carrier_listener: Any
) -> None:
    profile, password = provisioned(company, owner)

    refused(edge, tmp_path, code=403, number=US_NUMBER, profile=profile, password=password + "x")

    assert received(carrier_listener) == []


@pytest.mark.parametrize("number", ["2025550123", "+12345", "12025550123x", "+1202555012345678"])
def test_a_number_that_is_not_e164_is_refused_with_484(
    edge: Edge, edge_node: EdgeNode, company: Any, owner: Any, tmp_path: Path, carrier_listener: Any, number: str
) -> None:
    profile, password = provisioned(company, owner)

    refused(edge, tmp_path, code=484, number=number, profile=profile, password=password)

    assert received(carrier_listener) == []


@pytest.mark.parametrize("number", ["911", "+1911", "+19115550100", "112", "411", "+1411", "611", "+19005550100", "0"])
def test_emergency_service_and_premium_numbers_are_refused_with_403_and_never_reach_the_carrier(
    edge: Edge, edge_node: EdgeNode, company: Any, owner: Any, tmp_path: Path, carrier_listener: Any, number: str
) -> None:
    profile, password = provisioned(company, owner)

    refused(edge, tmp_path, code=403, number=number, profile=profile, password=password)

    assert received(carrier_listener) == []


def test_a_refused_number_is_told_why_in_the_reason_header(
    edge: Edge, edge_node: EdgeNode, company: Any, owner: Any
) -> None:
    profile, password = provisioned(company, owner)
    pbx = Peer(ip="127.0.0.13", edge=("127.0.0.1", edge.node.sip_port))
    try:
        dialog = Dialog.call(pbx, "411", sdp("127.0.0.13", 43000), user=profile.sip_username, password=password)
        final = dialog.final()
    finally:
        pbx.close()

    assert final.status == 403
    assert 'text="Directory assistance (411)"' in final.header("Reason")


def test_a_profile_without_balance_may_not_make_a_paid_call(
    edge: Edge, edge_node: EdgeNode, company: Any, owner: Any, tmp_path: Path, carrier_listener: Any
) -> None:
    profile, password = provisioned(company, owner, balance="")

    refused(edge, tmp_path, code=402, number="+442079460958", profile=profile, password=password)

    assert received(carrier_listener) == []


def test_a_suspended_profile_carries_no_call(
    edge: Edge,
    edge_node: EdgeNode,
    company: Any,
    owner: Any,
    tmp_path: Path,
    carrier_listener: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    profile, password = provisioned(company, owner)
    with django_capture_on_commit_callbacks(execute=True):
        sip_profile_update(actor=Actor(user=owner), profile=profile, status="suspended")

    refused(edge, tmp_path, code=403, number=US_NUMBER, profile=profile, password=password)

    assert received(carrier_listener) == []


def test_the_third_call_on_two_channels_is_refused_and_a_channel_comes_back_after_hangup(
    edge: Edge, edge_node: EdgeNode, company: Any, owner: Any, tmp_path: Path
) -> None:
    profile, password = provisioned(company, owner, channels=2)
    uas = CarrierUas(edge, tmp_path, calls=2)
    held = [
        subprocess.Popen(call(edge, tmp_path, number=US_NUMBER, profile=profile, password=password, hold_ms=2500))  # noqa: S603
        for _ in range(2)
    ]
    try:
        deadline = time.monotonic() + 5
        while edge.channels_in_use(profile.pk) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert edge.channels_in_use(profile.pk) == 2

        refused(edge, tmp_path, code=486, number=US_NUMBER, profile=profile, password=password)

        assert [p.wait(timeout=15) for p in held] == [0, 0]
        assert uas.wait() == 0
    finally:
        for p in held:
            if p.poll() is None:
                p.kill()
        uas.stop()
    assert edge.channels_in_use(profile.pk) == 0

    uas = CarrierUas(edge, tmp_path)
    command = call(edge, tmp_path, number=US_NUMBER, profile=profile, password=password)
    result = run_sipp(command, edge=edge)
    assert result.returncode == 0, explain(command, result, edge)
    assert uas.wait() == 0


def test_lowering_channels_through_the_service_is_enforced_once_the_task_has_run(
    edge: Edge, edge_node: EdgeNode, company: Any, owner: Any, tmp_path: Path, django_capture_on_commit_callbacks: Any
) -> None:
    profile, password = provisioned(company, owner, channels=2)
    with django_capture_on_commit_callbacks(execute=True):
        sip_profile_update(actor=Actor(user=owner), profile=profile, channels=1)
    assert edge.rpc("htable.get", "prof", f"{profile.pk}:channels")["item"]["value"] == 1

    uas = CarrierUas(edge, tmp_path)
    held = subprocess.Popen(call(edge, tmp_path, number=US_NUMBER, profile=profile, password=password, hold_ms=2000))  # noqa: S603
    try:
        deadline = time.monotonic() + 5
        while edge.channels_in_use(profile.pk) < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        refused(edge, tmp_path, code=486, number=US_NUMBER, profile=profile, password=password)
        assert held.wait(timeout=15) == 0
        assert uas.wait() == 0
    finally:
        if held.poll() is None:
            held.kill()
        uas.stop()


def test_a_sync_run_twice_changes_nothing_the_second_time(
    edge: Edge, edge_node: EdgeNode, company: Any, owner: Any
) -> None:
    profile, _ = provisioned(company, owner)

    second = edge_sync_profile_task.delay(profile.pk).get()

    assert second == {edge_node.name: []}


def test_an_ip_profile_calls_from_its_address_and_anyone_else_is_challenged_and_never_reaches_the_carrier(
    edge: Edge, edge_node: EdgeNode, company: Any, owner: Any, tmp_path: Path
) -> None:
    pbx_port = free_port()
    profile = ip_profile(
        company, owner, "127.0.0.1", "Branch PBX", port=pbx_port, tls_required=False, srtp_required=False
    )
    move_profile_balance(profile, "10")
    synced(profile)

    uas = CarrierUas(edge, tmp_path)
    command = sipp_command(edge, scenario(tmp_path, "invite_uac.xml"), service=US_NUMBER, port=pbx_port)
    result = run_sipp(command, edge=edge)
    assert result.returncode == 0, explain(command, result, edge)
    assert uas.wait() == 0

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as carrier:
        carrier.bind(("127.0.0.1", edge.carrier_port))
        carrier.setblocking(False)
        command = sipp_command(edge, scenario(tmp_path, "plain_uac.xml", expect=407), service=US_NUMBER)
        result = run_sipp(command, edge=edge)
        assert result.returncode == 0, explain(command, result, edge)
        assert received(carrier) == []


def test_the_reconciliation_puts_back_rows_deleted_by_hand_on_the_node(
    edge: Edge, edge_node: EdgeNode, company: Any, owner: Any, tmp_path: Path
) -> None:
    profile, password = provisioned(company, owner)
    with psycopg.connect(edge.node.database_url, autocommit=True) as conn:
        conn.execute("DELETE FROM subscriber WHERE profile_id = %s", (profile.pk,))
        conn.execute("DELETE FROM sm_profile_attrs WHERE key_name = %s", (f"{profile.pk}:channels",))
    edge.rpc("htable.delete", "prof", f"{profile.pk}:channels")
    cache.delete(RECONCILE_CURSOR)

    result = edge_reconcile_task.delay().get()

    assert profile.pk in result["repaired"]
    assert edge.rpc("htable.get", "prof", f"{profile.pk}:channels")["item"]["value"] == 2
    command = sipp_command(
        edge,
        scenario(tmp_path, "register.xml", expect=200),
        service=str(profile.sip_username),
        user=profile.sip_username,
        password=password,
    )
    outcome = run_sipp(command, edge=edge)
    assert outcome.returncode == 0, explain(command, outcome, edge)


def test_a_source_that_keeps_failing_digest_is_banned_while_other_sources_keep_working(
    edge: Edge, edge_node: EdgeNode, company: Any, owner: Any, tmp_path: Path
) -> None:
    profile, password = provisioned(company, owner)
    user = str(profile.sip_username)
    # 127.0.0.2 is the attacker (loopback answers on all of 127/8); the tests' 127.0.0.1 must keep working.
    for _ in range(10):
        command = sipp_command(
            edge, scenario(tmp_path, "register.xml", expect=403), service=user, user=user, password="guess"
        )
        command[command.index("-i") + 1] = "127.0.0.2"
        outcome = run_sipp(command, edge=edge)
        assert outcome.returncode == 0, explain(command, outcome, edge)

    command = sipp_command(
        edge, scenario(tmp_path, "register.xml", expect=200), service=user, user=user, password=password
    )
    command[command.index("-i") + 1] = "127.0.0.2"
    banned = run_sipp(
        [*command[: command.index("-timeout") + 1], "2s", *command[command.index("-timeout") + 2 :]], edge=edge
    )
    try:
        assert banned.returncode != 0  # no answer at all, even with the right password
        assert "127.0.0.2" in str(edge.rpc("htable.dump", "ban"))
        command = sipp_command(
            edge, scenario(tmp_path, "register.xml", expect=200), service=user, user=user, password=password
        )
        outcome = run_sipp(command, edge=edge)
        assert outcome.returncode == 0, explain(command, outcome, edge)
    finally:
        rpc_htable_delete(edge.node.rpc_url, "ban", "127.0.0.2")
        rpc_htable_delete(edge.node.rpc_url, "authfail", "127.0.0.2")


def test_a_burst_of_six_calls_on_two_channels_carries_exactly_two(
    edge: Edge, edge_node: EdgeNode, company: Any, owner: Any, tmp_path: Path
) -> None:
    profile, password = provisioned(company, owner, channels=2)
    uas = CarrierUas(edge, tmp_path, calls=2)
    stats = tmp_path / "burst.csv"
    command = sipp_command(
        edge,
        scenario(tmp_path, "burst_uac.xml"),
        service=US_NUMBER,
        user=profile.sip_username,
        password=password,
        hold_ms=1500,
    )
    command[command.index("-m") + 1] = "6"
    command += ["-l", "6", "-r", "100", "-trace_stat", "-stf", str(stats), "-fd", "1"]
    try:
        run_sipp(command, edge=edge)
        assert uas.wait() == 0
    finally:
        uas.stop()

    header, *rows = [line.split(";") for line in stats.read_text().splitlines() if line.strip()]
    last = dict(zip(header, rows[-1], strict=False))
    assert (last["SuccessfulCall(C)"], last["FailedCall(C)"]) == ("2", "4"), explain(command, None, edge)
    assert edge.channels_in_use(profile.pk) == 0


@pytest.mark.parametrize(
    ("with_number", "withhold", "pai", "privacy"),
    [
        (True, False, r"^ *<sip:[+]442079460001@", None),
        (True, True, r"^ *<sip:[+]442079460001@", r"^ *id$"),
        (False, False, r"^ *<sip:anonymous@anonymous[.]invalid>", None),
    ],
)
def test_the_carrier_sees_the_profiles_caller_id_never_the_one_the_pbx_asserts(
    edge: Edge,
    edge_node: EdgeNode,
    company: Any,
    owner: Any,
    tmp_path: Path,
    with_number: bool,
    withhold: bool,
    pai: str,
    privacy: str,
) -> None:
    fields: dict[str, Any] = {"withhold_caller_id": withhold}
    if with_number:
        fields["caller_id"] = str(held_number(company).number.number)
    profile, password = digest_profile(company, owner, tls_required=False, srtp_required=False, **fields)
    move_profile_balance(profile, "10")
    synced(profile)

    # Without an expected Privacy header, its check is dropped (a missing header fails any check).
    text = (SCENARIOS / "carrier_uas_callerid.xml").read_text()
    privacy_check = next(line for line in text.splitlines() if "<!-- privacy check -->" in line)
    replace = {"PAI_RE": escape(pai), **({"PRIVACY_RE": escape(privacy)} if privacy else {privacy_check: ""})}
    uas = CarrierUas(edge, tmp_path, name="carrier_uas_callerid.xml", replace=replace)
    command = call(edge, tmp_path, number=US_NUMBER, profile=profile, password=password)
    result = run_sipp(command, edge=edge)

    assert result.returncode == 0, explain(command, result, edge)
    assert uas.wait() == 0, (
        uas.file.with_suffix(".err.log").read_text() if uas.file.with_suffix(".err.log").exists() else ""
    )


def test_a_profile_that_requires_tls_is_refused_over_udp(
    edge: Edge, edge_node: EdgeNode, company: Any, owner: Any, tmp_path: Path, carrier_listener: Any
) -> None:
    profile, password = digest_profile(company, owner, tls_required=True, srtp_required=False)
    move_profile_balance(profile, "10")
    synced(profile)

    refused(edge, tmp_path, code=403, number=US_NUMBER, profile=profile, password=password)

    assert received(carrier_listener) == []
