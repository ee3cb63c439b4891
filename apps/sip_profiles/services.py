"""Writes about SIP profiles: credentials, allowed addresses, channels, caller ID.

Every service is atomic and audited. Channels are charged through
apps.billing.charges.services.charge_record, paid at once from the company balance when it covers
them (otherwise unpaid, with a grace period).
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import secrets
import string
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.translation import ngettext

from apps.audit.services import audit_record, diff, snapshot
from apps.billing.charges.items import charge_item_label
from apps.billing.charges.services import charge_record
from apps.billing.ledger.allocations import profile_balance
from apps.billing.models import Charge, Price
from apps.billing.pricing import ProratedPrice, monthly_period, prorated_price
from apps.billing.quotes import Quote, quote_for_price, quote_make, quote_sum
from apps.business_accounts.models import BusinessAccount
from apps.callerid.services import caller_id_resolve
from apps.companies.models import Company
from apps.core.actor import Actor
from apps.core.exceptions import ApplicationError, Conflict
from apps.core.money import format_money
from apps.core.text import clean_name
from apps.sip_profiles.hooks import profile_created_quote, profile_created_run
from apps.sip_profiles.models import (
    CHARGE_ITEM_LABEL,
    MAX_CHANNELS,
    MIN_CHANNELS,
    AllowedAddress,
    ChannelChange,
    SipProfile,
)

PASSWORD_ALPHABET = string.ascii_letters + string.digits
PASSWORD_LENGTH = 24  # about 143 bits
# IP authentication accepts a host or a small network: at most 256 IPv4 addresses, or one IPv6 /64.
MIN_PREFIX = {4: 24, 6: 64}
TRANSPORT_DEFAULT_PORT = {"udp": 5060, "tcp": 5060, "tls": 5061}
# US minute bundles are bought and cancelled through apps.bundles.services (with their charge),
# which audits them; they are not a field of the plain update.
AUDITED_FIELDS = (
    "name",
    "description",
    "channels",
    "tls_required",
    "srtp_required",
    "withhold_caller_id",
    "status",
)


# --- Credentials ------------------------------------------------------------------


def new_password() -> str:
    return "".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(PASSWORD_LENGTH))


def digest_ha1(*, username: str, realm: str, password: str) -> tuple[str, str]:
    """HA1 = H(username:realm:password) with MD5 (RFC 2617) and SHA-256 (RFC 8760).

    Only these are stored: the edge needs nothing else to check a digest response,
    and they cannot be turned back into the password."""
    material = f"{username}:{realm}:{password}".encode()
    return hashlib.md5(material, usedforsecurity=False).hexdigest(), hashlib.sha256(material).hexdigest()


def _new_username() -> str:
    # Ten digits: what PBXs accept everywhere as a SIP user part.
    return str(secrets.randbelow(9_000_000_000) + 1_000_000_000)


def _set_password(profile: SipProfile) -> str:
    password = new_password()
    realm = settings.SIP_DOMAIN
    profile.sip_realm = realm
    profile.ha1_md5, profile.ha1_sha256 = digest_ha1(
        username=profile.sip_username or "", realm=realm, password=password
    )
    profile.password_set_at = timezone.now()
    return password


# --- Allowed addresses -----------------------------------------------------------


@dataclass(frozen=True)
class CleanAddress:
    network: str
    port: int
    transport: str

    def as_dict(self) -> dict[str, Any]:
        return {"address": self.network, "port": self.port, "transport": self.transport}


# Addresses for examples in documentation (RFC 5737, RFC 3849): no PBX has one. Python counts
# them as private; a customer who copied an example is told what they are.
DOCUMENTATION_NETWORKS = tuple(
    ipaddress.ip_network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32")
)


def _refused_range(network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> str | None:
    for documentation in DOCUMENTATION_NETWORKS:
        if documentation.version == network.version and network.subnet_of(documentation):  # type: ignore[arg-type]
            return "documentation"
    for attribute, label in (
        ("is_loopback", "loopback"),
        ("is_link_local", "link-local"),
        ("is_multicast", "multicast"),
        ("is_unspecified", "unspecified"),
        ("is_reserved", "reserved"),
        ("is_private", "private"),
    ):
        if getattr(network, attribute):
            return label
    return None


def clean_addresses(entries: Iterable[Mapping[str, Any]]) -> list[CleanAddress]:
    """Validate {address, port, transport} entries; errors name the entry (allowed_ips.N.field)."""
    cleaned: list[CleanAddress] = []
    errors: dict[str, list[str]] = {}
    for index, entry in enumerate(entries):
        prefix = f"allowed_ips.{index}"
        raw = str(entry.get("address") or "").strip()
        transport = str(entry.get("transport") or "udp").lower()
        if transport not in TRANSPORT_DEFAULT_PORT:
            errors[f"{prefix}.transport"] = ["Choose UDP, TCP or TLS."]
            continue
        try:
            port = int(entry.get("port") or TRANSPORT_DEFAULT_PORT[transport])
        except (TypeError, ValueError):
            errors[f"{prefix}.port"] = ["A port is a number from 1 to 65535."]
            continue
        if not 1 <= port <= 65535:
            errors[f"{prefix}.port"] = ["A port is a number from 1 to 65535."]
            continue
        try:
            network = ipaddress.ip_network(raw, strict=True)
        except ValueError:
            try:
                loose = ipaddress.ip_network(raw, strict=False)
            except ValueError:
                errors[f"{prefix}.address"] = [f"{raw or 'An empty value'} is not an IPv4 or IPv6 address or network."]
            else:
                errors[f"{prefix}.address"] = [f"{raw} has host bits set; did you mean {loose}?"]
            continue
        if network.prefixlen < MIN_PREFIX[network.version]:
            errors[f"{prefix}.address"] = [
                f"{network} is too large: use a host or a network of at most /{MIN_PREFIX[network.version]}."
            ]
            continue
        refused = _refused_range(network)
        if refused == "documentation" and not settings.ALLOW_PRIVATE_SIP_ADDRESSES:
            errors[f"{prefix}.address"] = [
                f"{network} is reserved for documentation (an example address, not a real one): "
                "enter your PBX's public address."
            ]
            continue
        if refused and not settings.ALLOW_PRIVATE_SIP_ADDRESSES:
            errors[f"{prefix}.address"] = [
                f"{network} is a {refused} address; the edge only sees your PBX's public address."
            ]
            continue
        for earlier in cleaned:
            if ipaddress.ip_network(earlier.network).overlaps(network):
                errors[f"{prefix}.address"] = [f"{network} overlaps {earlier.network}, listed already."]
                break
        else:
            cleaned.append(CleanAddress(network=str(network), port=port, transport=transport))
    if errors:
        raise ApplicationError("Some allowed addresses are not valid.", errors=errors)
    return cleaned


def _overlapping(addresses: list[CleanAddress], *, profile: SipProfile | None) -> AllowedAddress | None:
    """An address row of another profile that overlaps one of these, if any."""
    others = AllowedAddress.objects.select_related("profile")
    if profile is not None:
        others = others.exclude(profile=profile)
    wanted = [ipaddress.ip_network(a.network) for a in addresses]

    if connection.vendor == "postgresql":
        for network in wanted:
            hit = others.extra(where=["network::inet && %s::inet"], params=[str(network)]).first()
            if hit is not None:
                return hit
        return None
    for row in others:
        if any(ipaddress.ip_network(row.network).overlaps(network) for network in wanted):
            return row
    return None


def _address_conflict(profile: SipProfile | None, hit: AllowedAddress, company: Company) -> ApplicationError:
    where = f"your profile “{hit.profile.name}”" if hit.profile.company_id == company.pk else "another SIP profile"
    return ApplicationError(
        f"{hit.network} is already allowed for {where}: the edge maps each source address to one profile.",
        field="allowed_ips",
        code="address_in_use",
    )


def _replace_addresses(profile: SipProfile, addresses: list[CleanAddress], company: Company) -> None:
    hit = _overlapping(addresses, profile=profile)
    if hit is not None:
        raise _address_conflict(profile, hit, company)
    profile.allowed_addresses.all().delete()
    try:
        # A savepoint: the exclusion constraint decides races, and the error must not
        # poison the outer transaction before we turn it into a clear message.
        with transaction.atomic():
            AllowedAddress.objects.bulk_create(
                [
                    AllowedAddress(profile=profile, network=a.network, port=a.port, transport=a.transport)
                    for a in addresses
                ]
            )
    except IntegrityError:
        raise ApplicationError(
            "One of these addresses was just allowed for another SIP profile: the edge maps each source address "
            "to one profile.",
            field="allowed_ips",
            code="address_in_use",
        ) from None


def _addresses_of(profile: SipProfile) -> list[dict[str, Any]]:
    return [
        {"address": a.network, "port": a.port, "transport": a.transport}
        for a in profile.allowed_addresses.order_by("id")
    ]


# --- Channels ----------------------------------------------------------------------


def _check_counts(channels: Any, bundles: Any, *, creating: bool = False) -> tuple[int, int]:
    try:
        channels = int(channels)
    except (TypeError, ValueError):
        raise ApplicationError("Channels is a whole number.", field="channels") from None
    if not MIN_CHANNELS <= channels <= MAX_CHANNELS:
        raise ApplicationError(f"A profile has {MIN_CHANNELS} to {MAX_CHANNELS} channels.", field="channels")
    try:
        bundles = int(bundles)
    except (TypeError, ValueError):
        raise ApplicationError("US minute bundles is a whole number.", field="us_minute_bundles") from None
    if bundles < 0:
        raise ApplicationError("US minute bundles cannot be negative.", field="us_minute_bundles")
    if bundles > channels:
        if creating:
            raise ApplicationError(
                "A profile holds at most one US minute bundle per channel: "
                + ngettext(
                    "%(n)d channel takes at most %(n)d bundle.", "%(n)d channels take at most %(n)d bundles.", channels
                )
                % {"n": channels},
                field="us_minute_bundles",
                code="bundles_exceed_channels",
            )
        raise ApplicationError(
            f"This profile holds {bundles} US minute bundles, one per channel, so it needs at least {bundles} "
            f"channels. Cancel bundles first, then lower the channels.",
            field="channels",
            code="bundles_exceed_channels",
        )
    return channels, bundles


def _channels_label(count: int) -> str:
    return ngettext("%(n)d channel", "%(n)d channels", count) % {"n": count}


def _channels_price(*, company: Company, renewal_day: int, added: int, at: datetime) -> ProratedPrice:
    """What `added` channels cost from `at` to the next renewal day: the charge and its quote."""
    return prorated_price(
        kind=Price.Kind.CHANNEL_MONTHLY, currency=company.currency, renewal_day=renewal_day, count=added, at=at
    )


def _channels_quote(*, company: Company, renewal_day: int, added: int, name: str, at: datetime) -> Quote:
    price = _channels_price(company=company, renewal_day=renewal_day, added=added, at=at)
    return quote_for_price(
        company=company,
        price=price,
        basis="channel",
        description=price.description(counted=_channels_label(added), name=name, at=at),
    )


def _charge_channels(*, actor: Actor, profile: SipProfile, change: ChannelChange) -> Charge | None:
    """Charge the added channels from now to the profile's next renewal day."""
    added = change.after - change.before
    if added <= 0:
        return None  # a decrease takes effect at once, with no refund
    company = profile.company
    now = change.changed_at
    price = _channels_price(company=company, renewal_day=profile.renewal_day, added=added, at=now)
    unit_price, amount, period_end = price.unit_price, price.amount, price.period_end
    return charge_record(
        actor=actor,
        company=company,
        kind=Charge.Kind.CHANNELS,
        description=price.description(counted=_channels_label(added), name=profile.name, at=now),
        quantity=added,
        unit_price=unit_price,
        amount=amount,
        period_start=now,
        period_end=period_end,
        item=charge_item_label(CHARGE_ITEM_LABEL, profile.public_id),
        idempotency_key=f"channels:{profile.public_id}:{change.pk}",
    )


