from django.apps import AppConfig


class CalleridConfig(AppConfig):
    name = "apps.callerid"
    label = "callerid"
    default_auto_field = "django.db.models.BigAutoField"
