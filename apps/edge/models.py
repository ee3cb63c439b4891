from __future__ import annotations

import ipaddress

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from apps.sip_profiles.models import SipProfile


class EdgeNode(models.Model):
    """One Kamailio node (with its rtpengine) and the PostgreSQL database it reads."""

    class Role(models.TextChoices):
        PRIMARY = "primary", "Primary"
        SECONDARY = "secondary", "Secondary"

    name = models.CharField(max_length=40, unique=True)
    role = models.CharField(max_length=10, choices=Role.choices)
    sip_host = models.CharField(max_length=253, help_text="Address Kamailio listens on for SIP (UDP and TCP).")
    sip_port = models.PositiveIntegerField(default=5060)
    tls_port = models.PositiveIntegerField(null=True, blank=True)
    # Paths on the node's host; Kamailio reads them at start (with a TLS port, both are needed).
    tls_certificate = models.CharField(
        max_length=500, blank=True, help_text="PEM certificate (with its chain) Kamailio serves on the TLS port."
    )
    tls_private_key = models.CharField(max_length=500, blank=True, help_text="PEM private key of that certificate.")
    rpc_url = models.CharField(max_length=300, help_text="JSON-RPC over HTTP, e.g. http://127.0.0.1:5071/RPC")
    database_url = models.CharField(max_length=500, help_text="postgres://user:password@host:port/db")
    rtpengine = models.CharField(max_length=80, blank=True, help_text="rtpengine control socket host:port")
    public_host = models.CharField(max_length=253, blank=True, help_text="Host name shown to customers.")
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["role", "name"]
        constraints = [
            models.CheckConstraint(condition=Q(sip_port__gte=1) & Q(sip_port__lte=65535), name="edge_node_sip_port"),
            models.CheckConstraint(
                condition=Q(tls_port__isnull=True) | (Q(tls_port__gte=1) & Q(tls_port__lte=65535)),
                name="edge_node_tls_port",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.role})"


class Carrier(models.Model):
    """An upstream carrier: where outbound calls go (dispatcher set 1, by priority) and the
    addresses its inbound calls come from."""

    class Transport(models.TextChoices):
        UDP = "udp", "UDP"
        TCP = "tcp", "TCP"
        TLS = "tls", "TLS"

    name = models.CharField(max_length=80, unique=True)
    address = models.CharField(max_length=253)
    port = models.PositiveIntegerField(default=5060)
    transport = models.CharField(max_length=3, choices=Transport.choices, default=Transport.UDP)
    # Higher first (dispatcher's priority order); ties share the load in turn.
    priority = models.IntegerField(default=0)
    inbound_from = models.JSONField(default=list, blank=True, help_text="Addresses or networks it sends calls from.")
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-priority", "name"]
        constraints = [
            models.CheckConstraint(condition=Q(port__gte=1) & Q(port__lte=65535), name="carrier_port"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.transport}:{self.address}:{self.port})"

    def clean(self) -> None:
        # The admin's form: every inbound source must be an address or a network.
        for entry in self.inbound_from or []:
            try:
                ipaddress.ip_network(str(entry).strip(), strict=False)
            except ValueError:
                raise ValidationError(
                    {"inbound_from": f"{entry!r} is not an IP address or network (e.g. 198.51.100.0/28)."}
                ) from None

    @property
    def sip_uri(self) -> str:
        return f"sip:{self.address}:{self.port};transport={self.transport}"


class EdgeProvisioning(models.Model):
    """Where one profile stands on one node: waiting, in sync since, or failed (with why)."""

    class State(models.TextChoices):
        PENDING = "pending", "Waiting to be provisioned"
        SYNCED = "synced", "Provisioned"
        FAILED = "failed", "Provisioning failed"

    profile = models.ForeignKey(SipProfile, on_delete=models.CASCADE, related_name="edge_provisioning")
    node = models.ForeignKey(EdgeNode, on_delete=models.CASCADE, related_name="provisioning")
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    synced_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["profile_id", "node__role", "node__name"]
        constraints = [
            models.UniqueConstraint(fields=["profile", "node"], name="edge_provisioning_one_per_profile_node"),
        ]

    def __str__(self) -> str:
        return f"{self.profile_id} on {self.node_id}: {self.state}"


class EdgeCdrWatermark(models.Model):
    """How far the portal has imported a node's CDR table (sm_cdrs): every record with an id
    up to `last_id` is in (as a Cdr or a RejectedCdr). Advanced in the transaction that
    writes the records, so a run that dies moves neither (apps.edge.cdr_import)."""

    node = models.OneToOneField(EdgeNode, on_delete=models.CASCADE, related_name="cdr_watermark")
    last_id = models.BigIntegerField(default=0)
    imported_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.node_id}: CDRs imported up to {self.last_id}"
