from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from vetline.identity.roles import Capability


class Network(models.TextChoices):
    X = "x", "X"
    LINKEDIN = "linkedin", "LinkedIn"
    FACEBOOK = "facebook", "Facebook"
    INSTAGRAM = "instagram", "Instagram"
    MASTODON = "mastodon", "Mastodon"
    BLUESKY = "bluesky", "Bluesky"
    INTERNAL = "internal", "Internal network"
    # The training network built into Vetline (vetline.connectors.sandbox): not a real network.
    SANDBOX = "sandbox", "Sandbox (training)"


class AccountKind(models.TextChoices):
    CORPORATE = "corporate", "Corporate"
    EMPLOYEE = "employee", "Employee (personal-for-business)"


class OrgSettings(models.Model):
    """Organisation-wide settings, one row. Changed only by administrators, always audited."""

    name = models.CharField(max_length=200, default="Vetline")
    default_publisher_cap = models.PositiveIntegerField(default=10)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "organisation settings"
        verbose_name_plural = "organisation settings"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(default_publisher_cap__gte=1),
                name="accounts_orgsettings_cap_positive",
                violation_error_message="The publisher cap must be at least 1.",
            )
        ]

    def __str__(self) -> str:
        return self.name

    @classmethod
    def load(cls) -> OrgSettings:
        obj, _ = cls.objects.get_or_create(
            pk=1, defaults={"default_publisher_cap": settings.VETLINE_DEFAULT_PUBLISHER_CAP}
        )
        return obj


class SocialAccount(models.Model):
    """An account on a social network that speaks for the firm (corporate) or that an employee
    uses for business (personal-for-business). Everything Vetline does is by account."""

    network = models.CharField(max_length=20, choices=Network.choices)
    handle = models.CharField(max_length=200)
    display_name = models.CharField(max_length=200, blank=True)
    kind = models.CharField(max_length=20, choices=AccountKind.choices)
    owner = models.ForeignKey(
        "identity.Person", on_delete=models.PROTECT, related_name="owned_accounts"
    )
    business_unit = models.CharField(max_length=120, blank=True)
    # Null means "use the organisation default". Only meaningful for corporate accounts.
    publisher_cap = models.PositiveIntegerField(null=True, blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["network", "handle"]
        constraints = [
            models.UniqueConstraint(
                fields=["network", "handle"],
                name="accounts_socialaccount_unique_handle",
                violation_error_message="This account is already registered on that network.",
            ),
            models.CheckConstraint(
                condition=models.Q(publisher_cap__isnull=True) | models.Q(publisher_cap__gte=1),
                name="accounts_socialaccount_cap_positive",
                violation_error_message="The publisher cap must be at least 1.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_network_display()} {self.handle}"

    @property
    def is_corporate(self) -> bool:
        return self.kind == AccountKind.CORPORATE

    def effective_publisher_cap(self, org: OrgSettings | None = None) -> int:
        if self.publisher_cap is not None:
            return self.publisher_cap
        return (org or OrgSettings.load()).default_publisher_cap


class Assignment(models.Model):
    """A person allowed to act on one account for one capability (publish, approve, reply)."""

    account = models.ForeignKey(SocialAccount, on_delete=models.PROTECT, related_name="assignments")
    person = models.ForeignKey(
        "identity.Person", on_delete=models.PROTECT, related_name="assignments"
    )
    capability = models.CharField(max_length=20, choices=[(c.value, c.value) for c in Capability])
    assigned_by = models.ForeignKey(
        "identity.Person", null=True, on_delete=models.PROTECT, related_name="+"
    )
    assigned_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["capability", "person__full_name"]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "person", "capability"],
                name="accounts_assignment_unique",
                violation_error_message="This person already has that capability on the account.",
            )
        ]

    def __str__(self) -> str:
        return f"{self.person} may {self.capability} on {self.account}"


class CredentialKind(models.TextChoices):
    ACCESS_TOKEN = "access_token", "OAuth access token"
    REFRESH_TOKEN = "refresh_token", "OAuth refresh token"
    APP_PASSWORD = "app_password", "App password"
    API_KEY = "api_key", "API key and secret"


class Credential(models.Model):
    """A network credential held by Vetline so that nobody shares a password.

    The secret is encrypted with the vault key and can only be set, replaced or revoked: it is
    never shown again. Revoking wipes the ciphertext at once; the row stays as history.
    """

    account = models.ForeignKey(SocialAccount, on_delete=models.PROTECT, related_name="credentials")
    kind = models.CharField(max_length=20, choices=CredentialKind.choices)
    ciphertext = models.BinaryField(null=True, editable=False)
    key_id = models.CharField(max_length=12, blank=True)
    set_by = models.ForeignKey("identity.Person", on_delete=models.PROTECT, related_name="+")
    set_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        "identity.Person", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-set_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "kind"],
                condition=models.Q(revoked_at__isnull=True),
                name="accounts_credential_one_active_per_kind",
                violation_error_message="This account already has an active credential of "
                "that kind; replace it instead.",
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} for {self.account}"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None
