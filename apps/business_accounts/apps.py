from django.apps import AppConfig


class BusinessAccountsConfig(AppConfig):
    name = "apps.business_accounts"
    label = "business_accounts"
    default_auto_field = "django.db.models.BigAutoField"
