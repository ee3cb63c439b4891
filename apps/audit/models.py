from __future__ import annotations

from django.conf import settings
from django.db import models

from apps.companies.models import Company, CompanyOwnedQuerySet
from apps.core.models import PublicModel


class AuditEvent(PublicModel):
    """One change to a company's state, or one sign-in. Append-only (a database trigger refuses
    UPDATE and DELETE on PostgreSQL)."""

    # Null only for events that belong to no company (a failed sign-in for an unknown address).
    company = models.ForeignKey(Company, on_delete=models.PROTECT, related_name="audit_events", null=True)
    actor_user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+")
    actor_api_key = models.ForeignKey("accounts.ApiKey", on_delete=models.PROTECT, null=True, related_name="+")
    # A snapshot of who it was, readable even when the user changes e-mail.
    actor_label = models.CharField(max_length=200)
    action = models.CharField(max_length=64, db_index=True)
    object_type = models.CharField(max_length=64, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    object_repr = models.CharField(max_length=200, blank=True)
    # {"field": {"before": ..., "after": ...}}
    changes = models.JSONField(default=dict, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)

    objects = CompanyOwnedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["company", "-created_at"], name="audit_company_recent"),
            # The staff list (apps/audit/admin.py): newest first, and exact searches.
            models.Index(fields=["created_at", "id"], name="audit_recent"),
            models.Index(fields=["object_id"], name="audit_object_id"),
            models.Index(fields=["actor_label"], name="audit_actor_label"),
        ]

    def __str__(self) -> str:
        return f"{self.action} by {self.actor_label}"
