"""Writes about business accounts: create, edit, route to a SIP profile, delete.

Each service is atomic and writes its audit event in the same transaction. The
routing rules (one profile at most, never an owner's or admin's account) are
checked here so that the pages, the API and any later caller share them.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import ProtectedError
from django.utils import timezone

from apps.audit.services import audit_record, diff, snapshot
from apps.business_accounts.models import BusinessAccount, name_validator
from apps.companies.models import Company, Membership, Role
from apps.core.actor import Actor
from apps.core.exceptions import ApplicationError
from apps.core.text import clean_name
from apps.numbers.models import NumberSubscription
from apps.sip_profiles.models import SipProfile
from apps.sip_profiles.services import sip_profile_mark_for_provisioning

# Roles whose members sign in to the portal to run it: their accounts are never routed.
PORTAL_ADMIN_ROLES = (Role.OWNER, Role.ADMIN)
EDITABLE_FIELDS = ("display_name", "member")
DISPLAY_NAME_MAX = 100


def _clean_name(name: str) -> str:
    name = clean_name(name)
    if not name:
        raise ApplicationError("Enter a name.", field="name")
    try:
        name_validator(name)
    except ValidationError as error:
        raise ApplicationError(str(error.message), field="name") from None
    return name


def _clean_display_name(display_name: str) -> str:
    display_name = clean_name(display_name, field="display_name")
    if not display_name:
        raise ApplicationError("Enter the name callers see, e.g. “Sales”.", field="display_name")
    if len(display_name) > DISPLAY_NAME_MAX:
        raise ApplicationError(f"At most {DISPLAY_NAME_MAX} characters.", field="display_name")
    return display_name


def _name_taken(name: str) -> ApplicationError:
    return ApplicationError(
        f"The name “{name}” is already taken. Names are unique across the whole service; choose another.",
        field="name",
        code="name_taken",
    )


def _check_member(company: Company, member: Membership | None) -> None:
    if member is not None and member.company_id != company.pk:
        raise ApplicationError("Choose a member of your company.", field="member")


def _locked_out(account: BusinessAccount, member: Membership, *, field: str) -> ApplicationError:
    role = member.get_role_display().lower()
    return ApplicationError(
        f"“{account.name}” is linked to {member.user.email}, an {role} of the company. An account routed to a "
        f"SIP profile cannot sign in anywhere, so routing it would lock the {role} out of the portal. "
        "Link the account to another member (or none) first.",
        field=field,
        code="admin_account",
    )


def business_account_create(
    *, actor: Actor, company: Company, name: str, display_name: str, member: Membership | None = None
) -> BusinessAccount:
    name = _clean_name(name)
    display_name = _clean_display_name(display_name)
    _check_member(company, member)
    if BusinessAccount.objects.filter(name__iexact=name).exists():
        raise _name_taken(name)
    with transaction.atomic():
        try:
            # A savepoint: two requests for the same name race past the check above,
            # and the database's case-insensitive unique index lets one through.
            with transaction.atomic():
                account = BusinessAccount.objects.create(
                    company=company, name=name, display_name=display_name, member=member
                )
        except IntegrityError as error:
            if "business_account_name_unique_ci" in str(error):
                raise _name_taken(name) from None
            raise
        audit_record(
            actor=actor,
            action="business_account.created",
            company=company,
            target=account,
            changes=diff({}, snapshot(account, ["name", "display_name", "member"])),
        )
    return account


def business_account_update(*, actor: Actor, account: BusinessAccount, **fields: Any) -> BusinessAccount:
    """Change `display_name` and/or `member` (a Membership of the same company, or None)."""
    if "name" in fields and fields.pop("name") != account.name:
        raise ApplicationError(
            "The name cannot be changed after creation: callers and websites already use it. "
            "Create a new account instead.",
            field="name",
        )
    unknown = set(fields) - set(EDITABLE_FIELDS)
    if unknown:
        raise ApplicationError(f"These fields cannot be changed here: {', '.join(sorted(unknown))}.")
    if "display_name" in fields:
        fields["display_name"] = _clean_display_name(fields["display_name"])
    with transaction.atomic():
        account = BusinessAccount.objects.select_for_update(of=("self",)).select_related("company").get(pk=account.pk)
        if "member" in fields:
            member = fields["member"]
            _check_member(account.company, member)
            if member is not None:
                # Locked so that the member's role cannot change under us (see membership_change_role).
                member = Membership.objects.select_for_update(of=("self",)).select_related("user").get(pk=member.pk)
                fields["member"] = member
                if account.sip_profile_id is not None and member.role in PORTAL_ADMIN_ROLES:
                    raise _locked_out(account, member, field="member")
        before = snapshot(account, EDITABLE_FIELDS)
        for name, value in fields.items():
            setattr(account, name, value)
        changes = diff(before, snapshot(account, EDITABLE_FIELDS))
        if changes:
            account.save(update_fields=[*fields, "updated_at"])
            audit_record(
                actor=actor, action="business_account.updated", company=account.company, target=account, changes=changes
            )
    return account


def business_account_assign(*, actor: Actor, account: BusinessAccount, profile: Any | None) -> BusinessAccount:
    """Route the account to one SIP profile of its company, or unassign it (profile=None).

    Assigning an account that is already on another profile is refused: the caller
    must unassign it first, so that no request silently steals another's routing.
    """
    company = account.company
    if profile is None:
        return _unassign(actor=actor, account=account)
    with transaction.atomic():
        # Locked first so that deleting the profile at the same time waits for us (or we see it deleted).
        locked = (
            SipProfile.objects.for_company(company).live().select_for_update().filter(pk=profile.pk).first()
            if profile.company_id == company.pk
            else None
        )
        if locked is None:
            raise ApplicationError("Choose one of your company's SIP profiles.", field="sip_profile")
        profile = locked
        # The claim: of two requests routing the same account at once, exactly one
        # finds it unassigned. The UPDATE also locks the row until we commit.
        claimed = BusinessAccount.objects.filter(pk=account.pk, sip_profile__isnull=True).update(
            sip_profile=profile, signin_enabled=False, updated_at=timezone.now()
        )
        if not claimed:
            current = BusinessAccount.objects.select_related("sip_profile").get(pk=account.pk)
            if current.sip_profile_id == profile.pk:
                return current
            raise ApplicationError(
                f"“{current.name}” is already routed to profile “{current.sip_profile}”; unassign it first.",
                field="sip_profile",
                code="already_assigned",
            )
        account = BusinessAccount.objects.select_related("sip_profile", "company").get(pk=account.pk)
        if account.member_id is not None:
            # Locked so that a promotion to admin waits for this assignment and then sees it.
            member = Membership.objects.select_for_update(of=("self",)).select_related("user").get(pk=account.member_id)
            if member.role in PORTAL_ADMIN_ROLES:
                raise _locked_out(account, member, field="sip_profile")  # rolls the claim back
        # The edge routes the account's name and numbers to this profile.
        sip_profile_mark_for_provisioning(profile)
        audit_record(
            actor=actor,
            action="business_account.assigned",
            company=company,
            target=account,
            changes={
                "sip_profile": {"before": None, "after": profile.name},
                "signin_enabled": {"before": True, "after": False},
            },
        )
    return account


def _lock_routed_profile(account: BusinessAccount) -> None:
    """Lock the profile the account is routed to before the account row, in the order
    business_account_assign and numbers' routing changes take them (no deadlock)."""
    profile_id = BusinessAccount.objects.filter(pk=account.pk).values_list("sip_profile_id", flat=True).first()
    if profile_id is not None:
        SipProfile.objects.select_for_update().filter(pk=profile_id).values_list("pk", flat=True).first()


