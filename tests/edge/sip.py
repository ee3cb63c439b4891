"""A small SIP user agent for the edge tests, where SIPp cannot go: TLS (Debian's SIPp has
none), SDP that must be read on both sides, re-INVITEs in either direction, and media.

Every peer (the PBX, the carrier) sends everything to the edge and reads what comes back, one
step at a time from the test (no threads): a test says "the PBX sends the INVITE", "the
carrier receives an INVITE", and asserts what arrived. Loopback loses nothing, so nothing is
retransmitted by us; what the edge retransmits is skipped while waiting.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import socket
import ssl
import time
from dataclasses import dataclass, field
from pathlib import Path

CRLF = "\r\n"


@dataclass
class Message:
    first_line: str
    headers: list[tuple[str, str]]
    body: str = ""

    @classmethod
    def parse(cls, data: bytes) -> Message:
        head, _, body = data.decode("utf-8", "replace").partition(CRLF + CRLF)
        first, *lines = head.split(CRLF)
        headers = []
        for line in lines:
            name, _, value = line.partition(":")
            headers.append((name.strip(), value.strip()))
        return cls(first, headers, body)

    @property
    def is_response(self) -> bool:
        return self.first_line.startswith("SIP/2.0 ")

    @property
    def status(self) -> int:
        return int(self.first_line.split()[1]) if self.is_response else 0

    @property
    def method(self) -> str:
        return "" if self.is_response else self.first_line.split()[0]

    @property
    def uri(self) -> str:
        return "" if self.is_response else self.first_line.split()[1]

    @property
    def cseq_method(self) -> str:
        return self.header("CSeq").split()[-1]

    def all(self, name: str) -> list[str]:
        """Every value of a header (comma-separated values split, as Record-Route needs)."""
        values = []
        for n, v in self.headers:
            if n.lower() == name.lower():
                values += [part.strip() for part in re.split(r",(?=\s*<)", v)]
        return values

    def header(self, name: str) -> str:
        values = self.all(name)
        return values[0] if values else ""

    def tag(self, name: str) -> str:
        m = re.search(r";tag=([^;>\s]+)", self.header(name))
        return m.group(1) if m else ""

    @property
    def sdp(self) -> Sdp:
        return Sdp.parse(self.body)

    def __str__(self) -> str:
        return self.first_line + CRLF + CRLF.join(f"{n}: {v}" for n, v in self.headers) + CRLF + CRLF + self.body


def build(first_line: str, headers: list[tuple[str, str]], body: str = "") -> bytes:
    lines = [first_line, *[f"{n}: {v}" for n, v in headers]]
    if body:
        lines.append("Content-Type: application/sdp")
    lines.append(f"Content-Length: {len(body.encode())}")
    return (CRLF.join(lines) + CRLF + CRLF + body).encode()


# --- SDP ---------------------------------------------------------------------------------


@dataclass
class Media:
    kind: str  # audio, video, image
    port: int
    proto: str
    formats: list[str]
    attributes: list[str] = field(default_factory=list)
    connection: str = ""

    def attribute(self, name: str) -> list[str]:
        return [a.partition(":")[2] for a in self.attributes if a.partition(":")[0] == name]

    @property
    def codecs(self) -> list[str]:
        """Encoding names, in the m-line's order (static payload types by number)."""
        names = {"0": "PCMU", "8": "PCMA", "18": "G729", "3": "GSM", "9": "G722"}
        for rtpmap in self.attribute("rtpmap"):
            pt, _, enc = rtpmap.partition(" ")
            names[pt] = enc.split("/")[0]
        return [names.get(f, f) for f in self.formats]

    @property
    def direction(self) -> str:
        for d in ("sendonly", "recvonly", "inactive", "sendrecv"):
            if d in self.attributes:
                return d
        return "sendrecv"


@dataclass
class Sdp:
    connection: str
    media: list[Media]

    @classmethod
    def parse(cls, text: str) -> Sdp:
        connection = ""
        media: list[Media] = []
        for line in text.replace(CRLF, "\n").split("\n"):
            if line.startswith("c="):
                address = line.split()[-1]
                if media:
                    media[-1].connection = address
                else:
                    connection = address
            elif line.startswith("m="):
                kind, port, proto, *formats = line[2:].split()
                media.append(Media(kind, int(port), proto, formats))
            elif line.startswith("a=") and media:
                media[-1].attributes.append(line[2:])
        for m in media:
            m.connection = m.connection or connection
        return cls(connection, media)

    def audio(self) -> Media:
        return next(m for m in self.media if m.kind == "audio")


