from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "vetline.audit"
    label = "audit"
    verbose_name = "Audit trail"
