"""Telling a company's admins something: a dashboard notice and an e-mail, sent after commit."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from apps.audit.services import audit_record
from apps.companies.models import Company, Notice
from apps.companies.tasks import send_notice_email
from apps.core.actor import Actor
from apps.core.enqueue import enqueue_on_commit


def notice_create(
    *, company: Company, kind: str, subject: str, message: str, level: str = Notice.Level.WARNING
) -> Notice:
    """A dashboard notice, e-mailed to the owners and admins with `subject` (what happened, in a
    few words) after "[PRODUCT_NAME] <company>: "."""
    notice = Notice.objects.create(company=company, kind=kind, subject=subject[:200], message=message, level=level)

    notice_id = notice.pk
    enqueue_on_commit(send_notice_email, notice_id)
    return notice


def notice_dismiss(*, actor: Actor, notice: Notice) -> Notice:
    with transaction.atomic():
        notice = Notice.objects.select_for_update().get(pk=notice.pk)
        if notice.dismissed_at is None:
            notice.dismissed_at = timezone.now()
            notice.dismissed_by = actor.user
            notice.save(update_fields=["dismissed_at", "dismissed_by"])
            audit_record(actor=actor, action="notice.dismissed", company=notice.company, target=notice)
    return notice
