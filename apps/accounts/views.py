from __future__ import annotations

from typing import Any

from allauth.account.views import SignupView as AllauthSignupView
from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views import View

from apps.accounts import services
from apps.accounts.models import ApiKey
from apps.companies.models import Capability, Role
from apps.companies.scoping import CompanyPageMixin
from apps.companies.services import invitation_for_token
from apps.core.exceptions import ApplicationError
from apps.core.forms import add_application_error
from apps.core.once import OncePostMixin
from apps.core.prg import no_store, redirect_done, secret_pop


class ApiKeyForm(forms.Form):
    name = forms.CharField(max_length=80, help_text="Where the key is used, e.g. “CRM integration”.")
    role = forms.ChoiceField(choices=[(r, Role(r).label) for r in ApiKey.ROLES], initial=Role.VIEWER)


class ApiKeyListView(CompanyPageMixin, OncePostMixin, View):
    read_capability = Capability.MANAGE_API_KEYS
    write_capability = Capability.MANAGE_API_KEYS
    model = ApiKey

    def scope_queryset(self, queryset: Any) -> Any:
        return queryset.select_related("created_by").order_by("revoked_at", "-created_at")

    def _render(self, form: ApiKeyForm, *, new_key: str | None = None, status: int = 200) -> HttpResponse:
        return render(
            self.request,
            "accounts/api_keys.html",
            {"form": form, "keys": self.get_queryset(), "new_key": new_key},
            status=status,
        )

    def get(self, request: HttpRequest) -> HttpResponse:
        # A new key, brought once by the redirect after its creation.
        new_key = secret_pop(request)
        response = self._render(ApiKeyForm(), new_key=new_key)
        return no_store(response) if new_key is not None else response

    def post(self, request: HttpRequest) -> HttpResponse:
        form = ApiKeyForm(request.POST)
        if form.is_valid():
            try:
                api_key, key = services.api_key_create(actor=self.actor, company=self.company, **form.cleaned_data)
            except ApplicationError as error:
                add_application_error(form, error)
            else:
                # A redirect, so a reload makes no second key; the key is shown once on the
                # page redirected to, from the server-side session (apps.core.prg).
                return redirect_done(
                    request, reverse("api-key-list"), message=f"The key “{api_key.name}” was created.", secret=key
                )
        return self._render(form, status=400)


class ApiKeyRevokeView(CompanyPageMixin, OncePostMixin, View):
    read_capability = Capability.MANAGE_API_KEYS
    write_capability = Capability.MANAGE_API_KEYS
    model = ApiKey

    def post(self, request: HttpRequest, id: Any) -> HttpResponse:
        api_key = self.get_object_or_404(id)
        try:
            services.api_key_revoke(actor=self.actor, api_key=api_key)
        except ApplicationError as error:
            messages.error(request, error.message)
        else:
            messages.success(request, f"The key “{api_key.name}” was revoked. It stops working at once.")
        return redirect("api-key-list")


class InvitationAwareSignupView(AllauthSignupView):
    """allauth's sign-up, pre-filled from an invitation link (?invitation=<token>):
    the invited address is filled in and the company fields are not asked for."""

    def get_initial(self) -> dict[str, Any]:
        initial: dict[str, Any] = super().get_initial()
        token = self.request.GET.get("invitation") or self.request.session.get("pending_invitation")
        invitation = invitation_for_token(token) if token else None
        if invitation is not None and invitation.status == "pending":
            initial["invitation"] = token
            initial["email"] = invitation.email
        return initial
