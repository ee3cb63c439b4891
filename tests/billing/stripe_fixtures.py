"""localstripe for the tests: one server per test process (per xdist worker), on 127.0.0.1 at a
free port, state in memory (scripts/localstripe_server.py), emptied before each test.

Fixtures: `localstripe` (points the settings at the server and clears it) and `stripe_webhooks`
(makes the server deliver its events to the live server). Import them into a conftest or a
test module to use them there.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
SERVER_SCRIPT = ROOT / "scripts" / "localstripe_server.py"
SECRET_KEY = "sk_test_localstripe"
PUBLISHABLE_KEY = "pk_test_localstripe"
WEBHOOK_SECRET = "whsec_test_localstripe"
START_TIMEOUT = 30
HANDLED_EVENTS = ["payment_intent.succeeded", "payment_intent.payment_failed", "payment_intent.canceled"]
# A registration localstripe keeps but never uses: it has no call to remove one.
DISABLED_WEBHOOK = {"url": "http://127.0.0.1:9/", "secret": WEBHOOK_SECRET, "events": []}


@dataclass
class LocalStripe:
    base: str
    process: subprocess.Popen[bytes]
    log: Path

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {SECRET_KEY}"}

    def clear(self) -> None:
        requests.delete(f"{self.base}/_config/data", timeout=10).raise_for_status()

    def register_webhook(self, url: str, events: list[str] | None = None) -> None:
        body = {"url": url, "secret": WEBHOOK_SECRET, "events": events or HANDLED_EVENTS}
        requests.post(f"{self.base}/_config/webhooks/tests", json=body, timeout=10).raise_for_status()

    def disable_webhooks(self) -> None:
        requests.post(f"{self.base}/_config/webhooks/tests", json=DISABLED_WEBHOOK, timeout=10).raise_for_status()

    def confirm_setup(self, client_secret: str, number: str = "4242424242424242") -> requests.Response:
        """What Stripe.js does in the browser (localstripe's confirmCardSetup): the card goes to
        Stripe with the publishable key, never to our server."""
        setup_intent = client_secret.split("_secret_")[0]
        body = {
            "key": PUBLISHABLE_KEY,
            "use_stripe_sdk": True,
            "client_secret": client_secret,
            "payment_method_data": {
                "type": "card",
                "card": {"number": number, "exp_month": "12", "exp_year": "2030", "cvc": "123"},
                "billing_details": {"address": {"postal_code": "12345"}},
            },
        }
        return requests.post(f"{self.base}/v1/setup_intents/{setup_intent}/confirm", data=json.dumps(body), timeout=10)

    def complete_setup_authentication(self, client_secret: str) -> requests.Response:
        """3-D Secure on a card being set up, passed (the second half of confirmCardSetup)."""
        setup_intent = client_secret.split("_secret_")[0]
        body = {"key": PUBLISHABLE_KEY, "use_stripe_sdk": True, "client_secret": client_secret}
        return requests.post(f"{self.base}/v1/setup_intents/{setup_intent}/confirm", data=json.dumps(body), timeout=10)

    def authenticate_payment(self, client_secret: str, *, success: bool = True) -> requests.Response:
        """3-D Secure on a payment (localstripe's confirmCardPayment)."""
        payment_intent = client_secret.split("_secret_")[0]
        return requests.post(
            f"{self.base}/v1/payment_intents/{payment_intent}/_authenticate?success={str(success).lower()}",
            data=json.dumps({"key": PUBLISHABLE_KEY, "client_secret": client_secret}),
            timeout=10,
        )

    def event_for(self, payment_intent: str, event_type: str) -> dict[str, Any]:
        """The event localstripe made for this PaymentIntent, as its webhook would send it."""
        response = requests.get(f"{self.base}/v1/events", params={"type": event_type}, headers=self._auth(), timeout=10)
        response.raise_for_status()
        for event in response.json()["data"]:
            if event["data"]["object"]["id"] == payment_intent:
                return dict(event)
        raise AssertionError(f"localstripe made no {event_type} event for {payment_intent}")

    def payment_intents(self) -> list[dict[str, Any]]:
        """Every PaymentIntent localstripe holds (it lists them all; it takes no filters)."""
        found: list[dict[str, Any]] = []
        after: str | None = None
        while True:
            params: dict[str, Any] = {"limit": 100, **({"starting_after": after} if after else {})}
            page = requests.get(f"{self.base}/v1/payment_intents", params=params, headers=self._auth(), timeout=10)
            page.raise_for_status()
            body = page.json()
            found.extend(body["data"])
            if not body.get("has_more") or not body["data"]:
                return found
            after = body["data"][-1]["id"]

    def refunds_of(self, payment_intent: str) -> list[dict[str, Any]]:
        response = requests.get(
            f"{self.base}/v1/refunds", params={"payment_intent": payment_intent}, headers=self._auth(), timeout=10
        )
        response.raise_for_status()
        return list(response.json()["data"])


def sign(payload: bytes, *, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    """A Stripe-Signature header for `payload`, as Stripe computes it."""
    moment = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{moment}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={moment},v1={digest}"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_until_up(server: LocalStripe) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"localstripe exited with {server.process.returncode}:\n{server.log.read_text()}")
        try:
            if requests.get(f"{server.base}/js.stripe.com/v3/", timeout=1).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"localstripe did not start in {START_TIMEOUT} s:\n{server.log.read_text()}")


@pytest.fixture(scope="session")
def localstripe_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStripe]:
    port = _free_port()
    log = tmp_path_factory.mktemp("localstripe") / "localstripe.log"
    with log.open("wb") as output:
        process = subprocess.Popen(  # noqa: S603 (our own script, fixed arguments)
            [sys.executable, str(SERVER_SCRIPT), "--port", str(port)],
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=ROOT,
            # Its own session: a Ctrl-C meant for pytest does not kill it under a running test.
            start_new_session=True,
        )
    server = LocalStripe(base=f"http://127.0.0.1:{port}", process=process, log=log)
    try:
        _wait_until_up(server)
        yield server
    finally:
        # Stopped by its own pid, the process this fixture started.
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture
def localstripe(localstripe_server: LocalStripe, settings: Any) -> LocalStripe:
    settings.STRIPE_API_BASE = localstripe_server.base
    settings.STRIPE_SECRET_KEY = SECRET_KEY
    settings.STRIPE_PUBLISHABLE_KEY = PUBLISHABLE_KEY
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.STRIPE_JS_URL = f"{localstripe_server.base}/js.stripe.com/v3/"
    localstripe_server.clear()
    return localstripe_server


@pytest.fixture
def stripe_webhooks(localstripe: LocalStripe, live_server: Any) -> Iterator[LocalStripe]:
    """localstripe delivers its events (about a second later, signed) to the live server."""
    localstripe.register_webhook(f"{live_server.url}/stripe/webhook/")
    try:
        yield localstripe
    finally:
        localstripe.disable_webhooks()
        # Let a delivery already on its way land before the test's tables are emptied.
        time.sleep(0.3)
