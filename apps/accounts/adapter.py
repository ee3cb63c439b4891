from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from allauth.account.adapter import DefaultAccountAdapter
from allauth.core import context as allauth_context
from django.conf import settings
from django.contrib.sites.shortcuts import get_current_site
from django.http import HttpRequest
from django.urls import reverse


@dataclass(frozen=True)
class ProductSite:
    """What allauth's e-mails call the site: the product's name, not the host name (without
    django.contrib.sites allauth would write "Hello from 127.0.0.1:8000!")."""

    name: str
    domain: str


class AccountAdapter(DefaultAccountAdapter):
    def get_login_redirect_url(self, request: HttpRequest) -> str:
        # An invitation opened before signing in is accepted right after.
        token = request.session.get("pending_invitation")
        if token:
            return reverse("invitation-accept", args=[token])
        return super().get_login_redirect_url(request)

    def send_mail(self, template_prefix: str, email: str, context: dict[str, Any]) -> None:
        request = allauth_context.request
        domain = get_current_site(request).domain if request is not None else settings.SITE_URL.split("//")[-1]
        super().send_mail(
            template_prefix, email, {"current_site": ProductSite(name=settings.PRODUCT_NAME, domain=domain), **context}
        )

    def get_client_ip(self, request: HttpRequest) -> Any:
        # Rate limits key on the same address the audit log records.
        return getattr(request, "client_ip", None) or super().get_client_ip(request)
