from __future__ import annotations

from django import forms


class LandlineForm(forms.Form):
    number = forms.CharField(
        max_length=40,
        help_text="The landline's number, e.g. +44 20 7946 0958, or in national format for your company's country.",
    )
    proof = forms.FileField(
        required=False,  # the service says what is missing, in the same words as the API
        widget=forms.ClearableFileInput(attrs={"accept": ".pdf,.png,.jpg,.jpeg"}),
        help_text="A recent phone bill or a letter from your carrier showing your company's name and the number: "
        "PDF, PNG or JPEG, up to 10 MB.",
    )
