from __future__ import annotations

from django import forms
from django_countries import countries

from apps.companies.models import Currency, Role
from apps.core.forms import MultipleFileField


class CompanySettingsForm(forms.Form):
    name = forms.CharField(max_length=120)
    country = forms.ChoiceField(choices=lambda: list(countries))
    tax_number = forms.CharField(
        max_length=40,
        required=False,
        label="VAT or tax number",
        help_text="Printed on your receipts, e.g. GB123456789. Leave it empty if you have none.",
    )


class CompanyCreateForm(CompanySettingsForm):
    tax_number = None  # type: ignore[assignment]  # set later on the company's settings page
    currency = forms.ChoiceField(
        choices=Currency.choices, help_text="Balances and prices are kept in this currency. It cannot be changed later."
    )


class InvitationForm(forms.Form):
    email = forms.EmailField()
    role = forms.ChoiceField(choices=Role.choices, initial=Role.VIEWER)


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


class VerificationForm(forms.Form):
    legal_name = forms.CharField(max_length=200, help_text="As registered with the authorities.")
    registration_number = forms.CharField(max_length=64, help_text="Company or VAT registration number.")
    address_line1 = forms.CharField(max_length=200, label="Address")
    address_line2 = forms.CharField(max_length=200, required=False, label="Address (line 2)")
    city = forms.CharField(max_length=100)
    postal_code = forms.CharField(max_length=20, required=False)
    country = forms.ChoiceField(choices=lambda: list(countries))
    documents = MultipleFileField(
        help_text="Certificate of incorporation and proof of address: PDF, PNG or JPEG, up to 10 MB each, 5 files."
    )