def sdp(
    ip: str,
    port: int,
    *,
    codecs: tuple[tuple[int, str], ...] = ((0, "PCMU/8000"), (8, "PCMA/8000"), (101, "telephone-event/8000")),
    proto: str = "RTP/AVP",
    crypto: list[str] | None = None,
    direction: str = "sendrecv",
    extra: str = "",
    version: int = 1,
) -> str:
    """An SDP body: one audio stream (and `extra` m-sections written out by the caller)."""
    lines = [
        "v=0",
        f"o=- 4242 {version} IN IP4 {ip}",
        "s=-",
        f"c=IN IP4 {ip}",
        "t=0 0",
        f"m=audio {port} {proto} {' '.join(str(pt) for pt, _ in codecs)}",
        *[f"a=rtpmap:{pt} {name}" for pt, name in codecs],
        *[f"a=crypto:{c}" for c in crypto or []],
        f"a={direction}",
    ]
    return CRLF.join(lines) + CRLF + extra


def new_crypto(tag: int = 1) -> tuple[str, bytes]:
    """An SDES crypto attribute value and its 30-byte master key + salt."""
    import base64

    key = secrets.token_bytes(30)
    return f"{tag} AES_CM_128_HMAC_SHA1_80 inline:{base64.b64encode(key).decode()}", key


def crypto_key(attribute: str) -> bytes:
    import base64

    inline = re.search(r"inline:([A-Za-z0-9+/=]+)", attribute)
    assert inline, attribute
    return base64.b64decode(inline.group(1))[:30]


# --- Peers -------------------------------------------------------------------------------


class Peer:
    """One SIP endpoint on a socket of its own. `edge` is where every request goes (the
    proxy routes it on); responses go back where the request came from."""

    def __init__(self, *, ip: str, edge: tuple[str, int], transport: str = "udp", ca: Path | None = None) -> None:
        self.edge = edge
        self.transport = transport
        self.backlog: list[Message] = []
        self.buffer = b""
        if transport == "udp":
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.sock.bind((ip, 0))
        elif transport == "tls":
            context = ssl.create_default_context(cafile=str(ca) if ca else None)
            raw = socket.create_connection(edge, timeout=5, source_address=(ip, 0))
            self.sock = context.wrap_socket(raw, server_hostname=edge[0])
        elif transport == "tcp":
            self.sock = socket.create_connection(edge, timeout=5, source_address=(ip, 0))
        else:
            raise ValueError(transport)
        self.ip, self.port = self.sock.getsockname()[:2]

    @classmethod
    def bound(cls, *, ip: str, port: int, edge: tuple[str, int]) -> Peer:
        """A UDP peer on a given port (the carrier, where the edge's dispatcher sends calls)."""
        peer = cls.__new__(cls)
        peer.edge, peer.transport, peer.backlog, peer.buffer = edge, "udp", [], b""
        peer.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        peer.sock.bind((ip, port))
        peer.ip, peer.port = ip, port
        return peer

    def close(self) -> None:
        self.sock.close()

    @property
    def via_transport(self) -> str:
        return self.transport.upper()

    @property
    def contact(self) -> str:
        suffix = f";transport={self.transport}" if self.transport != "udp" else ""
        return f"<sip:peer@{self.ip}:{self.port}{suffix}>"

    def via(self) -> str:
        return f"SIP/2.0/{self.via_transport} {self.ip}:{self.port};branch=z9hG4bK{secrets.token_hex(8)};rport"

    def send(self, data: bytes) -> None:
        if self.transport == "udp":
            self.sock.sendto(data, self.edge)
        else:
            self.sock.sendall(data)

    def _read(self, timeout: float) -> Message | None:
        self.sock.settimeout(timeout)
        try:
            if self.transport == "udp":
                return Message.parse(self.sock.recv(65535))
            while True:
                head_end = self.buffer.find(b"\r\n\r\n")
                if head_end >= 0:
                    m = re.search(rb"(?im)^(?:content-length|l)\s*:\s*(\d+)", self.buffer[:head_end])
                    total = head_end + 4 + (int(m.group(1)) if m else 0)
                    if len(self.buffer) >= total:
                        data, self.buffer = self.buffer[:total], self.buffer[total:]
                        return Message.parse(data)
                chunk = self.sock.recv(65535)
                if not chunk:
                    raise ConnectionError("the edge closed the TLS connection")
                self.buffer += chunk
        except TimeoutError:
            return None

    def expect(self, match: object, *, timeout: float = 5.0, what: str = "") -> Message:
        """The next message for which match(message) is true; others wait in the backlog."""
        assert callable(match)
        for i, m in enumerate(self.backlog):
            if match(m):
                return self.backlog.pop(i)
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            m = self._read(left)
            if m is None:
                break
            if match(m):
                return m
            self.backlog.append(m)
        raise AssertionError(
            f"no {what or 'matching message'} within {timeout} s; got: {[str(m) for m in self.backlog]}"
        )

    def expect_request(self, method: str, *, timeout: float = 5.0) -> Message:
        return self.expect(lambda m: m.method == method, timeout=timeout, what=method)

    def expect_final(self, call_id: str, method: str, *, timeout: float = 5.0) -> Message:
        return self.expect(
            lambda m: m.is_response and m.status >= 200 and m.header("Call-ID") == call_id and m.cseq_method == method,
            timeout=timeout,
            what=f"final response to {method}",
        )

    def nothing(self, *, timeout: float = 0.5) -> list[Message]:
        """What arrives within `timeout` (an assertion that nothing does reads `== []`)."""
        got, self.backlog = self.backlog, []
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            m = self._read(left)
            if m is None:
                break
            got.append(m)
        return got

    def respond(self, request: Message, status: int, reason: str, *, body: str = "", to_tag: str = "") -> None:
        """A response echoing the request's Vias, Record-Route and dialog headers."""
        to = request.header("To")
        if to_tag and ";tag=" not in to:
            to += f";tag={to_tag}"
        headers = [("Via", v) for v in request.all("Via")]
        headers += [("From", request.header("From")), ("To", to), ("Call-ID", request.header("Call-ID"))]
        headers += [("CSeq", request.header("CSeq"))]
        headers += [("Record-Route", rr) for rr in request.all("Record-Route")]
        if request.method in ("INVITE", "UPDATE") and status < 300:
            headers.append(("Contact", self.contact))
        self.send(build(f"SIP/2.0 {status} {reason}", headers, body))


