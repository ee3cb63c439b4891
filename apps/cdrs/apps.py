from django.apps import AppConfig


class CdrsConfig(AppConfig):
    name = "apps.cdrs"
    label = "cdrs"
    verbose_name = "Calls (CDRs)"
    default_auto_field = "django.db.models.BigAutoField"
