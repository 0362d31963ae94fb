from django.apps import AppConfig


class ConnectorsConfig(AppConfig):
    name = "vetline.connectors"
    label = "connectors"
    verbose_name = "Network connectors"
    default_auto_field = "django.db.models.BigAutoField"
