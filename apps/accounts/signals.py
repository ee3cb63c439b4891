"""Security events go to the audit log of each company the person belongs to:
sign-ins, failed sign-ins, password changes and resets, MFA changes and failures."""

from __future__ import annotations

from typing import Any

from allauth.account import signals as account_signals
from allauth.mfa import signals as mfa_signals
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


def _record_for_user(
    *, request: Any, user: Any, action: str, actor_user: Any = None, label: str | None = None, **changes: Any
) -> None:
    actor = _actor(request, actor_user if actor_user is not None else user)
    companies: list[Company | None] = list(Company.objects.filter(memberships__user=user)) if user else []
    for company in companies or [None]:
        audit_record(
            actor=actor,
            action=action,
            company=company,
            target=user,
            actor_label=label,
            changes={key: {"before": None, "after": value} for key, value in changes.items()},
        )


@receiver(user_logged_in)
def record_sign_in(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    _record_for_user(request=request, user=user, action="auth.signed_in")


@receiver(user_login_failed)
def record_failed_sign_in(sender: Any, credentials: dict[str, Any], request: Any = None, **kwargs: Any) -> None:
    email = credentials.get("email") or credentials.get("username") or ""
    user = get_user_model().objects.filter(email__iexact=email).first() if email else None
    _record_for_user(
        request=request,
        user=user,
        action="auth.sign_in_failed",
        actor_user=None,
        label=f"failed sign-in as {email}"[:200],
    )


@receiver(account_signals.password_changed)
def record_password_change(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    _record_for_user(request=request, user=user, action="auth.password_changed")


@receiver(account_signals.password_reset)
def record_password_reset(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    _record_for_user(request=request, user=user, action="auth.password_reset")


@receiver(mfa_signals.authenticator_added)
def record_mfa_added(sender: Any, request: Any, user: Any, authenticator: Any, **kwargs: Any) -> None:
    _record_for_user(request=request, user=user, action="auth.mfa_added", authenticator=authenticator.type)


@receiver(mfa_signals.authenticator_removed)
def record_mfa_removed(sender: Any, request: Any, user: Any, authenticator: Any, **kwargs: Any) -> None:
    _record_for_user(request=request, user=user, action="auth.mfa_removed", authenticator=authenticator.type)


@receiver(mfa_signals.authenticator_reset)
def record_mfa_reset(sender: Any, request: Any, user: Any, authenticator: Any, **kwargs: Any) -> None:
    _record_for_user(request=request, user=user, action="auth.mfa_reset", authenticator=authenticator.type)


@receiver(mfa_signals.authentication_failed)
def record_mfa_failure(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    _record_for_user(request=request, user=user, action="auth.mfa_failed")
