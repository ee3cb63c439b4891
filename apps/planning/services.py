from __future__ import annotations

from collections.abc import Mapping

from django.db import transaction

from apps.audit.services import audit_record
from apps.companies.models import Company
from apps.core.actor import Actor
from apps.core.exceptions import ApplicationError
from apps.planning.models import CHECKLIST_FIELDS, ReadinessChecklist


def readiness_checklist_update(*, actor: Actor, company: Company, ticked: Mapping[str, bool]) -> ReadinessChecklist:
    """Save which boxes of the company's checklist are ticked (every box: one missing is unticked)."""
    unknown = sorted(set(ticked) - set(CHECKLIST_FIELDS))
    if unknown:
        raise ApplicationError(
            "Unknown checklist items.", errors={name: ["Not an item of the checklist."] for name in unknown}
        )
    with transaction.atomic():
        # get_or_create under the company's row lock: two admins saving at once both land on one row.
        Company.objects.select_for_update().filter(pk=company.pk).first()
        checklist, _ = ReadinessChecklist.objects.get_or_create(company=company)
        before = checklist.ticked()
        for field in CHECKLIST_FIELDS:
            setattr(checklist, field, bool(ticked.get(field, False)))
        checklist.updated_by = actor.user
        checklist.save()
        after = checklist.ticked()
        changes = {
            field: {"from": before[field], "to": after[field]}
            for field in CHECKLIST_FIELDS
            if before[field] != after[field]
        }
        if changes:
            audit_record(
                actor=actor, action="readiness_checklist.updated", company=company, target=checklist, changes=changes
            )
    return checklist
