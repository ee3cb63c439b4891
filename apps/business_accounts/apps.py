from django.apps import AppConfig


class BusinessAccountsConfig(AppConfig):
    name = "apps.business_accounts"
    label = "business_accounts"
    verbose_name = "Business accounts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Lazy (AppConfig.ready): apps.py is imported before the models are loaded.
        from apps.business_accounts.services import business_account_check_role_change
        from apps.companies.hooks import role_change_check_register

        role_change_check_register(business_account_check_role_change)
