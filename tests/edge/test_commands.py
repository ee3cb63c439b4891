"""The management commands ops run the edge with, against the tests' node database."""

from __future__ import annotations

import io
from typing import Any

import psycopg
import pytest
from django.core.management import CommandError, call_command

from apps.edge.models import Carrier, EdgeNode
from tests.edge.conftest import Edge


def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_edge_node_add_is_idempotent_and_updates_the_node(db: Any) -> None:
    args = ["edge_node", "add", "edge1", "--role", "primary", "--sip-host", "203.0.113.10", "--sip-port", "5060"]
    args += ["--rpc-url", "http://127.0.0.1:5071/RPC", "--database-url", "postgres://k@127.0.0.1/edge1"]

    first = run(*args)
    second = run(*args, "--tls-port", "5061", "--rtpengine", "127.0.0.1:2223", "--public-host", "sip1.example.com")

    assert (first.strip(), second.strip()) == ("added edge node edge1", "updated edge node edge1")
    node = EdgeNode.objects.get()
    assert (node.tls_port, node.rtpengine, node.public_host) == (5061, "127.0.0.1:2223", "sip1.example.com")


def test_edge_carrier_add_keeps_the_addresses_it_sends_from(db: Any) -> None:
    run("edge_carrier", "add", "upstream", "--address", "198.51.100.7", "--port", "5060", "--priority", "5")
    run(
        "edge_carrier",
        "add",
        "upstream",
        "--address",
        "198.51.100.7",
        "--port",
        "5080",
        "--inbound-from",
        "198.51.100.0/28",
    )

    carrier = Carrier.objects.get()
    assert (carrier.port, carrier.priority, carrier.inbound_from) == (5080, 0, ["198.51.100.0/28"])
    assert carrier.sip_uri == "sip:198.51.100.7:5080;transport=udp"


def test_edge_db_init_applies_the_schema_once_and_again_changes_nothing(
    edge_database_url: str, edge: Edge, db: Any
) -> None:
    # A fresh database next to the node's, so the first run has everything to apply.
    name = edge_database_url.rsplit("/", 1)[1] + "_init"
    server = edge_database_url.rsplit("/", 1)[0]
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        EdgeNode.objects.create(
            name="fresh",
            role="secondary",
            sip_host="127.0.0.1",
            sip_port=5060,
            rpc_url="http://127.0.0.1:1/RPC",
            database_url=f"{server}/{name}",
        )
        first = run("edge_db", "init", "--node", "fresh")
        second = run("edge_db", "init", "--node", "fresh")
        with psycopg.connect(f"{server}/{name}") as conn:
            tables = {r[0] for r in conn.execute("SELECT table_name FROM version")}
    finally:
        with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    assert first.startswith("fresh: applied standard-create.sql, auth_db-create.sql")
    assert second.strip() == "fresh: applied edge-schema.sql"
    assert {"subscriber", "address", "location", "dispatcher", "sm_profile_attrs", "sm_blocked"} <= tables


def test_edge_sync_prints_what_it_changed_and_then_that_nothing_changed(
    edge: Edge, edge_node: EdgeNode, company: Any, owner: Any
) -> None:
    from tests.sip_profiles.factories import digest_profile

    profile, _ = digest_profile(company, owner, tls_required=False, srtp_required=False)

    first = run("edge_sync", "--profile", str(profile.pk), "--node", edge_node.name)
    second = run("edge_sync", "--profile", str(profile.pk))

    assert f"test-edge: profile {profile.pk}: subscriber added; {profile.pk}:active=1" in first
    assert second.splitlines() == ["test-edge: shared lists: unchanged", f"test-edge: profile {profile.pk}: unchanged"]


def test_edge_run_print_shows_the_kamailio_line_with_the_node_as_defines(db: Any) -> None:
    EdgeNode.objects.create(
        name="edge1",
        role="primary",
        sip_host="203.0.113.10",
        sip_port=5060,
        rpc_url="http://127.0.0.1:5071/RPC",
        database_url="postgresql://k:pw@10.0.0.5:5432/edge1",
        rtpengine="127.0.0.1:2223",
        tls_port=5061,
        tls_certificate="/etc/kamailio/tls/edge1.pem",
        tls_private_key="/etc/kamailio/tls/edge1.key",
    )

    out = run("edge_run", "--node", "edge1", "--print")

    rtpengine, kamailio = out.splitlines()
    assert rtpengine.startswith("rtpengine --config-file=none --foreground --table=-1 --interface=203.0.113.10")
    assert "deploy/kamailio/kamailio.cfg -DD -E" in kamailio
    for define in (
        "'EDGE_NODE=\"edge1\"'",
        "'EDGE_DB_URL=\"postgres://k:pw@10.0.0.5:5432/edge1\"'",
        "'EDGE_CDR_DB=\"cdr=>postgres://k:pw@10.0.0.5:5432/edge1\"'",
        "EDGE_SIP_IP=203.0.113.10",
        "EDGE_SIP_PORT=5060",
        "EDGE_RPC_PORT=5071",
        "WITH_RTPENGINE",
        "WITH_TLS",
        "EDGE_TLS_PORT=5061",
        "'EDGE_TLS_CERT=\"/etc/kamailio/tls/edge1.pem\"'",
        "'EDGE_TLS_KEY=\"/etc/kamailio/tls/edge1.key\"'",
    ):
        assert define in kamailio


def test_edge_run_refuses_a_tls_port_without_a_certificate_and_says_what_is_missing(db: Any) -> None:
    EdgeNode.objects.create(
        name="edge2",
        role="secondary",
        sip_host="203.0.113.11",
        sip_port=5060,
        tls_port=5061,
        rpc_url="http://127.0.0.1:5071/RPC",
        database_url="postgres://k@10.0.0.5/edge2",
    )

    with pytest.raises(CommandError, match="--tls-certificate PATH --tls-private-key PATH"):
        run("edge_run", "--node", "edge2", "--print")


def test_edge_node_add_keeps_the_tls_certificate_and_key_paths(db: Any) -> None:
    args = ["edge_node", "add", "edge1", "--role", "primary", "--sip-host", "203.0.113.10", "--sip-port", "5060"]
    args += ["--rpc-url", "http://127.0.0.1:5071/RPC", "--database-url", "postgres://k@127.0.0.1/edge1"]
    args += ["--tls-port", "5061", "--tls-certificate", "/etc/tls/e.pem", "--tls-private-key", "/etc/tls/e.key"]

    run(*args)

    node = EdgeNode.objects.get()
    assert (node.tls_port, node.tls_certificate, node.tls_private_key) == (5061, "/etc/tls/e.pem", "/etc/tls/e.key")
