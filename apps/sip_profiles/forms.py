from __future__ import annotations

from typing import Any

from django import forms

from apps.core.exceptions import ApplicationError
from apps.sip_profiles.models import MAX_CHANNELS, MIN_CHANNELS, SipProfile

EXAMPLE_ADDRESS_LINE = "81.2.69.160 5060 udp"


def addresses_to_text(addresses: list[dict[str, Any]]) -> str:
    return "\n".join(f"{a['address']} {a['port']} {a['transport']}" for a in addresses)


def parse_address_lines(text: str) -> list[dict[str, Any]]:
    """One address per line: "203.0.113.10", "203.0.113.8/29 5080", "2001:db8::5 5061 tls"."""
    entries: list[dict[str, Any]] = []
    errors: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        tokens = line.replace(",", " ").split()
        if not tokens:
            continue
        entry: dict[str, Any] = {"address": tokens[0]}
        for token in tokens[1:]:
            if token.isdigit():
                entry["port"] = int(token)
            elif token.lower() in ("udp", "tcp", "tls"):
                entry["transport"] = token.lower()
            else:
                errors.append(f"Line {number}: “{token}” is neither a port nor UDP, TCP or TLS.")
        entries.append(entry)
    if errors:
        raise forms.ValidationError(errors)
    return entries


def address_error_messages(error: ApplicationError) -> list[str]:
    """The service names entries allowed_ips.N.field; the form shows "Line N+1: …"."""
    messages = []
    for key, texts in error.errors.items():
        parts = key.split(".")
        prefix = f"Line {int(parts[1]) + 1}: " if len(parts) >= 2 and parts[1].isdigit() else ""
        messages += [prefix + text for text in texts]
    return messages


class SipProfileForm(forms.Form):
    name = forms.CharField(max_length=80)
    description = forms.CharField(max_length=300, required=False)
    auth_method = forms.ChoiceField(
        choices=SipProfile.AuthMethod.choices,
        widget=forms.RadioSelect,
        initial=SipProfile.AuthMethod.REGISTRATION,
        label="Authentication",
    )
    allowed_ips = forms.CharField(
        required=False,
        # A public address, one the form accepts (an example from a documentation range is refused).
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": EXAMPLE_ADDRESS_LINE}),
        label="Allowed addresses",
        help_text="For IP authentication: one per line, your PBX's public address or network (up to /24, "
        f"IPv6 /64), then the SIP port (5060) and transport (udp, tcp or tls), e.g. {EXAMPLE_ADDRESS_LINE}.",
    )
    channels = forms.IntegerField(
        min_value=MIN_CHANNELS,
        max_value=MAX_CHANNELS,
        initial=2,
        help_text="Simultaneous calls, 1 to 300; each is a monthly subscription.",
    )
    us_minute_bundles = forms.IntegerField(
        min_value=0,
        max_value=MAX_CHANNELS,
        initial=0,
        label="US minute bundles",
        help_text="5,000 minutes a month each to US landlines and mobiles; at most one per channel. "
        "Charged from today to the renewal day (prorated), then monthly.",
    )
    caller_id = forms.ChoiceField(required=False, label="Caller ID")
    withhold_caller_id = forms.BooleanField(required=False, label="Withhold caller ID (privacy)")
    tls_required = forms.BooleanField(required=False, initial=True, label="Require TLS for signalling")
    srtp_required = forms.BooleanField(required=False, initial=True, label="Require SRTP for media")
    status = forms.ChoiceField(choices=SipProfile.Status.choices, required=False)

    def __init__(self, *args: Any, caller_id_choices: list[tuple[str, str]], editing: bool = False, **kwargs: Any):
        super().__init__(*args, **kwargs)
        none = ("", "None: calls show “Unknown number”")
        self.fields["caller_id"].choices = [none, *caller_id_choices]  # type: ignore[attr-defined]
        if editing:
            del self.fields["auth_method"]
            # Bundles change through their own form on the profile's page, with their charge.
            del self.fields["us_minute_bundles"]
        else:
            del self.fields["status"]

    def clean_allowed_ips(self) -> list[dict[str, Any]]:
        return parse_address_lines(self.cleaned_data.get("allowed_ips") or "")
