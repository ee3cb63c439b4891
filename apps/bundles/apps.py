from django.apps import AppConfig


class BundlesConfig(AppConfig):
    name = "apps.bundles"
    label = "bundles"
    verbose_name = "US minute bundles"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Lazy (AppConfig.ready): apps.py is imported before the models are loaded.
        from apps.billing.charges.items import charge_item_register
        from apps.bundles.charges import LABEL, BundlePeriodCharges
        from apps.bundles.services import bundles_buy_at_creation, bundles_quote_at_creation
        from apps.sip_profiles.hooks import profile_created_quote_register, profile_created_register

        charge_item_register(LABEL, BundlePeriodCharges())
        profile_created_register(bundles_buy_at_creation)
        profile_created_quote_register(bundles_quote_at_creation)
