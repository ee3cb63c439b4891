from __future__ import annotations

from typing import Any

from allauth.account.adapter import DefaultAccountAdapter
from django.http import HttpRequest
from django.urls import reverse


class AccountAdapter(DefaultAccountAdapter):
    def get_login_redirect_url(self, request: HttpRequest) -> str:
        # An invitation opened before signing in is accepted right after.
        token = request.session.get("pending_invitation")
        if token:
            return reverse("invitation-accept", args=[token])
        return super().get_login_redirect_url(request)

    def get_client_ip(self, request: HttpRequest) -> Any:
        # Rate limits key on the same address the audit log records.
        return getattr(request, "client_ip", None) or super().get_client_ip(request)
