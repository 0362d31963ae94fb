from __future__ import annotations

from django.db import models
from django.utils import timezone


class WorkerHeartbeat(models.Model):
    """When each background worker last ran its periodic heartbeat, so operators can see on the
    dashboard that scheduled work is actually running. Operational telemetry, not a record."""

    worker = models.CharField(max_length=200, unique=True)
    last_seen_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.worker} @ {self.last_seen_at:%H:%M:%S}"
