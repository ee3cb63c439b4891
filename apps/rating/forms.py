from __future__ import annotations

from typing import Any

from django import forms

from apps.companies.models import Currency
from apps.rating import imports
from apps.rating.models import BlockedPrefix


class RateDeckImportForm(forms.Form):
    currency = forms.ChoiceField(choices=Currency.choices)
    name = forms.CharField(max_length=200, required=False, help_text="Defaults to the file's name.")
    file = forms.FileField(
        help_text=f"CSV, UTF-8, up to {imports.MAX_FILE_BYTES // (1024 * 1024)} MB and {imports.MAX_ROWS:,} rows."
    )

    def clean_file(self) -> Any:
        upload = self.cleaned_data["file"]
        # Refused before it is read into memory.
        if upload.size is None or upload.size > imports.MAX_FILE_BYTES:
            raise forms.ValidationError(f"The file is larger than {imports.MAX_FILE_BYTES // (1024 * 1024)} MB.")
        return upload


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
