from django.apps import AppConfig


class NumbersConfig(AppConfig):
    name = "apps.numbers"
    label = "numbers"
    verbose_name = "Online Numbers"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Lazy (AppConfig.ready): apps.py is imported before the models are loaded.
        from apps.billing.charges.items import charge_item_register
        from apps.numbers.charges import LABEL, NumberSubscriptionCharges

        charge_item_register(LABEL, NumberSubscriptionCharges())
