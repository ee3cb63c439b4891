from __future__ import annotations

from django.contrib import admin

from apps.edge.models import Carrier, EdgeNode, EdgeProvisioning


@admin.register(EdgeNode)
class EdgeNodeAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("name", "role", "sip_host", "sip_port", "tls_port", "public_host", "rtpengine", "enabled")
    list_filter = ("role", "enabled")
    search_fields = ("name", "sip_host", "public_host")


@admin.register(Carrier)
class CarrierAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("name", "address", "port", "transport", "priority", "enabled")
    list_filter = ("transport", "enabled")
    search_fields = ("name", "address")


@admin.register(EdgeProvisioning)
class EdgeProvisioningAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("profile", "node", "state", "synced_at", "attempts", "updated_at")
    list_filter = ("state", "node")
    list_select_related = ("profile", "node")
    readonly_fields = ("profile", "node", "state", "synced_at", "error", "attempts", "updated_at")

    def has_add_permission(self, request: object) -> bool:
        return False
