"""A form sent twice acts once (issue 13, item 3) beyond the priced forms: the business account,
auto-recharge and caller ID forms carry the one-time token (`{% form_once %}`) and their views
claim it (apps.billing.pages.OncePostMixin). A reload, a back button or a double click sends the
same token again: it is redirected where the first went, with a message, and nothing is done
again, even when the fields sent differ."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client

from apps.billing.models import AutoRecharge, IdempotentRequest, ProfileAutoRecharge
from apps.billing.pages import ALREADY_DONE
from apps.business_accounts.models import BusinessAccount
from apps.callerid.models import Landline
from tests.callerid.factories import landline, verify
from tests.sip_profiles.factories import digest_profile

pytestmark = pytest.mark.django_db


@pytest.fixture
def web(owner: Any) -> Client:
    client = Client()
    client.force_login(owner)
    return client


def tokens(html: str, action: str) -> list[str]:
    """The one-time tokens of the forms posting to `action` on a page."""
    forms = re.findall(rf'<form method="post" action="{re.escape(action)}"[^>]*>(.*?)</form>', html, re.S)
    return [t for f in forms for t in re.findall(r'<input type="hidden" name="once" value="([0-9a-f]{32})">', f)]


def sent_twice(web: Client, url: str, first: dict[str, Any], second: dict[str, Any]) -> tuple[Any, Any]:
    one = web.post(url, first)
    two = web.post(url, second)
    assert one.status_code == 302, one.content.decode()[:500]
    assert two.status_code == 302
    assert two["Location"] == one["Location"]
    assert ALREADY_DONE in web.get(two["Location"]).content.decode()
    return one, two


def test_creating_and_editing_a_business_account_acts_once(web: Client, company: Any) -> None:
    page = web.get("/business-accounts/").content.decode()
    (token,) = tokens(page, "/business-accounts/")
    form = {"name": "sales.desk", "display_name": "Sales", "once": token}

    sent_twice(web, "/business-accounts/", form, form)

    assert BusinessAccount.objects.filter(company=company).count() == 1
    account = BusinessAccount.objects.get(company=company)
    edit_url = f"/business-accounts/{account.public_id}/"
    (edit_token,) = re.findall(r'name="once" value="([0-9a-f]{32})"', web.get(edit_url).content.decode())
    sent_twice(
        web,
        edit_url,
        {"display_name": "Sales desk", "once": edit_token},
        {"display_name": "Something else", "once": edit_token},
    )
    account.refresh_from_db()
    assert account.display_name == "Sales desk"

    delete_url = f"/business-accounts/{account.public_id}/delete/"
    (delete_token,) = tokens(web.get("/business-accounts/").content.decode(), delete_url)
    sent_twice(web, delete_url, {"once": delete_token}, {"once": delete_token})  # the second is no 404
    assert not BusinessAccount.objects.filter(company=company).exists()


def test_the_auto_recharge_forms_act_once(web: Client, company: Any, owner: Any) -> None:
    (token,) = tokens(web.get("/credit/").content.decode(), "/credit/auto-recharge/")
    form = {"amount": "50", "threshold": "10", "monthly_limit": "200", "payment_method": "", "once": token}
    sent_twice(web, "/credit/auto-recharge/", form, {**form, "amount": "75"})
    assert AutoRecharge.objects.get(company=company).amount == Decimal("50")

    profile, _ = digest_profile(company, owner)
    url = f"/sip-profiles/{profile.public_id}/auto-recharge/"
    (token,) = tokens(web.get(f"/sip-profiles/{profile.public_id}/").content.decode(), url)
    form = {"enabled": "on", "amount": "20", "threshold": "5", "monthly_limit": "100", "once": token}
    sent_twice(web, url, form, {**form, "amount": "30"})
    assert ProfileAutoRecharge.objects.get(sip_profile=profile).amount == Decimal("20")
    assert IdempotentRequest.objects.filter(company=company, key=token).count() == 1


def test_withdrawing_a_caller_id_acts_once(web: Client, company: Any, owner: Any) -> None:
    verify(company)
    proven = landline(company, owner)
    url = f"/caller-id/{proven.public_id}/withdraw/"
    (token,) = tokens(web.get("/caller-id/").content.decode(), url)

    sent_twice(web, url, {"once": token}, {"once": token})

    proven.refresh_from_db()
    assert proven.status == Landline.Status.WITHDRAWN


def test_a_form_sent_back_with_an_error_leaves_its_token_free(web: Client, company: Any) -> None:
    (token,) = tokens(web.get("/business-accounts/").content.decode(), "/business-accounts/")
    refused = web.post("/business-accounts/", {"name": "", "display_name": "Sales", "once": token})
    assert refused.status_code == 400
    done = web.post("/business-accounts/", {"name": "sales.desk", "display_name": "Sales", "once": token})
    assert done.status_code == 302
    assert BusinessAccount.objects.filter(company=company).count() == 1
