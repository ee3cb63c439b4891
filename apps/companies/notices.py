"""Telling a company's admins something: a dashboard notice and an e-mail, sent after commit."""

from __future__ import annotations

from django.db import transaction

from apps.companies.models import Company, Notice


def notice_create(*, company: Company, kind: str, message: str, level: str = Notice.Level.WARNING) -> Notice:
    notice = Notice.objects.create(company=company, kind=kind, message=message, level=level)
    from apps.companies.tasks import send_notice_email

    notice_id = notice.pk
    transaction.on_commit(lambda: send_notice_email.delay(notice_id))
    return notice
