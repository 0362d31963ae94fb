"""Saved searches of the archive: a person's named query and filters, to run again later."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

__all__ = ["SavedSearch"]


class SavedSearch(models.Model):
    """A search of the archive that one person saved under a name: the query text and the
    filters, exactly as they typed them. Only its owner sees it."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="saved_searches"
    )
    name = models.CharField(max_length=100)
    query = models.CharField(max_length=500, blank=True)
    filters = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        app_label = "archive"
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["owner", "name"],
                name="archive_savedsearch_unique_name",
                violation_error_message="You already have a saved search with this name.",
            )
        ]

    def __str__(self) -> str:
        return f"saved search {self.name!r}"
