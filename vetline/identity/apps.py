from django.apps import AppConfig


class IdentityConfig(AppConfig):
    name = "vetline.identity"
    label = "identity"
    verbose_name = "People and roles"

    def ready(self) -> None:
        from vetline.identity import signals  # noqa: F401  (connects sign-in audit receivers)
