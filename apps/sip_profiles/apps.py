from django.apps import AppConfig


class SipProfilesConfig(AppConfig):
    name = "apps.sip_profiles"
    label = "sip_profiles"
    verbose_name = "SIP profiles"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Lazy (AppConfig.ready): apps.py is imported before the models are loaded.
        from apps.billing.charges.items import charge_item_register
        from apps.sip_profiles.charges import LABEL, SipProfileCharges

        charge_item_register(LABEL, SipProfileCharges())

        from apps.billing.ledger.services import profile_balance_sign_listener_register
        from apps.sip_profiles.services import sip_profiles_balance_sign_changed

        # A balance crossing zero changes the call policy the edge enforces (paid calls).
        profile_balance_sign_listener_register(sip_profiles_balance_sign_changed)
