from __future__ import annotations

from typing import Any

from django import forms

from apps.planning.bandwidth import CODECS, DEFAULT_PACKETISATION_MS, LINKS, PACKETISATIONS_MS
from apps.planning.models import CHECKLIST_ITEMS


class CalculatorForm(forms.Form):
    """The calculator's question, read from the query string (a GET form: the answer has a URL)."""

    codec = forms.ChoiceField(choices=[(c.key, c.label) for c in CODECS.values()], initial="g729")
    packetisation = forms.TypedChoiceField(
        label="Packetisation",
        choices=[(ms, f"{ms} ms") for ms in PACKETISATIONS_MS],
        coerce=int,
        initial=DEFAULT_PACKETISATION_MS,
        help_text="Audio per packet (ptime). 20 ms is what most PBXs send.",
    )
    link = forms.ChoiceField(
        label="Line", choices=[(link.key, link.name) for link in LINKS.values()], initial="adsl_pppoe_llc"
    )
    srtp = forms.BooleanField(label="SRTP", required=False, help_text="Adds a 10-byte tag to each packet.")
    upload_kbps = forms.DecimalField(
        label="Upload speed (kbit/s)",
        required=False,
        min_value=1,
        max_value=10_000_000,
        decimal_places=1,
        help_text="1 Mbit/s = 1,000 kbit/s. On ADSL, the line's sync speed.",
    )
    download_kbps = forms.DecimalField(
        label="Download speed (kbit/s)", required=False, min_value=1, max_value=10_000_000, decimal_places=1
    )
    channels = forms.IntegerField(
        label="Simultaneous calls wanted",
        required=False,
        min_value=1,
        max_value=10_000,
        help_text="The bandwidth they need in each direction.",
    )
    reserve_percent = forms.IntegerField(
        label="Keep free (%)",
        min_value=0,
        max_value=90,
        initial=20,
        help_text="For your other traffic: the guide advises never filling the line with voice (4.4).",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in ("upload_kbps", "download_kbps", "channels", "reserve_percent"):
            self.fields[name].widget.attrs["inputmode"] = "decimal" if name.endswith("kbps") else "numeric"

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not self.errors and not any(data.get(f) for f in ("upload_kbps", "download_kbps", "channels")):
            raise forms.ValidationError(
                "Enter a line speed (upload, download or both) or a number of simultaneous calls."
            )
        return data


class ChecklistForm(forms.Form):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for field, label, hint in CHECKLIST_ITEMS:
            self.fields[field] = forms.BooleanField(label=label, help_text=hint, required=False)