def digest(challenge: str, *, method: str, uri: str, user: str, password: str) -> str:
    params = dict(re.findall(r'(\w+)="?([^",]*)"?', challenge.partition(" ")[2]))
    realm, nonce = params["realm"], params["nonce"]
    ha1 = hashlib.md5(f"{user}:{realm}:{password}".encode()).hexdigest()  # noqa: S324 (SIP digest is MD5)
    ha2 = hashlib.md5(f"{method}:{uri}".encode()).hexdigest()  # noqa: S324
    answer = f'Digest username="{user}", realm="{realm}", nonce="{nonce}", uri="{uri}", algorithm=MD5'
    if "auth" in params.get("qop", "").split(","):
        cnonce, nc = secrets.token_hex(8), "00000001"
        response = hashlib.md5(f"{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}".encode()).hexdigest()  # noqa: S324
        answer += f', qop=auth, nc={nc}, cnonce="{cnonce}"'
    else:
        response = hashlib.md5(f"{ha1}:{nonce}:{ha2}".encode()).hexdigest()  # noqa: S324
    if "opaque" in params:
        answer += f', opaque="{params["opaque"]}"'
    return answer + f', response="{response}"'


class Dialog:
    """One side of a call: the requests it sends in it, and its answers to requests."""

    def __init__(self, peer: Peer, *, call_id: str, local: str, remote: str, target: str, routes: list[str]):
        self.peer = peer
        self.call_id = call_id
        self.local = local  # our From (with our tag)
        self.remote = remote  # their To (with their tag, once known)
        self.target = target  # Request-URI of in-dialog requests (their Contact)
        self.routes = routes
        self.cseq = 1
        self.invite_uri = target
        self.invite_via = ""

    # --- the caller's side --------------------------------------------------------------

    @classmethod
    def call(
        cls, peer: Peer, number: str, body: str, *, user: str | None = None, password: str | None = None
    ) -> Dialog:
        """Send an INVITE; with credentials, answer the edge's digest challenge with a second
        one. The call then rings on: `final()` waits for its answer."""
        host, port = peer.edge
        uri = f"sip:{number}@{host}:{port}"
        dialog = cls(
            peer,
            call_id=f"{secrets.token_hex(10)}@{peer.ip}",
            local=f"<sip:pbx@{peer.ip}:{peer.port}>;tag={secrets.token_hex(6)}",
            remote=f"<sip:{number}@{host}:{port}>",
            target=uri,
            routes=[],
        )
        dialog.invite_uri, dialog.invite_via = uri, peer.via()
        dialog._send_invite(body, [])
        if user is not None:
            challenge = peer.expect_final(dialog.call_id, "INVITE")
            assert challenge.status in (401, 407), str(challenge)
            dialog.ack_failure(challenge)
            name = "Proxy-Authenticate" if challenge.status == 407 else "WWW-Authenticate"
            answer = digest(challenge.header(name), method="INVITE", uri=uri, user=user, password=password or "")
            dialog.cseq += 1
            dialog.invite_via = peer.via()
            dialog._send_invite(body, [("Proxy-Authorization" if challenge.status == 407 else "Authorization", answer)])
        return dialog

    def final(self, *, timeout: float = 5.0, ack_body: str = "") -> Message:
        """The INVITE's final response, ACKed (with `ack_body`: the answer to a delayed offer);
        on a 2xx the dialog is set up from it."""
        final = self.peer.expect_final(self.call_id, "INVITE", timeout=timeout)
        if final.status >= 300:
            self.ack_failure(final)
            return final
        self.remote = final.header("To")
        self.target = final.header("Contact").strip("<>").split(">")[0]
        self.routes = list(reversed(final.all("Record-Route")))
        self.request("ACK", ack_body)
        return final

    def _send_invite(self, body: str, extra: list[tuple[str, str]]) -> None:
        headers = [("Via", self.invite_via), ("Max-Forwards", "70"), ("From", self.local), ("To", self.remote)]
        headers += [("Call-ID", self.call_id), ("CSeq", f"{self.cseq} INVITE"), ("Contact", self.peer.contact)]
        headers += extra
        self.peer.send(build(f"INVITE {self.invite_uri} SIP/2.0", headers, body))

    def ack_failure(self, final: Message) -> None:
        headers = [("Via", self.invite_via), ("Max-Forwards", "70"), ("From", self.local), ("To", final.header("To"))]
        headers += [("Call-ID", self.call_id), ("CSeq", f"{self.cseq} ACK")]
        self.peer.send(build(f"ACK {self.invite_uri} SIP/2.0", headers))

    # --- either side, in the dialog -----------------------------------------------------

    @classmethod
    def answering(cls, peer: Peer, invite: Message, body: str) -> Dialog:
        """The called side: answer the INVITE with 200 and this SDP; the caller's ACK is awaited."""
        tag = secrets.token_hex(6)
        peer.respond(invite, 200, "OK", body=body, to_tag=tag)
        dialog = cls(
            peer,
            call_id=invite.header("Call-ID"),
            local=f"{invite.header('To')};tag={tag}",
            remote=invite.header("From"),
            target=invite.header("Contact").strip("<>").split(">")[0],
            routes=invite.all("Record-Route"),
        )
        dialog.cseq = 100
        return dialog

    def acked(self) -> Message:
        """The other side's ACK of our 2xx (it comes once the test has made that side send it)."""
        return self.peer.expect(lambda m: m.method == "ACK" and m.header("Call-ID") == self.call_id, what="ACK")

    def request(self, method: str, body: str = "") -> None:
        if method != "ACK":
            self.cseq += 1
        headers = [("Via", self.peer.via()), ("Max-Forwards", "70"), ("From", self.local), ("To", self.remote)]
        headers += [("Call-ID", self.call_id), ("CSeq", f"{self.cseq} {method}")]
        headers += [("Route", r) for r in self.routes]
        if method in ("INVITE", "UPDATE"):
            headers.append(("Contact", self.peer.contact))
        self.peer.send(build(f"{method} {self.target} SIP/2.0", headers, body))

    def ack(self) -> None:
        self.request("ACK")

    def reinvite(self, body: str) -> None:
        self.request("INVITE", body)

    def reinvite_final(self) -> Message:
        """The re-INVITE's final response, ACKed (a failure hop by hop, a 2xx end to end)."""
        final = self.peer.expect_final(self.call_id, "INVITE")
        if final.status < 300:
            self.ack()
            return final
        headers = [("Via", final.header("Via")), ("Max-Forwards", "70"), ("From", self.local)]
        headers += [("To", final.header("To")), ("Call-ID", self.call_id), ("CSeq", f"{self.cseq} ACK")]
        headers += [("Route", r) for r in self.routes]
        self.peer.send(build(f"ACK {self.target} SIP/2.0", headers))
        return final

    def final_to(self, method: str) -> Message:
        return self.peer.expect_final(self.call_id, method)

    def answer_request(self, method: str, body: str = "") -> Message:
        """Take the other side's next in-dialog request and answer it 200 (with `body`)."""
        request = self.take(method)
        self.peer.respond(request, 200, "OK", body=body)
        return request

    def take(self, method: str) -> Message:
        """The other side's next in-dialog request of this method (the test answers it)."""
        return self.peer.expect(
            lambda m: m.method == method and m.header("Call-ID") == self.call_id, what=f"in-dialog {method}"
        )