def _record_channels(*, actor: Actor, profile: SipProfile, before: int, after: int) -> None:
    change = ChannelChange.objects.create(profile=profile, before=before, after=after, changed_by=actor.user)
    _charge_channels(actor=actor, profile=profile, change=change)


# --- Create, update, reset, delete -------------------------------------------------


def _clean_name(name: Any) -> str:
    name = clean_name(name)
    if not name:
        raise ApplicationError("Give the profile a name.", field="name")
    if len(name) > 80:
        raise ApplicationError("Use at most 80 characters.", field="name")
    return name


def _name_taken(company: Company, name: str, exclude: SipProfile | None = None) -> bool:
    others = SipProfile.objects.for_company(company).live().filter(name__iexact=name)
    if exclude is not None:
        others = others.exclude(pk=exclude.pk)
    return others.exists()


def _check_new(
    *,
    company: Company,
    name: Any,
    auth_method: Any,
    channels: Any,
    us_minute_bundles: Any,
    allowed_ips: Iterable[Mapping[str, Any]],
) -> tuple[str, int, int, list[CleanAddress]]:
    name = _clean_name(name)
    if auth_method not in SipProfile.AuthMethod.values:
        raise ApplicationError("Choose registration (SIP digest) or IP address authentication.", field="auth_method")
    channels, us_minute_bundles = _check_counts(channels, us_minute_bundles, creating=True)
    addresses = clean_addresses(allowed_ips)
    if auth_method == SipProfile.AuthMethod.IP and not addresses:
        raise ApplicationError("Add at least one address your PBX sends calls from.", field="allowed_ips")
    if auth_method == SipProfile.AuthMethod.REGISTRATION and addresses:
        raise ApplicationError(
            "Allowed addresses are for IP authentication; a registering PBX authenticates with its password.",
            field="allowed_ips",
        )
    return name, channels, us_minute_bundles, addresses


