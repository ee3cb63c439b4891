from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from apps.bundles.models import BundlePeriod


@admin.register(BundlePeriod)
class BundlePeriodAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Read only: periods are started by the renewal job and purchases, used by rating and
    suspended or resumed by charge settlement (apps.bundles.services)."""

    list_display = (
        "sip_profile",
        "company",
        "period_start",
        "period_end",
        "bundles",
        "minutes_used",
        "minutes_included",
        "suspended",
    )
    list_filter = ("suspended", "period_start")
    search_fields = ("sip_profile__name", "sip_profile__public_id", "company__name")
    list_select_related = ("sip_profile", "company")
    date_hierarchy = "period_start"
    readonly_fields = (
        "sip_profile",
        "company",
        "period_start",
        "period_end",
        "bundles",
        "minutes_included",
        "minutes_used",
        "suspended",
        "notified_80_at",
        "notified_100_at",
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
