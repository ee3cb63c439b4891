from __future__ import annotations

from typing import Any

from django.contrib import admin

from apps.edge.models import Carrier, EdgeNode, EdgeProvisioning
from apps.edge.services import carriers_changed


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

    # A change made here reaches the nodes at once, as one made with `edge_carrier add` does.
    def save_model(self, request: Any, obj: Carrier, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        carriers_changed()

    def delete_model(self, request: Any, obj: Carrier) -> None:
        super().delete_model(request, obj)
        carriers_changed()

    def delete_queryset(self, request: Any, queryset: Any) -> None:
        super().delete_queryset(request, queryset)
        carriers_changed()


@admin.register(EdgeProvisioning)
class EdgeProvisioningAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("profile", "node", "state", "synced_at", "attempts", "updated_at")
    list_filter = ("state", "node")
    list_select_related = ("profile", "node")
    readonly_fields = ("profile", "node", "state", "synced_at", "error", "attempts", "updated_at")

    def has_add_permission(self, request: object) -> bool:
        return False
