from django.apps import AppConfig


class NumbersConfig(AppConfig):
    name = "apps.numbers"
    label = "numbers"
    default_auto_field = "django.db.models.BigAutoField"
