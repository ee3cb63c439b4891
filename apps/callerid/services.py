"""Caller ID: landlines companies prove they own, resolving what a profile may present,
and taking a caller ID away from every profile when it stops being valid."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import phonenumbers
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.utils import timezone
from django_countries import countries

from apps.audit.services import audit_record
from apps.callerid.models import VERIFICATION_DAYS, CallerIdCountry, Landline
from apps.callerid.selectors import caller_id_options, supported_countries
from apps.companies.models import Company, Notice
from apps.companies.notices import notice_create
from apps.core.actor import Actor
from apps.core.exceptions import ApplicationError
from apps.core.files import validate_document
from apps.core.phone import e164, number_type_name, parse_number, region_of
from apps.sip_profiles.models import SipProfile

LANDLINE_TYPES = (phonenumbers.PhoneNumberType.FIXED_LINE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE)
LIVE_STATUSES = (Landline.Status.PENDING, Landline.Status.VERIFIED)
EXPIRY_BATCH = 500
EXPIRED_REASON = "its proof of ownership expired after 12 months; prove it again"
WITHDRAWN_REASON = "the landline was withdrawn"
UNVERIFIED_REASON = "your company is no longer verified, and only verified companies may present their own landlines"


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
    # sip_profiles.services imports this module: imported here, when called.
    from apps.sip_profiles.services import sip_profile_mark_for_provisioning

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
            sip_profile_mark_for_provisioning(profile)  # the edge stops presenting it
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
                subject=f"Caller ID {number} was removed from {names}",
                level=Notice.Level.WARNING,
                message=(
                    f"Calls from {names} now show “Unknown number”: caller ID {number} was removed because {reason}."
                ),
            )
    return len(affected)


# --- Landlines ------------------------------------------------------------------


def _already_registered(number: str, landline: Landline | None) -> ApplicationError:
    status = landline.get_status_display().lower() if landline else "under review or verified"
    return ApplicationError(
        f"{number} is already registered by your company ({status}). Withdraw it first to register it again.",
        field="number",
        code="already_registered",
    )


def _landline_number(company: Company, number: str) -> str:
    parsed = parse_number(number, region=company.country.code, field="number")
    wanted = e164(parsed)
    if phonenumbers.number_type(parsed) not in LANDLINE_TYPES:
        raise ApplicationError(
            f"{wanted} is a {number_type_name(parsed)} number. Only landlines (fixed-line numbers) can be registered; "
            "to present another number, buy an Online Number.",
            field="number",
            code="not_a_landline",
        )
    region = region_of(parsed)
    if region not in supported_countries():
        raise ApplicationError(
            f"Caller ID cannot be presented for numbers in {countries.name(region) or region}: carriers there "
            "refuse it. See the list of supported countries.",
            field="number",
            code="country_not_supported",
        )
    return wanted


def _check_proof(proof: UploadedFile | None) -> None:
    if not proof:
        raise ApplicationError(
            "Upload a proof that the line is yours: a recent phone bill or a letter from your carrier.", field="proof"
        )
    validate_document(proof, field="proof")


def landline_register(*, actor: Actor, company: Company, number: str, proof: UploadedFile | None) -> Landline:
    """A company says it owns a landline and uploads proof (a phone bill…); staff review it."""
    if not company.is_verified:
        raise ApplicationError(
            "Only verified companies may present their own landlines as caller ID. Verify your company first.",
            field="number",
            code="not_verified",
        )
    # Both fields are checked so that a form shows every problem at once.
    failures: list[ApplicationError] = []
    wanted = ""
    try:
        wanted = _landline_number(company, number)
    except ApplicationError as error:
        failures.append(error)
    try:
        _check_proof(proof)
    except ApplicationError as error:
        failures.append(error)
    if len(failures) == 1:
        raise failures[0]
    if failures:
        raise ApplicationError(
            "Some fields are not valid.", errors={k: v for f in failures for k, v in f.errors.items()}
        )
    assert proof is not None
    with transaction.atomic():
        # Locked against a verification being withdrawn at the same moment.
        company = Company.objects.select_for_update(no_key=True).get(pk=company.pk)
        if not company.is_verified:
            raise ApplicationError(
                "Only verified companies may present their own landlines as caller ID.", field="number"
            )
        existing = Landline.objects.for_company(company).filter(number=wanted, status__in=LIVE_STATUSES).first()
        if existing is not None:
            raise _already_registered(wanted, existing)
        try:
            with transaction.atomic():
                landline = Landline.objects.create(
                    company=company,
                    number=wanted,
                    proof=proof,
                    proof_name=(proof.name or "proof")[:200],
                    submitted_by=actor.user,
                )
        except IntegrityError as error:
            if "landline_one_live_per_company" in str(error):
                raise _already_registered(wanted, None) from None
            raise
        audit_record(
            actor=actor,
            action="landline.registered",
            company=company,
            target=landline,
            changes={
                "number": {"before": None, "after": wanted},
                "proof": {"before": None, "after": landline.proof_name},
            },
        )
    return landline


def _lock(landline: Landline) -> Landline:
    return Landline.objects.select_for_update(of=("self",)).select_related("company").get(pk=landline.pk)


def landline_approve(*, actor: Actor, landline: Landline) -> Landline:
    """Staff: the proof shows the company owns the line. Valid for VERIFICATION_DAYS."""
    with transaction.atomic():
        landline = _lock(landline)
        if landline.status != Landline.Status.PENDING:
            raise ApplicationError(
                f"{landline.number} is {landline.get_status_display().lower()}, not pending review.",
                code="not_pending",
            )
        now = timezone.now()
        landline.status = Landline.Status.VERIFIED
        landline.reason = ""
        landline.reviewed_by = actor.user
        landline.verified_at = now
        landline.expires_at = now + timedelta(days=VERIFICATION_DAYS)
        landline.save(update_fields=["status", "reason", "reviewed_by", "verified_at", "expires_at", "updated_at"])
        audit_record(
            actor=actor,
            action="landline.approved",
            company=landline.company,
            target=landline,
            changes={
                "status": {"before": Landline.Status.PENDING, "after": Landline.Status.VERIFIED},
                "expires_at": {"before": None, "after": landline.expires_at},
            },
        )
        notice_create(
            company=landline.company,
            kind="landline_verified",
            subject=f"Landline {landline.number} is verified as caller ID",
            level=Notice.Level.INFO,
            message=(
                f"Landline {landline.number} is verified: your SIP profiles may present it as caller ID until "
                f"{landline.expires_at:%d %B %Y}."
            ),
        )
    return landline


def landline_reject(*, actor: Actor, landline: Landline, reason: str) -> Landline:
    """Staff: the proof is not good enough (or a verified line turned out not to be theirs)."""
    reason = (reason or "").strip()
    if not reason:
        raise ApplicationError("Give the company a reason for the rejection.", field="reason")
    with transaction.atomic():
        landline = _lock(landline)
        if landline.status not in LIVE_STATUSES:
            raise ApplicationError(
                f"{landline.number} is already {landline.get_status_display().lower()}.", code="not_live"
            )
        before = landline.status
        landline.status = Landline.Status.REJECTED
        landline.reason = reason
        landline.reviewed_by = actor.user
        landline.save(update_fields=["status", "reason", "reviewed_by", "updated_at"])
        audit_record(
            actor=actor,
            action="landline.rejected",
            company=landline.company,
            target=landline,
            changes={
                "status": {"before": before, "after": Landline.Status.REJECTED},
                "reason": {"before": None, "after": reason},
            },
        )
        removed = caller_id_remove_everywhere(
            actor=actor,
            company=landline.company,
            landline=landline,
            reason=f"our staff rejected it: {reason.rstrip('.')}",
        )
        if not removed:
            # When profiles used it, the removal notice above already says why.
            notice_create(
                company=landline.company,
                kind="landline_rejected",
                subject=f"Landline {landline.number} was rejected as caller ID",
                level=Notice.Level.WARNING,
                message=f"Landline {landline.number} was rejected as a caller ID: {reason}",
            )
    return landline


def landline_withdraw(*, actor: Actor, landline: Landline) -> Landline:
    """The company stops using a landline (pending or verified) as caller ID."""
    with transaction.atomic():
        landline = _lock(landline)
        if landline.status not in LIVE_STATUSES:
            raise ApplicationError(
                f"{landline.number} is already {landline.get_status_display().lower()}.", code="not_live"
            )
        before = landline.status
        landline.status = Landline.Status.WITHDRAWN
        landline.save(update_fields=["status", "updated_at"])
        audit_record(
            actor=actor,
            action="landline.withdrawn",
            company=landline.company,
            target=landline,
            changes={"status": {"before": before, "after": Landline.Status.WITHDRAWN}},
        )
        caller_id_remove_everywhere(actor=actor, company=landline.company, landline=landline, reason=WITHDRAWN_REASON)
    return landline


def landlines_expire(*, now: datetime, batch: int = EXPIRY_BATCH) -> int:
    """Verified landlines whose proof is older than VERIFICATION_DAYS must be proved again.

    Safe to run twice at once: each landline is claimed with a conditional UPDATE,
    and its removal from profiles happens in the claim's transaction."""
    actor = Actor.system()
    due = list(
        Landline.objects.filter(status=Landline.Status.VERIFIED, expires_at__lte=now)
        .order_by("expires_at")
        .values_list("pk", flat=True)[:batch]
    )
    expired = 0
    for pk in due:
        with transaction.atomic():
            claimed = Landline.objects.filter(pk=pk, status=Landline.Status.VERIFIED, expires_at__lte=now).update(
                status=Landline.Status.EXPIRED, updated_at=timezone.now()
            )
            if not claimed:
                continue  # withdrawn, rejected or expired by someone else meanwhile
            landline = Landline.objects.select_related("company").get(pk=pk)
            audit_record(
                actor=actor,
                action="landline.expired",
                company=landline.company,
                target=landline,
                changes={"status": {"before": Landline.Status.VERIFIED, "after": Landline.Status.EXPIRED}},
            )
            removed = caller_id_remove_everywhere(
                actor=actor, company=landline.company, landline=landline, reason=EXPIRED_REASON
            )
            if not removed:
                notice_create(
                    company=landline.company,
                    kind="landline_expired",
                    subject=f"The proof of landline {landline.number} expired",
                    level=Notice.Level.WARNING,
                    message=(
                        f"The proof of ownership of landline {landline.number} expired after 12 months. "
                        "Register it again with a recent proof to keep presenting it."
                    ),
                )
            expired += 1
    return expired