def _renewal_day(at: datetime) -> int:
    return min(at.day, 28)


def sip_profile_create_quote(
    *,
    company: Company,
    name: str,
    auth_method: str,
    channels: int = 1,
    us_minute_bundles: int = 0,
    allowed_ips: Iterable[Mapping[str, Any]] = (),
    caller_id: str | None = None,
    at: datetime | None = None,
    **_unpriced: Any,
) -> Quote:
    """What sip_profile_create charges for these fields: the first channels, prorated to the
    renewal day (the day of creation), and the bundles asked for. Refuses what it would refuse."""
    name, channels, us_minute_bundles, _ = _check_new(
        company=company,
        name=name,
        auth_method=auth_method,
        channels=channels,
        us_minute_bundles=us_minute_bundles,
        allowed_ips=allowed_ips,
    )
    caller_id_resolve(company=company, value=caller_id)
    if _name_taken(company, name):
        raise ApplicationError(f"You already have a profile called “{name}”.", field="name", code="name_taken")
    at = at or timezone.now()
    renewal_day = _renewal_day(at)
    parts = [_channels_quote(company=company, renewal_day=renewal_day, added=channels, name=name, at=at)]
    parts += profile_created_quote(
        company=company,
        name=name,
        renewal_day=renewal_day,
        channels=channels,
        us_minute_bundles=us_minute_bundles,
        at=at,
    )
    return quote_sum(company, *parts, description="; ".join(part.description for part in parts) + ".")


