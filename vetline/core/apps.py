from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "vetline.core"
    label = "core"
    verbose_name = "Vetline core"
