from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from apps.core.actor import Actor
from apps.core.admin_imports import CsvImportAdminMixin
from apps.core.admin_lists import EstimatedCountPaginator
from apps.core.admin_readonly import ReadOnlyAdmin
from apps.core.exceptions import ApplicationError
from apps.core.models import ImportJob
from apps.rating import imports, services
from apps.rating.forms import BlockedPrefixAdminForm, RateDeckImportForm
from apps.rating.models import BlockedPrefix, DestinationClass, Rate, RateDeck


@admin.register(RateDeck)
class RateDeckAdmin(CsvImportAdminMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    """Decks are added by CSV import only (so every row is checked) and never edited:
    a correction is a new deck, and a wrong one is retired."""

    import_kind = services.IMPORT_KIND
    import_template_csv = imports.TEMPLATE
    import_template_filename = "rate-deck.csv"
    import_url_name = "rating-import"
    import_templates = "admin/rating"
    import_form = RateDeckImportForm
    import_upload_title = "Import a rate deck from CSV"
    import_recent_headings = ("Currency",)

    def import_jobs(self) -> Any:
        return ImportJob.objects.select_related("rate_deck", "created_by")

    change_list_template = "admin/rating/ratedeck/change_list.html"
    list_display = ("display_name", "currency", "effective_from", "status", "rate_count", "created_at", "import_link")
    list_filter = ("currency", "status")
    search_fields = ("name",)
    readonly_fields = ("public_id", "name", "currency", "effective_from", "status", "rate_count", "created_at")
    fields = readonly_fields
    actions = ["retire"]

    @admin.display(description="Import")
    def import_link(self, deck: RateDeck) -> str:
        if deck.import_job_id is None:
            return "—"
        assert deck.import_job is not None
        url = reverse("admin:rating-import-status", args=[deck.import_job.public_id])
        return format_html('<a href="{}">{}</a>', url, deck.import_job.get_status_display())

    def get_queryset(self, request: HttpRequest) -> Any:
        return super().get_queryset(request).select_related("import_job").defer("import_job__content")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # through the import

    def has_import_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("rating.add_ratedeck")  # type: ignore[union-attr]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # calls rated with a deck refer to it

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> Any:
        return super().changelist_view(
            request, {**(extra_context or {}), "can_import": self.has_import_permission(request)}
        )

    @admin.action(description="Retire (the previous deck applies again)", permissions=["import"])
    def retire(self, request: HttpRequest, queryset: Any) -> None:
        for deck in queryset:
            try:
                services.rate_deck_retire(actor=Actor.from_request(request), deck=deck)
            except ApplicationError as error:
                self.message_user(request, error.message, messages.ERROR)
            else:
                self.message_user(request, f"{deck.display_name} is retired.")

    # --- CSV import ---------------------------------------------------------------

    def get_urls(self) -> list[Any]:
        return [*self.import_urls(), *super().get_urls()]

    def import_create(self, *, actor: Actor, form: Any, filename: str, content: bytes) -> ImportJob:
        deck = services.rate_deck_import_create(
            actor=actor,
            currency=form.cleaned_data["currency"],
            name=form.cleaned_data["name"],
            filename=filename,
            content=content,
        )
        assert deck.import_job is not None
        return deck.import_job

    def import_upload_context(self) -> dict[str, Any]:
        return {"columns": imports.COLUMNS, "classes": DestinationClass.values}

    def import_recent_values(self, job: ImportJob) -> list[Any]:
        return [job.rate_deck.currency]

    def import_status_lead(self, job: ImportJob) -> str:
        return format_html("{} deck “{}”, uploaded", job.rate_deck.currency, job.rate_deck.display_name)


@admin.register(Rate)
class RateAdmin(ReadOnlyAdmin):
    """Read only: a deck's rows, to find a prefix."""

    list_display = (
        "prefix",
        "destination",
        "country",
        "destination_class",
        "price_per_minute",
        "connection_fee",
        "first_increment",
        "next_increment",
        "deck",
    )
    list_filter = ("destination_class", "deck__currency", "deck")
    # Decks of 100,000 rates, kept by version: an estimated count, and a prefix compared
    # exactly within each deck, so the (deck, prefix) unique index finds it.
    search_fields = ("prefix",)
    search_help_text = "Exactly: a prefix (digits, as in the deck)."
    list_select_related = ("deck",)
    list_per_page = 100
    paginator = EstimatedCountPaginator
    show_full_result_count = False

    def get_search_results(self, request: HttpRequest, queryset: Any, search_term: str) -> tuple[Any, bool]:
        term = search_term.strip()
        if not term:
            return queryset, False
        decks = list(RateDeck.objects.values_list("pk", flat=True))
        return queryset.filter(deck__in=decks, prefix=term), False


@admin.register(BlockedPrefix)
class BlockedPrefixAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Ranges that are never callable; phonenumbers' emergency and short-number metadata is
    checked as well, so this list adds to it. Every change goes through a service and is audited."""

    form = BlockedPrefixAdminForm
    list_display = ("prefix", "country", "exact", "kind", "reason", "updated_at")
    list_filter = ("kind", "country")
    search_fields = ("prefix", "reason")

    def save_model(self, request: HttpRequest, obj: BlockedPrefix, form: Any, change: bool) -> None:
        actor = Actor.from_request(request)
        data = {name: form.cleaned_data[name] for name in ("country", "prefix", "exact", "kind", "reason")}
        if change:
            saved = services.blocked_prefix_update(actor=actor, blocked=obj, **data)
        else:
            saved = services.blocked_prefix_create(actor=actor, **data)
        # The admin goes on with `obj` (its log entry, the redirect): make it the saved row.
        obj.__dict__.update({k: v for k, v in saved.__dict__.items() if k != "_state"})
        obj._state.adding = False
        obj._state.db = saved._state.db

    def delete_model(self, request: HttpRequest, obj: BlockedPrefix) -> None:
        services.blocked_prefix_delete(actor=Actor.from_request(request), blocked=obj)

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        for blocked in queryset:
            services.blocked_prefix_delete(actor=Actor.from_request(request), blocked=blocked)
