from django.apps import AppConfig


class SipProfilesConfig(AppConfig):
    name = "apps.sip_profiles"
    label = "sip_profiles"
    default_auto_field = "django.db.models.BigAutoField"
