from __future__ import annotations

from celery import shared_task
from django.conf import settings
from django.core.mail import send_mail
from django.template.loader import render_to_string
from django.urls import reverse

from apps.companies.models import Invitation


@shared_task(acks_late=True, max_retries=5, default_retry_delay=60, soft_time_limit=50, time_limit=60)
def send_invitation_email(invitation_id: int, token: str) -> None:
    invitation = Invitation.objects.select_related("company", "invited_by").filter(pk=invitation_id).first()
    if invitation is None or invitation.status != "pending":
        return  # revoked or replaced before we got to it: send nothing
    context = {
        "invitation": invitation,
        "accept_url": settings.SITE_URL.rstrip("/") + reverse("invitation-accept", args=[token]),
    }
    send_mail(
        subject=render_to_string("companies/email/invitation_subject.txt", context).strip(),
        message=render_to_string("companies/email/invitation_body.txt", context),
        from_email=None,
        recipient_list=[invitation.email],
    )
