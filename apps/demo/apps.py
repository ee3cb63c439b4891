from django.apps import AppConfig


class DemoConfig(AppConfig):
    """Demo data for `make run` (manage.py seed_demo): the top layer, it may use every app."""

    name = "apps.demo"
    label = "demo"
    default_auto_field = "django.db.models.BigAutoField"
