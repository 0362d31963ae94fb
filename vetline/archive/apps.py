from django.apps import AppConfig


class ArchiveConfig(AppConfig):
    name = "vetline.archive"
    label = "archive"
    verbose_name = "Archive"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from vetline.archive import checks  # noqa: F401  (registers the system checks)
        from vetline.archive.retention_tasks import on_records_archived
        from vetline.archive.signals import records_archived

        records_archived.connect(on_records_archived, dispatch_uid="archive-blob-legal-holds")
