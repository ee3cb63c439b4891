from __future__ import annotations

from django import forms

from apps.companies.models import Currency
from apps.core.forms import CsvUploadForm
from apps.rating import imports
from apps.rating.models import BlockedPrefix


class RateDeckImportForm(CsvUploadForm):
    max_bytes = imports.MAX_FILE_BYTES
    max_rows = imports.MAX_ROWS
    currency = forms.ChoiceField(choices=Currency.choices)
    name = forms.CharField(
        max_length=200,
        required=False,
        label="Display name",
        help_text="What customers see on the Rates page and in the API (never the file's name). "
        "Empty: the currency and the date it takes effect, e.g. “GBP rates from 1 Jan 2026”.",
    )
    field_order = ["currency", "name", "file"]


class BlockedPrefixAdminForm(forms.ModelForm):  # type: ignore[type-arg]
    class Meta:
        model = BlockedPrefix
        fields = ["country", "prefix", "exact", "kind", "reason"]

    def clean_country(self) -> str:
        return str(self.cleaned_data.get("country") or "").strip().upper()

    def clean_prefix(self) -> str:
        return str(self.cleaned_data.get("prefix") or "").replace(" ", "").strip()


class RateLookupForm(forms.Form):
    number = forms.CharField(
        max_length=40, help_text="E.164 (+442079460958), or national in your company's country (020 7946 0958)."
    )
