from __future__ import annotations

from django.contrib import admin

from apps.business_accounts.models import BusinessAccount
from apps.core.admin_readonly import ReadOnlyAdmin


@admin.register(BusinessAccount)
class BusinessAccountAdmin(ReadOnlyAdmin):
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
