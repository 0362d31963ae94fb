from django.apps import AppConfig


class ArchiveConfig(AppConfig):
    name = "vetline.archive"
    label = "archive"
    verbose_name = "Archive"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from vetline.archive import checks  # noqa: F401  (registers the system checks)
