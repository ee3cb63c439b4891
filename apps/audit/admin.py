from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from apps.audit.models import AuditEvent
from apps.core.admin_readonly import ReadOnlyAdmin


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "company", "actor_label", "action", "object_repr", "ip_address")
    list_filter = ("action",)
    search_fields = ("actor_label", "object_repr", "object_id", "company__name")
    date_hierarchy = "created_at"

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [f.name for f in AuditEvent._meta.fields]
