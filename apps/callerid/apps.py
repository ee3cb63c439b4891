from django.apps import AppConfig


class CalleridConfig(AppConfig):
    name = "apps.callerid"
    label = "callerid"
    verbose_name = "Caller ID"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Lazy (AppConfig.ready): apps.py is imported before the models are loaded.
        from apps.callerid.services import caller_ids_on_company_unverified
        from apps.companies.hooks import verification_lost_register

        verification_lost_register(caller_ids_on_company_unverified)
