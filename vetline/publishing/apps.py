from django.apps import AppConfig


class PublishingConfig(AppConfig):
    name = "vetline.publishing"
    label = "publishing"
    verbose_name = "Publishing: drafts, approvals, schedule, freeze, rogue posts"
    default_auto_field = "django.db.models.BigAutoField"
