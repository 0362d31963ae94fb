from django.apps import AppConfig


class ProfilesConfig(AppConfig):
    name = "vetline.profiles"
    label = "profiles"
    verbose_name = "Profile vetting and drift"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from vetline.archive.signals import records_archived
        from vetline.profiles.tasks import on_records_archived

        records_archived.connect(on_records_archived, dispatch_uid="profiles.drift")
        from vetline.profiles.approval import register

        register()
