"""The bandwidth and channel calculator (issue 14, item 6) against figures worked out by hand
here, not by the module: the guide's lines (ADSL 0.5, 1 and 8 Mb, SDSL 2 Mb) with G.729, and
each line framing's bytes per packet. The page answers both questions and refuses bad input
with a form error."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import pytest

from apps.planning import bandwidth
from tests.conftest import client_as

# One G.729 call, 20 ms packets: 20 bytes of voice + 40 of RTP/UDP/IPv4 = 60 bytes, 50 a second.
#   Ethernet          60 + 18 = 78 bytes                              -> 78 × 8 × 50 = 31.2 kbit/s
#   PPPoE/Ethernet    60 + 26 = 86 bytes                              -> 34.4 kbit/s
#   PPPoA VC-mux      60 + 2 + 8 = 70 -> 2 cells × 53 = 106 bytes     -> 42.4 kbit/s
#   PPPoE LLC (ATM)   60 + 8 + 14 + 10 + 8 = 100 -> 3 cells = 159     -> 63.6 kbit/s
# G.711, 20 ms: 160 + 40 = 200 bytes: Ethernet 218 -> 87.2; both ATM framings 5 cells = 265 -> 106.0.
PER_CALL_KBPS = {
    ("g729", 20, "ip"): "24.00",
    ("g729", 20, "ethernet"): "31.20",
    ("g729", 20, "ethernet_wire"): "39.20",
    ("g729", 20, "pppoe"): "34.40",
    ("g729", 20, "adsl_pppoa_vcmux"): "42.40",
    ("g729", 20, "adsl_pppoe_llc"): "63.60",
    ("g711", 20, "ethernet"): "87.20",
    ("g711", 20, "adsl_pppoa_vcmux"): "106.00",
    ("g711", 20, "adsl_pppoe_llc"): "106.00",
    # 30 ms: 30 + 40 = 70 bytes, 33⅓ a second: Ethernet 88 -> 23.47; LLC 110 -> 3 cells -> 42.4.
    ("g729", 30, "ethernet"): "23.47",
    ("g729", 30, "adsl_pppoe_llc"): "42.40",
    # 10 ms: 10 + 40 = 50 bytes, 100 a second: LLC 90 -> 2 cells = 106 -> 84.8 (worse than 20 ms).
    ("g729", 10, "adsl_pppoe_llc"): "84.80",
}

# The guide's lines, G.729 at 20 ms, nothing kept free: (down, up) kbit/s -> calls down, calls up,
# for PPPoE LLC over ATM (63.6 per call), PPPoA VC-mux (42.4) and plain Ethernet framing (31.2).
GUIDE = {
    "ADSL 0.5 Mb": ((512, 256), {"adsl_pppoe_llc": (8, 4), "adsl_pppoa_vcmux": (12, 6), "ethernet": (16, 8)}),
    "ADSL 1 Mb": ((1024, 256), {"adsl_pppoe_llc": (16, 4), "adsl_pppoa_vcmux": (24, 6), "ethernet": (32, 8)}),
    "ADSL 8 Mb": ((8192, 448), {"adsl_pppoe_llc": (128, 7), "adsl_pppoa_vcmux": (193, 10), "ethernet": (262, 14)}),
    "SDSL 2 Mb": ((2048, 2048), {"adsl_pppoe_llc": (32, 32), "adsl_pppoa_vcmux": (48, 48), "ethernet": (65, 65)}),
}


@pytest.mark.parametrize(("codec", "ms", "link"), PER_CALL_KBPS)
def test_one_call_takes_the_bandwidth_worked_out_by_hand(codec: str, ms: int, link: str) -> None:
    call = bandwidth.call_bandwidth(codec=codec, packetisation_ms=ms, link=link)
    assert call.kbps == Decimal(PER_CALL_KBPS[(codec, ms, link)])


@pytest.mark.parametrize("link", ["adsl_pppoe_llc", "adsl_pppoa_vcmux", "ethernet"])
def test_the_guides_lines_carry_the_g729_calls_worked_out_by_hand(link: str) -> None:
    call = bandwidth.call_bandwidth(codec="g729", packetisation_ms=20, link=link)
    rows = bandwidth.guide_table(call=call)

    assert [(r.connection.name, (r.connection.download_kbps, r.connection.upload_kbps)) for r in rows] == [
        (name, speeds) for name, (speeds, _) in GUIDE.items()
    ]
    for row in rows:
        down, up = GUIDE[row.connection.name][1][link]
        assert (row.download_channels, row.upload_channels) == (down, up), row.connection.name
        assert row.channels == min(down, up)


def test_channels_to_bandwidth_and_back_keep_the_share_left_free() -> None:
    call = bandwidth.call_bandwidth(codec="g729", packetisation_ms=20, link="adsl_pppoe_llc")
    # 10 calls × 63.6 = 636 kbit/s; with 20% kept free, 636 / 0.8 = 795.
    assert bandwidth.speed_for_channels(channels=10, call=call) == Decimal("636.0")
    assert bandwidth.speed_for_channels(channels=10, call=call, reserve_percent=20) == Decimal("795.0")
    # And 795 kbit/s with 20% free carries exactly those 10; a bit less carries 9.
    assert bandwidth.channels_for_speed(speed_kbps=795, call=call, reserve_percent=20) == 10
    assert bandwidth.channels_for_speed(speed_kbps=Decimal("794.9"), call=call, reserve_percent=20) == 9


def test_srtp_adds_its_tag_to_every_packet() -> None:
    # G.711 20 ms over Ethernet: 200 + 10 + 18 = 228 bytes × 8 × 50 = 91.2 kbit/s.
    call = bandwidth.call_bandwidth(codec="g711", packetisation_ms=20, link="ethernet", srtp=True)
    assert call.kbps == Decimal("91.20")


def numbers_in(html: str, element_id: str) -> str:
    match = re.search(rf'id="{element_id}"[^>]*>([^<]+)<', html)
    assert match, element_id
    return match.group(1).strip()


def test_the_page_answers_both_questions_for_the_line_entered(company: Any, owner: Any) -> None:
    query = (
        "codec=g729&packetisation=20&link=adsl_pppoe_llc&upload_kbps=448&download_kbps=8192"
        "&channels=10&reserve_percent=0"
    )
    response = client_as(owner).get(f"/planning/?{query}")

    assert response.status_code == 200
    html = response.content.decode()
    assert numbers_in(html, "upload-channels") == "7"
    assert numbers_in(html, "download-channels") == "128"
    assert numbers_in(html, "line-channels") == "7"
    assert numbers_in(html, "speed-needed") == "636.0 kbit/s"
    assert numbers_in(html, "per-call-kbps") == "63.60 kbit/s"


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ("codec=g729&packetisation=20&link=ethernet&upload_kbps=-5&reserve_percent=20", "upload_kbps", "greater than"),
        ("codec=opus&packetisation=20&link=ethernet&channels=4&reserve_percent=20", "codec", "valid choice"),
        ("codec=g729&packetisation=25&link=ethernet&channels=4&reserve_percent=20", "packetisation", "valid choice"),
        ("codec=g729&packetisation=20&link=ethernet&channels=abc&reserve_percent=20", "channels", "whole number"),
        ("codec=g729&packetisation=20&link=ethernet&channels=4&reserve_percent=95", "reserve_percent", "less than"),
    ],
)
def test_bad_input_is_a_form_error_next_to_its_field(
    company: Any, owner: Any, query: str, field: str, message: str
) -> None:
    html = client_as(owner).get(f"/planning/?{query}").content.decode()

    error = re.search(rf'<p class="error" id="id_{field}_error">([^<]+)</p>', html)
    assert error, html
    assert message in error.group(1)
    assert 'id="calculator-result"' not in html
    # What was entered is still there to correct.
    assert f'name="{field}"' in html


def test_a_question_with_neither_a_speed_nor_channels_says_what_is_missing(company: Any, owner: Any) -> None:
    html = client_as(owner).get("/planning/?codec=g729&packetisation=20&link=ethernet&reserve_percent=20").content
    assert b"Enter a line speed (upload, download or both) or a number of simultaneous calls." in html
    assert b'id="calculator-result"' not in html


def test_the_page_without_a_question_shows_the_guides_lines_for_the_defaults(company: Any, owner: Any) -> None:
    html = client_as(owner).get("/planning/").content.decode()
    # G.729, 20 ms, PPPoE over ATM, 20% free: ADSL 8 Mb's 448 kbit/s upload carries 358.4 / 63.6 = 5 calls.
    row = re.search(r"<td>ADSL 8 Mb</td><td>[^<]*</td><td><strong>(\d+)</strong>", html)
    assert row
    assert row.group(1) == "5"
    assert "Round trip time" in html
    assert "under 200 ms" in html
    assert "under 10 ms" in html
    assert "under 0.2%" in html
