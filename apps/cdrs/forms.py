from __future__ import annotations

from typing import Any

from django import forms

from apps.cdrs import imports


class CdrImportForm(forms.Form):
    file = forms.FileField(
        help_text=f"CSV, UTF-8, up to {imports.MAX_FILE_BYTES // (1024 * 1024)} MB and {imports.MAX_ROWS:,} rows."
    )

    def clean_file(self) -> Any:
        upload = self.cleaned_data["file"]
        # Refused before it is read into memory.
        if upload.size is None or upload.size > imports.MAX_FILE_BYTES:
            raise forms.ValidationError(f"The file is larger than {imports.MAX_FILE_BYTES // (1024 * 1024)} MB.")
        return upload
