from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "apps.audit"
    label = "audit"
    verbose_name = "Audit log"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Lazy (AppConfig.ready): apps.py is imported before the models are loaded.
        from apps.audit.services import audit_record
        from apps.core.import_jobs import import_audit_register

        # The staff CSV imports' pipeline (in core, below audit) writes its events through it.
        import_audit_register(audit_record)
