"""Every call through a real Kamailio leaves a record in its node database (answered, busy,
refused with why), and the import task makes each a CDR, rated, with the profile's balance
debited: run by hand, by a real Celery worker, and across a Kamailio restart."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest

from apps.billing.ledger.services import profile_account
from apps.cdrs.models import Cdr, CdrRating
from apps.edge import services
from apps.edge.models import EdgeCdrWatermark, EdgeNode
from apps.edge.tasks import edge_cdrs_import_all, edge_cdrs_import_task
from apps.sip_profiles.models import SipProfile
from skypemanager.celery import app as celery_app
from tests.core.test_celery_worker import worker  # noqa: F401 (the real worker fixture)
from tests.edge.conftest import (
    CARRIER_SOURCE,
    CarrierUas,
    Edge,
    explain,
    free_port,
    node_database,
    run_sipp,
    running_edge,
    scenario,
    sipp_command,
)
from tests.edge.sip import Dialog, Peer, sdp
from tests.edge.test_edge_call_end import MAX_CALL_SECONDS
from tests.edge.test_edge_calls import US_NUMBER, call, provisioned, refused, synced
from tests.edge.test_inbound import CALLER, DID, Pbx, answered, carrier_call, registered, routed
from tests.factories import move_profile_balance
from tests.rating.factories import small_deck
from tests.sip_profiles.factories import digest_profile

UK_LANDLINE = "+442079460958"  # 4420: 0.008 a minute in small_deck, per started minute


def wait_for(condition: Callable[[], Any], what: str, timeout: float = 15) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.05)
    return result


def node_records(edge_or_url: Edge | str, *profiles: SipProfile) -> list[dict[str, Any]]:
    url = edge_or_url if isinstance(edge_or_url, str) else edge_or_url.node.database_url
    with psycopg.connect(url) as conn, conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        cur.execute("SELECT * FROM sm_cdrs WHERE profile_id = ANY(%s) ORDER BY id", ([p.pk for p in profiles],))
        return cur.fetchall()


def records_of(edge: Edge | str, count: int, *profiles: SipProfile, timeout: float = 15) -> list[dict[str, Any]]:
    """The profiles' records once `count` are there (Kamailio writes them asynchronously)."""
    try:
        return wait_for(
            lambda: (rows := node_records(edge, *profiles)) and len(rows) >= count and rows, "records", timeout
        )
    except AssertionError as error:
        log = "" if isinstance(edge, str) else edge.log.read_text()[-4000:]
        raise AssertionError(f"{error}: {node_records(edge, *profiles)}\nkamailio log:\n{log}") from None


def balance(profile: SipProfile) -> Decimal:
    return profile_account(profile).balance


