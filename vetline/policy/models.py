from __future__ import annotations

from typing import Any, NoReturn

from django.db import models
from django.utils import timezone


class Policy(models.Model):
    """A named content policy (e.g. "financial_services"). Its rules live in immutable
    versions; the policy itself only says which one is the organisation's default."""

    name = models.SlugField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    is_default = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "policies"
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"],
                condition=models.Q(is_default=True),
                name="policy_policy_one_default",
                violation_error_message="Only one policy can be the default.",
            )
        ]

    def __str__(self) -> str:
        return self.name

    def current_version(self) -> PolicyVersion:
        version = self.versions.order_by("-number").first()
        if version is None:  # pragma: no cover - every policy is created with a version
            raise PolicyVersion.DoesNotExist(f"{self.name} has no version")
        return version


class PolicyVersion(models.Model):
    """One immutable version of a policy: the exact YAML that was saved, who saved it and why.

    Every screening result names the policy and version number it used, so a verdict can always
    be traced to the rule text that produced it. Versions are never changed or deleted.
    """

    policy = models.ForeignKey(Policy, on_delete=models.PROTECT, related_name="versions")
    number = models.PositiveIntegerField()
    spec_yaml = models.TextField()
    spec_sha256 = models.CharField(max_length=64)
    note = models.CharField(max_length=500, blank=True)
    created_by = models.ForeignKey(
        "identity.Person", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["policy", "-number"]
        constraints = [
            models.UniqueConstraint(
                fields=["policy", "number"],
                name="policy_version_unique_number",
                violation_error_message="This version number already exists.",
            )
        ]

    def __str__(self) -> str:
        return f"{self.policy.name} v{self.number}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise RuntimeError("Policy versions are immutable; save a new version instead.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise RuntimeError("Policy versions are never deleted.")
