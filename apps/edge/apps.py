from django.apps import AppConfig


class EdgeConfig(AppConfig):
    name = "apps.edge"
    label = "edge"
    verbose_name = "SIP edge"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The edge (a higher layer) hears of profile changes through sip_profiles' registry;
        # sip_profiles never imports the edge. AppConfig.ready: apps.py is imported before the
        # models are loaded.
        from apps.core.health import health_check_register
        from apps.edge.live import edge_health_check
        from apps.edge.provisioning import provisioning_by_profile
        from apps.edge.services import blocked_prefixes_changed, profile_changed
        from apps.rating.services import blocked_prefixes_listener_register
        from apps.sip_profiles.hooks import provisioning_provider_register
        from apps.sip_profiles.services import sip_profile_provisioning_listener_register

        sip_profile_provisioning_listener_register(profile_changed)
        # The profile page and the API show each node's state without importing the edge.
        provisioning_provider_register(provisioning_by_profile)
        # A blocked-prefix change (rating, below the edge) is pushed to the nodes on commit.
        blocked_prefixes_listener_register(blocked_prefixes_changed)
        # /health/ names the edge nodes that do not answer (core cannot import the edge).
        health_check_register("edge", edge_health_check)