def sip_profile_channels_quote(*, profile: SipProfile, channels: Any, at: datetime | None = None) -> Quote:
    """What sip_profile_update charges to set the channels to `channels`: the added ones,
    prorated to the renewal day; nothing for fewer (they take effect at once, no refund)."""
    channels, _ = _check_counts(channels, profile.us_minute_bundles)
    company = profile.company
    added = channels - profile.channels
    at = at or timezone.now()
    if added <= 0:
        _, period_end = monthly_period(renewal_day=profile.renewal_day, at=at)
        return quote_make(
            company=company,
            amount=Decimal("0"),
            description=ngettext("%(n)d channel", "%(n)d channels", channels) % {"n": channels}
            + f" on {profile.name}: no charge (fewer channels take effect at once and are not refunded).",
            period_end=period_end,
            basis=((f"channel:{period_end:%Y-%m-%d}", added, Decimal("0")),),
        )
    return _channels_quote(company=company, renewal_day=profile.renewal_day, added=added, name=profile.name, at=at)


def sip_profile_create(
    *,
    actor: Actor,
    company: Company,
    name: str,
    auth_method: str,
    channels: int = 1,
    description: str = "",
    allowed_ips: Iterable[Mapping[str, Any]] = (),
    us_minute_bundles: int = 0,
    tls_required: bool = True,
    srtp_required: bool = True,
    caller_id: str | None = None,
    withhold_caller_id: bool = False,
) -> tuple[SipProfile, str | None]:
    """Create a profile; returns it with its SIP password (registration only), shown once."""
    name, channels, us_minute_bundles, addresses = _check_new(
        company=company,
        name=name,
        auth_method=auth_method,
        channels=channels,
        us_minute_bundles=us_minute_bundles,
        allowed_ips=allowed_ips,
    )
    subscription, landline = caller_id_resolve(company=company, value=caller_id)
    now = timezone.now()
    password: str | None = None
    with transaction.atomic():
        company = Company.objects.select_for_update(no_key=True).get(pk=company.pk)
        if _name_taken(company, name):
            raise ApplicationError(f"You already have a profile called “{name}”.", field="name", code="name_taken")
        profile = SipProfile(
            company=company,
            name=name,
            description=str(description or "").strip()[:300],
            auth_method=auth_method,
            channels=channels,
            tls_required=bool(tls_required),
            srtp_required=bool(srtp_required),
            caller_id_number=subscription,
            caller_id_landline=landline,
            withhold_caller_id=bool(withhold_caller_id),
            renewal_day=_renewal_day(now),
        )
        for _attempt in range(5):
            if auth_method == SipProfile.AuthMethod.REGISTRATION:
                profile.sip_username = _new_username()
                password = _set_password(profile)
            try:
                with transaction.atomic():
                    profile.save()
                break
            except IntegrityError:
                # Only a username collision (one in nine billion) is worth another try.
                username_collided = profile.sip_username is not None and (
                    SipProfile.objects.filter(sip_username=profile.sip_username).exists()
                )
                if not username_collided:
                    raise Conflict(f"You already have a profile called “{name}”.", code="name_taken") from None
        else:  # pragma: no cover - five 1-in-9e9 collisions in a row
            raise Conflict("Could not allocate a SIP username; try again.")
        _replace_addresses(profile, addresses, company)
        audit_record(
            actor=actor,
            action="sip_profile.created",
            company=company,
            target=profile,
            changes={
                **diff({}, snapshot(profile, AUDITED_FIELDS)),
                "auth_method": {"before": None, "after": auth_method},
                "allowed_ips": {"before": None, "after": [a.as_dict() for a in addresses]},
                "caller_id": {"before": None, "after": caller_id_e164(profile)},
            },
        )
        _record_channels(actor=actor, profile=profile, before=0, after=channels)
        # Bundles (an app above this one) buy the US minute bundles asked for, in this transaction.
        profile_created_run(actor=actor, profile=profile, us_minute_bundles=us_minute_bundles, now=now)
        if us_minute_bundles:
            profile.refresh_from_db()
    return profile, password


