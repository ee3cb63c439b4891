from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Lower

from apps.companies.models import Company, CompanyOwnedQuerySet
from apps.core.models import PublicModel

MIN_CHANNELS = 1
# How billing's charges name a profile (apps.billing.charges.items).
CHARGE_ITEM_LABEL = "sip_profiles.sipprofile"
MAX_CHANNELS = 300


class SipProfileQuerySet(CompanyOwnedQuerySet):
    def live(self) -> SipProfileQuerySet:
        """Profiles that exist for the customer (deleted ones are kept for history)."""
        return self.filter(deleted_at__isnull=True)  # type: ignore[return-value]


class SipProfile(PublicModel):
    """A SIP trunk to the customer's PBX."""

    class AuthMethod(models.TextChoices):
        REGISTRATION = "registration", "SIP registration (digest)"
        IP = "ip", "IP address"

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        SUSPENDED = "suspended", "Suspended"

    class Provisioning(models.TextChoices):
        PENDING = "pending", "Waiting to be provisioned"
        SYNCED = "synced", "Provisioned on the SIP edge"
        FAILED = "failed", "Provisioning failed"

    company = models.ForeignKey(Company, on_delete=models.PROTECT, related_name="sip_profiles")
    name = models.CharField(max_length=80)
    description = models.CharField(max_length=300, blank=True)
    auth_method = models.CharField(max_length=12, choices=AuthMethod.choices)
    # Digest credentials (auth_method=registration): the username is generated and
    # unique across companies; only the HA1 digests for SIP_DOMAIN are kept.
    sip_username = models.CharField(max_length=32, null=True, blank=True, unique=True)
    sip_realm = models.CharField(max_length=253, blank=True)
    ha1_md5 = models.CharField(max_length=32, blank=True)
    ha1_sha256 = models.CharField(max_length=64, blank=True)
    password_set_at = models.DateTimeField(null=True, blank=True)
    channels = models.PositiveSmallIntegerField(default=MIN_CHANNELS)
    us_minute_bundles = models.PositiveSmallIntegerField(default=0)
    tls_required = models.BooleanField(default=True)
    srtp_required = models.BooleanField(default=True)
    # Caller ID: at most one of an Online Number the company holds or a proven landline.
    caller_id_number = models.ForeignKey(
        "numbers.NumberSubscription", on_delete=models.PROTECT, null=True, blank=True, related_name="caller_id_for"
    )
    caller_id_landline = models.ForeignKey(
        "callerid.Landline", on_delete=models.PROTECT, null=True, blank=True, related_name="caller_id_for"
    )
    withhold_caller_id = models.BooleanField(default=False)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    # Why a suspended profile is suspended: the customer may lift only their own suspension.
    suspended_for_billing = models.BooleanField(default=False)
    provisioning_state = models.CharField(max_length=10, choices=Provisioning.choices, default=Provisioning.PENDING)
    provisioning_error = models.TextField(blank=True)
    # The day of the month channels renew on (the day the profile was created, at most 28).
    renewal_day = models.PositiveSmallIntegerField(default=1)
    updated_at = models.DateTimeField(auto_now=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    objects = SipProfileQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                "company",
                Lower("name"),
                condition=Q(deleted_at__isnull=True),
                name="sip_profile_name_unique_in_company",
            ),
            models.CheckConstraint(
                condition=Q(channels__gte=MIN_CHANNELS) & Q(channels__lte=MAX_CHANNELS),
                name="sip_profile_channels_1_to_300",
            ),
            models.CheckConstraint(
                condition=Q(us_minute_bundles__gte=0) & Q(us_minute_bundles__lte=F("channels")),
                name="sip_profile_bundles_at_most_channels",
            ),
            models.CheckConstraint(
                condition=Q(caller_id_number__isnull=True) | Q(caller_id_landline__isnull=True),
                name="sip_profile_one_caller_id",
            ),
            models.CheckConstraint(
                condition=Q(auth_method="ip")
                | Q(deleted_at__isnull=False)
                | (Q(sip_username__isnull=False) & ~Q(ha1_md5="") & ~Q(ha1_sha256="")),
                name="sip_profile_digest_has_credentials",
            ),
            models.CheckConstraint(
                condition=Q(renewal_day__gte=1) & Q(renewal_day__lte=28), name="sip_profile_renewal_day"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None


class AllowedAddress(models.Model):
    """A source address (host or small prefix) the edge maps to exactly one profile."""

    class Transport(models.TextChoices):
        UDP = "udp", "UDP"
        TCP = "tcp", "TCP"
        TLS = "tls", "TLS"

    profile = models.ForeignKey(SipProfile, on_delete=models.CASCADE, related_name="allowed_addresses")
    # Canonical CIDR text ("203.0.113.8/29", "2001:db8::10/128"). On PostgreSQL an
    # exclusion constraint refuses any two overlapping networks (see migration).
    network = models.CharField(max_length=49)
    port = models.PositiveIntegerField(default=5060)
    transport = models.CharField(max_length=3, choices=Transport.choices, default=Transport.UDP)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["network"], name="allowed_address_network_unique"),
            models.CheckConstraint(condition=Q(port__gte=1) & Q(port__lte=65535), name="allowed_address_port_range"),
        ]

    def __str__(self) -> str:
        return f"{self.network} {self.transport.upper()}:{self.port}"


class ChannelChange(models.Model):
    """Each change of a profile's channels, kept with its time for proration."""

    profile = models.ForeignKey(SipProfile, on_delete=models.PROTECT, related_name="channel_changes")
    before = models.PositiveSmallIntegerField()
    after = models.PositiveSmallIntegerField()
    changed_at = models.DateTimeField(auto_now_add=True)
    changed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+")

    class Meta:
        ordering = ["changed_at", "id"]

    def __str__(self) -> str:
        return f"{self.profile}: {self.before} → {self.after} channels"