# --- RTP -------------------------------------------------------------------------------


def rtp_packet(seq: int, *, ssrc: int = 0x1234ABCD, payload_type: int = 0, payload: bytes = b"\xff" * 160) -> bytes:
    header = bytes([0x80, payload_type & 0x7F]) + seq.to_bytes(2, "big")
    header += (seq * 160).to_bytes(4, "big") + ssrc.to_bytes(4, "big")
    return header + payload


# --- rtpengine's control protocol (ng: a cookie and a bencoded dictionary over UDP) ------


def _bencode(value: object) -> bytes:
    if isinstance(value, int):
        return b"i%de" % value
    if isinstance(value, str):
        value = value.encode()
    if isinstance(value, bytes):
        return b"%d:%s" % (len(value), value)
    if isinstance(value, list):
        return b"l" + b"".join(_bencode(v) for v in value) + b"e"
    if isinstance(value, dict):
        return b"d" + b"".join(_bencode(k) + _bencode(v) for k, v in sorted(value.items())) + b"e"
    raise TypeError(value)


def _bdecode(data: bytes, i: int = 0) -> tuple[object, int]:
    c = data[i : i + 1]
    if c == b"i":
        end = data.index(b"e", i)
        return int(data[i + 1 : end]), end + 1
    if c in (b"l", b"d"):
        items, i = [], i + 1
        while data[i : i + 1] != b"e":
            item, i = _bdecode(data, i)
            items.append(item)
        if c == b"l":
            return items, i + 1
        return {items[k].decode(): items[k + 1] for k in range(0, len(items), 2)}, i + 1  # type: ignore[union-attr]
    colon = data.index(b":", i)
    length = int(data[i:colon])
    return data[colon + 1 : colon + 1 + length], colon + 1 + length


