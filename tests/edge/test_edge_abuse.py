"""Abuse on the edge: a flooding source and a scanner get nothing for a while (a ban with an
expiry), while other sources keep working. Other loopback addresses (127.0.0.7, …) play the
attackers; the tests' PBXs send from 127.0.0.1.

The probes are a few lines of Python rather than SIPp: they must tell "no answer at all" from
an answer, source address by source address, within a bound."""

from __future__ import annotations

import socket
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from apps.edge.clients import rpc_htable_delete
from apps.edge.models import EdgeNode
from tests.edge.conftest import Edge, explain, run_sipp, scenario, sipp_command
from tests.edge.test_edge_calls import provisioned

BAN_SECONDS = 3  # EDGE_BAN_SECONDS of the quick node (conftest.QUICK_DEFINES)
PIKE_DENSITY = 60  # EDGE_PIKE_DENSITY: requests per source per 2 s


def options_request(edge: Edge, source: str, port: int, *, user_agent: str) -> bytes:
    tag = uuid.uuid4().hex
    return (
        f"OPTIONS sip:{edge.sip} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {source}:{port};branch=z9hG4bK{tag}\r\n"
        f"From: <sip:probe@{source}:{port}>;tag={tag[:8]}\r\n"
        f"To: <sip:{edge.sip}>\r\n"
        f"Call-ID: {tag}@{source}\r\n"
        "CSeq: 1 OPTIONS\r\n"
        "Max-Forwards: 70\r\n"
        f"User-Agent: {user_agent}\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


def answers(edge: Edge, source: str, *, count: int = 1, user_agent: str = "Test PBX", wait: float = 0.5) -> int:
    """Send `count` OPTIONS from `source` as fast as possible; how many got an answer."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((source, 0))
        port = sock.getsockname()[1]
        for _ in range(count):
            sock.sendto(options_request(edge, source, port, user_agent=user_agent), ("127.0.0.1", edge.node.sip_port))
        got = 0
        deadline = time.monotonic() + wait
        while (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            try:
                if sock.recv(65535).startswith(b"SIP/2.0 "):
                    got += 1
            except TimeoutError:
                break
        return got


def banned(edge: Edge) -> str:
    return str(edge.rpc("htable.dump", "ban"))


def test_a_flooding_source_is_banned_while_other_sources_keep_working_and_the_ban_expires(
    quick_edge: Edge, quick_edge_node: EdgeNode, company: Any, owner: Any, tmp_path: Path
) -> None:
    profile, password = provisioned(company, owner)
    user = str(profile.sip_username)
    try:
        banned_at = time.monotonic()  # the flood takes a few milliseconds
        answered = answers(quick_edge, "127.0.0.7", count=10 * PIKE_DENSITY, wait=1.0)

        # Pike lets about a unit's density through, then nothing.
        assert 0 < answered < 3 * PIKE_DENSITY, answered
        assert "127.0.0.7" in banned(quick_edge)
        assert answers(quick_edge, "127.0.0.7") == 0
        command = sipp_command(
            quick_edge, scenario(tmp_path, "register.xml", expect=200), service=user, user=user, password=password
        )
        result = run_sipp(command, edge=quick_edge)
        assert result.returncode == 0, explain(command, result, quick_edge)
        assert answers(quick_edge, "127.0.0.1") == 1

        while answers(quick_edge, "127.0.0.7", wait=0.3) == 0:
            assert time.monotonic() - banned_at < BAN_SECONDS + 8, "the ban never expired"
            time.sleep(0.2)
        assert time.monotonic() - banned_at >= BAN_SECONDS - 0.5
    finally:
        rpc_htable_delete(quick_edge.node.rpc_url, "ban", "127.0.0.7")


@pytest.mark.parametrize(
    ("source", "user_agent"),
    [("127.0.0.8", "friendly-scanner"), ("127.0.0.9", "sipvicious 0.3.4"), ("127.0.0.10", "VaxSIPUserAgent/3.1")],
)
def test_a_scanner_gets_no_answer_at_all_and_its_source_is_banned(
    edge: Edge, edge_node: EdgeNode, source: str, user_agent: str
) -> None:
    try:
        assert answers(edge, source, user_agent=user_agent, wait=1.0) == 0

        assert source in banned(edge)
        assert answers(edge, source, user_agent="Ordinary PBX") == 0  # the source, whatever it says next
        assert answers(edge, "127.0.0.1", user_agent="Ordinary PBX") == 1
    finally:
        rpc_htable_delete(edge.node.rpc_url, "ban", source)
