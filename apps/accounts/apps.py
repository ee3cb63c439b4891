from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "apps.accounts"
    label = "accounts"
    verbose_name = "Users and API keys"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Lazy (AppConfig.ready): apps.py is imported before the models are loaded.
        from apps.accounts import signals  # noqa: F401
