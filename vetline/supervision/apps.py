from django.apps import AppConfig


class SupervisionConfig(AppConfig):
    name = "vetline.supervision"
    label = "supervision"
    verbose_name = "Supervision: flags, sampling, review queues, reports"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from vetline.archive.signals import records_archived
        from vetline.supervision.tasks import on_records_archived

        records_archived.connect(on_records_archived, dispatch_uid="supervision-follow-records")
