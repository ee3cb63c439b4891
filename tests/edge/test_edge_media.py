"""Media through the edge: SDES-SRTP on the PBX side bridged by rtpengine to plain RTP towards
the carrier, no T.38 or video, the codec policy, and re-INVITEs (hold, resume, codec change)
passed through both ways. Each test reads what arrives at the other side, not only the code."""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Iterator
from typing import Any

import pylibsrtp
import pytest

from apps.edge.models import EdgeNode
from apps.sip_profiles.models import SipProfile
from tests.edge.conftest import Edge
from tests.edge.sip import Dialog, Message, Peer, crypto_key, new_crypto, register, rtp_packet, rtpengine, sdp
from tests.edge.test_edge_calls import US_NUMBER, synced
from tests.factories import move_profile_balance
from tests.sip_profiles.factories import digest_profile

# The PBX and the carrier keep their media on addresses of their own, so an SDP that names
# 127.0.0.1 (rtpengine's interface) can only have been written by rtpengine.
PBX_IP, CARRIER_IP = "127.0.0.5", "127.0.0.6"
T38 = "m=image 40000 udptl t38\r\na=T38FaxVersion:0\r\na=T38FaxRateManagement:transferredTCF\r\n"
VIDEO = "m=video 40002 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n"


def profile_with(
    company: Any, owner: Any, *, srtp: bool, tls: bool = False, name: str = "Main PBX"
) -> tuple[SipProfile, str]:
    profile, password = digest_profile(company, owner, name=name, tls_required=tls, srtp_required=srtp)
    move_profile_balance(profile, "10")
    synced(profile)
    return profile, password


@pytest.fixture
def pbx(edge: Edge) -> Iterator[Peer]:
    peer = Peer(ip=PBX_IP, edge=("127.0.0.1", edge.node.sip_port))
    yield peer
    peer.close()


def relayed(edge: Edge, media: Any) -> bool:
    """The stream points at rtpengine: its interface and a port of its range."""
    assert edge.media
    return bool(media.connection == "127.0.0.1" and edge.media.port_min <= media.port <= edge.media.port_max)


