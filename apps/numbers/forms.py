from __future__ import annotations

from typing import Any

from django import forms
from django_countries import countries

from apps.core.exceptions import ApplicationError
from apps.core.forms import CsvUploadForm
from apps.numbers import imports
from apps.numbers.models import OnlineNumber


class NumberSearchForm(forms.Form):
    country = forms.ChoiceField(required=False, choices=lambda: [("", "Any country"), *countries])
    area = forms.CharField(required=False, max_length=100, label="Area or city")
    contains = forms.CharField(
        required=False,
        max_length=30,
        label="Digits",
        help_text="Anywhere in the number; start with + to match its beginning (+4420).",
    )
    type = forms.ChoiceField(required=False, choices=[("", "Any type"), *OnlineNumber.Type.choices])


class NumberBuyForm(forms.Form):
    number = forms.CharField(max_length=40)
    months = forms.TypedChoiceField(choices=[(3, "3 months"), (12, "12 months")], coerce=int)
    auto_renew = forms.BooleanField(required=False)


class NumberAssignForm(forms.Form):
    business_account = forms.UUIDField(required=False)


class NumberAutoRenewForm(forms.Form):
    auto_renew = forms.BooleanField(required=False)


class OnlineNumberAdminForm(forms.ModelForm):  # type: ignore[type-arg]
    """One stock row, checked with the CSV import's rules (imports.clean_stock_values)."""

    number = forms.CharField(
        max_length=40, help_text="E.164 (+442079460958), or national in the row's country (020 7946 0958)."
    )

    class Meta:
        model = OnlineNumber
        fields = ["number", "country", "area", "number_type", *imports.PRICE_FIELDS]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            # A different number is a different row; the row's history stays with it.
            for name in ("number", "country"):
                self.fields.pop(name, None)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        source = {**{n: getattr(self.instance, n) for n in ("number", "country")}, **cleaned}
        if self.errors or any(source.get(n) in (None, "") for n in ("number", "country", "number_type")):
            return cleaned

        try:
            values = imports.clean_stock_values(
                number=str(source["number"]),
                country=str(source["country"]),
                area=source.get("area", ""),
                number_type=source["number_type"],
                prices={name: source.get(name) for name in imports.PRICE_FIELDS},
            )
        except ApplicationError as error:
            for field, messages in error.errors.items():
                for message in messages:
                    self.add_error(field if field in self.fields else None, message)
            return cleaned
        if "number" in self.fields:
            cleaned["number"] = values.e164
        return cleaned


class NumberImportForm(CsvUploadForm):
    max_bytes = imports.MAX_FILE_BYTES
    max_rows = imports.MAX_ROWS
