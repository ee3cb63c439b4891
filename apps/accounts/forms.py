from __future__ import annotations

from typing import Any

from allauth.account.forms import SignupForm
from django import forms
from django.db import transaction
from django.http import HttpRequest
from django_countries import countries

from apps.companies.models import Currency
from apps.companies.services import company_create, invitation_accept, invitation_for_token
from apps.core.actor import Actor
from apps.core.exceptions import ApplicationError


class CompanySignupForm(SignupForm):
    """Sign-up creates the company and makes the new user its owner — unless the
    person arrives through an invitation, in which case they join that company."""

    full_name = forms.CharField(max_length=150, label="Your name", required=False)
    company_name = forms.CharField(max_length=120, label="Company name", required=False)
    country = forms.ChoiceField(choices=lambda: [("", "Choose a country"), *countries], required=False)
    currency = forms.ChoiceField(
        choices=[("", "Choose a currency"), *list(Currency.choices)],
        required=False,
        help_text="Balances and prices are kept in this currency. It cannot be changed later.",
    )
    invitation = forms.CharField(widget=forms.HiddenInput, required=False)

    field_order = ["full_name", "email", "password1", "password2", "company_name", "country", "currency"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not self.is_bound and self.initial.get("invitation"):
            for name in ("company_name", "country", "currency"):
                self.fields[name].widget = forms.HiddenInput()

    def _invitation(self) -> Any:
        token = (self.cleaned_data.get("invitation") or "").strip()
        return invitation_for_token(token) if token else None

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        invitation = self._invitation()
        if invitation is not None and invitation.status == "pending":
            email = (cleaned.get("email") or "").lower()
            if email and email != invitation.email.lower():
                self.add_error("email", f"This invitation is for {invitation.email}.")
            return cleaned
        for name, message in (
            ("company_name", "Enter your company's name."),
            ("country", "Choose the country your company is registered in."),
            ("currency", "Choose the currency you will buy credit in."),
        ):
            if not cleaned.get(name):
                self.add_error(name, message)
        return cleaned

    def save(self, request: HttpRequest) -> Any:
        # The user, their company and their ownership are created together or not at all.
        with transaction.atomic():
            return super().save(request)

    def signup(self, request: HttpRequest, user: Any) -> None:
        user.full_name = self.cleaned_data.get("full_name", "")
        user.save(update_fields=["full_name"])
        actor = Actor(
            user=user,
            ip_address=getattr(request, "client_ip", None),
            user_agent=request.META.get("HTTP_USER_AGENT", "")[:300],
        )
        invitation = self._invitation()
        if invitation is not None and invitation.status == "pending":
            try:
                invitation_accept(actor=actor, token=self.cleaned_data["invitation"], user=user)
            except ApplicationError as error:
                raise forms.ValidationError(error.message) from error
            return
        company_create(
            actor=actor,
            owner=user,
            name=self.cleaned_data["company_name"],
            country=self.cleaned_data["country"],
            currency=self.cleaned_data["currency"],
        )
