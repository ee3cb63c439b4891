from django.apps import AppConfig


class EdgeConfig(AppConfig):
    name = "apps.edge"
    label = "edge"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The edge (a higher layer) hears of profile changes through sip_profiles' registry;
        # sip_profiles never imports the edge.
        from apps.edge.services import profile_changed
        from apps.sip_profiles.services import sip_profile_provisioning_listener_register

        sip_profile_provisioning_listener_register(profile_changed)