def udp(ip: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((ip, 0))
    sock.settimeout(2)
    return sock


def test_an_srtp_call_is_sdes_srtp_towards_the_pbx_and_plain_rtp_towards_the_carrier_and_media_flows_both_ways(
    edge: Edge, edge_node: EdgeNode, company: Any, owner: Any, pbx: Peer, carrier: Peer
) -> None:
    assert edge.media
    profile, password = profile_with(company, owner, srtp=True)
    pbx_rtp, carrier_rtp = udp(PBX_IP), udp(CARRIER_IP)
    offer_crypto, pbx_key = new_crypto(tag=7)
    offer = sdp(PBX_IP, pbx_rtp.getsockname()[1], proto="RTP/SAVP", crypto=[offer_crypto])

    try:
        pbx_dialog = Dialog.call(pbx, US_NUMBER, offer, user=profile.sip_username, password=password)
        invite = carrier.expect_request("INVITE")
        towards_carrier = invite.sdp.audio()
        assert towards_carrier.proto == "RTP/AVP"
        assert towards_carrier.attribute("crypto") == []
        assert relayed(edge, towards_carrier)
        carrier_dialog = Dialog.answering(carrier, invite, sdp(CARRIER_IP, carrier_rtp.getsockname()[1]))
        answer = pbx_dialog.final()
        carrier_dialog.acked()

        assert answer.status == 200
        towards_pbx = answer.sdp.audio()
        assert towards_pbx.proto == "RTP/SAVP"
        assert relayed(edge, towards_pbx)
        [answer_crypto] = towards_pbx.attribute("crypto")
        assert answer_crypto.split()[:2] == ["7", "AES_CM_128_HMAC_SHA1_80"]  # the offer's tag and suite

        # SRTP from the PBX arrives at the carrier as plain RTP with the same voice in it ...
        pbx_out = pylibsrtp.Session(policy=pylibsrtp.Policy(key=pbx_key, ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND))
        voice = bytes(range(160))
        for seq in range(1, 6):
            pbx_rtp.sendto(pbx_out.protect(rtp_packet(seq, payload=voice)), ("127.0.0.1", towards_pbx.port))
            time.sleep(0.02)
        plain, _ = carrier_rtp.recvfrom(2048)
        assert plain[12:] == voice
        # ... and the carrier's plain RTP reaches the PBX encrypted with the key the edge answered.
        carrier_voice = bytes(reversed(range(160)))
        for seq in range(1, 6):
            carrier_rtp.sendto(rtp_packet(seq, ssrc=0x5151, payload=carrier_voice), ("127.0.0.1", towards_carrier.port))
            time.sleep(0.02)
        encrypted, _ = pbx_rtp.recvfrom(2048)
        assert encrypted[12:172] != carrier_voice
        pbx_in = pylibsrtp.Session(
            policy=pylibsrtp.Policy(key=crypto_key(answer_crypto), ssrc_type=pylibsrtp.Policy.SSRC_ANY_INBOUND)
        )
        assert pbx_in.unprotect(encrypted)[12:] == carrier_voice

        assert rtpengine(edge.media.ng, {"command": "query", "call-id": pbx_dialog.call_id})["result"] == "ok"
        pbx_dialog.request("BYE")
        carrier_dialog.answer_request("BYE")
        assert pbx_dialog.final_to("BYE").status == 200
        # The BYE ended the media session.
        gone = rtpengine(edge.media.ng, {"command": "query", "call-id": pbx_dialog.call_id})
        assert (gone["result"], gone.get("error-reason")) == ("error", "Unknown call-id")
    finally:
        pbx_rtp.close()
        carrier_rtp.close()


def refused(pbx: Peer, profile: SipProfile, password: str, offer: str) -> Message:
    dialog = Dialog.call(pbx, US_NUMBER, offer, user=profile.sip_username, password=password)
    return dialog.final()


def test_a_profile_that_requires_srtp_refuses_an_offer_without_crypto_and_the_carrier_sees_nothing(
    edge: Edge, edge_node: EdgeNode, company: Any, owner: Any, pbx: Peer, carrier: Peer
) -> None:
    profile, password = profile_with(company, owner, srtp=True)

    for offer in (sdp(PBX_IP, 41000), sdp(PBX_IP, 41000, proto="RTP/SAVP")):
        final = refused(pbx, profile, password, offer)

        assert final.status == 488
        assert 'text="SRTP (RTP/SAVP with a=crypto) required"' in final.header("Reason")
    assert carrier.nothing() == []


@pytest.mark.parametrize(
    ("extra", "reason"), [(T38, "T.38 fax is not supported"), (VIDEO, "video is not supported")], ids=["t38", "video"]
)
def test_fax_and_video_offers_are_refused_with_488_and_a_reason_before_anything_rings(
    edge: Edge, edge_node: EdgeNode, company: Any, owner: Any, pbx: Peer, carrier: Peer, extra: str, reason: str
) -> None:
    profile, password = profile_with(company, owner, srtp=False)

    final = refused(pbx, profile, password, sdp(PBX_IP, 41000, extra=extra))

    assert final.status == 488
    assert f'text="{reason}"' in final.header("Reason")
    assert carrier.nothing() == []


def test_an_offer_keeps_only_g711_g729_and_telephone_event_and_one_with_none_of_them_is_refused(
    edge: Edge, edge_node: EdgeNode, company: Any, owner: Any, pbx: Peer, carrier: Peer
) -> None:
    profile, password = profile_with(company, owner, srtp=False)
    many = ((9, "G722/8000"), (0, "PCMU/8000"), (3, "GSM/8000"), (8, "PCMA/8000"), (111, "opus/48000/2"))
    many += ((18, "G729/8000"), (101, "telephone-event/8000"))

    dialog = Dialog.call(pbx, US_NUMBER, sdp(PBX_IP, 41000, codecs=many), user=profile.sip_username, password=password)
    invite = carrier.expect_request("INVITE")
    assert invite.sdp.audio().codecs == ["PCMU", "PCMA", "G729", "telephone-event"]
    carrier.respond(invite, 486, "Busy Here", to_tag="busy")
    assert dialog.final().status == 486
    carrier.expect_request("ACK")  # the edge's ACK of the carrier's 486

    final = refused(pbx, profile, password, sdp(PBX_IP, 41000, codecs=((9, "G722/8000"), (111, "opus/48000/2"))))
    assert final.status == 488
    assert 'text="no allowed codec (PCMU, PCMA, G729)"' in final.header("Reason")
    assert carrier.nothing() == []


def established(
    edge: Edge, pbx: Peer, carrier: Peer, profile: SipProfile, password: str, *, srtp: bool
) -> tuple[Dialog, Dialog]:
    crypto = [new_crypto(tag=1)[0]] if srtp else None
    offer = sdp(PBX_IP, 41000, proto="RTP/SAVP" if srtp else "RTP/AVP", crypto=crypto)
    pbx_dialog = Dialog.call(pbx, US_NUMBER, offer, user=profile.sip_username, password=password)
    carrier_dialog = Dialog.answering(carrier, carrier.expect_request("INVITE"), sdp(CARRIER_IP, 42000))
    assert pbx_dialog.final().status == 200
    carrier_dialog.acked()
    return pbx_dialog, carrier_dialog


def test_hold_resume_and_codec_change_re_invites_pass_both_ways_and_get_their_answer_back(
    edge: Edge, edge_node: EdgeNode, company: Any, owner: Any, pbx: Peer, carrier: Peer
) -> None:
    profile, password = profile_with(company, owner, srtp=True)
    pbx_dialog, carrier_dialog = established(edge, pbx, carrier, profile, password, srtp=True)
    crypto = new_crypto(tag=1)[0]

    # The PBX holds, resumes, then changes to A-law only.
    for n, (direction, codecs, answered, expect_codecs) in enumerate(
        [
            ("sendonly", ((0, "PCMU/8000"),), "recvonly", ["PCMU"]),
            ("sendrecv", ((0, "PCMU/8000"),), "sendrecv", ["PCMU"]),
            ("sendrecv", ((8, "PCMA/8000"), (9, "G722/8000")), "sendrecv", ["PCMA"]),
        ],
        start=2,
    ):
        pbx_dialog.reinvite(
            sdp(PBX_IP, 41000, proto="RTP/SAVP", crypto=[crypto], direction=direction, codecs=codecs, version=n)
        )
        answer_codecs = tuple(c for c in codecs if c[1] != "G722/8000")
        request = carrier_dialog.answer_request(
            "INVITE", sdp(CARRIER_IP, 42000, direction=answered, codecs=answer_codecs, version=n)
        )
        offered = request.sdp.audio()
        assert (offered.proto, offered.attribute("crypto"), offered.direction) == ("RTP/AVP", [], direction)
        assert offered.codecs == expect_codecs
        assert relayed(edge, offered)
        final = pbx_dialog.reinvite_final()
        carrier_dialog.acked()
        assert final.status == 200
        answer = final.sdp.audio()
        assert (answer.proto, answer.direction, answer.codecs) == ("RTP/SAVP", answered, expect_codecs)
        assert answer.attribute("crypto")[0].split()[0] == "1"
        assert relayed(edge, answer)

    # The carrier holds: the PBX is offered SRTP, and the carrier gets plain RTP back.
    carrier_dialog.reinvite(sdp(CARRIER_IP, 42000, direction="sendonly", version=9))
    request = pbx_dialog.take("INVITE")
    offered = request.sdp.audio()
    assert (offered.proto, offered.direction) == ("RTP/SAVP", "sendonly")
    assert relayed(edge, offered)
    tag = offered.attribute("crypto")[0].split()[0]
    suite = offered.attribute("crypto")[0].split()[1]
    pbx_answer = sdp(PBX_IP, 41000, proto="RTP/SAVP", crypto=[f"{tag} {suite} {new_crypto()[0].split()[2]}"])
    pbx.respond(request, 200, "OK", body=pbx_answer.replace("a=sendrecv", "a=recvonly"))
    final = carrier_dialog.reinvite_final()
    pbx_dialog.acked()
    assert final.status == 200
    answer = final.sdp.audio()
    assert (answer.proto, answer.attribute("crypto"), answer.direction) == ("RTP/AVP", [], "recvonly")
    assert relayed(edge, answer)

    # A fax re-INVITE from the carrier is refused by the edge; the PBX never sees it and the
    # call goes on until the carrier hangs up.
    carrier_dialog.reinvite(sdp(CARRIER_IP, 42000, extra=T38, version=10))
    refused_fax = carrier_dialog.reinvite_final()
    assert refused_fax.status == 488
    assert 'text="T.38 fax is not supported"' in refused_fax.header("Reason")
    carrier_dialog.request("BYE")
    pbx_dialog.answer_request("BYE")
    assert carrier_dialog.final_to("BYE").status == 200
    assert [m.first_line for m in pbx.nothing() if m.method == "INVITE"] == []


@pytest.fixture
def tls_pbx(edge: Edge) -> Iterator[Peer]:
    """A PBX connected to the node's TLS port, trusting only the tests' CA."""
    assert edge.tls
    assert edge.node.tls_port
    peer = Peer(ip=PBX_IP, edge=("127.0.0.1", edge.node.tls_port), transport="tls", ca=edge.tls.ca)
    yield peer
    peer.close()


def test_a_pbx_registers_and_calls_over_tls_with_the_nodes_certificate_and_its_srtp_call_reaches_the_carrier(
    edge: Edge, edge_node: EdgeNode, company: Any, owner: Any, tls_pbx: Peer, carrier: Peer
) -> None:
    profile, password = profile_with(company, owner, srtp=True, tls=True)
    user = str(profile.sip_username)
    # The handshake verified the node's certificate against the CA (and its name, 127.0.0.1).
    assert isinstance(tls_pbx.sock, ssl.SSLSocket)
    subject = dict(item[0] for item in tls_pbx.sock.getpeercert()["subject"])  # type: ignore[index]
    assert subject["commonName"] == "sip1.test.invalid"

    assert register(tls_pbx, user, password + "x").status == 403
    assert register(tls_pbx, user, password).status == 200
    assert ";transport=tls" in str(edge.rpc("ul.lookup", "location", user))

    crypto = new_crypto(tag=3)[0]
    offer = sdp(PBX_IP, 41000, proto="RTP/SAVP", crypto=[crypto])
    dialog = Dialog.call(tls_pbx, US_NUMBER, offer, user=user, password=password)
    invite = carrier.expect_request("INVITE")
    assert invite.header("P-Asserted-Identity")  # the call went through the whole outbound route
    assert (invite.sdp.audio().proto, invite.sdp.audio().attribute("crypto")) == ("RTP/AVP", [])
    carrier_dialog = Dialog.answering(carrier, invite, sdp(CARRIER_IP, 42000))
    answer = dialog.final()
    carrier_dialog.acked()
    assert answer.status == 200
    assert answer.sdp.audio().proto == "RTP/SAVP"
    assert answer.sdp.audio().attribute("crypto")[0].split()[0] == "3"

    dialog.request("BYE")
    carrier_dialog.answer_request("BYE")
    assert dialog.final_to("BYE").status == 200


def test_a_delayed_offer_is_relayed_too_the_carriers_offer_in_the_200_and_the_pbxs_answer_in_the_ack(
    edge: Edge, edge_node: EdgeNode, company: Any, owner: Any, pbx: Peer, carrier: Peer
) -> None:
    profile, password = profile_with(company, owner, srtp=False)

    dialog = Dialog.call(pbx, US_NUMBER, "", user=profile.sip_username, password=password)
    invite = carrier.expect_request("INVITE")
    assert invite.body == ""
    carrier_dialog = Dialog.answering(carrier, invite, sdp(CARRIER_IP, 42000))
    offered = dialog.final(ack_body=sdp(PBX_IP, 41000, codecs=((0, "PCMU/8000"),)))
    ack = carrier_dialog.acked()

    assert offered.status == 200
    assert relayed(edge, offered.sdp.audio())
    assert relayed(edge, ack.sdp.audio())
    assert ack.sdp.audio().codecs == ["PCMU"]
    dialog.request("BYE")
    carrier_dialog.answer_request("BYE")
    assert dialog.final_to("BYE").status == 200


def test_a_profile_that_requires_tls_is_refused_over_tcp_with_a_reason_and_reaches_no_carrier(
    edge: Edge, edge_node: EdgeNode, company: Any, owner: Any, carrier: Peer
) -> None:
    profile, password = profile_with(company, owner, srtp=True, tls=True)
    tcp_pbx = Peer(ip=PBX_IP, edge=("127.0.0.1", edge.node.sip_port), transport="tcp")
    try:
        offer = sdp(PBX_IP, 41000, proto="RTP/SAVP", crypto=[new_crypto()[0]])
        final = Dialog.call(tcp_pbx, US_NUMBER, offer, user=profile.sip_username, password=password).final()
    finally:
        tcp_pbx.close()

    assert final.status == 403
    assert 'text="TLS required"' in final.header("Reason")
    assert carrier.nothing() == []