def caller_id_e164(profile: SipProfile) -> str | None:
    if profile.caller_id_number_id:
        return str(profile.caller_id_number.number.number)  # type: ignore[union-attr]
    if profile.caller_id_landline_id:
        return str(profile.caller_id_landline.number)  # type: ignore[union-attr]
    return None


UPDATABLE = {
    "name",
    "description",
    "channels",
    "tls_required",
    "srtp_required",
    "withhold_caller_id",
    "status",
    "allowed_ips",
    "caller_id",
}


def sip_profile_update(*, actor: Actor, profile: SipProfile, **fields: Any) -> SipProfile:
    if "us_minute_bundles" in fields:
        raise ApplicationError(
            "US minute bundles are bought and cancelled on their own, with their charge: use the profile's "
            "bundles form (API: POST /api/v1/sip-profiles/{id}/bundles/).",
            field="us_minute_bundles",
            code="bundles_not_updatable",
        )
    unknown = set(fields) - UPDATABLE
    if unknown:
        raise ApplicationError(f"These fields cannot be changed: {', '.join(sorted(unknown))}.")
    if "auth_method" in fields:
        raise ApplicationError("The authentication method is fixed; create another profile.", field="auth_method")
    with transaction.atomic():
        profile = (
            SipProfile.objects.select_for_update(of=("self",))
            .select_related("company")
            .get(pk=profile.pk, deleted_at__isnull=True)
        )
        company = profile.company
        before = snapshot(profile, AUDITED_FIELDS)
        before_addresses = _addresses_of(profile)
        before_caller_id = caller_id_e164(profile)
        if "name" in fields:
            name = _clean_name(fields["name"])
            if _name_taken(company, name, exclude=profile):
                raise ApplicationError(f"You already have a profile called “{name}”.", field="name", code="name_taken")
            profile.name = name
        if "description" in fields:
            profile.description = str(fields["description"] or "").strip()[:300]
        old_channels = profile.channels
        # The row is locked (FOR UPDATE), so a bundle purchase (FOR NO KEY UPDATE on the same
        # row) waits for this to commit and then sees the new channels, and the reverse.
        profile.channels, _ = _check_counts(fields.get("channels", profile.channels), profile.us_minute_bundles)
        for flag in ("tls_required", "srtp_required", "withhold_caller_id"):
            if flag in fields:
                setattr(profile, flag, bool(fields[flag]))
        if "status" in fields:
            if fields["status"] not in SipProfile.Status.values:
                raise ApplicationError("Choose active or suspended.", field="status")
            if profile.suspended_for_billing and fields["status"] != profile.status:
                raise ApplicationError(
                    "This profile is suspended for an unpaid charge: buy credit and it resumes by itself.",
                    field="status",
                    code="suspended_for_billing",
                )
            profile.status = fields["status"]
        if "caller_id" in fields:
            profile.caller_id_number, profile.caller_id_landline = caller_id_resolve(
                company=company, value=fields["caller_id"]
            )
        if "allowed_ips" in fields:
            addresses = clean_addresses(fields["allowed_ips"] or [])
            if profile.auth_method == SipProfile.AuthMethod.IP and not addresses:
                raise ApplicationError("Keep at least one address your PBX sends calls from.", field="allowed_ips")
            if profile.auth_method == SipProfile.AuthMethod.REGISTRATION and addresses:
                raise ApplicationError(
                    "Allowed addresses are for IP authentication; a registering PBX authenticates with its password.",
                    field="allowed_ips",
                )
            _replace_addresses(profile, addresses, company)
        changes = diff(before, snapshot(profile, AUDITED_FIELDS))
        if "allowed_ips" in fields and _addresses_of(profile) != before_addresses:
            changes["allowed_ips"] = {"before": before_addresses, "after": _addresses_of(profile)}
        if caller_id_e164(profile) != before_caller_id:
            changes["caller_id"] = {"before": before_caller_id, "after": caller_id_e164(profile)}
        if not changes:
            return profile
        sip_profile_mark_for_provisioning(profile)
        profile.save()
        audit_record(actor=actor, action="sip_profile.updated", company=company, target=profile, changes=changes)
        if profile.channels != old_channels:
            _record_channels(actor=actor, profile=profile, before=old_channels, after=profile.channels)
    return profile


