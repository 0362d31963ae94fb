from django.apps import AppConfig


class SandboxConfig(AppConfig):
    name = "vetline.connectors.sandbox"
    label = "sandbox"
    verbose_name = "Training sandbox network"
    default_auto_field = "django.db.models.BigAutoField"
