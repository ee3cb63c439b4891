"""Caller ID: resolving what a profile may present, and taking it away when it stops being valid."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from apps.audit.services import audit_record
from apps.callerid.models import Landline
from apps.callerid.selectors import caller_id_options, supported_countries
from apps.companies.models import Company, Notice
from apps.companies.notices import notice_create
from apps.core.actor import Actor
from apps.core.exceptions import ApplicationError
from apps.core.phone import e164, parse_number, region_of


def caller_id_resolve(*, company: Company, value: str | None) -> tuple[Any, Landline | None]:
    """(subscription, landline) for a number the company may present, or (None, None) for none.

    Raises a clear error on the `caller_id` field for anything else."""
    if value in (None, ""):
        return None, None
    number = parse_number(str(value), region=company.country.code, field="caller_id")
    wanted = e164(number)
    for option in caller_id_options(company=company):
        if option.e164 == wanted:
            if option.kind == "online_number":
                return option.source, None
            return None, option.source
    region = region_of(number)
    if region and region not in supported_countries():
        raise ApplicationError(
            f"Caller ID cannot be presented for numbers in {region}: carriers there refuse it.", field="caller_id"
        )
    landline = Landline.objects.for_company(company).filter(number=wanted).first()
    if landline is not None:
        if not company.is_verified:
            raise ApplicationError(
                "Your own landlines can be presented only while your company is verified.", field="caller_id"
            )
        raise ApplicationError(
            f"{wanted} is {landline.get_status_display().lower()}; it can be presented once it is verified.",
            field="caller_id",
        )
    raise ApplicationError(
        f"{wanted} is neither an Online Number of your company nor a landline you have proved.", field="caller_id"
    )


def caller_id_remove_everywhere(
    *, actor: Actor, company: Company, subscription: Any = None, landline: Landline | None = None, reason: str
) -> int:
    """Stop presenting a caller ID that is no longer valid: remove it from every profile,
    record it, and tell the company's admins (dashboard notice and e-mail)."""
    from apps.sip_profiles.models import SipProfile

    if subscription is None and landline is None:
        return 0
    with transaction.atomic():
        profiles = SipProfile.objects.filter(company=company, deleted_at__isnull=True).select_for_update()
        if subscription is not None:
            profiles = profiles.filter(caller_id_number=subscription)
            number = str(subscription.number.number)
        else:
            profiles = profiles.filter(caller_id_landline=landline)
            number = str(landline.number) if landline else ""
        affected = list(profiles)
        for profile in affected:
            profile.caller_id_number = None
            profile.caller_id_landline = None
            profile.save(update_fields=["caller_id_number", "caller_id_landline", "updated_at"])
            audit_record(
                actor=actor,
                action="sip_profile.caller_id_removed",
                company=company,
                target=profile,
                changes={"caller_id": {"before": number, "after": None}, "reason": {"before": None, "after": reason}},
            )
        if affected:
            names = ", ".join(p.name for p in affected)
            notice_create(
                company=company,
                kind="caller_id_removed",
                level=Notice.Level.WARNING,
                message=(
                    f"Calls from {names} now show “Unknown number”: caller ID {number} was removed because {reason}."
                ),
            )
    return len(affected)
