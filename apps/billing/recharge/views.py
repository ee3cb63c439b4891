"""Auto-recharge forms on the credit page and the SIP profile page (the pages are
apps.billing.purchases.views.CreditView and the SIP profile page)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django import forms

from apps.billing.purchases import selectors as purchase_selectors
from apps.billing.recharge import company as company_recharge
from apps.billing.recharge.selectors import auto_recharge_state, profile_auto_recharge_state
from apps.companies.models import Company
from apps.core.exceptions import ApplicationError
from apps.core.forms import add_application_error

if TYPE_CHECKING:
    from apps.sip_profiles.models import SipProfile

DEFAULTS = {"amount": "50", "threshold": "10", "monthly_limit": "200"}


def _field(label: str) -> forms.CharField:
    return forms.CharField(
        label=label, max_length=20, widget=forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off"})
    )


class AutoRechargeForm(forms.Form):
    enabled = forms.BooleanField(required=False, label="Recharge automatically")
    amount = _field("Recharge amount")
    threshold = _field("When the balance falls below")
    monthly_limit = _field("At most per month")
    payment_method = forms.ChoiceField(label="Card", required=False)

    def __init__(self, *args: Any, company: Company, **kwargs: Any) -> None:
        # The credit page also shows the buy form, whose amount field is id_amount too: own ids,
        # so that "Recharge amount" labels this form's field (the posted names do not change).
        kwargs.setdefault("auto_id", "id_auto_recharge_%s")
        super().__init__(*args, **kwargs)
        cards = purchase_selectors.saved_cards_for(company)
        field = self.fields["payment_method"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [("", "The default card")] + [(str(c.public_id), str(c)) for c in cards]


class ProfileAutoRechargeForm(forms.Form):
    enabled = forms.BooleanField(required=False, label="Top up from the company balance automatically")
    amount = _field("Allocate")
    threshold = _field("When the profile balance falls below")
    monthly_limit = _field("At most per month")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", "id_profile_auto_recharge_%s")  # the profile page's own ids
        super().__init__(*args, **kwargs)


def _initial(state: dict[str, Any]) -> dict[str, Any]:
    initial: dict[str, Any] = {"enabled": state["enabled"]}
    for name, default in DEFAULTS.items():
        value = state[name]
        initial[name] = f"{value:.2f}" if value is not None else default
    card = state.get("payment_method")
    initial["payment_method"] = str(card.public_id) if card else ""
    return initial


def auto_recharge_context(company: Company, *, form: AutoRechargeForm | None = None) -> dict[str, Any]:
    """What the credit page's auto-recharge card shows."""
    state = auto_recharge_state(company)
    return {
        "auto_recharge": state,
        "auto_recharge_form": form or AutoRechargeForm(initial=_initial(state), company=company),
    }


def profile_auto_recharge_context(
    profile: SipProfile, *, form: ProfileAutoRechargeForm | None = None
) -> dict[str, Any]:
    """What the profile page's auto-recharge shows: a form sent with errors comes back as sent."""
    state = profile_auto_recharge_state(profile)
    return {
        "profile_auto_recharge": state,
        "profile_auto_recharge_form": form or ProfileAutoRechargeForm(initial=_initial(state)),
    }


def auto_recharge_save(*, actor: Any, company: Company, form: AutoRechargeForm) -> bool:
    """Save the credit page's auto-recharge form; False with the errors on the form's fields."""
    if not form.is_valid():
        return False
    data = form.cleaned_data
    card = None
    if data["payment_method"]:
        card = purchase_selectors.saved_cards_for(company).filter(public_id=data["payment_method"]).first()
    try:
        company_recharge.auto_recharge_update(
            actor=actor,
            company=company,
            enabled=data["enabled"],
            amount=data["amount"],
            threshold=data["threshold"],
            monthly_limit=data["monthly_limit"],
            payment_method=card,
        )
    except ApplicationError as error:
        add_application_error(form, error)
        return False
    return True
