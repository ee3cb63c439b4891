"""In Chromium (issue 13, item 9): the sign-in security pages of allauth (e-mail addresses,
password change, two-factor authentication, TOTP activation and deactivation, recovery codes,
and the password asked again before them)
are the portal's own pages: its header and its Sections menu around allauth's form, fitting a
desktop (1280 px) and a phone (375 px), each saved as a screenshot
(test-results/screenshots/security-<page>-<width>.png)."""

from __future__ import annotations

from typing import Any

import pytest
from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from playwright.sync_api import Page, expect

from apps.companies.models import Role
from tests.factories import PASSWORD, CompanyFactory, member
from tests.helpers.browser import look_at_both_widths, sign_in

BEFORE_MFA = {
    "email": ("/accounts/email/", "Email Addresses"),
    "password": ("/accounts/password/change/", "Change Password"),
    "two-factor": ("/accounts/2fa/", "Two-Factor Authentication"),
    "totp-activate": ("/accounts/2fa/totp/activate/", "Authenticator App"),
}
WITH_MFA = {
    "two-factor-on": ("/accounts/2fa/", "Two-Factor Authentication"),
    "totp-deactivate": ("/accounts/2fa/totp/deactivate/", "Deactivate Authenticator App"),
    "recovery-codes": ("/accounts/2fa/recovery-codes/", "Recovery Codes"),
    "recovery-codes-generate": ("/accounts/2fa/recovery-codes/generate/", "Recovery Codes"),
}


def looks_like_the_portal(page: Page, base: str, name: str, path: str, heading: str) -> None:
    page.set_viewport_size({"width": 1280, "height": 900})  # on a phone the sections fold into the Menu
    response = page.goto(base + path)
    assert response is not None
    assert response.status == 200, path
    if "/reauthenticate/" in page.url:  # allauth asks for the password again before MFA changes
        page.set_viewport_size({"width": 1280, "height": 900})
        expect(page.get_by_role("navigation", name="Sections")).to_have_count(1)
        look_at_both_widths(page, "security-reauthenticate")
        page.locator("#id_password").fill(PASSWORD)
        page.locator("#id_password").press("Enter")
        expect(page).to_have_url(base + path)
        page.set_viewport_size({"width": 1280, "height": 900})
    # The portal's layout (templates/base.html) around allauth's content.
    expect(page.locator("header.topbar")).to_have_count(1)
    expect(page.get_by_role("navigation", name="Sections")).to_have_count(1)
    expect(page.get_by_role("navigation", name="Account")).to_have_count(1)
    expect(page.get_by_role("heading", name=heading).first).to_be_visible()
    look_at_both_widths(page, f"security-{name}")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_sign_in_security_pages_use_the_portal_layout_at_both_widths(live_server: Any, page: Page) -> None:
    owner = member(CompanyFactory(name="Layout Check Ltd"), Role.OWNER, email="security@layout.example")
    base = live_server.url
    sign_in(page, base, owner.email)
    page.set_default_timeout(30_000)

    for name, (path, heading) in BEFORE_MFA.items():
        looks_like_the_portal(page, base, name, path, heading)
    TOTP.activate(owner, generate_totp_secret())
    RecoveryCodes.activate(owner)
    for name, (path, heading) in WITH_MFA.items():
        looks_like_the_portal(page, base, name, path, heading)
