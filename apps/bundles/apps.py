from django.apps import AppConfig


class BundlesConfig(AppConfig):
    name = "apps.bundles"
    label = "bundles"
    verbose_name = "US minute bundles"
    default_auto_field = "django.db.models.BigAutoField"
