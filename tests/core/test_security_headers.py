"""Headers every answer carries (issue 12, item 5): a Content-Security-Policy without inline
script (Stripe's origins on the payment pages only), a Permissions-Policy, and
`Cache-Control: no-store` on every answer that shows a secret once."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.test import Client

from apps.companies.models import Role
from tests.billing.stripe_fixtures import localstripe, localstripe_server
from tests.conftest import client_as
from tests.factories import member
from tests.helpers.confirm import post_confirmed
from tests.sip_profiles.factories import digest_profile

pytestmark = pytest.mark.django_db

__all__ = ["localstripe", "localstripe_server"]

ROOT = Path(__file__).resolve().parents[2]


def directives(header: str) -> dict[str, list[str]]:
    parsed = {}
    for part in header.split(";"):
        name, *values = part.split()
        parsed[name] = values
    return parsed


def test_every_kind_of_page_has_the_policy_and_no_inline_script_is_allowed(company, owner) -> None:
    profile, _ = digest_profile(company, owner)
    signed_in = client_as(owner)
    answers = {
        "sign-in page": Client().get("/accounts/login/"),
        "dashboard": signed_in.get("/"),
        "profile page": signed_in.get(f"/sip-profiles/{profile.public_id}/"),
        "api docs": Client().get("/api/v1/docs/"),
        "api": signed_in.get("/api/v1/company/"),
        "staff sign-in": Client().get("/staff/login/"),
        "a 404": signed_in.get("/no-such-page/"),
    }

    for what, response in answers.items():
        policy = directives(response["Content-Security-Policy"])
        assert policy["default-src"] == ["'self'"], what
        assert policy["script-src"] == ["'self'"], what
        assert policy["frame-ancestors"] == ["'none'"], what
        assert "'unsafe-inline'" not in policy["style-src"], what
        assert "stripe" not in response["Content-Security-Policy"], what
        permissions = response["Permissions-Policy"]
        assert "camera=()" in permissions, what
        assert "geolocation=()" in permissions, what


@pytest.mark.usefixtures("localstripe")
def test_the_payment_pages_add_stripes_origins(company, owner, settings) -> None:
    settings.STRIPE_API_BASE = ""
    settings.STRIPE_JS_URL = "https://js.stripe.com/v3/"
    response = client_as(owner).get("/credit/")

    policy = directives(response["Content-Security-Policy"])
    assert response.status_code == 200
    assert policy["script-src"] == ["'self'", "https://js.stripe.com"]
    assert "https://api.stripe.com" in policy["connect-src"]
    assert {"https://js.stripe.com", "https://hooks.stripe.com"} <= set(policy["frame-src"])


def test_no_template_has_an_inline_script_or_event_handler() -> None:
    inline_script = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>", re.I)
    handler = re.compile(r"<[^>]+\son[a-z]+\s*=", re.I)
    found = []
    for template in sorted((ROOT / "templates").rglob("*.html")):
        text = template.read_text()
        found += [f"{template.relative_to(ROOT)}: {m.group(0)}" for m in inline_script.finditer(text)]
        found += [f"{template.relative_to(ROOT)}: {m.group(0)[:60]}" for m in handler.finditer(text)]

    assert found == []


def test_a_new_api_key_and_a_new_sip_password_are_never_cached(company, owner) -> None:
    api = client_as(owner)
    profile, _ = digest_profile(company, owner)

    answers = {
        "api key (API)": api.post("/api/v1/api-keys/", {"name": "CRM", "role": "viewer"}, format="json"),
        "profile (API)": api.post(
            "/api/v1/sip-profiles/", {"name": "Office", "auth_method": "registration", "channels": 1}, format="json"
        ),
        "reset (API)": api.post(f"/api/v1/sip-profiles/{profile.public_id}/reset-password/"),
        "api key (page)": api.get(
            api.post("/api-keys/", {"name": "Page key", "role": "viewer"}, format="multipart")["Location"]
        ),
        # The pages redirect, and the page redirected to shows the password (once, from the session).
        "profile (page)": api.get(
            post_confirmed(
                api,
                "/sip-profiles/new/",
                {"name": "Page PBX", "auth_method": "registration", "channels": "1", "us_minute_bundles": "0"},
            )[1]["Location"]
        ),
        "reset (page)": api.get(api.post(f"/sip-profiles/{profile.public_id}/reset-password/")["Location"]),
    }

    assert {what: r.status_code for what, r in answers.items()} == {
        "api key (API)": 201,
        "profile (API)": 201,
        "reset (API)": 200,
        "api key (page)": 200,
        "profile (page)": 200,
        "reset (page)": 200,
    }
    assert {what: r["Cache-Control"] for what, r in answers.items()} == dict.fromkeys(answers, "no-store")


def test_reading_a_profile_or_keys_later_needs_no_no_store(company, owner) -> None:
    # Only the answers with the secret are marked; ordinary reads stay cacheable by the browser.
    response = client_as(member(company, Role.ADMIN)).get("/api/v1/api-keys/")

    assert response.status_code == 200
    assert "no-store" not in response.get("Cache-Control", "")
