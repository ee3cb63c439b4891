"""The whole product, end to end, as an integrator meets it: a company signs up, buys credit
through Stripe (localstripe), and through the REST API (its own API key, against the live
server) creates a registration profile with 2 channels and a US minute bundle, puts credit on
it, buys an Online Number and routes it to a business account on the profile. A real Celery
worker provisions both edge nodes (primary and secondary: each a real Kamailio with its own
node database); SIPp plays the PBX and the carrier.

Platform staff's part is done as staff do it: the nodes and the carrier with the `edge_node`,
`edge_carrier` and `edge_sync` commands, the rate deck and the number stock through the import
and stock services the staff pages call. Nothing is faked: every wait is a poll with a deadline.
"""

from __future__ import annotations

import re
import subprocess
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests
from django.core import mail
from django.core.management import call_command

from apps.accounts.models import User
from apps.cdrs.models import Cdr
from apps.core.actor import Actor
from apps.numbers.services import number_stock_create
from apps.rating.imports import COLUMNS
from apps.rating.models import RateDeck
from apps.rating.services import rate_deck_import_create
from tests.billing.stripe_fixtures import SECRET_KEY, LocalStripe, localstripe, localstripe_server, stripe_webhooks
from tests.edge.conftest import (
    CARRIER_SOURCE,
    CarrierUas,
    Edge,
    EdgePair,
    explain,
    free_port,
    run_sipp,
    running_edge_pair,
    scenario,
    sipp_command,
    wait_until,
)
from tests.edge.test_inbound import Pbx, carrier_call
from tests.helpers.workers import celery_beat, celery_worker

__all__ = ["localstripe", "localstripe_server", "stripe_webhooks"]

pytestmark = pytest.mark.django_db(transaction=True)

US_NUMBER = "+12025550123"
UK_NUMBER = "+442079460958"
DID = "+442079460100"
PASSWORD = "integrator-password-2026"
DECK = [
    "1,United States,US,landline,0.005000,0,60,60,2026-01-01",
    "44,United Kingdom,GB,landline,0.010000,0,60,60,2026-01-01",
]


def csrf(session: requests.Session, url: str) -> str:
    """Open the page (Django sets its CSRF cookie) and return the token its forms carry."""
    page = session.get(url, timeout=10)
    assert page.status_code == 200, page.text[:2000]
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    assert match, page.text[:2000]
    return match.group(1)


class Api:
    """The integrator's client: requests with the API key, against the live server."""

    def __init__(self, base: str, key: str) -> None:
        self.base = f"{base}/api/v1/"
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {key}"

    def get(self, path: str, **params: Any) -> Any:
        response = self.session.get(self.base + path, params=params, timeout=15)
        assert response.status_code == 200, f"GET {path}: {response.status_code} {response.text[:2000]}"
        return response.json()

    def post(self, path: str, body: dict[str, Any], *, idempotency_key: bool = False, expect: int = 201) -> Any:
        headers = {"Idempotency-Key": uuid.uuid4().hex} if idempotency_key else {}
        response = self.session.post(self.base + path, json=body, headers=headers, timeout=30)
        assert response.status_code == expect, f"POST {path}: {response.status_code} {response.text[:2000]}"
        return response.json()


def sign_up(base: str) -> Api:
    """Sign-up creates the company and its owner; the e-mail is confirmed, the owner signs in
    and makes an API key (a browser-session step); everything after is the API's."""
    browser = requests.Session()
    email = "owner@whole-product.example"
    response = browser.post(
        f"{base}/accounts/signup/",
        data={
            "csrfmiddlewaretoken": csrf(browser, f"{base}/accounts/signup/"),
            "full_name": "Grace Hopper",
            "email": email,
            "password1": PASSWORD,
            "password2": PASSWORD,
            "company_name": "Whole Product Ltd",
            "country": "GB",
            "currency": "GBP",
        },
        timeout=15,
    )
    assert response.status_code == 200, response.text[:2000]
    body = str(mail.outbox[-1].body)
    link = re.search(r"https?://\S+?(/accounts/confirm-email/\S+/)", body)
    assert link, body
    confirm = f"{base}{link.group(1)}"
    assert browser.post(confirm, data={"csrfmiddlewaretoken": csrf(browser, confirm)}, timeout=15).ok
    login = f"{base}/accounts/login/"
    signed_in = browser.post(
        login, data={"csrfmiddlewaretoken": csrf(browser, login), "login": email, "password": PASSWORD}, timeout=15
    )
    assert signed_in.url.rstrip("/") == base, f"not signed in: {signed_in.url}"
    created = browser.post(
        f"{base}/api/v1/api-keys/",
        json={"name": "provisioning", "role": "admin"},
        headers={"X-CSRFToken": str(browser.cookies["csrftoken"])},
        timeout=15,
    )
    assert created.status_code == 201, created.text
    return Api(base, created.json()["key"])