def test_answered_busy_and_refused_calls_are_recorded_on_the_node_and_imported_rated_and_debited_once(
    edge: Edge, edge_node: EdgeNode, company: Any, owner: Any, tmp_path: Path
) -> None:
    small_deck(currency=company.currency)
    profile, password = provisioned(company, owner, channels=1)
    broke, broke_password = provisioned(company, owner, name="Broke PBX", balance="")

    # Answered, then hung up by the PBX.
    uas = CarrierUas(edge, tmp_path)
    command = call(edge, tmp_path, number=UK_LANDLINE, profile=profile, password=password)
    result = run_sipp(command, edge=edge)
    assert result.returncode == 0, explain(command, result, edge)
    assert uas.wait() == 0
    # Busy at the carrier (it rings, then 486).
    uas = CarrierUas(edge, tmp_path, name="carrier_uas_busy.xml")
    pbx = Peer(ip="127.0.0.13", edge=("127.0.0.1", edge.node.sip_port))
    try:
        busy = Dialog.call(pbx, US_NUMBER, sdp("127.0.0.13", 43000), user=profile.sip_username, password=password)
        assert busy.final().status == 486
    finally:
        pbx.close()
    assert uas.wait() == 0
    # Refused by the edge: the channel limit (one channel, held by a call), no credit, a blocked number.
    uas = CarrierUas(edge, tmp_path)
    held = subprocess.Popen(call(edge, tmp_path, number=US_NUMBER, profile=profile, password=password, hold_ms=2000))  # noqa: S603
    try:
        wait_for(lambda: edge.channels_in_use(profile.pk) == 1, "the held call")
        refused(edge, tmp_path, code=486, number=US_NUMBER, profile=profile, password=password)
        assert held.wait(timeout=15) == 0
        assert uas.wait() == 0
    finally:
        if held.poll() is None:
            held.kill()
            held.wait()
        uas.stop()
    refused(edge, tmp_path, code=402, number=UK_LANDLINE, profile=broke, password=broke_password)
    refused(edge, tmp_path, code=403, number="911", profile=profile, password=password)

    rows = records_of(edge, 6, profile, broke)
    on_node = [(r["profile_id"], r["callee"], r["sip_code"], r["refusal"], r["answered_at"] is not None) for r in rows]
    # The held call's row is written when it ends, after the refusal it caused.
    assert sorted(on_node, key=str) == sorted(
        [
            (profile.pk, UK_LANDLINE, 200, "", True),
            (profile.pk, US_NUMBER, 486, "", False),
            (profile.pk, US_NUMBER, 486, "channel_limit", False),
            (profile.pk, US_NUMBER, 200, "", True),
            (broke.pk, UK_LANDLINE, 402, "no_credit", False),
            (profile.pk, "911", 403, "blocked_number", False),
        ],
        key=str,
    )
    assert {(r["direction"], r["auth_method"], r["source_ip"]) for r in rows} == {
        ("outbound", "digest", "127.0.0.1"),
        ("outbound", "digest", "127.0.0.13"),
    }
    assert busy.call_id in {r["call_id"] for r in rows}

    edge_cdrs_import_task.delay(edge_node.pk).get()

    cdrs = {c.edge_id: c for c in Cdr.objects.filter(sip_profile__in=[profile, broke]).select_related("rating")}
    assert sorted(cdrs) == [r["id"] for r in rows]
    by_row = {r["id"]: cdrs[r["id"]] for r in rows}
    got = sorted(
        (c.callee, c.disposition, c.refusal_reason, c.sip_code, c.rating.status, c.rating.cost) for c in by_row.values()
    )
    assert got == sorted(
        [
            (UK_LANDLINE, "answered", "", 200, CdrRating.Status.RATED, Decimal("0.0080")),
            (US_NUMBER, "busy", "", 486, CdrRating.Status.ZERO_RATED, Decimal("0")),
            (US_NUMBER, "refused", "channel_limit", 486, CdrRating.Status.ZERO_RATED, Decimal("0")),
            (US_NUMBER, "answered", "", 200, CdrRating.Status.RATED, Decimal("0.0050")),
            (UK_LANDLINE, "refused", "no_credit", 402, CdrRating.Status.ZERO_RATED, Decimal("0")),
            ("911", "refused", "blocked_number", 403, CdrRating.Status.ZERO_RATED, Decimal("0")),
        ]
    )
    answered = next(c for c in cdrs.values() if c.callee == UK_LANDLINE and c.disposition == "answered")
    assert (answered.company, answered.direction, answered.auth_method, answered.node) == (
        company,
        "outbound",
        "registration",
        edge_node.name,
    )
    assert answered.started_at <= answered.answered_at <= answered.ended_at  # type: ignore[operator]
    assert 1 <= answered.billable_seconds <= answered.duration_seconds <= 5
    assert balance(profile) == Decimal("10") - Decimal("0.0130")
    assert balance(broke) == Decimal("0")

    edge_cdrs_import_task.delay(edge_node.pk).get()

    assert Cdr.objects.filter(sip_profile__in=[profile, broke]).count() == 6
    assert balance(profile) == Decimal("9.9870")


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("worker")
def test_a_real_worker_imports_and_rates_a_call_within_seconds_of_its_hangup(
    edge: Edge, edge_node: EdgeNode, company: Any, owner: Any, tmp_path: Path
) -> None:
    small_deck(currency=company.currency)
    # Provisioned by the sync's service here (the worker takes only this test's tasks, and
    # with it no task result comes back).
    profile, password = digest_profile(company, owner, tls_required=False, srtp_required=False)
    move_profile_balance(profile, "10")
    assert all(not r.error for r in services.edge_sync_profile(profile_id=profile.pk))
    # Records of earlier tests (their profiles gone) are not this test's: start after them.
    with psycopg.connect(edge.node.database_url) as conn:
        last = conn.execute("SELECT coalesce(max(id), 0) FROM sm_cdrs").fetchone()
    EdgeCdrWatermark.objects.create(node=edge_node, last_id=last[0] if last else 0)
    wait_for(lambda: celery_app.control.ping(timeout=0.5), "the worker to start", timeout=30)
    uas = CarrierUas(edge, tmp_path)
    command = call(edge, tmp_path, number=UK_LANDLINE, profile=profile, password=password)
    result = run_sipp(command, edge=edge)
    hung_up = time.monotonic()
    assert result.returncode == 0, explain(command, result, edge)
    assert uas.wait() == 0

    # What celery beat sends every second, through the real broker to the real worker.
    edge_cdrs_import_all.delay()
    debited = wait_for(lambda: balance(profile) < Decimal("10") and time.monotonic(), "the debit", timeout=30)

    cdr = Cdr.objects.select_related("rating").get(sip_profile=profile)
    assert (cdr.disposition, cdr.rating.status, cdr.rating.cost) == ("answered", "rated", Decimal("0.0080"))
    assert balance(profile) == Decimal("9.9920")
    print(f"hangup to debited balance: {debited - hung_up:.2f} s")  # noqa: T201
    assert debited - hung_up < 10


