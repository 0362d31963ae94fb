from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "vetline.core"
    label = "core"
    verbose_name = "Vetline core"

    def ready(self) -> None:
        from vetline.core import checks  # noqa: F401  (registers the system checks)
