from typing import Any

from django.apps import AppConfig


def on_records_archived(sender: Any, **kwargs: Any) -> None:
    """Receiver of ``records_archived``: a kick only (the cursor catches up), never raising."""
    try:
        from vetline.publishing.tasks import kick_follow_archive

        kick_follow_archive()
    except Exception:  # the periodic tick catches up
        import logging

        logging.getLogger(__name__).exception("publishing.follow_archive.kick_failed")


class PublishingConfig(AppConfig):
    name = "vetline.publishing"
    label = "publishing"
    verbose_name = "Publishing: drafts, approvals, schedule, freeze, rogue posts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from vetline.archive.signals import records_archived
        from vetline.publishing import actions  # noqa: F401  (registers draft revisions)

        records_archived.connect(on_records_archived, dispatch_uid="publishing.follow_archive")
