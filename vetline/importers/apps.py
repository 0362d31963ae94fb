from django.apps import AppConfig


class ImportersConfig(AppConfig):
    name = "vetline.importers"
    label = "importers"
    verbose_name = "Platform export importers"
    default_auto_field = "django.db.models.BigAutoField"