def rtpengine(ng: str, command: dict[str, object]) -> dict[str, object]:
    """One ng command to rtpengine (e.g. {"command": "query", "call-id": ...})."""
    host, port = ng.rsplit(":", 1)
    cookie = secrets.token_hex(4).encode()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(3)
        sock.sendto(cookie + b" " + _bencode(command), (host, int(port)))
        reply = sock.recv(65535)
    assert reply.startswith(cookie + b" "), reply
    answer, _ = _bdecode(reply[len(cookie) + 1 :])
    assert isinstance(answer, dict)
    return {k: v.decode() if isinstance(v, bytes) else v for k, v in answer.items()}


def register(peer: Peer, user: str, password: str, *, expires: int = 300, user_agent: str = "") -> Message:
    """REGISTER the peer's contact as `user`, answering the digest challenge; the final response.
    `expires=0` unregisters that contact."""
    host, port = peer.edge
    uri = f"sip:{host}:{port}"
    call_id, tag = f"{secrets.token_hex(10)}@{peer.ip}", secrets.token_hex(6)
    extra: list[tuple[str, str]] = []
    for cseq in (1, 2):
        headers = [("Via", peer.via()), ("Max-Forwards", "70"), ("From", f"<sip:{user}@{host}>;tag={tag}")]
        headers += [("To", f"<sip:{user}@{host}>"), ("Call-ID", call_id), ("CSeq", f"{cseq} REGISTER")]
        headers += [("Contact", peer.contact), ("Expires", str(expires)), *extra]
        if user_agent:
            headers.append(("User-Agent", user_agent))
        peer.send(build(f"REGISTER {uri} SIP/2.0", headers))
        final = peer.expect_final(call_id, "REGISTER")
        if final.status != 401 or extra:
            return final
        answer = digest(final.header("WWW-Authenticate"), method="REGISTER", uri=uri, user=user, password=password)
        extra = [("Authorization", answer)]
    return final
