"""How billing suspends and resumes a SIP profile whose channels are unpaid (registered with
apps.billing.charges.items in SipProfilesConfig.ready())."""

from __future__ import annotations

from datetime import datetime

from apps.billing.models import Charge
from apps.core.actor import Actor
from apps.sip_profiles.models import CHARGE_ITEM_LABEL, SipProfile
from apps.sip_profiles.services import sip_profile_resume_paid, sip_profile_suspend_unpaid

LABEL = CHARGE_ITEM_LABEL


class SipProfileCharges:
    def lock(self, key: str) -> SipProfile | None:
        return (
            SipProfile.objects.select_for_update(of=("self",)).select_related("company").filter(public_id=key).first()
        )

    def suspend_unpaid(self, *, actor: Actor, item: SipProfile, charge: Charge, now: datetime) -> None:
        sip_profile_suspend_unpaid(actor=actor, profile=item)

    def resumable(self, item: SipProfile) -> bool:
        return True

    def resume_paid(self, *, actor: Actor, item: SipProfile, charge: Charge) -> None:
        # Every suspended charge of the profile must be paid before it carries calls again.
        still_owed = Charge.objects.filter(item=charge.item, status=Charge.Status.SUSPENDED).exclude(pk=charge.pk)
        if not still_owed.exists():
            sip_profile_resume_paid(actor=actor, profile=item)
