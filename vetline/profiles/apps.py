from django.apps import AppConfig


class ProfilesConfig(AppConfig):
    name = "vetline.profiles"
    label = "profiles"
    verbose_name = "Profile vetting and drift"
    default_auto_field = "django.db.models.BigAutoField"
