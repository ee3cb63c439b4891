"""How billing suspends and resumes an Online Number whose renewal is unpaid (registered with
apps.billing.charges.items in NumbersConfig.ready())."""

from __future__ import annotations

from datetime import datetime

from apps.billing.models import Charge
from apps.core.actor import Actor
from apps.numbers.models import NumberSubscription
from apps.numbers.services import (
    number_subscription_resumable,
    number_subscription_resume_paid,
    number_subscription_suspend_unpaid,
)

LABEL = "numbers.numbersubscription"


class NumberSubscriptionCharges:
    def lock(self, key: str) -> NumberSubscription | None:
        return (
            NumberSubscription.objects.select_for_update(of=("self",))
            .select_related("number", "company")
            .filter(public_id=key)
            .first()
        )

    def suspend_unpaid(self, *, actor: Actor, item: NumberSubscription, charge: Charge, now: datetime) -> None:
        number_subscription_suspend_unpaid(actor=actor, subscription=item, now=now)

    def resumable(self, item: NumberSubscription) -> bool:
        return number_subscription_resumable(item)

    def resume_paid(self, *, actor: Actor, item: NumberSubscription, charge: Charge) -> None:
        number_subscription_resume_paid(actor=actor, subscription=item)