def sip_profile_reset_password(*, actor: Actor, profile: SipProfile) -> str:
    with transaction.atomic():
        profile = SipProfile.objects.select_for_update().get(pk=profile.pk, deleted_at__isnull=True)
        if profile.auth_method != SipProfile.AuthMethod.REGISTRATION:
            raise ApplicationError("This profile authenticates by IP address; it has no password.", code="no_password")
        password = _set_password(profile)
        profile.save(update_fields=["sip_realm", "ha1_md5", "ha1_sha256", "password_set_at", "updated_at"])
        sip_profile_mark_for_provisioning(profile)
        audit_record(actor=actor, action="sip_profile.password_reset", company=profile.company, target=profile)
    return password


def sip_profile_delete(*, actor: Actor, profile: SipProfile) -> SipProfile:
    """Delete for the customer, keep for history: accounts and number routing are released,
    credentials and addresses removed so the edge stops accepting the PBX."""
    with transaction.atomic():
        profile = (
            SipProfile.objects.select_for_update(of=("self",))
            .select_related("company")
            .get(pk=profile.pk, deleted_at__isnull=True)
        )
        company = profile.company
        balance = profile_balance(profile)
        if balance != 0:
            raise ApplicationError(
                f"{profile.name} still holds {format_money(balance, company.currency)}: take it back to the "
                "company balance first."
                if balance > 0
                else f"{profile.name} owes {format_money(-balance, company.currency)}: "
                "allocate credit to settle it first.",
                code="profile_holds_credit",
            )
        released = list(BusinessAccount.objects.for_company(company).filter(sip_profile=profile).select_for_update())
        for account in released:
            account.sip_profile = None
            account.signin_enabled = True
            account.save(update_fields=["sip_profile", "signin_enabled", "updated_at"])
            audit_record(
                actor=actor,
                action="business_account.unassigned",
                company=company,
                target=account,
                changes={"sip_profile": {"before": profile.name, "after": None}},
            )
        addresses = _addresses_of(profile)
        profile.allowed_addresses.all().delete()
        profile.deleted_at = timezone.now()
        profile.ha1_md5 = profile.ha1_sha256 = ""
        profile.caller_id_number = None
        profile.caller_id_landline = None
        sip_profile_mark_for_provisioning(profile)
        profile.save()
        audit_record(
            actor=actor,
            action="sip_profile.deleted",
            company=company,
            target=profile,
            changes={
                "business_accounts": {"before": [a.name for a in released], "after": []},
                "allowed_ips": {"before": addresses, "after": []},
            },
        )
    return profile


