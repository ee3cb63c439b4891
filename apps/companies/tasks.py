from __future__ import annotations

from celery import shared_task
from django.conf import settings
from django.core.mail import send_mail
from django.template.loader import render_to_string
from django.urls import reverse

from apps.companies.emails import EMAIL_TASK, email_members, email_subject
from apps.companies.models import Company, Invitation, Notice, Role


@shared_task(**EMAIL_TASK)
def send_invitation_email(invitation_id: int, token: str) -> None:
    invitation = Invitation.objects.select_related("company", "invited_by").filter(pk=invitation_id).first()
    if invitation is None or invitation.status != "pending":
        return  # revoked or replaced before we got to it: send nothing
    context = {
        "invitation": invitation,
        "product_name": settings.PRODUCT_NAME,
        "accept_url": settings.SITE_URL.rstrip("/") + reverse("invitation-accept", args=[token]),
    }
    send_mail(
        subject=render_to_string("companies/email/invitation_subject.txt", context).strip(),
        message=render_to_string("companies/email/invitation_body.txt", context),
        from_email=None,
        recipient_list=[invitation.email],
    )


@shared_task(**EMAIL_TASK)
def send_verification_decision_email(company_id: int, action: str, reason: str = "") -> None:
    """Tell a company's owners and admins that staff decided on its verification."""
    company = Company.objects.filter(pk=company_id).first()
    if company is None:
        return
    context = {
        "company": company,
        "product_name": settings.PRODUCT_NAME,
        "action": action,
        "reason": reason,
        "url": settings.SITE_URL.rstrip("/") + reverse("verification"),
    }
    email_members(
        company=company,
        roles=[Role.OWNER, Role.ADMIN],
        subject=render_to_string("companies/email/verification_subject.txt", context).strip(),
        message=render_to_string("companies/email/verification_body.txt", context),
    )


@shared_task(**EMAIL_TASK)
def send_notice_email(notice_id: int) -> None:
    """E-mail a dashboard notice to the company's owners and admins."""
    notice = Notice.objects.select_related("company").filter(pk=notice_id).first()
    if notice is None:
        return
    email_members(
        company=notice.company,
        roles=[Role.OWNER, Role.ADMIN],
        # What happened, never just the level ("Information"); a notice written before subjects
        # were kept says its first sentence.
        subject=email_subject(notice.subject or _first_sentence(notice.message), notice.company),
        message=f"{notice.message}\n\n{settings.SITE_URL.rstrip('/')}{reverse('dashboard')}\n",
    )


def _first_sentence(message: str) -> str:
    sentence = message.split(". ", 1)[0].rstrip(".")
    return sentence if len(sentence) <= 120 else sentence[:119].rstrip() + "…"
