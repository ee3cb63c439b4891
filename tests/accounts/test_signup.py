from __future__ import annotations

import re

import pytest
from allauth.account.models import EmailAddress
from django.core import mail
from django.test import Client

from apps.accounts.models import User
from apps.audit.models import AuditEvent
from apps.companies.models import Company, Membership, Role

pytestmark = pytest.mark.django_db

GOOD = {
    "full_name": "Ada Lovelace",
    "email": "ada@analytical.example",
    "password1": "difference-engine-1843",
    "password2": "difference-engine-1843",
    "company_name": "Analytical Engines Ltd",
    "country": "GB",
    "currency": "GBP",
}


def test_sign_up_creates_the_company_with_the_new_user_as_its_owner() -> None:
    response = Client().post("/accounts/signup/", GOOD)

    assert response.status_code == 302
    user = User.objects.get(email="ada@analytical.example")
    company = Company.objects.get(name="Analytical Engines Ltd")
    assert company.currency == "GBP"
    assert company.country.code == "GB"
    assert company.verification_status == "unverified"
    assert Membership.objects.get(user=user, company=company).role == Role.OWNER
    assert AuditEvent.objects.filter(company=company, action="company.created", actor_user=user).exists()


def test_sign_up_sends_a_confirmation_email_and_sign_in_waits_for_it() -> None:
    client = Client()
    client.post("/accounts/signup/", GOOD)

    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["ada@analytical.example"]
    assert not EmailAddress.objects.get(email="ada@analytical.example").verified
    response = client.post("/accounts/login/", {"login": GOOD["email"], "password": GOOD["password1"]})
    assert response.status_code == 302
    assert response["Location"] == "/accounts/confirm-email/"

    link = re.search(r"https?://[^\s]+/accounts/confirm-email/[^\s]+/", mail.outbox[-1].body)
    assert link, mail.outbox[-1].body
    path = "/" + link.group(0).split("/", 3)[3]
    client.post(path)
    assert EmailAddress.objects.get(email="ada@analytical.example").verified
    response = client.post("/accounts/login/", {"login": GOOD["email"], "password": GOOD["password1"]})
    assert response.status_code == 302
    assert response["Location"] == "/"


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"password1": "short-pw-1", "password2": "short-pw-1"}, "password1", "at least 12 characters"),
        ({"password1": "password1234", "password2": "password1234"}, "password1", "too common"),
        ({"password1": "839201938475", "password2": "839201938475"}, "password1", "entirely numeric"),
        ({"company_name": ""}, "company_name", "Enter your company"),
        ({"currency": "JPY"}, "currency", "Select a valid choice"),
        ({"country": ""}, "country", "Choose the country"),
        ({"email": "not-an-email"}, "email", "valid email"),
    ],
)
def test_bad_sign_up_input_is_a_field_error_and_keeps_what_was_typed(
    changes: dict[str, str], field: str, message: str
) -> None:
    response = Client().post("/accounts/signup/", {**GOOD, **changes})

    assert response.status_code == 200
    form = response.context["form"]
    assert any(message.lower() in error.lower() for error in form.errors[field]), form.errors
    html = response.content.decode()
    assert 'value="Ada Lovelace"' in html
    assert not User.objects.exists()
    assert not Company.objects.exists()


def test_a_failed_company_creation_leaves_no_user_behind(monkeypatch: pytest.MonkeyPatch) -> None:
    from apps.accounts import forms

    def explode(**kwargs: object) -> None:
        raise RuntimeError("database went away")

    monkeypatch.setattr(forms, "company_create", explode)
    with pytest.raises(RuntimeError):
        Client(raise_request_exception=True).post("/accounts/signup/", GOOD)
    assert not User.objects.exists()
