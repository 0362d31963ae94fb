"""Value types shared by the whole engine: severities, scopes, hits and results."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Hit", "PolicyError", "Scope", "ScreeningResult", "Severity"]


class Severity(enum.IntEnum):
    """How serious a hit is. Ordered: ``info < warn < escalate < block``."""

    INFO = 1
    WARN = 2
    ESCALATE = 3
    BLOCK = 4

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, value: str | int | Severity) -> Severity:
        if isinstance(value, Severity):
            return value
        if isinstance(value, int):
            return cls(value)
        try:
            return cls[str(value).strip().upper()]
        except KeyError:
            raise ValueError(
                f"{value!r} is not a severity; use one of {', '.join(s.label for s in cls)}"
            ) from None


class Scope(enum.StrEnum):
    """Where a text is going or where it was captured."""

    OUTBOUND_POST = "outbound_post"
    REPLY = "reply"
    PROFILE = "profile"
    INBOUND_COMMENT = "inbound_comment"
    DIRECT_MESSAGE = "direct_message"
    INTERNAL_POST = "internal_post"

    @classmethod
    def parse(cls, value: str | Scope) -> Scope:
        if isinstance(value, Scope):
            return value
        try:
            return cls(str(value).strip().lower())
        except ValueError:
            raise ValueError(
                f"{value!r} is not a scope; use one of {', '.join(s.value for s in cls)}"
            ) from None


VERDICT_PASS = "pass"


@dataclass(frozen=True, slots=True)
class Hit:
    """One rule firing on one stretch of the original text."""

    rule_id: str
    kind: str
    severity: Severity
    policy_name: str
    policy_version: int
    start: int
    end: int
    matched_text: str
    explanation: str
    draft: bool = False
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def span(self) -> tuple[int, int]:
        return self.start, self.end

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule_id": self.rule_id,
            "kind": self.kind,
            "severity": self.severity.label,
            "policy": {"name": self.policy_name, "version": self.policy_version},
            "start": self.start,
            "end": self.end,
            "matched_text": self.matched_text,
            "explanation": self.explanation,
            "draft": self.draft,
            "details": dict(self.details),
        }


@dataclass(frozen=True, slots=True)
class ScreeningResult:
    """The verdict on one text: the highest enforcing severity, plus every hit.

    Draft rules produce hits (so their behaviour can be observed) but never raise the verdict.
    """

    policy_name: str
    policy_version: int
    scope: Scope
    verdict: Severity | None
    hits: tuple[Hit, ...]
    signals: Mapping[str, Any] = field(default_factory=dict)

    @property
    def verdict_label(self) -> str:
        return VERDICT_PASS if self.verdict is None else self.verdict.label

    @property
    def enforcing_hits(self) -> tuple[Hit, ...]:
        return tuple(hit for hit in self.hits if not hit.draft)

    @property
    def rule_ids(self) -> frozenset[str]:
        return frozenset(hit.rule_id for hit in self.hits if not hit.draft)

    def as_dict(self) -> dict[str, Any]:
        return {
            "policy": {"name": self.policy_name, "version": self.policy_version},
            "scope": self.scope.value,
            "verdict": self.verdict_label,
            "hits": [hit.as_dict() for hit in self.hits],
            "signals": dict(self.signals),
        }


class PolicyError(ValueError):
    """A policy specification is invalid. Names the field and, from YAML, the line."""

    def __init__(self, message: str, *, field: str = "", line: int | None = None) -> None:
        self.field = field
        self.line = line
        self.reason = message
        prefix = ""
        if line is not None:
            prefix += f"line {line}: "
        if field:
            prefix += f"{field}: "
        super().__init__(prefix + message)
