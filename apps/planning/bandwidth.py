"""The bandwidth and channel calculator of the planning page (Skype Connect Requirements Guide,
4.3 "Simultaneous channel capacity"): what one call takes on the line in each direction, for a
codec, a packetisation and the line's framing, and from it how many simultaneous calls a line
carries, or how fast a line must be for a number of calls.

Pure arithmetic (no Django): the page, the tests and anyone else call it. Every figure is worked
in whole bytes and exact fractions and rounded once, for display.

What one voice packet carries, from first principles:
- the codec's payload for one packet: bit rate × packetisation (G.711 64 kbit/s: 160 bytes per
  20 ms; G.729 8 kbit/s: 20 bytes per 20 ms);
- RTP 12 + UDP 8 + IPv4 20 = 40 bytes of headers (no RTP header compression, no IPv6, no
  SRTP authentication tag: SDES-SRTP adds 10 bytes a packet, see SRTP_TAG_BYTES);
- the line's framing (LINKS): Ethernet 14 + FCS 4 (+ preamble 8 and inter-frame gap 12 counted
  on the wire), PPPoE 6 + PPP 2, and on ADSL the ATM layer: the packet plus its encapsulation and
  the AAL5 trailer (8) padded to whole 48-byte cell payloads, each sent as a 53-byte cell. ADSL
  line speeds are ATM cell rates, so that is what the line's speed is compared with.
Voice is as fast in both directions (no silence suppression), so a line's channels are limited by
its slower direction (on ADSL, the upload). SIP signalling (a few hundred bytes per call set-up
and a registration every few minutes) is left out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal
from fractions import Fraction

RTP_BYTES, UDP_BYTES, IPV4_BYTES = 12, 8, 20
IP_UDP_RTP_BYTES = RTP_BYTES + UDP_BYTES + IPV4_BYTES
SRTP_TAG_BYTES = 10  # HMAC-SHA1-80, the SDES suite the edge offers
ATM_CELL_BYTES, ATM_PAYLOAD_BYTES, AAL5_TRAILER_BYTES = 53, 48, 8


@dataclass(frozen=True)
class Codec:
    key: str
    label: str
    bits_per_second: int
    frame_ms: int  # packetisation must be a multiple of this


@dataclass(frozen=True)
class Link:
    key: str
    name: str  # short, for the form's choice
    label: str  # what it adds, for the page's assumptions
    framing_bytes: int  # added to each IP packet (for ATM: before the padding into cells)
    atm: bool = False


CODECS: dict[str, Codec] = {
    "g711": Codec("g711", "G.711 (PCMU / PCMA), 64 kbit/s", 64_000, 10),
    "g729": Codec("g729", "G.729, 8 kbit/s", 8_000, 10),
}
PACKETISATIONS_MS = (10, 20, 30, 40, 60)
DEFAULT_PACKETISATION_MS = 20

LINKS: dict[str, Link] = {
    link.key: link
    for link in (
        Link("ip", "IP only", "IP only: no line framing", 0),
        Link("ethernet", "Ethernet", "Ethernet: header 14 + FCS 4 bytes", 14 + 4),
        Link(
            "ethernet_wire",
            "Ethernet, on the wire",
            "Ethernet on the wire: + preamble 8 and inter-frame gap 12 bytes",
            14 + 4 + 8 + 12,
        ),
        Link(
            "pppoe",
            "PPPoE (fibre, VDSL)",
            "PPPoE over Ethernet (fibre, VDSL): Ethernet 18 + PPPoE 6 + PPP 2 bytes",
            18 + 6 + 2,
        ),
        Link(
            "adsl_pppoa_vcmux",
            "ADSL, PPPoA VC-mux",
            "ADSL, PPPoA VC-mux over ATM: PPP 2 + AAL5 trailer 8 bytes, in 53-byte cells",
            2 + AAL5_TRAILER_BYTES,
            atm=True,
        ),
        Link(
            "adsl_pppoe_llc",
            "ADSL, PPPoE LLC/SNAP",
            "ADSL, PPPoE LLC/SNAP over ATM: PPPoE 8 + Ethernet 14 + LLC/SNAP 10 + AAL5 trailer 8 bytes, "
            "in 53-byte cells",
            6 + 2 + 14 + 10 + AAL5_TRAILER_BYTES,
            atm=True,
        ),
    )
}


class PlanningInputError(ValueError):
    """A codec, packetisation or line the calculator does not know (the form offers only known ones)."""


@dataclass(frozen=True)
class CallBandwidth:
    """One call, one direction."""

    codec: Codec
    packetisation_ms: int
    link: Link
    srtp: bool
    payload_bytes: int
    ip_packet_bytes: int
    line_packet_bytes: int  # on ATM: whole cells
    atm_cells: int | None
    packets_per_second: Fraction
    bits_per_second: Fraction  # on the line

    @property
    def kbps(self) -> Decimal:
        """kbit/s (1 kbit = 1,000 bits) on the line, to 0.01."""
        return _decimal(self.bits_per_second / 1000, "0.01", ROUND_HALF_UP)

    @property
    def ip_kbps(self) -> Decimal:
        return _decimal(self.ip_packet_bytes * 8 * self.packets_per_second / 1000, "0.01", ROUND_HALF_UP)


def call_bandwidth(*, codec: str, packetisation_ms: int, link: str, srtp: bool = False) -> CallBandwidth:
    try:
        the_codec, the_link = CODECS[codec], LINKS[link]
    except KeyError as error:
        raise PlanningInputError(f"unknown codec or line: {error.args[0]!r}") from None
    if packetisation_ms <= 0 or packetisation_ms % the_codec.frame_ms:
        raise PlanningInputError(f"{the_codec.label}: packetisation must be a multiple of {the_codec.frame_ms} ms")
    payload = the_codec.bits_per_second * packetisation_ms // 8000
    ip_packet = payload + IP_UDP_RTP_BYTES + (SRTP_TAG_BYTES if srtp else 0)
    cells = None
    if the_link.atm:
        cells = math.ceil((ip_packet + the_link.framing_bytes) / ATM_PAYLOAD_BYTES)
        line_packet = cells * ATM_CELL_BYTES
    else:
        line_packet = ip_packet + the_link.framing_bytes
    pps = Fraction(1000, packetisation_ms)
    return CallBandwidth(
        codec=the_codec,
        packetisation_ms=packetisation_ms,
        link=the_link,
        srtp=srtp,
        payload_bytes=payload,
        ip_packet_bytes=ip_packet,
        line_packet_bytes=line_packet,
        atm_cells=cells,
        packets_per_second=pps,
        bits_per_second=line_packet * 8 * pps,
    )


def _usable(speed_kbps: Fraction, reserve_percent: int) -> Fraction:
    if not 0 <= reserve_percent < 100:
        raise PlanningInputError("the share kept free for other traffic must be 0 to 99%")
    return speed_kbps * 1000 * Fraction(100 - reserve_percent, 100)


def channels_for_speed(*, speed_kbps: Decimal | int, call: CallBandwidth, reserve_percent: int = 0) -> int:
    """Simultaneous calls a line of `speed_kbps` (one direction) carries, keeping
    `reserve_percent` of it for other traffic."""
    if speed_kbps < 0:
        raise PlanningInputError("a line speed cannot be negative")
    return math.floor(_usable(Fraction(str(speed_kbps)), reserve_percent) / call.bits_per_second)


def speed_for_channels(*, channels: int, call: CallBandwidth, reserve_percent: int = 0) -> Decimal:
    """The line speed (kbit/s, one direction, rounded up to 0.1) that carries `channels`
    simultaneous calls with `reserve_percent` of it still free for other traffic."""
    if channels < 0:
        raise PlanningInputError("channels cannot be negative")
    if not 0 <= reserve_percent < 100:
        raise PlanningInputError("the share kept free for other traffic must be 0 to 99%")
    bits = channels * call.bits_per_second * Fraction(100, 100 - reserve_percent)
    return _decimal(bits / 1000, "0.1", ROUND_CEILING)


@dataclass(frozen=True)
class Connection:
    """A line of the guide's table: its name and its speeds (kbit/s) down and up."""

    name: str
    download_kbps: int
    upload_kbps: int


