"""Writes about companies, memberships, invitations and verification.

Each service is atomic and writes its audit event in the same transaction.
Rules about owners are checked here (not only in views) because the last-owner
rule must hold whatever calls the service.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.accounts.models import ApiKey
from apps.accounts.selectors import api_key_cache_clear
from apps.audit.services import audit_record, diff, snapshot
from apps.companies.hooks import role_change_checks_run, verification_lost_run
from apps.companies.models import (
    Capability,
    Company,
    Currency,
    Invitation,
    Membership,
    Role,
    VerificationDocument,
    VerificationRequest,
    VerificationStatus,
    role_can,
)
from apps.companies.selectors import actor_role
from apps.companies.tasks import send_invitation_email, send_verification_decision_email
from apps.core.actor import Actor
from apps.core.enqueue import enqueue_on_commit
from apps.core.exceptions import ApplicationError, Conflict, PermissionRefused
from apps.core.files import validate_document
from apps.core.text import REFUSED_MESSAGE, clean_name, has_control_characters
from apps.core.tokens import hash_token, new_token

MAX_DOCUMENTS = 5


# --- Companies ------------------------------------------------------------------


def company_create(*, actor: Actor, owner: Any, name: str, country: str, currency: str) -> Company:
    name = clean_name(name)
    if not name:
        raise ApplicationError("Enter the company's name.", field="name")
    if currency not in Currency.values:
        raise ApplicationError(f"Choose one of {', '.join(Currency.values)}.", field="currency")
    with transaction.atomic():
        company = Company.objects.create(name=name, country=country, currency=currency)
        membership = Membership.objects.create(company=company, user=owner, role=Role.OWNER)
        audit_record(
            actor=actor,
            action="company.created",
            company=company,
            target=company,
            changes=diff({}, snapshot(company, ["name", "country", "currency"])),
        )
        audit_record(
            actor=actor,
            action="member.added",
            company=company,
            target=membership,
            changes={"role": {"before": None, "after": Role.OWNER}},
        )
    return company


COMPANY_EDITABLE_FIELDS = ("name", "country", "tax_number")
# A VAT or tax number as tax offices write them: letters and digits, with spaces, dots or dashes.
_TAX_NUMBER = re.compile(r"[A-Za-z0-9][A-Za-z0-9 .-]{1,38}[A-Za-z0-9]", re.ASCII)


def company_update(*, actor: Actor, company: Company, **fields: Any) -> Company:
    if "currency" in fields and fields["currency"] != company.currency:
        raise ApplicationError(
            "The currency is fixed when the company is created: balances and prices are kept in it.",
            field="currency",
        )
    fields.pop("currency", None)
    unknown = set(fields) - set(COMPANY_EDITABLE_FIELDS)
    if unknown:
        raise ApplicationError(f"These fields cannot be changed: {', '.join(sorted(unknown))}.")
    if "name" in fields:
        fields["name"] = clean_name(fields["name"])
        if not fields["name"]:
            raise ApplicationError("Enter the company's name.", field="name")
    if "tax_number" in fields:
        fields["tax_number"] = " ".join(str(fields["tax_number"] or "").split()).upper()
        if fields["tax_number"] and not _TAX_NUMBER.fullmatch(fields["tax_number"]):
            raise ApplicationError(
                "Enter the tax number as your tax office writes it, such as GB123456789 (letters and digits, "
                "3 to 40 characters); leave it empty if you have none.",
                field="tax_number",
            )
    with transaction.atomic():
        company = Company.objects.select_for_update(no_key=True).get(pk=company.pk)
        before = snapshot(company, COMPANY_EDITABLE_FIELDS)
        for name, value in fields.items():
            setattr(company, name, value)
        company.full_clean(exclude=["purchase_limit_override"])
        company.save()
        changes = diff(before, snapshot(company, COMPANY_EDITABLE_FIELDS))
        if changes:
            audit_record(actor=actor, action="company.updated", company=company, target=company, changes=changes)
    return company


def company_set_purchase_limit_override(*, actor: Actor, company: Company, limit: Decimal | None) -> Company:
    """Staff only (the Django admin): one company's limit instead of its tier's."""
    if limit is not None and limit < 0:
        raise ApplicationError("The limit cannot be negative.", field="purchase_limit_override")
    with transaction.atomic():
        company = Company.objects.select_for_update(no_key=True).get(pk=company.pk)
        before = company.purchase_limit_override
        if before == limit:
            return company
        company.purchase_limit_override = limit
        company.save(update_fields=["purchase_limit_override", "updated_at"])
        audit_record(
            actor=actor,
            action="company.purchase_limit_overridden",
            company=company,
            target=company,
            changes={"purchase_limit_override": {"before": before, "after": limit}},
        )
    return company


# --- Memberships ----------------------------------------------------------------


def _lock_company(company: Company) -> Company:
    # Every change to who owns a company locks the company row first, so two
    # owners demoting each other at once cannot both succeed and leave none.
    # FOR NO KEY UPDATE, not FOR UPDATE: it still serialises these changes, but
    # does not block the KEY SHARE lock that inserting any row referencing the
    # company takes (an audit event, a business account's routing) — with FOR
    # UPDATE those inserts deadlocked against a role change holding the company.
    return Company.objects.select_for_update(no_key=True).get(pk=company.pk)


def _require_owner_powers(actor: Actor, company: Company, message: str) -> None:
    role = actor_role(actor=actor, company=company)
    if actor.user is not None and actor.user.is_staff and role is None:
        return  # platform staff in the Django admin
    if role is None or not role_can(role, Capability.MANAGE_OWNERS):
        raise PermissionRefused(message, field="role")


def _ensure_owner_remains(company: Company, leaving: Membership) -> None:
    others = Membership.objects.for_company(company).filter(role=Role.OWNER).exclude(pk=leaving.pk)
    if leaving.role == Role.OWNER and not others.exists():
        raise ApplicationError(
            "A company must keep at least one owner. Make another member an owner first.",
            field="role",
            code="last_owner",
        )


def membership_change_role(*, actor: Actor, membership: Membership, role: str) -> Membership:
    if role not in Role.values:
        raise ApplicationError(f"Choose one of {', '.join(Role.values)}.", field="role")
    with transaction.atomic():
        company = _lock_company(membership.company)
        membership = Membership.objects.select_for_update().get(pk=membership.pk)
        if membership.role == role:
            return membership
        if Role.OWNER in (role, membership.role):
            _require_owner_powers(actor, company, "Only an owner can make or unmake owners.")
        if membership.role == Role.OWNER:
            _ensure_owner_remains(company, membership)
        role_change_checks_run(membership=membership, role=role)
        before = membership.role
        membership.role = role
        membership.save(update_fields=["role", "updated_at"])
        audit_record(
            actor=actor,
            action="member.role_changed",
            company=company,
            target=membership,
            changes={"role": {"before": before, "after": role}},
        )
    return membership


def membership_remove(*, actor: Actor, membership: Membership) -> None:
    with transaction.atomic():
        company = _lock_company(membership.company)
        membership = Membership.objects.select_for_update().get(pk=membership.pk)
        leaving_self = actor.user is not None and membership.user_id == actor.user.pk and actor.api_key is None
        if membership.role == Role.OWNER and not leaving_self:
            _require_owner_powers(actor, company, "Only an owner can remove an owner.")
        _ensure_owner_remains(company, membership)
        audit_record(
            actor=actor,
            action="member.left" if leaving_self else "member.removed",
            company=company,
            target=membership,
            changes={"role": {"before": membership.role, "after": None}},
        )
        # A key keeps acting for the company only while its creator belongs to it.

        now = timezone.now()
        for api_key in ApiKey.objects.for_company(company).filter(created_by=membership.user, revoked_at__isnull=True):
            api_key.revoked_at = now
            api_key.save(update_fields=["revoked_at"])
            audit_record(actor=actor, action="api_key.revoked", company=company, target=api_key)
            api_key_cache_clear()
            transaction.on_commit(api_key_cache_clear)
        membership.delete()


# --- Invitations ----------------------------------------------------------------


def invitation_create(*, actor: Actor, company: Company, email: str, role: str) -> tuple[Invitation, str]:
    """Invite someone by e-mail. Returns the invitation and its one-time token."""
    email = (email or "").strip().lower()
    if not email:
        raise ApplicationError("Enter an e-mail address.", field="email")
    if role not in Role.values:
        raise ApplicationError(f"Choose one of {', '.join(Role.values)}.", field="role")
    if role == Role.OWNER:
        _require_owner_powers(actor, company, "Only an owner can invite another owner.")
    if Membership.objects.for_company(company).filter(user__email__iexact=email).exists():
        raise ApplicationError(f"{email} is already a member of {company.name}.", field="email")
    token = new_token()
    now = timezone.now()
    with transaction.atomic():
        _lock_company(company)
        # Inviting the same address again replaces the earlier pending invitation.
        for earlier in Invitation.objects.for_company(company).filter(
            email=email, accepted_at__isnull=True, revoked_at__isnull=True
        ):
            earlier.revoked_at = now
            earlier.save(update_fields=["revoked_at"])
            audit_record(actor=actor, action="invitation.replaced", company=company, target=earlier)
        invitation = Invitation.objects.create(
            company=company,
            email=email,
            role=role,
            token_hash=hash_token(token),
            invited_by=actor.user,
            expires_at=now + timedelta(days=settings.INVITATION_TTL_DAYS),
        )
        audit_record(
            actor=actor,
            action="invitation.created",
            company=company,
            target=invitation,
            changes={"email": {"before": None, "after": email}, "role": {"before": None, "after": role}},
        )

        invitation_id = invitation.pk
        enqueue_on_commit(send_invitation_email, invitation_id, token)
    return invitation, token


def invitation_revoke(*, actor: Actor, invitation: Invitation) -> Invitation:
    with transaction.atomic():
        invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
        if invitation.status != "pending":
            raise ApplicationError(f"This invitation is already {invitation.status}.", code="not_pending")
        invitation.revoked_at = timezone.now()
        invitation.save(update_fields=["revoked_at"])
        audit_record(actor=actor, action="invitation.revoked", company=invitation.company, target=invitation)
    return invitation


def invitation_for_token(token: str) -> Invitation | None:
    return Invitation.objects.select_related("company").filter(token_hash=hash_token(token)).first()


def invitation_accept(*, actor: Actor, token: str, user: Any) -> Membership:
    with transaction.atomic():
        found = invitation_for_token(token)
        if found is None:
            raise ApplicationError("This invitation link is not valid.", code="invalid_invitation")
        invitation = Invitation.objects.select_for_update().get(pk=found.pk)
        status = invitation.status
        if status == "expired":
            raise ApplicationError(
                "This invitation has expired. Ask an admin of the company to invite you again.", code="expired"
            )
        if status != "pending":
            raise ApplicationError(f"This invitation was {status}.", code="not_pending")
        if user.email.lower() != invitation.email.lower():
            raise ApplicationError(
                f"This invitation is for {invitation.email}; you are signed in as {user.email}.", code="wrong_user"
            )
        company = _lock_company(invitation.company)
        if Membership.objects.for_company(company).filter(user=user).exists():
            raise ApplicationError(f"You are already a member of {company.name}.", code="already_member")
        membership = Membership.objects.create(company=company, user=user, role=invitation.role)
        invitation.accepted_at = timezone.now()
        invitation.accepted_by = user
        invitation.save(update_fields=["accepted_at", "accepted_by"])
        audit_record(actor=actor, action="invitation.accepted", company=company, target=invitation)
        audit_record(
            actor=actor,
            action="member.added",
            company=company,
            target=membership,
            changes={"role": {"before": None, "after": membership.role}},
        )
    return membership


# --- Verification ----------------------------------------------------------------

VERIFICATION_FIELDS = (
    "legal_name",
    "registration_number",
    "address_line1",
    "address_line2",
    "city",
    "postal_code",
    "country",
)


def _validate_documents(documents: Sequence[UploadedFile]) -> None:
    if not documents:
        raise ApplicationError(
            "Upload at least one document (certificate of incorporation, utility bill…).", field="documents"
        )
    if len(documents) > MAX_DOCUMENTS:
        raise ApplicationError(f"Upload at most {MAX_DOCUMENTS} documents.", field="documents")
    for document in documents:
        validate_document(document, field="documents")


def verification_submit(
    *, actor: Actor, company: Company, documents: Sequence[UploadedFile], **details: Any
) -> VerificationRequest:
    errors: dict[str, list[str]] = {}
    for name in ("legal_name", "registration_number", "address_line1", "city", "country"):
        if not str(details.get(name) or "").strip():
            errors[name] = ["This field is required."]
    for name in VERIFICATION_FIELDS:
        if has_control_characters(str(details.get(name) or "")):
            errors[name] = [REFUSED_MESSAGE]
    unknown = set(details) - set(VERIFICATION_FIELDS)
    if unknown:
        errors["non_field_errors"] = [f"Unknown fields: {', '.join(sorted(unknown))}."]
    if errors:
        raise ApplicationError("Some details are missing.", errors=errors)
    _validate_documents(documents)
    with transaction.atomic():
        company = _lock_company(company)
        if company.verification_status == VerificationStatus.PENDING:
            raise Conflict("A verification request is already under review.", code="already_pending")
        if company.verification_status == VerificationStatus.VERIFIED:
            raise Conflict("The company is already verified.", code="already_verified")
        request = VerificationRequest(
            company=company,
            submitted_by=actor.user,
            **{name: str(details.get(name) or "").strip() for name in VERIFICATION_FIELDS},
        )
        request.full_clean(exclude=["submitted_by", "reviewed_by"])
        try:
            with transaction.atomic():
                request.save()
        except IntegrityError:
            raise Conflict("A verification request is already under review.", code="already_pending") from None
        for document in documents:
            VerificationDocument.objects.create(
                request=request,
                file=document,
                original_name=(document.name or "document")[:200],
                content_type=document.content_type or "",
                size=document.size or 0,
            )
        before = company.verification_status
        company.verification_status = VerificationStatus.PENDING
        company.save(update_fields=["verification_status", "updated_at"])
        audit_record(
            actor=actor,
            action="verification.submitted",
            company=company,
            target=request,
            changes={
                "verification_status": {"before": before, "after": VerificationStatus.PENDING},
                "documents": {"before": None, "after": [d.name for d in documents]},
            },
        )
    return request


def _review(*, actor: Actor, request: VerificationRequest, approve: bool, reason: str) -> VerificationRequest:
    with transaction.atomic():
        company = _lock_company(request.company)
        request = VerificationRequest.objects.select_for_update().get(pk=request.pk)
        if request.status != VerificationRequest.Status.PENDING:
            raise ApplicationError(f"This request was already {request.status}.", code="not_pending")
        request.status = VerificationRequest.Status.APPROVED if approve else VerificationRequest.Status.REJECTED
        request.reason = reason
        request.reviewed_by = actor.user
        request.reviewed_at = timezone.now()
        request.save(update_fields=["status", "reason", "reviewed_by", "reviewed_at"])
        before = company.verification_status
        company.verification_status = VerificationStatus.VERIFIED if approve else VerificationStatus.REJECTED
        company.verified_at = request.reviewed_at if approve else None
        company.save(update_fields=["verification_status", "verified_at", "updated_at"])
        audit_record(
            actor=actor,
            action="verification.approved" if approve else "verification.rejected",
            company=company,
            target=request,
            changes={
                "verification_status": {"before": before, "after": company.verification_status},
                **({"reason": {"before": None, "after": reason}} if reason else {}),
            },
        )
        _notify_verification(company, "approved" if approve else "rejected", reason)
    return request


def _notify_verification(company: Company, action: str, reason: str) -> None:
    company_id = company.pk
    enqueue_on_commit(send_verification_decision_email, company_id, action, reason)


def verification_approve(*, actor: Actor, request: VerificationRequest) -> VerificationRequest:
    return _review(actor=actor, request=request, approve=True, reason="")


def verification_reject(*, actor: Actor, request: VerificationRequest, reason: str) -> VerificationRequest:
    reason = (reason or "").strip()
    if not reason:
        raise ApplicationError("Give the company a reason for the rejection.", field="reason")
    return _review(actor=actor, request=request, approve=False, reason=reason)


def company_verification_revoke(*, actor: Actor, company: Company, reason: str) -> Company:
    """Staff withdraw a verified status (documents found false, company changed hands…)."""
    reason = (reason or "").strip()
    if not reason:
        raise ApplicationError("Give the company a reason.", field="reason")
    with transaction.atomic():
        company = _lock_company(company)
        if company.verification_status != VerificationStatus.VERIFIED:
            raise ApplicationError("The company is not verified.", code="not_verified")
        company.verification_status = VerificationStatus.UNVERIFIED
        company.verified_at = None
        company.save(update_fields=["verification_status", "verified_at", "updated_at"])
        # What the products do when a company stops being verified (caller ID: own landlines
        # come off every profile), in this transaction.
        verification_lost_run(actor=actor, company=company)
        audit_record(
            actor=actor,
            action="verification.revoked",
            company=company,
            target=company,
            changes={
                "verification_status": {"before": VerificationStatus.VERIFIED, "after": VerificationStatus.UNVERIFIED},
                "reason": {"before": None, "after": reason},
            },
        )
        _notify_verification(company, "withdrawn", reason)
    return company
