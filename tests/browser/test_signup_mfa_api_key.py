"""End to end in Chromium: sign up, confirm the e-mail, sign in, turn on TOTP, sign in
again with a code, create an API key and use it from outside the browser."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import struct
import time
import urllib.request
from typing import Any

import pytest
from django.core import mail
from playwright.sync_api import Page, expect

FULL_NAME = "Grace Hopper"
EMAIL = "grace@cobol.example"
PASSWORD = "first-compiler-1952"
COMPANY = "Compiler Calls Ltd"

TOTP_PERIOD = 30
TOTP_DIGITS = 6
# A code computed this close to the end of its window may reach the server in the next one.
TOTP_MARGIN = 3
TIMEOUT_MS = 10_000


def totp_code(secret: str, time_step: int) -> str:
    """RFC 6238 with the defaults allauth uses: HMAC-SHA1, 30-second steps, six digits."""
    key = base64.b32decode(secret.strip().upper() + "=" * (-len(secret.strip()) % 8))
    digest = hmac.new(key, struct.pack(">Q", time_step), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return f"{value % 10**TOTP_DIGITS:0{TOTP_DIGITS}d}"


def fresh_totp(secret: str, used_steps: set[int]) -> tuple[int, str]:
    """The code of a time step the server has not seen used and that will not run out
    before the request arrives; waits for the next window (at most one, ≤ 31 s) if needed."""
    now = time.time()
    step = int(now // TOTP_PERIOD)
    left = (step + 1) * TOTP_PERIOD - now
    if step in used_steps or left < TOTP_MARGIN:
        time.sleep(left + 0.2)  # the one bounded wait: allauth accepts only the current step
        step += 1
    assert step not in used_steps, "two TOTP codes needed in the same 30 s window"
    return step, totp_code(secret, step)


def test_totp_code_matches_rfc_6238_vectors() -> None:
    # RFC 6238 appendix B, SHA-1 seed "12345678901234567890", last six digits.
    secret = base64.b32encode(b"12345678901234567890").decode()
    assert totp_code(secret, 59 // 30) == "287082"
    assert totp_code(secret, 1111111109 // 30) == "081804"
    assert totp_code(secret, 2000000000 // 30) == "279037"


def test_fresh_totp_waits_once_for_an_unused_window(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = base64.b32encode(b"12345678901234567890").decode()
    clock = [1000 * TOTP_PERIOD + 10.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock[0] += seconds

    monkeypatch.setattr(time, "time", lambda: clock[0])
    monkeypatch.setattr(time, "sleep", sleep)
    assert fresh_totp(secret, set()) == (1000, totp_code(secret, 1000))
    assert slept == []
    assert fresh_totp(secret, {1000}) == (1001, totp_code(secret, 1001))
    assert slept == [pytest.approx(20.2)]
    clock[0] = 1002 * TOTP_PERIOD - 1.0  # too close to the end of the window
    assert fresh_totp(secret, set())[0] == 1002


def sign_in(page: Page, base: str) -> None:
    page.goto(f"{base}/accounts/login/")
    page.locator("#id_login").fill(EMAIL)
    page.locator("#id_password").fill(PASSWORD)
    page.locator("#id_password").press("Enter")


def expect_dashboard(page: Page, base: str) -> None:
    expect(page, "sign-in should end on the dashboard").to_have_url(f"{base}/")
    expect(page.locator("main h1"), "the dashboard shows the company's name").to_have_text(COMPANY)


def expect_audit_lists(page: Page, base: str, *actions: str) -> None:
    page.goto(f"{base}/audit/")
    expect(page.locator("main h1")).to_have_text("Audit log")
    listed = page.locator("#events td code")
    for action in actions:
        expect(
            listed.filter(has_text=re.compile(rf"^{re.escape(action)}$")).first, f"{action} in the audit log"
        ).to_be_visible()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_sign_up_confirm_turn_on_totp_and_use_an_api_key(live_server: Any, page: Page) -> None:
    base = live_server.url
    page.set_default_timeout(TIMEOUT_MS)
    mail.outbox.clear()

    # 1. Sign up: the company is created with its owner.
    page.goto(f"{base}/accounts/signup/")
    page.locator("#id_full_name").fill(FULL_NAME)
    page.locator("#id_email").fill(EMAIL)
    page.locator("#id_password1").fill(PASSWORD)
    page.locator("#id_password2").fill(PASSWORD)
    page.locator("#id_company_name").fill(COMPANY)
    page.locator("#id_country").select_option("GB")
    page.locator("#id_currency").select_option("GBP")
    page.locator("form:has(#id_email) [type=submit]").click()
    expect(page, "sign-up should ask to confirm the e-mail address").to_have_url(f"{base}/accounts/confirm-email/")

    # 2. Confirm the address through the link in the e-mail.
    assert len(mail.outbox) == 1, [m.subject for m in mail.outbox]
    assert mail.outbox[0].to == [EMAIL]
    link = re.search(r"https?://\S+?(/accounts/confirm-email/[^\s/]+/)", mail.outbox[0].body)
    assert link, f"no confirmation link in:\n{mail.outbox[0].body}"
    page.goto(f"{base}{link.group(1)}")
    confirm = page.get_by_role("button", name="Confirm")
    expect(confirm, "the confirmation page should ask before confirming").to_be_visible()
    confirm.click()
    expect(page, "confirming should lead to the sign-in page").to_have_url(f"{base}/accounts/login/")

    # 3. Sign in with e-mail and password.
    sign_in(page, base)
    expect_dashboard(page, base)
    expect_audit_lists(page, base, "auth.signed_in")

    # 4. Turn on TOTP with the secret the page shows. allauth asks for the password again
    #    first (MFA_REAUTHENTICATION_REQUIRED; a fresh sign-in does not count as re-authentication).
    page.goto(f"{base}/accounts/2fa/totp/activate/")
    expect(page, "changing MFA should ask to confirm access").to_have_url(re.compile(r"/accounts/reauthenticate/"))
    page.locator("#id_password").fill(PASSWORD)
    page.get_by_role("button", name="Confirm").click()
    expect(page, "confirming access should return to the activation page").to_have_url(
        f"{base}/accounts/2fa/totp/activate/"
    )
    secret_input = page.locator("#authenticator_secret")
    expect(secret_input, "the activation page shows the secret").to_have_value(re.compile(r"^[A-Z2-7]{16,}=*$"))
    secret = secret_input.input_value()
    qr_alt = page.locator("main img").first.get_attribute("alt")
    assert qr_alt == secret, f"the QR code's alt text {qr_alt!r} is not the secret"
    used_steps: set[int] = set()
    _, code = fresh_totp(secret, used_steps)
    # allauth 65.21 checks the activation code without marking it used (only sign-in does).
    page.locator("#id_code").fill(code)
    page.get_by_role("button", name="Activate").click()
    expect(page, "activating TOTP should lead to the recovery codes or the security page").to_have_url(
        re.compile(rf"^{re.escape(base)}/accounts/2fa/(recovery-codes/)?$")
    )
    expect(page.locator("main"), "the activation is confirmed").to_contain_text("activated")

    # 5. Sign out, sign in again: now a code is asked for.
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("button", name="Sign out"), "signing out should end the session").to_have_count(0)
    sign_in(page, base)
    expect(page, "with TOTP on, sign-in asks for a code").to_have_url(f"{base}/accounts/2fa/authenticate/")
    step, code = fresh_totp(secret, used_steps)
    page.locator("#id_code").fill(code)
    page.locator("form:has(#id_code) [type=submit]").click()
    used_steps.add(step)
    expect_dashboard(page, base)
    page.screenshot(path="/tmp/dashboard.png", full_page=True)

    # 6. Create an API key and use it without the browser.
    page.goto(f"{base}/api-keys/")
    page.locator("#id_name").fill("CRM integration")
    page.locator("#id_role").select_option("viewer")
    page.get_by_role("button", name="Create key").click()
    key_input = page.locator("#new-key-value")
    expect(key_input, "the new key is shown once").to_have_value(re.compile(r"^sm_[0-9a-f]{8}_\S+$"))
    key = key_input.input_value()
    expect(page.locator("#api-keys"), "the key is listed").to_contain_text("CRM integration")

    request = urllib.request.Request(  # noqa: S310 (the live server's own http URL)
        f"{base}/api/v1/company/", headers={"Authorization": f"Bearer {key}", "Accept": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        status, body = response.status, json.loads(response.read())
    assert status == 200
    assert body.get("name") == COMPANY, body

    expect_audit_lists(page, base, "auth.signed_in", "auth.mfa_added", "api_key.created")