def caller_ids_on_company_unverified(*, actor: Actor, company: Company) -> int:
    """A company lost its verification: its own landlines come off every profile.

    The landlines keep their status: if the company is verified again before they
    expire, they can be presented again. Returns how many profiles were changed."""
    in_use = Landline.objects.filter(
        pk__in=SipProfile.objects.filter(
            company=company, deleted_at__isnull=True, caller_id_landline__isnull=False
        ).values("caller_id_landline")
    ).order_by("pk")
    return sum(
        caller_id_remove_everywhere(actor=actor, company=company, landline=landline, reason=UNVERIFIED_REASON)
        for landline in in_use
    )


# --- Countries ------------------------------------------------------------------


def caller_id_country_remove(*, actor: Actor, country: CallerIdCountry) -> int:
    """Staff stop supporting caller ID for a country: numbers there come off every profile
    of every company. Returns how many profiles were changed."""
    with transaction.atomic():
        country = CallerIdCountry.objects.select_for_update().get(pk=country.pk)
        code, name = str(country.country), country.country.name
        reason = f"caller ID is no longer supported for numbers in {name}"
        audit_record(
            actor=actor,
            action="caller_id_country.removed",
            company=None,
            target=country,
            changes={"country": {"before": code, "after": None}},
        )
        country.delete()
        live = SipProfile.objects.filter(deleted_at__isnull=True)
        changed = 0
        subscriptions = {
            p.caller_id_number
            for p in live.filter(caller_id_number__number__country=code).select_related(
                "company", "caller_id_number__number"
            )
        }
        for subscription in sorted(subscriptions, key=lambda s: s.pk):
            changed += caller_id_remove_everywhere(
                actor=actor, company=subscription.company, subscription=subscription, reason=reason
            )
        landlines = {
            p.caller_id_landline
            for p in live.filter(caller_id_landline__isnull=False).select_related("caller_id_landline__company")
        }
        for landline in sorted(landlines, key=lambda line: line.pk):
            if region_of(landline.number) == code:
                changed += caller_id_remove_everywhere(
                    actor=actor, company=landline.company, landline=landline, reason=reason
                )
    return changed
