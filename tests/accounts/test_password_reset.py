from __future__ import annotations

import re

import pytest
from django.core import mail
from django.test import Client

from tests.factories import member

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a-much-better-secret-77"


def test_a_forgotten_password_is_reset_from_the_emailed_link(company) -> None:
    person = member(company)
    client = Client()

    client.post("/accounts/password/reset/", {"email": person.email})
    link = re.search(r"https?://[^/\s]+(/accounts/password/reset/key/[^\s]+/)", mail.outbox[-1].body)
    assert link, mail.outbox[-1].body
    form_page = client.get(link.group(1), follow=True)
    response = client.post(form_page.redirect_chain[-1][0], {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD})

    assert response.status_code == 302
    person.refresh_from_db()
    assert person.check_password(NEW_PASSWORD)


def test_a_weak_new_password_is_refused_with_the_reason(company) -> None:
    person = member(company)
    client = Client()
    client.post("/accounts/password/reset/", {"email": person.email})
    link = re.search(r"https?://[^/\s]+(/accounts/password/reset/key/[^\s]+/)", mail.outbox[-1].body)
    assert link
    form_page = client.get(link.group(1), follow=True)

    response = client.post(form_page.redirect_chain[-1][0], {"password1": "password", "password2": "password"})

    assert response.status_code == 200
    errors = " ".join(response.context["form"].errors["password1"])
    assert "at least 12 characters" in errors
    assert "too common" in errors
    person.refresh_from_db()
    assert not person.check_password("password")


def test_a_reset_for_an_unknown_address_reveals_nothing(db) -> None:
    response = Client().post("/accounts/password/reset/", {"email": "ghost@example.com"})

    assert response.status_code == 302
    assert "ghost@example.com" in mail.outbox[-1].to
    assert "/accounts/password/reset/key/" not in mail.outbox[-1].body
