"""Sign-ins and failed sign-ins go to the audit log of each company the person belongs to."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.dispatch import receiver

from apps.audit.services import audit_record
from apps.companies.models import Company
from apps.core.actor import Actor


def _actor(request: Any, user: Any) -> Actor:
    if request is None:
        return Actor(user=user)
    return Actor(
        user=user,
        ip_address=getattr(request, "client_ip", None) or request.META.get("REMOTE_ADDR"),
        user_agent=request.META.get("HTTP_USER_AGENT", "")[:300],
    )


@receiver(user_logged_in)
def record_sign_in(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    actor = _actor(request, user)
    companies: list[Company | None] = list(Company.objects.filter(memberships__user=user))
    for company in companies or [None]:
        audit_record(actor=actor, action="auth.signed_in", company=company, target=user)


@receiver(user_login_failed)
def record_failed_sign_in(sender: Any, credentials: dict[str, Any], request: Any = None, **kwargs: Any) -> None:
    email = credentials.get("email") or credentials.get("username") or ""
    user = get_user_model().objects.filter(email__iexact=email).first() if email else None
    actor = _actor(request, None)
    label = f"failed sign-in as {email}"[:200]
    companies: list[Company | None] = list(Company.objects.filter(memberships__user=user)) if user else []
    for company in companies or [None]:
        audit_record(actor=actor, action="auth.sign_in_failed", company=company, target=user, actor_label=label)