def staff_set_up(primary: Edge, secondary: Edge) -> None:
    """What platform staff do before a customer can call: the two nodes and the carrier (the
    ops commands), the GBP rate deck (imported by the worker) and an Online Number in stock."""
    for node in (primary.node, secondary.node):
        call_command(
            "edge_node", "add", node.name, "--role", node.role, "--sip-host", node.sip_host,
            "--sip-port", str(node.sip_port), "--rpc-url", node.rpc_url,
            "--database-url", node.database_url, "--public-host", node.public_host,
        )  # fmt: skip
    call_command(
        "edge_carrier", "add", "upstream", "--address", "127.0.0.1", "--port", str(primary.carrier_port),
        "--inbound-from", CARRIER_SOURCE,
    )  # fmt: skip
    call_command("edge_sync")  # the carriers and the blocked numbers, on both nodes

    staff = User.objects.create_superuser(email="staff@platform.example", password=PASSWORD)
    actor = Actor(user=staff)
    deck = rate_deck_import_create(
        actor=actor, currency="GBP", filename="gbp.csv", content="\n".join([",".join(COLUMNS), *DECK]) + "\n"
    )
    wait_until(
        lambda: RateDeck.objects.filter(pk=deck.pk, status=RateDeck.Status.ACTIVE).exists(),
        "the worker imported the rate deck",
        timeout=60,  # the worker's start on a loaded machine included
    )
    number_stock_create(
        actor=actor, number=DID, country="GB", area="London", number_type="geographic",
        price_3m_usd="5", price_12m_usd="18", price_3m_eur="4.6", price_12m_eur="16.5",
        price_3m_gbp="4", price_12m_gbp="14",
    )  # fmt: skip


def buy_credit(api: Api, stripe: LocalStripe, amount: str) -> None:
    """A card purchase: the API answers with the PaymentIntent's client secret; the payment is
    made at Stripe (what Stripe.js does in the integrator's page: localstripe confirms intents
    only with the secret key), and Stripe's webhook to the live server credits the balance."""
    purchase = api.post("credit/purchases/", {"amount": amount, "method": "card"}, idempotency_key=True)
    intent = purchase["client_secret"].split("_secret_")[0]
    stripe_api = f"{stripe.base}/v1/payment_intents/{intent}"
    for step, data in (("", {"payment_method": "pm_card_visa"}), ("/confirm", {})):
        paid = requests.post(f"{stripe_api}{step}", data=data, auth=(SECRET_KEY, ""), timeout=10)
        assert paid.status_code == 200, paid.text
    wait_until(
        lambda: Decimal(api.get("credit/")["company_balance"]) > 0, "Stripe's webhook credited the company", timeout=20
    )


def both_nodes_synced(api: Api, profile_id: str) -> list[dict[str, Any]]:
    nodes = api.get(f"sip-profiles/{profile_id}/")["provisioning"]
    return nodes if [(n["role"], n["state"]) for n in nodes] == [("primary", "synced"), ("secondary", "synced")] else []


def sipp_ok(edge: Edge, command: list[str]) -> None:
    result = run_sipp(command, edge=edge)
    assert result.returncode == 0, explain(command, result, edge)


def register(edge: Edge, tmp_path: Path, user: str, password: str) -> int:
    """SIPp registers as the PBX from a free port; that port (where the PBX is then called).
    A port another program took between the pick and SIPp's bind is picked again."""
    for _ in range(3):
        port = free_port()
        command = sipp_command(
            edge, scenario(tmp_path, "register.xml", expect=200), service=user, user=user, password=password, port=port
        )
        result = run_sipp(command, edge=edge)
        if result.returncode == 0:
            return port
        errors = Path(command[command.index("-error_file") + 1])
        if "Unable to bind main socket" not in (errors.read_text() if errors.exists() else ""):
            break
    raise AssertionError(explain(command, result, edge))


