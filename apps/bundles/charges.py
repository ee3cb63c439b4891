"""How billing suspends and resumes a US minute bundle period whose charge is unpaid
(registered with apps.billing.charges.items in BundlesConfig.ready())."""

from __future__ import annotations

from datetime import datetime

from apps.billing.models import Charge
from apps.bundles.models import BundlePeriod
from apps.bundles.services import ITEM_LABEL, bundle_period_resume, bundle_period_suspend
from apps.core.actor import Actor

LABEL = ITEM_LABEL


class BundlePeriodCharges:
    def lock(self, key: str) -> BundlePeriod | None:
        # Bundle charges name the period their minutes belong to, by its (internal) id.
        return (
            BundlePeriod.objects.select_for_update(of=("self",))
            .select_related("sip_profile", "company")
            .filter(pk=int(key))
            .first()
        )

    def suspend_unpaid(self, *, actor: Actor, item: BundlePeriod, charge: Charge, now: datetime) -> None:
        bundle_period_suspend(actor=actor, period=item)

    def resumable(self, item: BundlePeriod) -> bool:
        return True

    def resume_paid(self, *, actor: Actor, item: BundlePeriod, charge: Charge) -> None:
        bundle_period_resume(actor=actor, period=item, paid=charge)
