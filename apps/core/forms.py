from __future__ import annotations

from typing import Any, ClassVar

from django import forms

from apps.core.exceptions import ApplicationError


def add_application_error(form: forms.Form, error: ApplicationError) -> None:
    """Show a service's error on the form: on its field when the form has it, else on top."""
    if not error.errors:
        form.add_error(None, error.message)
        return
    for field, messages in error.errors.items():
        target = field if field in form.fields else None
        for message in messages:
            form.add_error(target, message)


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("widget", MultipleFileInput(attrs={"accept": ".pdf,.png,.jpg,.jpeg"}))
        super().__init__(*args, **kwargs)

    def clean(self, data: Any, initial: Any = None) -> Any:
        single = super().clean
        if isinstance(data, list | tuple):
            return [single(item, initial) for item in data]
        return [single(data, initial)] if data else []


class CsvUploadForm(forms.Form):
    """A staff CSV import's upload (apps.core.admin_imports): the file, refused before it is
    read into memory when it is larger than the import takes. Subclasses set the limits and
    may add fields (put them before the file with `field_order`)."""

    max_bytes: ClassVar[int]
    max_rows: ClassVar[int]

    file = forms.FileField()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields[
            "file"
        ].help_text = f"CSV, UTF-8, up to {self.max_bytes // (1024 * 1024)} MB and {self.max_rows:,} rows."

    def clean_file(self) -> Any:
        upload = self.cleaned_data["file"]
        if upload.size is None or upload.size > self.max_bytes:
            raise forms.ValidationError(f"The file is larger than {self.max_bytes // (1024 * 1024)} MB.")
        return upload
