from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import OuterRef, QuerySet, Subquery
from django.http import HttpRequest
from django_countries.filters import CountryFilter

from apps.core.actor import Actor
from apps.core.admin_imports import CsvImportAdminMixin
from apps.core.admin_readonly import ReadOnlyAdmin
from apps.core.exceptions import ApplicationError
from apps.core.models import ImportJob
from apps.core.money import format_money
from apps.numbers import imports, services
from apps.numbers.forms import NumberImportForm, OnlineNumberAdminForm
from apps.numbers.models import NumberSubscription, OnlineNumber


@admin.register(OnlineNumber)
class OnlineNumberAdmin(CsvImportAdminMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    """Stock kept by staff. Rows are added and edited through services (so every change is
    audited and checked with the CSV import's rules) and never deleted."""

    import_kind = services.IMPORT_KIND
    import_template_csv = imports.TEMPLATE
    import_template_filename = "online-numbers.csv"
    import_url_name = "numbers-import"
    import_templates = "admin/numbers"
    import_form = NumberImportForm
    import_upload_title = "Import Online Numbers from CSV"

    form = OnlineNumberAdminForm
    change_list_template = "admin/numbers/onlinenumber/change_list.html"
    list_display = (
        "number",
        "country",
        "area",
        "number_type",
        "status",
        "holder",
        "quarantine_until",
        "prices",
    )
    # Only the countries in stock, not all 250.
    list_filter = ("status", "number_type", ("country", CountryFilter))
    search_fields = ("number", "area")
    list_per_page = 100
    # Counting a large stock on every page view is slow; the filters still count.
    show_full_result_count = False
    readonly_fields = ("public_id", "status", "quarantine_until", "holder", "created_at", "updated_at")
    actions = ["end_quarantine"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[OnlineNumber]:
        holder = NumberSubscription.objects.filter(
            number=OuterRef("pk"), status=NumberSubscription.Status.ACTIVE
        ).values("company__name")[:1]
        return super().get_queryset(request).annotate(holder_name=Subquery(holder))

    @admin.display(description="Held by", ordering="holder_name")
    def holder(self, stock: OnlineNumber) -> str:
        return getattr(stock, "holder_name", None) or "—"

    @admin.display(description="3 / 12 months")
    def prices(self, stock: OnlineNumber) -> str:
        return " · ".join(
            f"{currency.upper()} {format_money(stock.price(currency=currency, months=3))} / "
            f"{format_money(stock.price(currency=currency, months=12))}"
            for currency in imports.CURRENCIES
        )

    def get_fields(self, request: HttpRequest, obj: OnlineNumber | None = None) -> list[str]:  # type: ignore[override]
        editable = ["area", "number_type", *imports.PRICE_FIELDS]
        if obj is None:
            return ["number", "country", *editable]
        return ["number", "country", *editable, *self.readonly_fields]

    def get_readonly_fields(self, request: HttpRequest, obj: OnlineNumber | None = None) -> tuple[str, ...]:  # type: ignore[override]
        if obj is None:
            return ()
        return ("number", "country", *self.readonly_fields)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # nothing with history is deleted

    def save_model(self, request: HttpRequest, obj: OnlineNumber, form: Any, change: bool) -> None:
        actor = Actor.from_request(request)
        data = form.cleaned_data
        editable = {name: data[name] for name in ("area", "number_type", *imports.PRICE_FIELDS)}
        if change:
            saved = services.number_stock_update(actor=actor, stock=obj, **editable)
        else:
            saved = services.number_stock_create(
                actor=actor, number=data["number"], country=data["country"], **editable
            )
        # The admin goes on with `obj` (its log entry, the redirect): make it the saved row.
        obj.__dict__.update({k: v for k, v in saved.__dict__.items() if k != "_state"})
        obj._state.adding = False
        obj._state.db = saved._state.db

    @admin.action(description="Put back in stock now (end the quarantine)")
    def end_quarantine(self, request: HttpRequest, queryset: Any) -> None:
        for stock in queryset:
            try:
                services.number_stock_end_quarantine(actor=Actor.from_request(request), stock=stock)
            except ApplicationError as error:
                self.message_user(request, error.message, messages.ERROR)
            else:
                self.message_user(request, f"{stock.number} is available again.")

    # --- CSV import ---------------------------------------------------------------

    def get_urls(self) -> list[Any]:
        return [*self.import_urls(), *super().get_urls()]

    def import_create(self, *, actor: Actor, form: Any, filename: str, content: bytes) -> ImportJob:
        return services.number_import_create(actor=actor, filename=filename, content=content)

    def import_upload_context(self) -> dict[str, Any]:
        return {"columns": imports.COLUMNS, "types": OnlineNumber.Type.values}


@admin.register(NumberSubscription)
class NumberSubscriptionAdmin(ReadOnlyAdmin):
    """Read only, for support: companies buy, assign and release numbers themselves."""

    list_display = (
        "number",
        "company",
        "status",
        "months",
        "price",
        "currency",
        "current_period_end",
        "auto_renew",
        "business_account",
        "ended_at",
    )
    list_filter = ("status", "months", "auto_renew")
    search_fields = ("number__number", "company__name", "public_id")
    list_select_related = ("number", "company", "business_account")
    readonly_fields = [f.name for f in NumberSubscription._meta.fields]
