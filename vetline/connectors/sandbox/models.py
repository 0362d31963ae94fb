"""The sandbox network's own storage: its accounts, timelines, customers' replies and DMs, and
the event log its API serves capture from. Nothing here is archived directly: the sandbox is
captured through its connector like any other network."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class SandboxAccount(models.Model):
    """An account on the sandbox network (ours, or a simulated customer's)."""

    handle = models.CharField(max_length=200, unique=True)
    display_name = models.TextField(blank=True)  # anything, HTML included: rendered escaped
    bio = models.TextField(blank=True)
    is_customer = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    access_token_sha256 = models.CharField(max_length=64, blank=True)
    refresh_token_sha256 = models.CharField(max_length=64, blank=True)
    token_expires_at = models.DateTimeField(null=True, blank=True)
    grant_revoked = models.BooleanField(default=False)
    scopes = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["handle"]

    def __str__(self) -> str:
        return f"Sandbox {self.handle}"


class PostKind(models.TextChoices):
    POST = "post", "Post"
    REPLY = "reply", "Reply"
    DIRECT_MESSAGE = "direct_message", "Direct message"


class SandboxPost(models.Model):
    """A post, reply or direct message on a sandbox timeline."""

    timeline = models.ForeignKey(SandboxAccount, on_delete=models.CASCADE, related_name="timeline")
    remote_id = models.CharField(max_length=40, unique=True)
    kind = models.CharField(max_length=20, choices=PostKind.choices)
    author = models.ForeignKey(SandboxAccount, on_delete=models.CASCADE, related_name="+")
    text = models.TextField(blank=True)
    in_reply_to = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="replies"
    )
    media_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    edited_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.kind} {self.remote_id}"


class SandboxEvent(models.Model):
    """Everything that happened on a timeline, in order; its id is the capture cursor. The
    payload is the bytes the sandbox's API returns for it, which may be anything at all (the
    hostile-input drills put invalid UTF-8 or 10 MB posts here)."""

    timeline = models.ForeignKey(SandboxAccount, on_delete=models.CASCADE, related_name="events")
    payload = models.BinaryField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"Sandbox event {self.pk}"
