"""E-mail to a company's members, by role, from Celery tasks that retry when the mail server
or the network fails (with exponential backoff), and never for a refusal that would repeat."""

from __future__ import annotations

import smtplib
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.core.mail import send_mail

from apps.companies.models import Company, Membership

# Worth another try later: the server is down, busy or unreachable (socket errors are OSErrors).
RETRYABLE = (smtplib.SMTPException, OSError)
# Would fail the same way every time.
PERMANENT = (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused, smtplib.SMTPNotSupportedError)

# The options of every e-mail task. The backoff (1, 2, 4, 8 minutes, capped below the broker's
# visibility timeout so a waiting retry is never handed out twice) with jitter, five tries.
EMAIL_TASK: dict[str, Any] = {
    "acks_late": True,
    "autoretry_for": RETRYABLE,
    "dont_autoretry_for": PERMANENT,
    "retry_backoff": 60,
    "retry_backoff_max": 600,
    "retry_jitter": True,
    "max_retries": 5,
    "soft_time_limit": 50,
    "time_limit": 60,
}


def email_subject(what_happened: str, company: Company | None = None) -> str:
    """Every e-mail's subject: the product's name (never the host name), the company when the
    reader may belong to several, and what happened ("Auto-recharge charged 50.00 GBP …")."""
    about = f"{company.name}: " if company is not None else ""
    return f"[{settings.PRODUCT_NAME}] {about}{what_happened}"


def member_emails(company: Company, roles: Iterable[str]) -> list[str]:
    return list(
        Membership.objects.for_company(company).filter(role__in=list(roles)).values_list("user__email", flat=True)
    )


def email_members(*, company: Company, roles: Iterable[str], subject: str, message: str) -> int:
    """Send one e-mail to the company's members with these roles; how many were addressed."""
    recipients = member_emails(company, roles)
    if recipients:
        send_mail(subject=subject, message=message, from_email=None, recipient_list=recipients)
    return len(recipients)