def test_after_a_kamailio_restart_on_the_same_database_the_import_goes_on_from_its_watermark(
    edge: Edge, edge_node: EdgeNode, company: Any, owner: Any, tmp_path: Path
) -> None:
    small_deck(currency=company.currency)
    with node_database("restart") as url:
        node = EdgeNode.objects.create(
            name="restart-edge", role=EdgeNode.Role.SECONDARY, sip_host="127.0.0.1", rpc_url="", database_url=url
        )

        def calls(running: Edge, profile: SipProfile, password: str, count: int) -> None:
            uas = CarrierUas(running, tmp_path, calls=count)
            for _ in range(count):
                command = call(running, tmp_path, number=US_NUMBER, profile=profile, password=password)
                result = run_sipp(command, edge=running)
                assert result.returncode == 0, explain(command, result, running)
            assert uas.wait() == 0

        with running_edge(url, name="restart-edge", carrier_port=edge.carrier_port) as first:
            EdgeNode.objects.filter(pk=node.pk).update(sip_port=first.node.sip_port, rpc_url=first.node.rpc_url)
            assert [r.error for r in services.edge_sync_global(node_names=["restart-edge"])] == [""]
            profile, password = provisioned(company, owner)
            calls(first, profile, password, 2)
            records_of(url, 2, profile)
            before = edge_cdrs_import_task.delay(node.pk).get()
            calls(first, profile, password, 1)  # recorded, not imported yet, when the node stops
            records_of(url, 3, profile)

        with running_edge(url, name="restart-edge", carrier_port=edge.carrier_port) as second:
            EdgeNode.objects.filter(pk=node.pk).update(sip_port=second.node.sip_port, rpc_url=second.node.rpc_url)
            synced(profile)  # the same rows: the sync finds nothing to change, the new process loads them
            calls(second, profile, password, 1)
            rows = records_of(url, 4, profile)
            after = edge_cdrs_import_task.delay(node.pk).get()

    assert (before["cdrs"], before["watermark"]) == (2, rows[1]["id"])
    assert (after["cdrs"], after["watermark"]) == (2, rows[3]["id"])
    ids = sorted(Cdr.objects.filter(node="restart-edge").values_list("edge_id", flat=True))
    assert ids == [r["id"] for r in rows]
    assert len(set(ids)) == 4
    assert balance(profile) == Decimal("10") - 4 * Decimal("0.0050")


