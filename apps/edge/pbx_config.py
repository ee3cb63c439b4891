"""Ready-to-paste PBX configuration for a SIP profile (the "Connect your PBX" page, and the
profile page right after its password was set): Asterisk PJSIP (pjsip.conf), a FreeSWITCH
gateway file, a generic table for any other PBX, and the firewall rules the PBX's network needs.

Everything comes from the profile's rows and the enabled edge nodes (edge_servers): its
username and realm, both nodes with their ports, TLS and SRTP as the profile requires them, the
codecs the edge accepts and the DNS SRV names. The password exists only in the response that set
it (it is never stored), so it is filled in only then; otherwise the placeholder stands in its place.
Both nodes are registered with (a PBX is reachable for inbound calls through the node it
registered with, README "Redundancy") and called in turn.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass

from django.conf import settings
from django.utils.text import slugify

from apps.edge.selectors import EdgeServer
from apps.sip_profiles.models import SipProfile

PASSWORD_PLACEHOLDER = "PASTE-YOUR-SIP-PASSWORD"  # noqa: S105 (what stands where the password is not known)
CODECS = (("ulaw", "PCMU", "G.711 µ-law (PCMU)"), ("alaw", "PCMA", "G.711 A-law (PCMA)"), ("g729", "G729", "G.729"))
REGISTRATION_SECONDS = 600
SRTP_SUITE = "AES_CM_128_HMAC_SHA1_80"
PBX_RTP_FIRST_PORT = 8000  # the guide's: the PBX's own media ports, 8000 to 8000 + 2 × channels


@dataclass(frozen=True)
class TrunkServer:
    """One edge node as this profile's PBX reaches it."""

    host: str
    address: str
    role: str
    port: int
    transport: str  # "tls" or "udp"

    @property
    def hostport(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class FirewallRule:
    direction: str  # seen from the PBX: "out" or "in"
    protocol: str
    pbx_ports: str
    edge: str  # the edge's addresses (and names)
    edge_ports: str
    purpose: str
    note: str = ""


@dataclass(frozen=True)
class PbxConfiguration:
    trunk: str  # the section and gateway names' stem
    registration: bool
    password_included: bool
    asterisk: str
    freeswitch: str
    table: list[tuple[str, str]]
    firewall: list[FirewallRule]
    firewall_edge: list[str]  # each node as the rules name it: host (address)
    srv_names: list[str]
    rtp_ports: tuple[int, int]


def pbx_rtp_ports(profile: SipProfile) -> tuple[int, int]:
    return PBX_RTP_FIRST_PORT, PBX_RTP_FIRST_PORT + 2 * profile.channels


def trunk_servers(profile: SipProfile, servers: list[EdgeServer]) -> list[TrunkServer]:
    """Each node on TLS when the profile requires it (and the node has a TLS port), else UDP."""
    out = []
    for server in sorted(servers, key=lambda s: s.priority):
        tls = profile.tls_required and server.tls_port is not None
        out.append(
            TrunkServer(
                host=server.host,
                address=server.address,
                role=server.role,
                port=server.tls_port if tls and server.tls_port else server.sip_port,
                transport="tls" if tls else "udp",
            )
        )
    return out


def pbx_configuration(
    *, profile: SipProfile, servers: list[EdgeServer], sip_domain: str, password: str | None = None
) -> PbxConfiguration:
    trunk = f"skypemanager-{slugify(profile.name)[:40].strip('-') or profile.public_id.hex[:8]}"
    nodes = trunk_servers(profile, servers)
    registration = profile.auth_method == SipProfile.AuthMethod.REGISTRATION
    domain = sip_domain.rstrip(".")
    srv_names = [f"_sip._udp.{domain}", f"_sip._tcp.{domain}", f"_sips._tcp.{domain}"]
    rtp = pbx_rtp_ports(profile)
    secret = password if (registration and password) else PASSWORD_PLACEHOLDER
    facts = _Facts(
        profile=profile,
        trunk=trunk,
        nodes=nodes,
        registration=registration,
        domain=domain,
        realm=profile.sip_realm or domain,
        username=profile.sip_username or "",
        password=secret,
        srv_names=srv_names,
        rtp=rtp,
    )
    return PbxConfiguration(
        trunk=trunk,
        registration=registration,
        password_included=registration and bool(password),
        asterisk=_asterisk(facts),
        freeswitch=_freeswitch(facts),
        table=_table(facts, password_included=registration and bool(password)),
        firewall=firewall_rules(profile=profile, servers=servers),
        firewall_edge=edge_addresses(servers),
        srv_names=srv_names,
        rtp_ports=rtp,
    )


@dataclass(frozen=True)
class _Facts:
    profile: SipProfile
    trunk: str
    nodes: list[TrunkServer]
    registration: bool
    domain: str
    realm: str
    username: str
    password: str
    srv_names: list[str]
    rtp: tuple[int, int]

    @property
    def tls(self) -> bool:
        return any(node.transport == "tls" for node in self.nodes)


def _sip_uri(node: TrunkServer, *, escaped: bool, lr: bool = False) -> str:
    # Asterisk's configuration reads ";" as the start of a comment: its URI parameters are "\;".
    sep = "\\;" if escaped else ";"
    params = (f"{sep}transport=tls" if node.transport == "tls" else "") + (f"{sep}lr" if lr else "")
    return f"sip:{node.hostport}{params}"


def _asterisk(f: _Facts) -> str:
    transport = f"{f.trunk}-{'tls' if f.tls else 'udp'}"
    lines = [
        f"; Asterisk PJSIP (pjsip.conf) for the SIP profile “{f.profile.name}”, from Skype Manager.",
        f"; DNS SRV of the edge: {', '.join(f.srv_names)}; both nodes are listed below, primary first.",
        f"; rtp.conf: rtpstart={f.rtp[0]} and rtpend={f.rtp[1]} (the ports your firewall lets media in on).",
        "; Calls arrive in the context from-skypemanager with the called number (E.164, +) as the extension.",
        "",
        f"; Skip this transport if pjsip.conf has a {'TLS' if f.tls else 'UDP'} one already; use its name below.",
        f"[{transport}]",
        "type=transport",
    ]
    if f.tls:
        lines += [
            "protocol=tls",
            "bind=0.0.0.0:5061",
            "method=tlsv1_2",
            "ca_list_file=/etc/ssl/certs/ca-certificates.crt",
            "verify_server=yes",
        ]
    else:
        lines += ["protocol=udp", "bind=0.0.0.0:5060"]
    lines.append("")
    if f.registration:
        lines += [
            f"[{f.trunk}-auth]",
            "type=auth",
            "auth_type=userpass",
            f"username={f.username}",
            f"password={f.password}",
            f"realm={f.realm}",
            "",
        ]
    lines += [
        f"[{f.trunk}-aor]",
        "type=aor",
        f"contact={','.join(_sip_uri(node, escaped=True) for node in f.nodes)}",
        "qualify_frequency=30",
        "",
        f"[{f.trunk}]",
        "type=endpoint",
        f"transport={transport}",
        "context=from-skypemanager",
        "disallow=all",
        f"allow={','.join(name for name, _, _ in CODECS)}",
        "dtmf_mode=rfc4733",
        f"aors={f.trunk}-aor",
    ]
    if f.registration:
        lines += [f"outbound_auth={f.trunk}-auth", f"from_user={f.username}"]
    lines += [
        f"from_domain={f.domain}",
        f"media_encryption={'sdes' if f.profile.srtp_required else 'no'}",
        "rtp_symmetric=yes",
        "force_rport=yes",
        "rewrite_contact=yes",
        "direct_media=no",
        f"device_state_busy_at={f.profile.channels}",
        "",
        f"[{f.trunk}-identify]",
        "type=identify",
        f"endpoint={f.trunk}",
        f"match={','.join(node.address or node.host for node in f.nodes)}",
    ]
    if f.registration:
        for i, node in enumerate(f.nodes, start=1):
            lines += [
                "",
                f"; Registration with the {node.role} node.",
                f"[{f.trunk}-reg{i}]",
                "type=registration",
                f"transport={transport}",
                f"outbound_auth={f.trunk}-auth",
                f"server_uri=sip:{f.domain}",
                f"client_uri=sip:{f.username}@{f.domain}",
                f"contact_user={f.username}",
                f"outbound_proxy={_sip_uri(node, escaped=True, lr=True)}",
                f"expiration={REGISTRATION_SECONDS}",
                "retry_interval=30",
                "forbidden_retry_interval=300",
                "max_retries=10000",
                "line=yes",
                f"endpoint={f.trunk}",
            ]
    return "\n".join(lines) + "\n"


def _freeswitch(f: _Facts) -> str:
    root = ET.Element("include")
    root.append(
        ET.Comment(
            f" FreeSWITCH gateways for the SIP profile “{f.profile.name}”, from Skype Manager: save as "
            f"conf/sip_profiles/external/{f.trunk}.xml. DNS SRV of the edge: {', '.join(f.srv_names)}. "
            f"switch.conf.xml: rtp-start-port {f.rtp[0]}, rtp-end-port {f.rtp[1]}."
            + (" The external profile needs TLS on (tls=true)." if f.tls else "")
            + " "
        )
    )
    for i, node in enumerate(f.nodes, start=1):
        gateway = ET.SubElement(root, "gateway", name=f"{f.trunk}-{i}")
        gateway.append(ET.Comment(f" the {node.role} node "))
        params: list[tuple[str, str]] = []
        if f.registration:
            params += [
                ("username", f.username),
                ("password", f.password),
                ("realm", f.realm),
                ("from-user", f.username),
            ]
        else:
            # FreeSWITCH wants a username on every gateway; an IP-authenticated trunk sends none.
            params += [("username", "not-used"), ("realm", f.domain)]
        params += [
            ("from-domain", f.domain),
            ("proxy", _sip_uri(node, escaped=False).removeprefix("sip:")),
            ("register", "true" if f.registration else "false"),
        ]
        if f.registration:
            params += [
                ("register-proxy", _sip_uri(node, escaped=False).removeprefix("sip:")),
                ("register-transport", node.transport),
                ("expire-seconds", str(REGISTRATION_SECONDS)),
                ("retry-seconds", "30"),
            ]
        params += [("ping", "30"), ("caller-id-in-from", "false"), ("context", "public")]
        for name, value in params:
            ET.SubElement(gateway, "param", name=name, value=value)
        variables = ET.SubElement(gateway, "variables")
        ET.SubElement(
            variables,
            "variable",
            name="absolute_codec_string",
            value=",".join(code for _, code, _ in CODECS),
            direction="outbound",
        )
        if f.profile.srtp_required:
            ET.SubElement(variables, "variable", name="rtp_secure_media", value=f"mandatory:{SRTP_SUITE}")
    ET.indent(root, space="  ")
    return ET.tostring(root, encoding="unicode") + "\n"


def _table(f: _Facts, *, password_included: bool) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = [("SIP domain (registrar)", f.domain)]
    for node in f.nodes:
        label = "Outbound proxy" if node is f.nodes[0] else "Backup proxy"
        rows.append((f"{label} ({node.role})", f"{node.hostport} ({node.transport.upper()})"))
    rows.append(("Transport", "TLS (calls over UDP or TCP are refused)" if f.tls else "UDP (or TCP, or TLS)"))
    if f.registration:
        rows += [
            ("Username (and authentication user)", f.username),
            (
                "Password",
                f.password if password_included else "shown once, when the profile was created or its password reset",
            ),
            ("Realm", f.realm),
            ("Registration", f"with each proxy, every {REGISTRATION_SECONDS} s"),
        ]
    else:
        addresses = ", ".join(f"{a.network} {a.transport.upper()}:{a.port}" for a in f.profile.allowed_addresses.all())
        rows += [("Authentication", f"by source address: {addresses}"), ("Registration", "none")]
    rows += [
        ("Codecs", ", ".join(label for _, _, label in CODECS) + "; 20 ms packets"),
        ("DTMF", "RFC 4733 (RFC 2833) telephone-event"),
        (
            "Media encryption",
            f"SRTP with SDES ({SRTP_SUITE}), required" if f.profile.srtp_required else "none required (RTP or SRTP)",
        ),
        ("RTP ports on your PBX", f"UDP {f.rtp[0]}–{f.rtp[1]}"),
        ("Channels", f"{f.profile.channels} simultaneous calls"),
        ("Number format", "E.164 with +, e.g. +442079460958"),
        ("DNS SRV", ", ".join(f.srv_names)),
    ]
    return rows


def edge_addresses(servers: list[EdgeServer]) -> list[str]:
    """Each node's name and the address its SIP and media use (the firewall needs the address)."""
    return [f"{s.host} ({s.address})" if s.address and s.address != s.host else s.host for s in servers]


def firewall_rules(*, profile: SipProfile, servers: list[EdgeServer]) -> list[FirewallRule]:
    """What the PBX's firewall must let through, between the PBX and each edge node: SIP to the
    nodes, TLS where they have it, and media between the PBX's RTP range (the guide's 8000 to
    8000 + 2 × channels: an RTP and an RTCP port per call) and rtpengine's on the nodes."""
    edge = ", ".join(edge_addresses(servers))
    sip_ports = ", ".join(sorted({str(s.sip_port) for s in servers})) or "5060"
    tls_ports = ", ".join(sorted({str(s.tls_port) for s in servers if s.tls_port}))
    first, last = pbx_rtp_ports(profile)
    media = f"{settings.EDGE_RTP_PORT_MIN}–{settings.EDGE_RTP_PORT_MAX}"
    rules = [
        FirewallRule(
            "out",
            "UDP and TCP",
            "any",
            edge,
            sip_ports,
            "SIP signalling",
            "not used while the profile requires TLS" if profile.tls_required and tls_ports else "",
        )
    ]
    if tls_ports:
        rules.append(FirewallRule("out", "TCP", "any", edge, tls_ports, "SIP over TLS"))
    if profile.auth_method == SipProfile.AuthMethod.IP:
        allowed = list(profile.allowed_addresses.all())
        protocols = " and ".join(sorted({"TCP" if a.transport == "tls" else a.transport.upper() for a in allowed}))
        ports = ", ".join(sorted({str(a.port) for a in allowed}))
        rules.append(
            FirewallRule("in", protocols or "UDP", ports or "5060", edge, "any", "Inbound calls to your PBX's address")
        )
    else:
        rules.append(
            FirewallRule(
                "in",
                "UDP and TCP",
                "your SIP port",
                edge,
                sip_ports + (f", {tls_ports}" if tls_ports else ""),
                "Inbound calls",
                "arrive over the registration's own connection: a stateful firewall lets them in; keep its "
                "UDP timeout above 60 s",
            )
        )
    rules += [
        FirewallRule("in", "UDP", f"{first}–{last}", edge, media, "Media (RTP and RTCP) from the edge"),
        FirewallRule("out", "UDP", f"{first}–{last}", edge, media, "Media (RTP and RTCP) to the edge"),
    ]
    return rules
