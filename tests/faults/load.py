"""A steady keyed load on the API, as an integrator's client sends it: every money request carries
an Idempotency-Key and is retried with the same key after a lost answer (no answer, a timeout, a
5xx, or a 409 while the first try is still running). Every try is recorded with its times."""

from __future__ import annotations

import itertools
import random
import threading
import time
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import requests

from tests.faults.stack import now

READ_TIMEOUT = 15
# A client gives up on a request after this long (it may learn the outcome later, by reading).
# Longer than any outage here; shorter than the 5 minutes a claim left by a request that died
# answers 409 "in use" (apps.billing.idempotency.STALE_CLAIM), so one such key does not stall
# the load.
CALL_DEADLINE = 30
# A claim left by a request that died answers 409 "in use" for minutes: a client tries a few
# times, then gives up on the key (the purchase may still exist; it is found by reading).
IN_USE_PATIENCE = 10
RETRY_PAUSE = 0.5


@dataclass
class Attempt:
    start: float
    end: float
    status: int | None  # None: no answer (refused, reset, timed out)
    error: str = ""
    code: str = ""
    retry_after: str | None = None

    @property
    def label(self) -> str:
        return str(self.status) if self.status is not None else "no answer"

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


@dataclass
class Call:
    kind: str  # allocate, take_back, purchase, read_credit, read_profiles
    method: str
    path: str
    key: str | None = None
    payload: dict[str, Any] | None = None
    profile: str | None = None
    amount: Decimal | None = None
    attempts: list[Attempt] = field(default_factory=list)
    body: Any = None

    @property
    def final(self) -> Attempt | None:
        """The answer that ended the call (not one that is retried), if it got one."""
        last = self.attempts[-1] if self.attempts else None
        return last if last is not None and not retryable(last) else None

    @property
    def retried(self) -> bool:
        return len(self.attempts) > 1

    @property
    def is_read(self) -> bool:
        return self.method == "GET"


def retryable(attempt: Attempt) -> bool:
    if attempt.status is None or attempt.status >= 500 or attempt.status == 429:
        return True
    return attempt.status == 409 and attempt.code == "idempotency_key_in_use"


class Load:
    def __init__(self, *, base: str, api_key: str, profiles: list[str], card: str, seed: int = 16) -> None:
        self.base = base
        self.headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
        self.profiles = profiles
        self.card = card
        self.calls: list[Call] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._cents = itertools.count(1)
        self._random = random.Random(seed)
        self.t0 = now()
        # The tries being sent right now, by thread: (call, start).
        self.sending: dict[str, tuple[Call, float]] = {}

    # --- what each thread sends ---------------------------------------------------------

    def _mover(self) -> Call:
        profile = self._random.choice(self.profiles)
        action = "allocate" if self._random.random() < 0.58 else "take_back"
        # More allocated than taken back: the company balance falls through the auto-recharge
        # threshold again and again, faster than the card purchases refill it.
        cents = self._random.randint(100, 2000) if action == "allocate" else self._random.randint(100, 1000)
        amount = Decimal(cents) / 100
        return Call(
            kind=action,
            method="POST",
            path=f"/api/v1/sip-profiles/{profile}/credit/",
            key=str(uuid.uuid4()),
            payload={"action": action, "amount": str(amount)},
            profile=profile,
            amount=amount,
        )

    def _buyer(self) -> Call:
        # Each purchase has an amount of its own, so every purchase in the database (and every
        # PaymentIntent at Stripe) can be traced back to the one request, and key, it came from.
        with self._lock:
            amount = Decimal("10.00") + Decimal(next(self._cents)) / 100
        return Call(
            kind="purchase",
            method="POST",
            path="/api/v1/credit/purchases/",
            key=str(uuid.uuid4()),
            payload={"amount": str(amount), "method": "card", "payment_method": self.card},
            amount=amount,
        )

    def _reader(self) -> Call:
        if self._random.random() < 0.5:
            return Call(kind="read_credit", method="GET", path="/api/v1/credit/")
        return Call(kind="read_profiles", method="GET", path="/api/v1/sip-profiles/")

    # --- sending ----------------------------------------------------------------------------

    def _try(self, session: requests.Session, call: Call) -> Attempt:
        headers = dict(self.headers)
        if call.key is not None:
            headers["Idempotency-Key"] = call.key
        start = now()
        me = threading.current_thread().name
        self.sending[me] = (call, start)
        try:
            response = session.request(
                call.method, self.base + call.path, json=call.payload, headers=headers, timeout=(3, READ_TIMEOUT)
            )
        except requests.RequestException as error:
            return Attempt(start=start, end=now(), status=None, error=type(error).__name__)
        finally:
            self.sending.pop(me, None)
        try:
            body = response.json()
        except ValueError:
            body = None
        code = str(body.get("code", "")) if isinstance(body, dict) else ""
        attempt = Attempt(
            start=start,
            end=now(),
            status=response.status_code,
            code=code,
            retry_after=response.headers.get("Retry-After"),
        )
        if not retryable(attempt):
            call.body = body
        return attempt

    def send(self, session: requests.Session, call: Call) -> Call:
        deadline = now() + CALL_DEADLINE
        in_use_since: float | None = None
        while True:
            attempt = self._try(session, call)
            call.attempts.append(attempt)
            if call.is_read or not retryable(attempt) or now() > deadline:
                return call
            if attempt.code == "idempotency_key_in_use":
                in_use_since = in_use_since or attempt.start
                if now() - in_use_since > IN_USE_PATIENCE:
                    return call
            else:
                in_use_since = None
            if attempt.status is None:
                session.close()  # a fresh connection: the old one may belong to a dead worker
            time.sleep(RETRY_PAUSE)

    def _loop(self, make: Any, pause: float) -> None:
        session = requests.Session()
        while not self._stop.is_set():
            call = make()
            with self._lock:
                self.calls.append(call)
            self.send(session, call)
            self._stop.wait(pause)
        session.close()

    def start(self) -> None:
        self.t0 = now()
        plan = [(self._mover, 0.05), (self._mover, 0.05), (self._buyer, 0.8), (self._buyer, 0.8), (self._reader, 0.1)]
        for n, (make, pause) in enumerate(plan):
            thread = threading.Thread(target=self._loop, args=(make, pause), name=f"load-{n}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        """Stop sending new requests; the ones under way finish (with their retries)."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=CALL_DEADLINE + READ_TIMEOUT + 10)
        assert not any(t.is_alive() for t in self._threads), "a load thread did not finish"

    def purchase_sending(self, *, for_at_least: float = 0.02) -> Call | None:
        """A new purchase (its first try, not a retry) whose request is on its way right now."""
        for call, start in list(self.sending.values()):
            if call.kind == "purchase" and not call.attempts and now() - start >= for_at_least:
                return call
        return None

    def attempts_between(self, start: float, end: float) -> list[tuple[Call, Attempt]]:
        with self._lock:
            calls = list(self.calls)
        return [(c, a) for c in calls for a in list(c.attempts) if start <= a.start < end]
