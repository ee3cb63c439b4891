import django_filters

from apps.audit.models import AuditEvent
from apps.core.filters import IsoDateTimeFilter


class AuditEventFilter(django_filters.FilterSet):
    action = django_filters.CharFilter(help_text="Exact action, e.g. member.role_changed.")
    action_prefix = django_filters.CharFilter(
        field_name="action", lookup_expr="startswith", help_text="e.g. member. or auth."
    )
    actor = django_filters.CharFilter(
        field_name="actor_label", lookup_expr="icontains", help_text="Part of the actor's e-mail or key name."
    )
    object_type = django_filters.CharFilter()
    object_id = django_filters.CharFilter()
    since = IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    until = IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = AuditEvent
        fields = ["action", "action_prefix", "actor", "object_type", "object_id", "since", "until"]
