from __future__ import annotations

from typing import Any

from django import forms

from apps.business_accounts import selectors
from apps.companies.models import Company, Membership


class MemberChoiceField(forms.ModelChoiceField):  # type: ignore[type-arg]
    def label_from_instance(self, obj: Membership) -> str:
        return f"{obj.user.email} ({obj.get_role_display().lower()})"


class BusinessAccountEditForm(forms.Form):
    display_name = forms.CharField(max_length=100, help_text="What callers and your website show, e.g. “Sales”.")
    member = MemberChoiceField(
        queryset=Membership.objects.none(),
        to_field_name="public_id",
        required=False,
        empty_label="No member",
        help_text="Optional. An owner's or admin's account can never be routed to a profile.",
    )

    def __init__(self, *args: Any, company: Company, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["member"].queryset = selectors.member_choices(company=company)  # type: ignore[attr-defined]


class BusinessAccountCreateForm(BusinessAccountEditForm):
    name = forms.CharField(
        max_length=32,
        help_text="6–32 characters: lowercase letters, digits, “.”, “-” or “_”, starting with a letter. "
        "Unique across the whole service; it cannot be changed later.",
    )
    field_order = ["name", "display_name", "member"]
