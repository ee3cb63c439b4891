"""A form sent twice acts once (issue 13, item 3) on the API keys page: creating a key and
revoking one carry the one-time token and their views claim it (apps.core.once.OncePostMixin)."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from apps.accounts.models import ApiKey
from apps.companies.models import Company, Role
from tests.factories import api_key_for
from tests.helpers.once import page_token, sent_twice
from tests.helpers.races import run_concurrently

pytestmark = pytest.mark.django_db


@pytest.fixture
def web(owner: Any) -> Client:
    client = Client()
    client.force_login(owner)
    return client


def test_an_api_key_created_twice_is_created_once(web: Client, company: Company) -> None:
    token = page_token(web, "/api-keys/")
    form = {"name": "CRM integration", "role": Role.VIEWER, "once": token}

    sent_twice(web, "/api-keys/", form, {**form, "name": "Another"})

    assert list(ApiKey.objects.filter(company=company).values_list("name", flat=True)) == ["CRM integration"]


def test_an_api_key_revoked_twice_is_revoked_once(web: Client, company: Company, owner: Any) -> None:
    api_key, _ = api_key_for(company, creator=owner)
    url = f"/api-keys/{api_key.public_id}/revoke/"
    token = page_token(web, "/api-keys/", url)
    web.post(url, {"once": token})
    api_key.refresh_from_db()
    revoked_at = api_key.revoked_at

    second = web.post(url, {"once": token})

    assert second.status_code == 302
    api_key.refresh_from_db()
    assert revoked_at is not None
    assert api_key.revoked_at == revoked_at


@pytest.mark.django_db(transaction=True)
def test_a_double_click_racing_itself_creates_one_key(company: Company, owner: Any) -> None:
    clients = [Client(), Client()]
    for client in clients:
        client.force_login(owner)
    token = page_token(clients[0], "/api-keys/")
    form = {"name": "CRM integration", "role": Role.VIEWER, "once": token}

    # The second insert of the token waits on the unique index for the first to commit.
    answers = run_concurrently(*(lambda c=client: c.post("/api-keys/", form) for client in clients))

    assert [a.status_code for a in answers] == [302, 302]
    assert ApiKey.objects.filter(company=company).count() == 1