# --- The edge must learn of it ---------------------------------------------------------------

_provisioning_listeners: list[Callable[[int], None]] = []


def sip_profile_provisioning_listener_register(listener: Callable[[int], None]) -> None:
    """A higher app (the edge) asks to hear, after commit, of every profile marked below."""
    if listener not in _provisioning_listeners:
        _provisioning_listeners.append(listener)


def sip_profile_mark_for_provisioning(profile: SipProfile) -> None:
    """The one place that says "the edge must learn this profile's new state": every change the
    edge enforces calls it, inside the change's transaction. The row is pending at once; the
    registered listeners hear of it (by profile id) once the transaction commits."""
    profile.provisioning_state = SipProfile.Provisioning.PENDING
    sip_profiles_mark_for_provisioning(profile_ids=[profile.pk])


def sip_profiles_mark_for_provisioning(*, profile_ids: Iterable[int]) -> None:
    """sip_profile_mark_for_provisioning for profiles known by id (a ledger posting, a rating
    batch, a bundle change): one UPDATE, then each listener hears of each profile on commit."""
    ids = sorted(set(profile_ids))
    if not ids:
        return
    SipProfile.objects.filter(pk__in=ids).update(provisioning_state=SipProfile.Provisioning.PENDING)
    for profile_id in ids:
        for listener in _provisioning_listeners:
            transaction.on_commit(functools.partial(listener, profile_id), robust=True)


def sip_profiles_balance_sign_changed(profile_ids: list[int]) -> None:
    """The ledger's listener (registered in SipProfilesConfig.ready()): a profile balance went
    from above zero to zero or below, or back, so paid calls are now refused or allowed."""
    sip_profiles_mark_for_provisioning(profile_ids=profile_ids)


# --- Billing: unpaid and paid again ---------------------------------------------------------


def sip_profile_suspend_unpaid(*, actor: Actor, profile: SipProfile) -> bool:
    """Its charge's grace period ended unpaid: the profile carries no calls until it is paid.
    Call with the profile row locked. False when there was nothing to suspend."""
    if profile.deleted_at is not None or profile.suspended_for_billing:
        return False
    before = profile.status
    profile.status = SipProfile.Status.SUSPENDED
    profile.suspended_for_billing = True
    profile.save(update_fields=["status", "suspended_for_billing", "updated_at"])
    sip_profile_mark_for_provisioning(profile)
    audit_record(
        actor=actor,
        action="sip_profile.suspended_unpaid",
        company=profile.company,
        target=profile,
        changes={"status": {"before": before, "after": profile.status}},
    )
    return True


def sip_profile_resume_paid(*, actor: Actor, profile: SipProfile) -> bool:
    """What suspended the profile is paid: it carries calls again. Call with the row locked."""
    if not profile.suspended_for_billing:
        return False
    profile.status = SipProfile.Status.ACTIVE
    profile.suspended_for_billing = False
    profile.save(update_fields=["status", "suspended_for_billing", "updated_at"])
    sip_profile_mark_for_provisioning(profile)
    audit_record(
        actor=actor,
        action="sip_profile.resumed",
        company=profile.company,
        target=profile,
        changes={"status": {"before": SipProfile.Status.SUSPENDED, "after": profile.status}},
    )
    return True
