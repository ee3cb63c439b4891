from __future__ import annotations

from django.conf import settings
from django.db import models

from apps.companies.models import Company, CompanyOwnedQuerySet
from apps.core.models import PublicModel

# The guide's checklist (Skype Connect Requirements Guide, 8.0), one box per step: the field,
# what the admin ticks, and where the portal helps with it.
CHECKLIST_ITEMS: tuple[tuple[str, str, str], ...] = (
    ("pbx_supports_sip", "The PBX supports SIP trunks", "SIP 2.0 (RFC 3261), with registration or a fixed IP address."),
    (
        "codecs_and_dtmf",
        "The PBX offers G.711 or G.729, and DTMF as RFC 4733 (RFC 2833) events",
        "The edge refuses video and T.38 fax.",
    ),
    (
        "bandwidth_enough",
        "The line carries the channels needed, in both directions",
        "Worked out with the bandwidth and channel calculator above.",
    ),
    (
        "network_quality",
        "Round trip under 200 ms, jitter under 10 ms, packet loss under 0.2% to both edge nodes",
        "Measured from the PBX, at a busy hour.",
    ),
    (
        "firewall_open",
        "The firewall lets SIP and RTP through between the PBX and both edge nodes",
        "The port list is on each SIP profile's “Connect your PBX” page.",
    ),
    ("qos_configured", "Voice has priority on the router (QoS)", "RTP marked DSCP EF, SIP CS3, the upload shaped."),
    (
        "tls_srtp_ready",
        "The PBX supports TLS and SRTP, or the profile allows plain SIP and RTP",
        "Profiles require both by default.",
    ),
    (
        "redundancy_configured",
        "The PBX fails over between the two edge nodes",
        "By DNS SRV, or a trunk per node, as the ready-to-paste configurations do.",
    ),
    (
        "emergency_calls_elsewhere",
        "Emergency calls go out another way",
        "A landline or mobile: emergency numbers cannot be called through the trunk.",
    ),
    ("test_calls_made", "Test calls made both ways, with DTMF", "An outbound call, an inbound call, a menu."),
)
CHECKLIST_FIELDS = tuple(field for field, _, _ in CHECKLIST_ITEMS)


class ReadinessChecklist(PublicModel):
    """A company's readiness checklist: which of the guide's steps its admins have ticked."""

    company = models.OneToOneField(Company, on_delete=models.PROTECT, related_name="readiness_checklist")
    pbx_supports_sip = models.BooleanField(default=False)
    codecs_and_dtmf = models.BooleanField(default=False)
    bandwidth_enough = models.BooleanField(default=False)
    network_quality = models.BooleanField(default=False)
    firewall_open = models.BooleanField(default=False)
    qos_configured = models.BooleanField(default=False)
    tls_srtp_ready = models.BooleanField(default=False)
    redundancy_configured = models.BooleanField(default=False)
    emergency_calls_elsewhere = models.BooleanField(default=False)
    test_calls_made = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )

    objects = CompanyOwnedQuerySet.as_manager()

    def __str__(self) -> str:
        return f"Readiness checklist of {self.company}"

    def ticked(self) -> dict[str, bool]:
        return {field: getattr(self, field) for field in CHECKLIST_FIELDS}
