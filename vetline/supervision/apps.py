from django.apps import AppConfig


class SupervisionConfig(AppConfig):
    name = "vetline.supervision"
    label = "supervision"
    verbose_name = "Supervision: flags, sampling, review queues, reports"
    default_auto_field = "django.db.models.BigAutoField"