def _unassign(*, actor: Actor, account: BusinessAccount) -> BusinessAccount:
    with transaction.atomic():
        _lock_routed_profile(account)
        account = (
            BusinessAccount.objects.select_for_update(of=("self",))
            .select_related("sip_profile", "company")
            .get(pk=account.pk)
        )
        if account.sip_profile_id is None:
            return account
        before = account.sip_profile.name if account.sip_profile else None
        if account.sip_profile is not None:
            # Its name and numbers leave the profile's inbound routes.
            sip_profile_mark_for_provisioning(account.sip_profile)
        account.sip_profile = None
        account.signin_enabled = True
        account.save(update_fields=["sip_profile", "signin_enabled", "updated_at"])
        audit_record(
            actor=actor,
            action="business_account.unassigned",
            company=account.company,
            target=account,
            changes={
                "sip_profile": {"before": before, "after": None},
                "signin_enabled": {"before": False, "after": True},
            },
        )
    return account


def business_account_delete(*, actor: Actor, account: BusinessAccount) -> None:
    with transaction.atomic():
        _lock_routed_profile(account)
        account = (
            BusinessAccount.objects.select_for_update(of=("self",))
            .select_related("company", "sip_profile")
            .get(pk=account.pk)
        )
        numbers = [
            str(n)
            for n in NumberSubscription.objects.filter(
                business_account=account, status=NumberSubscription.Status.ACTIVE
            ).values_list("number__number", flat=True)
        ]
        if numbers:
            raise ApplicationError(
                f"“{account.name}” still receives the calls of {', '.join(numbers)}. "
                "Unassign those numbers from it first.",
                code="has_numbers",
            )
        # Ended subscriptions only remember which account they once rang; the audit
        # log keeps that, and the link must go for the row to be deleted.
        NumberSubscription.objects.filter(business_account=account).exclude(
            status=NumberSubscription.Status.ACTIVE
        ).update(business_account=None)
        if account.sip_profile is not None:
            # Its name leaves the profile's inbound routes.
            sip_profile_mark_for_provisioning(account.sip_profile)
        audit_record(
            actor=actor,
            action="business_account.deleted",
            company=account.company,
            target=account,
            changes=diff(snapshot(account, ["name", "display_name", "member", "sip_profile"]), {}),
        )
        try:
            with transaction.atomic():
                account.delete()
        except ProtectedError:
            raise ApplicationError(f"“{account.name}” is still in use and cannot be deleted.", code="in_use") from None


def business_account_check_role_change(*, membership: Membership, role: str) -> None:
    """A member whose business account is routed to a SIP profile cannot sign in, so may not
    become an owner or admin (registered with apps.companies.hooks). Called with the membership
    row locked; business_account_assign locks it too before routing a member's account, so one
    of the two always sees the other."""
    if role not in (Role.OWNER, Role.ADMIN):
        return
    routed = (
        BusinessAccount.objects.filter(member=membership, sip_profile__isnull=False)
        .select_related("sip_profile")
        .first()
    )
    if routed is not None:
        raise ApplicationError(
            f"{membership.user.email} is linked to business account “{routed.name}”, which is routed to "
            f"SIP profile “{routed.sip_profile}” and so cannot sign in. As {Role(role).label.lower()} they "
            "would be locked out of the portal. Unassign the account from the profile first.",
            field="role",
            code="routed_business_account",
        )
