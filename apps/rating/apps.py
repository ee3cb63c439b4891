from django.apps import AppConfig


class RatingConfig(AppConfig):
    name = "apps.rating"
    label = "rating"
    verbose_name = "Rating"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Lazy (AppConfig.ready): apps.py is imported before the models are loaded.
        from apps.cdrs.selectors import call_destinations_register
        from apps.cdrs.services import cdrs_queued_task_register
        from apps.rating.selectors import call_destinations
        from apps.rating.tasks import rate_cdrs

        # CDRs loaded or queued again are rated now, not at the next minute.
        cdrs_queued_task_register(rate_cdrs)
        # The Calls list names each call's destination and rate from the decks.
        call_destinations_register(call_destinations)
