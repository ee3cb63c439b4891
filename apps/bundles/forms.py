from __future__ import annotations

import uuid
from typing import Any

from django import forms

from apps.sip_profiles.models import MAX_CHANNELS


class BundleChangeForm(forms.Form):
    """Buy or cancel US minute bundles on a profile's page."""

    # Sent by the button pressed: "Buy" or "Cancel bundles".
    action = forms.ChoiceField(choices=[("buy", "Buy"), ("cancel", "Cancel")])
    count = forms.IntegerField(min_value=1, max_value=MAX_CHANNELS, initial=1, label="Bundles")
    # One key per rendered form: a double-click or a resubmitted page buys once.
    key = forms.CharField(widget=forms.HiddenInput, max_length=64)
    # The bundles held when the form was shown: a cancel applies only to that count, so a
    # double-click or a resubmitted page cancels once.
    held = forms.IntegerField(widget=forms.HiddenInput, required=False, min_value=0)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Its own ids: the profile page has other forms with a "key" field.
        kwargs.setdefault("auto_id", "bundle-%s")
        super().__init__(*args, **kwargs)
        self.fields["count"].widget.attrs.update({"style": "width:5rem", "inputmode": "numeric"})


def new_bundle_form(held: int) -> BundleChangeForm:
    return BundleChangeForm(initial={"key": uuid.uuid4().hex, "held": held})
