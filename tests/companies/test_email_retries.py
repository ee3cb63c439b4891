"""E-mail tasks retry, with backoff, when the mail server cannot be reached, and stop at once
on a refusal that would repeat. A real SMTP connection to a closed loopback port."""

from __future__ import annotations

import smtplib
from typing import Any

import pytest
from celery.exceptions import Retry

from apps.companies import emails
from apps.companies.models import Notice, Role
from apps.companies.notices import notice_create
from apps.companies.tasks import send_notice_email
from tests.core.outages import closed_port
from tests.factories import member

pytestmark = pytest.mark.django_db


@pytest.fixture
def notice(company: Any) -> Notice:
    member(company, Role.ADMIN, email="admin@example.com")
    return notice_create(
        company=company,
        kind="test",
        subject="Something happened",
        level=Notice.Level.ERROR,
        message="Something happened.",
    )


@pytest.fixture
def smtp_down(settings: Any) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = closed_port()
    settings.EMAIL_TIMEOUT = 2


def test_an_unreachable_mail_server_is_tried_again_later_then_given_up(notice, smtp_down) -> None:
    with pytest.raises(Retry) as retried:
        send_notice_email.apply(args=[notice.pk])
    with pytest.raises(ConnectionRefusedError):
        send_notice_email.apply(args=[notice.pk], retries=send_notice_email.max_retries)

    assert isinstance(retried.value.exc, ConnectionRefusedError)
    assert send_notice_email.max_retries == 5
    assert send_notice_email.retry_backoff == 60
    assert send_notice_email.retry_backoff_max < 960, "a waiting retry must not outlive the visibility timeout"


def test_a_recipient_the_server_refuses_is_not_tried_again(notice, monkeypatch) -> None:
    tries: list[int] = []

    def refused(**kwargs: Any) -> int:
        tries.append(1)
        raise smtplib.SMTPRecipientsRefused({"admin@example.com": (550, b"No such user")})

    monkeypatch.setattr(emails, "send_mail", refused)

    with pytest.raises(smtplib.SMTPRecipientsRefused):
        send_notice_email.apply(args=[notice.pk])

    assert len(tries) == 1


def test_the_members_with_the_roles_asked_for_get_one_email(company, mailoutbox) -> None:
    member(company, Role.BILLING, email="billing@example.com")
    member(company, Role.VIEWER, email="viewer@example.com")

    sent = emails.email_members(company=company, roles=[Role.BILLING], subject="Hi", message="Text")

    assert sent == 1
    assert [m.to for m in mailoutbox] == [["billing@example.com"]]
