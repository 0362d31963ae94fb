"""Screening, as every module calls it, and reads of policies.

``screen_text`` is the one entry point: publishing, supervision, profile vetting and the API
all call it. Compiled policies are cached per version (versions are immutable, so the cache
never goes stale).
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from vetline.core.errors import NotFound, ValidationFailed
from vetline.policy.engine import CompiledPolicy, Scope, ScreeningResult, compile_policy
from vetline.policy.models import Policy, PolicyVersion

_CACHE_SIZE = 32
_cache: OrderedDict[tuple[int, str], CompiledPolicy] = OrderedDict()
_lock = threading.Lock()


def compiled(version: PolicyVersion) -> CompiledPolicy:
    key = (version.pk, version.spec_sha256)
    with _lock:
        hit = _cache.get(key)
        if hit is not None:
            _cache.move_to_end(key)
            return hit
    policy = compile_with_version(version.spec_yaml, version.policy.name, version.number)
    with _lock:
        _cache[key] = policy
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return policy


def compile_with_version(spec_yaml: str, name: str, number: int) -> CompiledPolicy:
    """Compile stored YAML, with the server-assigned name and version number."""
    from vetline.policy.engine import load_policy_yaml

    data = load_policy_yaml(spec_yaml)
    data["name"] = name
    data["version"] = number
    return compile_policy(data)


def get_policy(name: str) -> Policy:
    policy = Policy.objects.filter(name=name).first()
    if policy is None:
        raise NotFound(f"No policy named {name!r}.")
    return policy


def default_policy() -> Policy:
    policy = Policy.objects.filter(is_default=True).first() or Policy.objects.first()
    if policy is None:
        raise NotFound("No policy is installed. A compliance officer must create one.")
    return policy


MAX_SCREEN_CHARS = 200_000


def screen_text(
    *,
    text: str,
    scope: Scope | str = Scope.OUTBOUND_POST,
    policy: Policy | str | None = None,
    rule_ids: list[str] | None = None,
) -> ScreeningResult:
    """Screen ``text`` with the current version of ``policy`` (default: the default policy)."""
    if isinstance(policy, str):
        policy = get_policy(policy)
    policy = policy or default_policy()
    try:
        scope = Scope.parse(scope)
    except ValueError as exc:
        raise ValidationFailed(str(exc), field="scope") from exc
    if len(text) > MAX_SCREEN_CHARS:
        raise ValidationFailed(
            f"The text is too long to screen ({len(text):,} characters; at most "
            f"{MAX_SCREEN_CHARS:,}).",
            field="text",
        )
    engine = compiled(policy.current_version())
    if rule_ids:
        unknown = set(rule_ids) - engine.rules_by_id.keys()
        if unknown:
            raise ValidationFailed(f"Unknown rule: {', '.join(sorted(unknown))}.", field="rule")
    return engine.screen(text, scope, rule_ids=rule_ids or None)


def get_version(name: str, number: int) -> PolicyVersion:
    version = PolicyVersion.objects.filter(policy__name=name, number=number).first()
    if version is None:
        raise NotFound(f"No version {number} of {name!r}.")
    return version


def diff_versions(older: PolicyVersion | None, newer: PolicyVersion) -> list[tuple[str, str]]:
    """A unified diff as (kind, line) pairs: kind is add, del, hunk or ctx."""
    import difflib

    before = older.spec_yaml.splitlines() if older else []
    lines = difflib.unified_diff(
        before,
        newer.spec_yaml.splitlines(),
        fromfile=f"v{older.number}" if older else "(none)",
        tofile=f"v{newer.number}",
        lineterm="",
        n=3,
    )
    out = []
    for line in lines:
        if line.startswith(("+++", "---")):
            kind = "file"
        elif line.startswith("@@"):
            kind = "hunk"
        elif line.startswith("+"):
            kind = "add"
        elif line.startswith("-"):
            kind = "del"
        else:
            kind = "ctx"
        out.append((kind, line))
    return out
