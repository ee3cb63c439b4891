"""The import of a node's call records (sm_cdrs) into CDRs, against a real node database made
as `edge_db init` makes it, with records written into it as Kamailio writes them (the edge
tests write them with a real Kamailio): by id watermark, idempotent, nothing lost or doubled
when a batch dies, when ids commit out of order, or when an id never commits."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from apps.billing.ledger.services import profile_account
from apps.billing.models import LedgerTransaction
from apps.cdrs.models import Cdr, CdrRating, RejectedCdr
from apps.edge import cdr_import, services
from apps.edge.models import EdgeCdrWatermark, EdgeNode
from apps.edge.tasks import edge_cdrs_import_task
from apps.sip_profiles.models import SipProfile
from tests.edge.conftest import node_database
from tests.factories import move_profile_balance
from tests.rating.factories import small_deck
from tests.sip_profiles.factories import digest_profile

pytestmark = pytest.mark.django_db

UK_LANDLINE = "+442079460958"  # 4420: 0.008 a minute in small_deck, per started minute
T0 = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def node_url() -> Iterator[str]:
    with node_database("cdrimport") as url:
        services.edge_db_init(node=EdgeNode(name="schema", database_url=url))
        yield url


@pytest.fixture
def node(node_url: str, db: Any) -> EdgeNode:
    # Each test starts with an empty table whose ids start at 1 again (the CDRs of the test
    # before rolled back with it).
    with psycopg.connect(node_url, autocommit=True) as conn:
        conn.execute("TRUNCATE sm_cdrs RESTART IDENTITY")
    return EdgeNode.objects.create(
        name="edge-a",
        role=EdgeNode.Role.PRIMARY,
        sip_host="127.0.0.1",
        rpc_url="http://127.0.0.1:9/RPC",
        database_url=node_url,
    )


@pytest.fixture
def deck(company: Any) -> Any:
    return small_deck(currency=company.currency)


def record(conn: psycopg.Connection[Any], profile: SipProfile | int | None, **fields: Any) -> int:
    """One row as kamailio.cfg's route CDR_WRITE writes it: an answered outbound call of
    62 seconds by default. Returns its id."""
    values: dict[str, Any] = {
        "call_id": f"call-{time.monotonic_ns()}@pbx",
        "profile_id": profile.pk if isinstance(profile, SipProfile) else profile,
        "direction": "outbound",
        "auth_method": "digest",
        "source_ip": "127.0.0.13",
        "caller": "",
        "callee": UK_LANDLINE,
        "started_at": T0,
        "answered_at": T0 + timedelta(seconds=3),
        "ended_at": T0 + timedelta(seconds=65),
        "sip_code": 200,
        "refusal": "",
        **fields,
    }
    columns = ", ".join(values)
    marks = ", ".join(["%s"] * len(values))
    row = conn.execute(
        f"INSERT INTO sm_cdrs ({columns}) VALUES ({marks}) RETURNING id",  # noqa: S608 (the test's own columns)
        list(values.values()),
    ).fetchone()
    assert row is not None
    return int(row[0])


def balance(profile: SipProfile) -> Decimal:
    return profile_account(profile).balance


def watermark(node: EdgeNode) -> int:
    return EdgeCdrWatermark.objects.get(node=node).last_id


def test_a_nodes_records_become_rated_cdrs_once_and_a_second_import_changes_nothing(
    node: EdgeNode, deck: Any, company: Any, owner: Any, django_capture_on_commit_callbacks: Any
) -> None:
    profile, _ = digest_profile(company, owner)
    move_profile_balance(profile, "10")
    with psycopg.connect(node.database_url, autocommit=True) as conn:
        answered = record(conn, profile)
        refused = record(
            conn,
            profile,
            answered_at=None,
            ended_at=T0,
            sip_code=486,
            refusal="channel_limit",
        )
        busy = record(conn, profile, answered_at=None, ended_at=T0 + timedelta(seconds=4), sip_code=486)
        inbound = record(
            conn, profile, direction="inbound", auth_method="carrier", caller="14155550123", callee="+12025550123"
        )

    first = edge_cdrs_import_task.delay(node.pk).get()

    assert first == {
        "node": "edge-a",
        "read": 4,
        "cdrs": 4,
        "rejected": 0,
        "watermark": inbound,
        "waiting_at": 0,
        "rated": 4,
    }
    cdr = Cdr.objects.get(node="edge-a", edge_id=answered)
    assert (cdr.sip_profile, cdr.company, cdr.direction, cdr.disposition, cdr.refusal_reason) == (
        profile,
        company,
        "outbound",
        "answered",
        "",
    )
    assert (cdr.callee, cdr.caller, cdr.auth_method, cdr.source_address) == (
        UK_LANDLINE,
        "",
        "registration",
        "127.0.0.13",
    )
    assert (cdr.duration_seconds, cdr.billable_seconds, cdr.sip_code) == (65, 62, 200)
    assert (cdr.rating.status, cdr.rating.cost) == (CdrRating.Status.RATED, Decimal("0.0160"))  # 2 minutes at 0.008
    assert balance(profile) == Decimal("9.9840")
    no = Cdr.objects.get(node="edge-a", edge_id=refused)
    assert (no.disposition, no.refusal_reason, no.sip_code, no.billable_seconds) == ("refused", "channel_limit", 486, 0)
    assert (no.rating.status, no.rating.cost) == (CdrRating.Status.ZERO_RATED, Decimal("0"))
    assert Cdr.objects.get(node="edge-a", edge_id=busy).disposition == "busy"
    incoming = Cdr.objects.get(node="edge-a", edge_id=inbound)
    assert (incoming.direction, incoming.caller, incoming.auth_method, incoming.rating.cost) == (
        "inbound",
        "+14155550123",
        "registration",  # the profile's own method: the carrier called in
        Decimal("0"),
    )
    transactions = LedgerTransaction.objects.count()

    second = edge_cdrs_import_task.delay(node.pk).get()

    assert (second["read"], second["cdrs"], second["watermark"]) == (0, 0, inbound)
    assert Cdr.objects.count() == 4
    assert balance(profile) == Decimal("9.9840")
    assert LedgerTransaction.objects.count() == transactions
    # Read again from the start (a watermark lost), nothing is doubled either.
    EdgeCdrWatermark.objects.filter(node=node).update(last_id=0)
    again = cdr_import.edge_cdrs_import(node=node)
    assert (again.read, again.cdrs, again.watermark) == (4, 0, inbound)
    assert Cdr.objects.count() == 4


def test_a_record_the_portal_cannot_accept_is_kept_with_its_reason_and_once(
    node: EdgeNode, deck: Any, branch: SipProfile
) -> None:
    with psycopg.connect(node.database_url, autocommit=True) as conn:
        unknown = record(conn, 999_999_999)
        malformed = record(conn, branch, auth_method="ip", callee="+1234")
        good = record(conn, branch, auth_method="ip")

    run = cdr_import.edge_cdrs_import(node=node)
    cdr_import.edge_cdrs_import(node=node)
    EdgeCdrWatermark.objects.filter(node=node).update(last_id=0)
    again = cdr_import.edge_cdrs_import(node=node)

    assert (run.read, run.cdrs, run.rejected, run.watermark) == (3, 1, 2, good)
    assert (again.cdrs, again.rejected) == (0, 0)
    rejected = {r.edge_id: r for r in RejectedCdr.objects.all()}
    assert set(rejected) == {unknown, malformed}
    assert rejected[unknown].reason == "profile: no SIP profile has the id 999999999"
    assert rejected[unknown].record["profile_id"] == 999_999_999
    assert rejected[unknown].record["callee"] == UK_LANDLINE
    assert rejected[malformed].reason.startswith("callee: ")
    assert Cdr.objects.get().edge_id == good


def test_a_batch_that_dies_after_its_insert_and_before_its_commit_loses_and_doubles_nothing(
    node: EdgeNode, deck: Any, branch: SipProfile, monkeypatch: pytest.MonkeyPatch
) -> None:
    move_profile_balance(branch, "5")
    with psycopg.connect(node.database_url, autocommit=True) as conn:
        ids = [record(conn, branch, auth_method="ip") for _ in range(3)]

    def killed(mark: EdgeCdrWatermark, last_id: int) -> None:
        assert Cdr.objects.filter(node="edge-a").count() == 3  # inserted, in the batch's transaction
        raise RuntimeError("worker killed")

    monkeypatch.setattr(cdr_import, "_watermark_advance", killed)
    with pytest.raises(RuntimeError, match="worker killed"):
        edge_cdrs_import_task.delay(node.pk).get()

    assert Cdr.objects.count() == 0
    assert watermark(node) == 0
    assert balance(branch) == Decimal("5.0000")

    monkeypatch.undo()
    run = edge_cdrs_import_task.delay(node.pk).get()

    assert (run["cdrs"], run["rated"], run["watermark"]) == (3, 3, ids[-1])
    assert sorted(Cdr.objects.values_list("edge_id", flat=True)) == ids
    assert balance(branch) == Decimal("5") - 3 * Decimal("0.0160")


def test_a_record_that_commits_after_a_later_one_is_not_skipped(node: EdgeNode, deck: Any, branch: SipProfile) -> None:
    with (
        psycopg.connect(node.database_url) as slow,
        psycopg.connect(node.database_url, autocommit=True) as fast,
    ):
        late = record(slow, branch, auth_method="ip")  # its transaction is still open
        early = record(fast, branch, auth_method="ip")
        assert late < early

        first = cdr_import.edge_cdrs_import(node=node)

        # The later id is in (rated at once); the watermark waits before the missing one.
        assert (first.cdrs, first.watermark, first.waiting_at) == (1, late - 1, late)
        assert list(Cdr.objects.values_list("edge_id", flat=True)) == [early]

        slow.commit()

    second = cdr_import.edge_cdrs_import(node=node)

    assert (second.read, second.cdrs, second.watermark, second.waiting_at) == (2, 1, early, 0)
    assert sorted(Cdr.objects.values_list("edge_id", flat=True)) == [late, early]


def test_an_id_whose_insert_rolled_back_is_passed_once_the_records_after_it_have_settled(
    node: EdgeNode, deck: Any, branch: SipProfile, settings: Any
) -> None:
    settings.EDGE_CDR_SETTLE_SECONDS = 1
    with psycopg.connect(node.database_url) as conn:
        lost = record(conn, branch, auth_method="ip")
        conn.rollback()
    with psycopg.connect(node.database_url, autocommit=True) as conn:
        after = record(conn, branch, auth_method="ip")

    first = cdr_import.edge_cdrs_import(node=node)
    assert (first.cdrs, first.watermark) == (1, lost - 1)

    deadline = time.monotonic() + 10
    while (run := cdr_import.edge_cdrs_import(node=node)).watermark != after and time.monotonic() < deadline:
        time.sleep(0.2)

    assert (run.watermark, run.waiting_at) == (after, 0)
    assert list(Cdr.objects.values_list("edge_id", flat=True)) == [after]


def test_a_node_whose_database_is_down_is_reported_and_tried_again_at_the_next_run(db: Any) -> None:
    node = EdgeNode.objects.create(
        name="edge-down",
        role=EdgeNode.Role.SECONDARY,
        sip_host="127.0.0.1",
        rpc_url="http://127.0.0.1:9/RPC",
        database_url="postgres://nobody@127.0.0.1:9/none",
    )

    result = edge_cdrs_import_task.delay(node.pk).get()

    assert result["node"] == "edge-down"
    assert result["error"].startswith("node database unreachable")
    assert watermark(node) == 0
