from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from apps.business_accounts.models import BusinessAccount


@admin.register(BusinessAccount)
class BusinessAccountAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Read-only for staff: companies manage their accounts through the services."""

    list_display = ("name", "display_name", "company", "sip_profile", "signin_enabled", "created_at")
    list_filter = ("signin_enabled",)
    search_fields = ("name", "display_name", "company__name")
    list_select_related = ("company", "sip_profile")
    readonly_fields = (
        "public_id",
        "name",
        "display_name",
        "company",
        "member",
        "sip_profile",
        "signin_enabled",
        "created_at",
        "updated_at",
    )
    fields = readonly_fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