def dial(edge: Edge, tmp_path: Path, number: str, user: str, password: str, hold_ms: int = 200) -> list[str]:
    file = scenario(tmp_path, "invite_uac.xml")
    # SIPp's timeout bounds the whole call: the hold plus 10 s to set it up and end it.
    timeout = 10 + hold_ms // 1000
    return sipp_command(edge, file, service=number, user=user, password=password, hold_ms=hold_ms, timeout=timeout)


def answered_call(edge: Edge, tmp_path: Path, number: str, user: str, password: str) -> None:
    """A call through `edge` reaches the SIPp carrier, is answered and hung up."""
    carrier = CarrierUas(edge, tmp_path)
    try:
        sipp_ok(edge, dial(edge, tmp_path, number, user, password, hold_ms=1000))
        assert carrier.wait() == 0
    finally:
        carrier.stop()


@pytest.fixture
def two_nodes() -> Iterator[EdgePair]:
    """A primary and a secondary node of this test alone (no profile of another test on them)."""
    with running_edge_pair() as pair:
        yield pair


def test_a_company_signs_up_buys_credit_and_its_pbx_calls_out_receives_calls_and_survives_the_primary_node(
    live_server: Any,
    stripe_webhooks: LocalStripe,
    two_nodes: EdgePair,
    mailoutbox: Any,
    settings: Any,
    tmp_path: Path,
) -> None:
    settings.EDGE_SYNC_ENABLED = True
    primary, secondary = two_nodes.both
    started = time.monotonic()

    def phase(name: str) -> None:
        print(f"[whole product {time.monotonic() - started:5.1f} s] {name}")  # noqa: T201 - the run's timings, shown with -s

    queue = f"e2e-{uuid.uuid4().hex[:12]}"
    with (
        # Beat queues the CDR import of each node every second (and the other periodic jobs).
        celery_beat(queue, tmp_path / "beat.log"),
        celery_worker(tmp_path / "worker.log", env={"EDGE_SYNC_ENABLED": "true"}, queue=queue) as worker,
    ):
        phase("the worker is up; staff set up the nodes, the carrier, the rates and the stock")
        staff_set_up(primary, secondary)

        phase("the integrator, through the API")
        api = sign_up(live_server.url)
        assert api.get("company/")["currency"] == "GBP"
        buy_credit(api, stripe_webhooks, "100")
        company_balance = Decimal(api.get("credit/")["company_balance"])
        assert company_balance == Decimal("100")

        profile = api.post(
            "sip-profiles/",
            {
                "name": "Head office PBX",
                "auth_method": "registration",
                "channels": 2,
                "us_minute_bundles": 1,
                "tls_required": False,
                "srtp_required": False,
            },
        )
        pid, user, password = profile["id"], profile["sip_username"], profile["password"]

        def usage() -> str:
            """What the portal has of the calls, for a failure message."""
            cdrs = list(Cdr.objects.values_list("node", "direction", "disposition", "refusal_reason", "callee"))
            return f"bundles: {api.get(f'sip-profiles/{pid}/bundles/')}\nCDRs: {cdrs}\n{worker.output()[-3000:]}"

        assert (profile["channels"], profile["us_minute_bundles"]) == (2, 1)
        bundles = api.get(f"sip-profiles/{pid}/bundles/")
        assert (bundles["bundles"], bundles["minutes_used"]) == (1, 0)
        assert bundles["minutes_left"] > 0
        # The channels and the bundle were paid from the company balance.
        assert Decimal(api.get("credit/")["company_balance"]) < company_balance

        api.post(f"sip-profiles/{pid}/credit/", {"action": "allocate", "amount": "10"}, idempotency_key=True)
        account = api.post("business-accounts/", {"name": "reception", "display_name": "Reception", "sip_profile": pid})
        available = [n["number"] for n in api.get("numbers/available/", country="GB")["results"]]
        assert DID in available
        number = api.post("numbers/", {"number": DID, "months": "3", "business_account": account["id"]})
        assert (number["number"], number["business_account"]) == (DID, account["id"])

        phase("the worker provisions both nodes")
        wait_until(
            lambda: both_nodes_synced(api, pid),
            "both nodes took the profile",
            explain=lambda: api.get(f"sip-profiles/{pid}/")["provisioning"],
        )
        nodes = both_nodes_synced(api, pid)
        assert [n["public_host"] for n in nodes] == [primary.node.public_host, secondary.node.public_host]
        assert "edge_sync_profile_task" in worker.output(), "the sync ran somewhere else than the worker"
        policy = api.get(f"sip-profiles/{pid}/call-policy/")
        assert policy["paid_calls_allowed"] is True, policy

        phase("SIPp registers as the PBX and calls out through the primary")
        pbx_port = register(primary, tmp_path, user, password)
        answered_call(primary, tmp_path, US_NUMBER, user, password)

        phase("its CDR is imported from the node and rated against the bundle")
        wait_until(lambda: minutes_used(api, pid) == 1, "the US call used a bundle minute", explain=usage)
        assert profile_balance(api, pid) == Decimal("10.0000"), "a bundle call costs no credit"

        phase("a UK call is paid from the profile's balance")
        answered_call(primary, tmp_path, UK_NUMBER, user, password)
        # 1 s of a call at 0.01 GBP a minute, billed per started minute (the deck's 60/60).
        wait_until(lambda: profile_balance(api, pid) == Decimal("9.9900"), "the UK call was debited", explain=usage)
        assert minutes_used(api, pid) == 1

        phase("two channels: a third simultaneous call is refused")
        carrier = CarrierUas(primary, tmp_path, calls=2)
        held = [
            subprocess.Popen(dial(primary, tmp_path, US_NUMBER, user, password, hold_ms=5000))  # noqa: S603
            for _ in range(2)
        ]
        try:
            wait_until(lambda: primary.channels_in_use(_profile_pk(pid)) == 2, "two calls in progress", timeout=10)
            refused = scenario(tmp_path, "refused_uac.xml", expect=486)
            sipp_ok(primary, sipp_command(primary, refused, service=US_NUMBER, user=user, password=password))
            assert [p.wait(timeout=20) for p in held] == [0, 0]
            assert carrier.wait() == 0
        finally:
            for p in held:
                if p.poll() is None:
                    p.kill()
                    p.wait()
            carrier.stop()

        wait_until(
            lambda: Cdr.objects.filter(refusal_reason=Cdr.RefusalReason.CHANNEL_LIMIT).exists(),
            "the refused call's record was imported",
            explain=usage,
        )

        phase("the carrier calls the Online Number: the registered PBX rings")
        pbx = Pbx(tmp_path, pbx_port)
        try:
            sipp_ok(primary, carrier_call(primary, tmp_path, to=DID))
            assert pbx.wait() == 0
        finally:
            pbx.stop()
        invites = pbx.invites()
        assert [i["ruri"] for i in invites] == [f"sip:{DID}@127.0.0.1:{pbx_port}"]

        phase("the primary node stops: the PBX registers and calls through the secondary")
        primary.stop()
        register(secondary, tmp_path, user, password)
        answered_call(secondary, tmp_path, US_NUMBER, user, password)
        # The two held calls and this one: a bundle minute each, this one from the secondary.
        wait_until(lambda: minutes_used(api, pid) == 4, "every US call used its minute", explain=usage)
        assert profile_balance(api, pid) == Decimal("9.9900")
        assert "edge_cdrs_import_task" in worker.output(), "the CDRs were imported somewhere else than the worker"
        phase("done")

    calls = Cdr.objects.order_by("started_at", "node", "edge_id")
    assert [(c.node, c.direction, c.disposition, c.refusal_reason, c.callee) for c in calls] == [
        (primary.node.name, "outbound", "answered", "", US_NUMBER),
        (primary.node.name, "outbound", "answered", "", UK_NUMBER),
        (primary.node.name, "outbound", "answered", "", US_NUMBER),
        (primary.node.name, "outbound", "answered", "", US_NUMBER),
        (primary.node.name, "outbound", "refused", "channel_limit", US_NUMBER),
        (primary.node.name, "inbound", "answered", "", DID),
        (secondary.node.name, "outbound", "answered", "", US_NUMBER),
    ]


def minutes_used(api: Api, profile_id: str) -> int:
    return int(api.get(f"sip-profiles/{profile_id}/bundles/")["minutes_used"])


def profile_balance(api: Api, profile_id: str) -> Decimal:
    return Decimal(api.get(f"sip-profiles/{profile_id}/credit/")["balance"])


def _profile_pk(public_id: str) -> int:
    """The node counts channels by the profile's internal id (its dialog profile's value)."""
    from apps.sip_profiles.models import SipProfile

    return int(SipProfile.objects.values_list("pk", flat=True).get(public_id=public_id))