# The guide's table of lines (ADSL 0.5, 1 and 8 Mb, SDSL 2 Mb). ADSL is asymmetric: the upload
# speeds are the usual ones sold with each (256, 256 and 448 kbit/s, as BT's ADSL Max); SDSL is
# as fast both ways. "Mb" lines are sold in units of 1,024 kbit/s.
GUIDE_CONNECTIONS = (
    Connection("ADSL 0.5 Mb", 512, 256),
    Connection("ADSL 1 Mb", 1024, 256),
    Connection("ADSL 8 Mb", 8192, 448),
    Connection("SDSL 2 Mb", 2048, 2048),
)


@dataclass(frozen=True)
class ConnectionChannels:
    connection: Connection
    download_channels: int
    upload_channels: int

    @property
    def channels(self) -> int:
        return min(self.download_channels, self.upload_channels)


def guide_table(*, call: CallBandwidth, reserve_percent: int = 0) -> list[ConnectionChannels]:
    return [
        ConnectionChannels(
            connection=c,
            download_channels=channels_for_speed(
                speed_kbps=c.download_kbps, call=call, reserve_percent=reserve_percent
            ),
            upload_channels=channels_for_speed(speed_kbps=c.upload_kbps, call=call, reserve_percent=reserve_percent),
        )
        for c in GUIDE_CONNECTIONS
    ]


def _decimal(value: Fraction, places: str, rounding: str) -> Decimal:
    return (Decimal(value.numerator) / Decimal(value.denominator)).quantize(Decimal(places), rounding=rounding)


@dataclass(frozen=True)
class QualityLimit:
    metric: str
    limit: str
    symptom: str
    remedy: str


# The guide's network quality limits (4.1, 4.2) and what to do when a line does not meet one.
QUALITY_LIMITS = (
    QualityLimit(
        "Round trip time",
        "under 200 ms",
        "Both sides talk over each other; echo becomes audible.",
        "Measure to both edge nodes (ping or mtr from the PBX). Use a wired line rather than wireless or "
        "satellite, a provider closer to the edge, and keep large uploads off the line during calls.",
    ),
    QualityLimit(
        "Jitter",
        "under 10 ms",
        "Choppy or robotic speech; the PBX's jitter buffer adds delay to hide it.",
        "Give voice priority on the router (QoS: DSCP EF for RTP, CS3 for SIP) and shape the upload a little "
        "below the line's speed so the router, not the modem, holds the queue.",
    ),
    QualityLimit(
        "Packet loss",
        "under 0.2%",
        "Gaps and clicks in speech; at 1% calls become hard to follow.",
        "Loss on an idle line is the provider's to fix (line errors, a congested link): report it with an mtr "
        "trace. Loss only during calls or uploads means a full line: leave headroom (the calculator's share "
        "kept free) or buy a faster upload.",
    ),
)
