"""Connections of registered accounts to their networks, consent links, capture state and
alerts."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from vetline.connectors.states import STREAM_LABELS, ConnectionState, StreamState


class Connection(models.Model):
    """Vetline's authorised access to one registered account on its network. The tokens are in
    the credentials vault (``accounts.Credential``); this row says what state the access is in,
    what it allows and until when. One per account, reused when the account is reconnected."""

    account = models.OneToOneField(
        "accounts.SocialAccount", on_delete=models.PROTECT, related_name="connection"
    )
    status = models.CharField(
        max_length=20,
        choices=[(s.value, s.label) for s in ConnectionState],
        default=ConnectionState.PENDING.value,
    )
    scopes = models.JSONField(default=list, blank=True)
    token_expires_at = models.DateTimeField(null=True, blank=True)
    remote_account_id = models.CharField(max_length=200, blank=True)
    connected_by = models.ForeignKey(
        "identity.Person", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    connected_at = models.DateTimeField(null=True, blank=True)
    status_changed_at = models.DateTimeField(default=timezone.now)
    status_reason = models.CharField(max_length=500, blank=True)
    # The OAuth flow in progress: who started it, the hash of its state parameter, and the
    # PKCE verifier encrypted with the vault key.
    pending_by = models.ForeignKey(
        "identity.Person", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    oauth_state_sha256 = models.CharField(max_length=64, blank=True)
    oauth_verifier_ciphertext = models.BinaryField(null=True, editable=False)
    oauth_started_at = models.DateTimeField(null=True, blank=True)
    # What the granted access actually allows (``CapabilityReport.as_dict()``: allowed,
    # missing with reasons, server facts), from the connector's probe after connecting.
    capability_report = models.JSONField(default=dict, blank=True)
    capability_checked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["account_id"]

    def __str__(self) -> str:
        return f"Connection of {self.account} ({self.status})"

    @property
    def state(self) -> ConnectionState:
        return ConnectionState(self.status)


class ConsentLink(models.Model):
    """A signed, expiring, single-use link sent to an employee so that they connect their own
    personal-for-business account themselves: nobody else sees their password."""

    account = models.ForeignKey(
        "accounts.SocialAccount", on_delete=models.PROTECT, related_name="consent_links"
    )
    person = models.ForeignKey("identity.Person", on_delete=models.PROTECT, related_name="+")
    nonce_sha256 = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey("identity.Person", on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Consent link for {self.account} to {self.person}"


class CaptureState(models.Model):
    """Where capture of one account stands: the network's cursor (advanced only in the same
    transaction as the archiving of the items before it) and its health."""

    account = models.OneToOneField(
        "accounts.SocialAccount", on_delete=models.PROTECT, related_name="capture_state"
    )
    cursor = models.TextField(blank=True)
    has_cursor = models.BooleanField(default=False)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=1000, blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    items_captured = models.PositiveBigIntegerField(default=0)
    items_quarantined = models.PositiveBigIntegerField(default=0)
    retry_not_before = models.DateTimeField(null=True, blank=True)
    # Streaming capture (``vetline stream``): what the supervisor is doing for the account,
    # since when, when the stream last delivered something, and its last heartbeat (a stale
    # heartbeat means no supervisor is running it any more).
    stream_status = models.CharField(
        max_length=20,
        blank=True,
        choices=[(s.value, STREAM_LABELS[s]) for s in StreamState],
        default=StreamState.NONE.value,
    )
    stream_status_changed_at = models.DateTimeField(null=True, blank=True)
    stream_last_event_at = models.DateTimeField(null=True, blank=True)
    stream_heartbeat_at = models.DateTimeField(null=True, blank=True)
    stream_error = models.CharField(max_length=1000, blank=True)

    def __str__(self) -> str:
        return f"Capture of {self.account}"

    def streaming_now(self, now: object = None, *, stale_seconds: int = 120) -> bool:
        """Whether a stream supervisor is streaming this account (fresh heartbeat)."""
        if self.stream_status != StreamState.STREAMING or self.stream_heartbeat_at is None:
            return False
        current = now if now is not None else timezone.now()
        age = (current - self.stream_heartbeat_at).total_seconds()  # type: ignore[operator]
        return bool(age <= stale_seconds)

    def lag_seconds(self, now: object = None) -> int | None:
        if self.last_success_at is None:
            return None
        current = now if now is not None else timezone.now()
        return max(0, int((current - self.last_success_at).total_seconds()))  # type: ignore[operator]


class AlertSeverity(models.TextChoices):
    INFO = "info", "Information"
    WARNING = "warning", "Warning"
    CRITICAL = "critical", "Critical"


class Alert(models.Model):
    """Something people must act on, such as capture of an account having stopped. Shown in the
    app to its recipients (the account's owner and compliance officers) and e-mailed."""

    code = models.CharField(max_length=60)
    severity = models.CharField(max_length=10, choices=AlertSeverity.choices)
    account = models.ForeignKey(
        "accounts.SocialAccount",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="alerts",
    )
    title = models.CharField(max_length=300)
    body = models.TextField(blank=True)
    link = models.CharField(
        max_length=300, blank=True, help_text="The page where people act on it (a path)."
    )
    created_at = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True)
    recipients = models.ManyToManyField(
        "identity.Person", through="AlertRecipient", related_name="alerts"
    )

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "code"],
                condition=models.Q(resolved_at__isnull=True),
                name="connectors_alert_one_open_per_account_code",
                violation_error_message="This alert is already open for the account.",
            )
        ]

    def __str__(self) -> str:
        return self.title


class AlertRecipient(models.Model):
    """One person an alert is for, and whether they have read it."""

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="deliveries")
    person = models.ForeignKey("identity.Person", on_delete=models.PROTECT, related_name="+")
    read_at = models.DateTimeField(null=True, blank=True)
    emailed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["alert", "person"],
                name="connectors_alertrecipient_unique",
                violation_error_message="This person already receives the alert.",
            )
        ]

    def __str__(self) -> str:
        return f"{self.alert} to {self.person}"