def test_inbound_on_net_and_cancelled_calls_are_recorded_and_imported_with_their_direction_and_disposition(
    edge: Edge, edge_node: EdgeNode, company: Any, owner: Any, tmp_path: Path, django_capture_on_commit_callbacks: Any
) -> None:
    small_deck(currency=company.currency)
    profile, password = provisioned(company, owner)
    routed(company, owner, profile, name="reception", number=DID, capture=django_capture_on_commit_callbacks)
    port = free_port()
    registered(edge, tmp_path, profile, password, port)
    # A carrier's call to the Online Number; another profile's call to the business account by name.
    answered(edge, carrier_call(edge, tmp_path, to=DID), Pbx(tmp_path, port))
    caller, caller_password = provisioned(company, owner, name="Caller PBX", balance="")
    answered(
        edge, call(edge, tmp_path, number="reception", profile=caller, password=caller_password), Pbx(tmp_path, port)
    )
    # An outbound call given up while it rings.
    uas = CarrierUas(edge, tmp_path, name="carrier_uas_cancel.xml")
    command = sipp_command(
        edge,
        scenario(tmp_path, "cancel_uac.xml"),
        service=US_NUMBER,
        user=profile.sip_username,
        password=password,
        hold_ms=500,
    )
    result = run_sipp(command, edge=edge)
    assert result.returncode == 0, explain(command, result, edge)
    assert uas.wait() == 0

    rows = records_of(edge, 3, profile, caller)
    edge_cdrs_import_task.delay(edge_node.pk).get()

    cdrs = Cdr.objects.filter(edge_id__in=[r["id"] for r in rows], node=edge_node.name).select_related("rating")
    got = sorted(
        (c.sip_profile_id, c.direction, c.caller, c.callee, c.disposition, c.sip_code, c.rating.cost) for c in cdrs
    )
    assert got == sorted(
        [
            (profile.pk, "inbound", CALLER, DID, "answered", 200, Decimal("0")),
            (caller.pk, "on_net", "", "reception", "answered", 200, Decimal("0")),
            (profile.pk, "outbound", "", US_NUMBER, "cancelled", 487, Decimal("0")),
        ]
    )
    inbound = next(r for r in rows if r["direction"] == "inbound")
    assert (inbound["auth_method"], inbound["source_ip"]) == ("carrier", CARRIER_SOURCE)
    on_net = next(r for r in rows if r["direction"] == "on_net")
    assert on_net["dest_profile_id"] == profile.pk


def test_a_call_whose_bye_is_lost_is_recorded_when_the_edge_ends_it(
    quick_edge: Edge, quick_edge_node: EdgeNode, company: Any, owner: Any, tmp_path: Path
) -> None:
    profile, password = provisioned(company, owner, channels=1)
    uas = CarrierUas(quick_edge, tmp_path)
    command = sipp_command(
        quick_edge,
        scenario(tmp_path, "invite_nobye_uac.xml"),
        service=US_NUMBER,
        user=profile.sip_username,
        password=password,
    )
    try:
        result = run_sipp(command, edge=quick_edge)
        assert result.returncode == 0, explain(command, result, quick_edge)
        assert uas.wait() == 0
    finally:
        uas.stop()

    # Written when the dialog ends, at the longest call: the edge's BYEs to the vanished PBX and
    # the stopped carrier hold the dialog until those transactions time out (the quick node's
    # EDGE_TM_FR_TIMER, 4 s; with tm's default 30 s a loaded CI machine passed 45 s once).
    (row,) = records_of(quick_edge, 1, profile, timeout=30)
    assert (row["sip_code"], row["refusal"]) == (200, "")
    held = (row["ended_at"] - row["answered_at"]).total_seconds()
    assert MAX_CALL_SECONDS - 1 <= held <= MAX_CALL_SECONDS + 15, held


def test_a_call_the_carrier_never_answers_is_recorded_as_not_answered(
    edge: Edge, edge_node: EdgeNode, company: Any, owner: Any, tmp_path: Path
) -> None:
    profile, password = provisioned(company, owner)

    # Nothing listens on the carrier's port: the edge gives up after EDGE_CARRIER_TIMEOUT_MS.
    refused(edge, tmp_path, code=408, number=US_NUMBER, profile=profile, password=password)

    (row,) = records_of(edge, 1, profile)
    assert (row["sip_code"], row["refusal"], row["answered_at"]) == (408, "", None)
    edge_cdrs_import_task.delay(edge_node.pk).get()
    cdr = Cdr.objects.get(sip_profile=profile)
    assert (cdr.disposition, cdr.sip_code, cdr.billable_seconds) == ("no_answer", 408, 0)
