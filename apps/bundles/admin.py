from __future__ import annotations

from django.contrib import admin

from apps.bundles.models import BundlePeriod
from apps.core.admin_readonly import ReadOnlyAdmin


@admin.register(BundlePeriod)
class BundlePeriodAdmin(ReadOnlyAdmin):
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
