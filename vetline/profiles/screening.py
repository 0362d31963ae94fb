"""Screening a proposed profile with the active policy in the ``profile`` scope.

Each field is screened on its own, so every hit's offsets index that field's text and the
pages can highlight it in place. The revision keeps the whole result (policy name and version,
each field's hits) as it was when it was saved: approvers see what the author saw.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from vetline.core.errors import NotFound
from vetline.policy.engine.core import Scope, Severity
from vetline.policy.selectors import default_policy, screen_text

SCREENED_FIELDS: Final = ("display_name", "title", "bio", "links")
UNSCREENED: Final = "unscreened"
VERDICT_ORDER: Final = {"pass": 0, "info": 1, "warn": 2, "escalate": 3, "block": 4}


def field_texts(*, display_name: str, bio: str, title: str, links: Sequence[str]) -> dict[str, str]:
    return {"display_name": display_name, "title": title, "bio": bio, "links": "\n".join(links)}


def screen_profile(texts: Mapping[str, str]) -> dict[str, Any]:
    """``{"policy": {...}, "verdict": ..., "fields": {name: {"verdict", "hits"}}}``; the
    verdict is ``unscreened`` (with the reason) when no policy is installed."""
    try:
        policy = default_policy()
    except NotFound as exc:
        return {"verdict": UNSCREENED, "error": exc.message, "fields": {}}
    fields: dict[str, Any] = {}
    worst: Severity | None = None
    version: dict[str, Any] = {}
    for name in SCREENED_FIELDS:
        text = texts.get(name, "")
        if not text:
            continue
        result = screen_text(text=text, scope=Scope.PROFILE, policy=policy)
        version = {"name": result.policy_name, "version": result.policy_version}
        fields[name] = {
            "verdict": result.verdict_label,
            "hits": [hit.as_dict() for hit in result.hits],
        }
        if result.verdict is not None and (worst is None or result.verdict > worst):
            worst = result.verdict
    if not version:
        version = {"name": policy.name, "version": policy.current_version().number}
    return {
        "policy": version,
        "verdict": "pass" if worst is None else worst.label,
        "fields": fields,
    }


@dataclass(frozen=True, slots=True)
class StoredHit:
    """A hit as stored on a revision, with what the highlighter needs."""

    start: int
    end: int
    rule_id: str
    severity: str
    explanation: str
    matched_text: str
    draft: bool

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StoredHit:
        return cls(
            start=int(data.get("start", 0)),
            end=int(data.get("end", 0)),
            rule_id=str(data.get("rule_id", "")),
            severity=str(data.get("severity", "info")),
            explanation=str(data.get("explanation", "")),
            matched_text=str(data.get("matched_text", "")),
            draft=bool(data.get("draft", False)),
        )

    @property
    def rank(self) -> int:
        return VERDICT_ORDER.get(self.severity, 0)
