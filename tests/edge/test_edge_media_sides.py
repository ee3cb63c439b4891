"""Media policy where the offer does not come from the calling PBX's INVITE: a call by name
between two profiles (each leg judged by its own profile's SRTP), and a delayed offer whose
offer is in the carrier's 200 (no 488 is possible there: the edge keeps the allowed codecs of
it, and ends a call whose offer stays unacceptable with ACK and BYE both ways)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from apps.edge.models import EdgeNode
from apps.sip_profiles.models import SipProfile
from tests.edge.conftest import Edge
from tests.edge.sip import Dialog, Peer, new_crypto, register, sdp
from tests.edge.test_edge_calls import US_NUMBER
from tests.edge.test_edge_media import T38, VIDEO, profile_with, relayed
from tests.edge.test_inbound import routed

CALLER_IP, CALLEE_IP, CARRIER_IP = "127.0.0.24", "127.0.0.25", "127.0.0.26"


@pytest.fixture
def caller(edge: Edge) -> Iterator[Peer]:
    peer = Peer(ip=CALLER_IP, edge=("127.0.0.1", edge.node.sip_port))
    yield peer
    peer.close()


def channels_free(edge: Edge, *profiles: SipProfile) -> bool:
    deadline = time.monotonic() + 5
    while any(edge.channels_in_use(p.pk) for p in profiles):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_on_a_call_by_name_the_callers_leg_follows_the_callers_srtp_and_the_callees_leg_the_callees(
    edge: Edge, edge_node: EdgeNode, company: Any, owner: Any, caller: Peer, django_capture_on_commit_callbacks: Any
) -> None:
    """The caller's profile requires SRTP, the callee's does not."""
    calling, calling_password = profile_with(company, owner, srtp=True, name="Secure PBX")
    called, called_password = profile_with(company, owner, srtp=False, name="Plain PBX")
    routed(company, owner, called, name="plaindesk", number=None, capture=django_capture_on_commit_callbacks)
    callee = Peer(ip=CALLEE_IP, edge=("127.0.0.1", edge.node.sip_port))
    assert calling.sip_username
    assert called.sip_username
    try:
        assert register(callee, called.sip_username, called_password).status == 200

        # The caller's requirement holds on the caller's leg: plain RTP from it is refused.
        plain = sdp(CALLER_IP, 41000)
        final = Dialog.call(caller, "plaindesk", plain, user=calling.sip_username, password=calling_password).final()
        assert final.status == 488
        assert 'text="SRTP (RTP/SAVP with a=crypto) required"' in final.header("Reason")
        assert callee.nothing() == []

        # SDES-SRTP from the caller; plain RTP/AVP towards the callee, whose profile asks for none.
        offer = sdp(CALLER_IP, 41000, proto="RTP/SAVP", crypto=[new_crypto(tag=5)[0]])
        dialog = Dialog.call(caller, "plaindesk", offer, user=calling.sip_username, password=calling_password)
        invite = callee.expect_request("INVITE")
        towards_callee = invite.sdp.audio()
        assert (towards_callee.proto, towards_callee.attribute("crypto")) == ("RTP/AVP", [])
        assert relayed(edge, towards_callee)
        callee_dialog = Dialog.answering(callee, invite, sdp(CALLEE_IP, 42000))
        answer = dialog.final()
        callee_dialog.acked()

        assert answer.status == 200
        towards_caller = answer.sdp.audio()
        assert towards_caller.proto == "RTP/SAVP"
        assert relayed(edge, towards_caller)
        assert towards_caller.attribute("crypto")[0].split()[:2] == ["5", "AES_CM_128_HMAC_SHA1_80"]
        dialog.request("BYE")
        callee_dialog.answer_request("BYE")
        assert dialog.final_to("BYE").status == 200
    finally:
        edge.rpc("ul.rm", "location", str(called.sip_username))
        callee.close()
    assert channels_free(edge, calling, called)


@pytest.mark.parametrize(
    ("offer", "why"),
    [
        (sdp(CARRIER_IP, 42000, extra=T38), "T.38 fax"),
        (sdp(CARRIER_IP, 42000, extra=VIDEO), "video"),
        (sdp(CARRIER_IP, 42000, codecs=((9, "G722/8000"), (111, "opus/48000/2"))), "no allowed codec"),
    ],
)
def test_a_carriers_200_offering_fax_video_or_no_allowed_codec_to_a_delayed_offer_is_acked_and_ended_both_ways(
    edge: Edge, edge_node: EdgeNode, company: Any, owner: Any, caller: Peer, carrier: Peer, offer: str, why: str
) -> None:
    profile, password = profile_with(company, owner, srtp=False, name="Fax PBX")
    dialog = Dialog.call(caller, US_NUMBER, "", user=profile.sip_username, password=password)
    invite = carrier.expect_request("INVITE")
    assert invite.body == ""
    carrier_dialog = Dialog.answering(carrier, invite, offer)

    # The 200 cannot be refused: the PBX gets it and ACKs it with its answer, which the carrier gets ...
    offered = dialog.final(ack_body=sdp(CALLER_IP, 41000, codecs=((0, "PCMU/8000"),)))
    assert offered.status == 200
    ack = carrier_dialog.acked()
    assert ack.sdp.audio().codecs == ["PCMU"]
    # ... then the edge ends the call: a BYE to each side, and the channel is free.
    carrier_dialog.answer_request("BYE")
    dialog.answer_request("BYE")
    assert channels_free(edge, profile)
    assert f"delayed offer refused ({why}" in edge.log.read_text()


def test_a_carriers_200_offer_to_a_delayed_offer_keeps_only_the_allowed_codecs(
    edge: Edge, edge_node: EdgeNode, company: Any, owner: Any, caller: Peer, carrier: Peer
) -> None:
    profile, password = profile_with(company, owner, srtp=False, name="Codec PBX")
    dialog = Dialog.call(caller, US_NUMBER, "", user=profile.sip_username, password=password)
    invite = carrier.expect_request("INVITE")
    many = ((9, "G722/8000"), (0, "PCMU/8000"), (111, "opus/48000/2"), (8, "PCMA/8000"), (101, "telephone-event/8000"))
    carrier_dialog = Dialog.answering(carrier, invite, sdp(CARRIER_IP, 42000, codecs=many))

    offered = dialog.final(ack_body=sdp(CALLER_IP, 41000, codecs=((8, "PCMA/8000"),)))
    carrier_dialog.acked()

    assert offered.status == 200
    assert offered.sdp.audio().codecs == ["PCMU", "PCMA", "telephone-event"]
    assert relayed(edge, offered.sdp.audio())
    dialog.request("BYE")
    carrier_dialog.answer_request("BYE")
    assert dialog.final_to("BYE").status == 200
    assert channels_free(edge, profile)
