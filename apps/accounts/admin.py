from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.http import HttpRequest

from apps.accounts.models import ApiKey, User
from apps.accounts.services import api_key_revoke
from apps.core.actor import Actor
from apps.core.admin_readonly import ReadOnlyAdmin
from apps.core.exceptions import ApplicationError


@admin.register(User)
class UserAdmin(BaseUserAdmin):  # type: ignore[type-arg]
    ordering = ("email",)
    list_display = ("email", "full_name", "is_staff", "is_active", "last_login", "date_joined")
    search_fields = ("email", "full_name")
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Profile", {"fields": ("full_name",)}),
        ("Permissions", {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")}),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),)


@admin.register(ApiKey)
class ApiKeyAdmin(ReadOnlyAdmin):
    list_display = ("name", "prefix", "company", "role", "created_by", "created_at", "last_used_at", "revoked_at")
    list_filter = ("role",)
    search_fields = ("name", "prefix", "company__name")
    readonly_fields = [f.name for f in ApiKey._meta.fields if f.name != "key_hash"]
    exclude = ("key_hash",)
    actions = ["revoke"]

    @admin.action(description="Revoke the selected keys")
    def revoke(self, request: HttpRequest, queryset: Any) -> None:
        for api_key in queryset:
            try:
                api_key_revoke(actor=Actor.from_request(request), api_key=api_key)
            except ApplicationError:
                continue
