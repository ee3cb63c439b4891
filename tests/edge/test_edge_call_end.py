"""A call stops holding a channel however it ends: hung up (BYE, in test_edge_calls), given up
while ringing (CANCEL), or never hung up at all (a lost BYE: the longest call ends it)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

from apps.edge.models import EdgeNode
from tests.edge.conftest import CarrierUas, Edge, explain, run_sipp, scenario, sipp_command
from tests.edge.test_edge_calls import US_NUMBER, provisioned

MAX_CALL_SECONDS = 3  # EDGE_MAX_CALL_SECONDS of the quick node (conftest.QUICK_DEFINES)


def test_a_call_given_up_while_ringing_gives_its_channel_back(
    edge: Edge, edge_node: EdgeNode, company: Any, owner: Any, tmp_path: Path
) -> None:
    profile, password = provisioned(company, owner, channels=1)
    uas = CarrierUas(edge, tmp_path, name="carrier_uas_cancel.xml")
    command = sipp_command(
        edge,
        scenario(tmp_path, "cancel_uac.xml"),
        service=US_NUMBER,
        user=profile.sip_username,
        password=password,
        hold_ms=1500,
    )
    caller = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603
    try:
        deadline = time.monotonic() + 5
        while edge.channels_in_use(profile.pk) < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert edge.channels_in_use(profile.pk) == 1  # ringing holds the channel

        assert caller.wait(timeout=15) == 0, explain(command, caller, edge)
        assert uas.wait() == 0, uas.file.with_suffix(".err.log").read_text()
    finally:
        if caller.poll() is None:
            caller.kill()
            caller.wait()
        uas.stop()
    assert edge.channels_in_use(profile.pk) == 0


def test_a_call_whose_bye_is_lost_is_ended_by_the_edge_at_the_longest_call_and_gives_its_channel_back(
    quick_edge: Edge, quick_edge_node: EdgeNode, company: Any, owner: Any, tmp_path: Path
) -> None:
    profile, password = provisioned(company, owner, channels=1)
    uas = CarrierUas(quick_edge, tmp_path)  # answers, then expects a BYE: the edge's
    command = sipp_command(
        quick_edge,
        scenario(tmp_path, "invite_nobye_uac.xml"),
        service=US_NUMBER,
        user=profile.sip_username,
        password=password,
    )
    try:
        result = run_sipp(command, edge=quick_edge)
        answered = time.monotonic()
        assert result.returncode == 0, explain(command, result, quick_edge)
        assert quick_edge.channels_in_use(profile.pk) == 1  # the PBX is gone, its call is not

        assert uas.wait() == 0, uas.file.with_suffix(".err.log").read_text()
        ended = time.monotonic() - answered
    finally:
        uas.stop()
    assert quick_edge.channels_in_use(profile.pk) == 0
    assert MAX_CALL_SECONDS - 1 <= ended <= MAX_CALL_SECONDS + 5, ended
