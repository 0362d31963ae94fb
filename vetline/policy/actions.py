"""Writes to policies: every edit is a new immutable version, validated by compiling it."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path
from typing import Any

import yaml
from django.db import IntegrityError, transaction

from vetline.audit.actions import record
from vetline.core.errors import Conflict, ValidationFailed
from vetline.identity.models import Person
from vetline.identity.permissions import require
from vetline.identity.roles import Perm
from vetline.policy.engine import PolicyError, load_policy_yaml
from vetline.policy.models import Policy, PolicyVersion
from vetline.policy.selectors import compile_with_version

MAX_YAML_CHARS = 2_000_000


def _validate(spec_yaml: str) -> dict[str, Any]:
    if len(spec_yaml) > MAX_YAML_CHARS:
        raise ValidationFailed("The policy is too large (2 MB at most).", field="spec_yaml")
    try:
        data = load_policy_yaml(spec_yaml)
    except PolicyError as exc:
        raise ValidationFailed(f"The YAML does not parse: {exc}", field="spec_yaml") from exc
    except yaml.YAMLError as exc:
        raise ValidationFailed(f"The YAML does not parse: {exc}", field="spec_yaml") from exc
    if not isinstance(data, dict):
        raise ValidationFailed("A policy is a YAML mapping with name and rules.", field="spec_yaml")
    for rule in data.get("rules") or []:
        if isinstance(rule, dict) and "deny_domains_file" in rule:
            # A stored version must be self-contained (and must not read server files).
            raise ValidationFailed(
                f"Rule {rule.get('id')!r}: deny_domains_file is not allowed in a stored policy; "
                "list the domains under deny_domains, or use “Import known-bad domains”.",
                field="spec_yaml",
            )
    return data


def _check_compiles(spec_yaml: str, name: str, number: int) -> int:
    try:
        engine = compile_with_version(spec_yaml, name, number)
    except PolicyError as exc:
        raise ValidationFailed(str(exc), field="spec_yaml") from exc
    except (ValueError, TypeError) as exc:
        raise ValidationFailed(f"The policy is not valid: {exc}", field="spec_yaml") from exc
    return len(engine.rules)


def create_policy(*, actor: Person, spec_yaml: str, note: str = "") -> Policy:
    """Create a policy from YAML (import). Its name comes from the YAML's ``name``."""
    require(actor, Perm.POLICY_MANAGE)
    data = _validate(spec_yaml)
    name = str(data.get("name") or "").strip()
    if not name or not name.replace("_", "-").replace("-", "").isalnum() or len(name) > 100:
        raise ValidationFailed(
            "The policy needs a name of letters, digits, - and _ (100 characters at most).",
            field="spec_yaml",
        )
    rules = _check_compiles(spec_yaml, name, 1)
    with transaction.atomic():
        if Policy.objects.filter(name=name).exists():
            raise Conflict(
                f"A policy named {name!r} exists; save a new version of it instead.",
                field="spec_yaml",
            )
        policy = Policy.objects.create(
            name=name,
            description=str(data.get("description") or ""),
            is_default=not Policy.objects.exists(),
        )
        version = _new_version(policy, actor, spec_yaml, note or "Created", 1)
        record(
            action="policy.policy.create",
            actor=actor,
            obj=policy,
            after={
                "version": version.number,
                "rules": rules,
                "sha256": version.spec_sha256,
                "default": policy.is_default,
            },
        )
    return policy


def _new_version(
    policy: Policy, actor: Person | None, spec_yaml: str, note: str, number: int
) -> PolicyVersion:
    return PolicyVersion.objects.create(
        policy=policy,
        number=number,
        spec_yaml=spec_yaml,
        spec_sha256=hashlib.sha256(spec_yaml.encode()).hexdigest(),
        note=note.strip()[:500],
        created_by=actor,
    )


def save_policy_version(
    *, actor: Person, policy: Policy, spec_yaml: str, note: str, based_on: int | None = None
) -> PolicyVersion:
    """Save an edit as the next version. ``based_on`` (the version the editor started from)
    refuses the save if someone else saved a version in between, so no edit is lost."""
    require(actor, Perm.POLICY_MANAGE)
    if not note.strip():
        raise ValidationFailed("Say what changed and why.", field="note")
    data = _validate(spec_yaml)
    if str(data.get("name", policy.name)) != policy.name:
        raise ValidationFailed(
            f"The YAML names policy {data.get('name')!r}, not {policy.name!r}.", field="spec_yaml"
        )
    with transaction.atomic():
        policy = Policy.objects.select_for_update().get(pk=policy.pk)
        current = policy.current_version()
        if based_on is not None and based_on != current.number:
            raise Conflict(
                f"Version {current.number} was saved by {current.created_by} while you were "
                f"editing version {based_on}. Reload, and apply your change to it.",
                field="spec_yaml",
            )
        if spec_yaml == current.spec_yaml:
            raise ValidationFailed("Nothing changed.", field="spec_yaml")
        rules = _check_compiles(spec_yaml, policy.name, current.number + 1)
        try:
            version = _new_version(policy, actor, spec_yaml, note, current.number + 1)
        except IntegrityError as exc:  # pragma: no cover - guarded by the row lock
            raise Conflict("Another version was saved at the same moment.") from exc
        record(
            action="policy.version.create",
            actor=actor,
            obj=policy,
            before={"version": current.number, "sha256": current.spec_sha256},
            after={
                "version": version.number,
                "sha256": version.spec_sha256,
                "rules": rules,
                "note": version.note,
            },
        )
    return version


def set_default_policy(*, actor: Person, policy: Policy) -> Policy:
    require(actor, Perm.POLICY_MANAGE)
    with transaction.atomic():
        previous = Policy.objects.select_for_update().filter(is_default=True).first()
        if previous and previous.pk == policy.pk:
            return policy
        Policy.objects.filter(is_default=True).update(is_default=False)
        Policy.objects.filter(pk=policy.pk).update(is_default=True)
        record(
            action="policy.policy.set_default",
            actor=actor,
            obj=policy,
            before={"default": previous.name if previous else None},
            after={"default": policy.name},
        )
    policy.refresh_from_db()
    return policy


def _dump(data: dict[str, Any]) -> str:
    return yaml.safe_dump(_plain(data), sort_keys=False, allow_unicode=True, width=100)


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def set_rule_draft(*, actor: Person, policy: Policy, rule_id: str, draft: bool) -> PolicyVersion:
    """Mark a rule as draft (evaluated, shown, but not enforcing) or make it enforce."""
    base = policy.current_version()
    data = _validate(base.spec_yaml)
    rules = data.get("rules") or []
    match = [r for r in rules if isinstance(r, dict) and r.get("id") == rule_id]
    if not match:
        raise ValidationFailed(f"No rule {rule_id!r} in {policy.name}.", field="rule")
    match[0]["draft"] = draft
    state = "draft (not enforcing)" if draft else "enforcing"
    return save_policy_version(
        actor=actor,
        policy=policy,
        spec_yaml=_dump(data),
        note=f"Rule {rule_id} set to {state}",
        based_on=base.number,
    )


def add_sensitive_event(
    *,
    actor: Person,
    policy: Policy,
    name: str,
    keywords: list[str],
    hashtags: list[str],
    start: dt.date | None,
    end: dt.date | None,
) -> PolicyVersion:
    """Add a named sensitive event (a hurricane, an attack) with its active window."""
    name = name.strip()
    keywords = [k.strip() for k in keywords if k.strip()]
    hashtags = [h.strip().lstrip("#") for h in hashtags if h.strip().lstrip("#")]
    if not name:
        raise ValidationFailed("Name the event.", field="name")
    if not keywords and not hashtags:
        raise ValidationFailed("Give at least one keyword or hashtag.", field="keywords")
    if start and end and end < start:
        raise ValidationFailed("The window ends before it starts.", field="end")
    base = policy.current_version()
    data = _validate(base.spec_yaml)
    event: dict[str, Any] = {"name": name, "keywords": keywords, "hashtags": hashtags}
    if start:
        event["start"] = start.isoformat()
    if end:
        event["end"] = end.isoformat()
    data.setdefault("events", [])
    data["events"] = [*list(data["events"] or []), event]
    return save_policy_version(
        actor=actor,
        policy=policy,
        spec_yaml=_dump(data),
        note=f"Sensitive event added: {name}",
        based_on=base.number,
    )


def import_bad_domains(
    *, actor: Person, policy: Policy, rule_id: str, file_text: str
) -> PolicyVersion:
    """Add the domains of a known-bad list (one per line, hosts-file lines or URLs; # comments)
    to a links rule, as a new version."""
    from vetline.policy.engine.links import load_domain_list

    domains = load_domain_list(file_text)
    if not domains:
        raise ValidationFailed("The file lists no domains.", field="file")
    base = policy.current_version()
    data = _validate(base.spec_yaml)
    match = [
        r
        for r in data.get("rules") or []
        if isinstance(r, dict) and r.get("id") == rule_id and r.get("kind") == "links"
    ]
    if not match:
        raise ValidationFailed(f"No links rule {rule_id!r} in {policy.name}.", field="rule")
    existing = list(match[0].get("deny_domains") or [])
    added = [d for d in dict.fromkeys(domains) if d not in existing]
    match[0]["deny_domains"] = existing + added
    return save_policy_version(
        actor=actor,
        policy=policy,
        spec_yaml=_dump(data),
        note=f"Imported {len(added)} known-bad domains into {rule_id}",
        based_on=base.number,
    )


def _inline_domain_files(spec: str, base_dir: Path) -> str:
    """Packs ship their known-bad list as a file; a stored version carries the list itself."""
    import json
    import re

    from vetline.policy.engine.links import load_domain_list

    def replace(m: re.Match[str]) -> str:
        domains = load_domain_list((base_dir / m.group(2)).read_text(encoding="utf-8"))
        return f"{m.group(1)}deny_domains: {json.dumps(domains)}"

    return re.sub(r"(?m)^(\s*)deny_domains_file:\s*(\S+)\s*$", replace, spec)


def install_pack(*, actor: Person | None, pack: str, default: bool = False) -> Policy:
    """Install a built-in pack (used by setup and the demo). Idempotent by name."""
    from vetline.policy.engine import pack_path

    path = pack_path(pack)
    spec = _inline_domain_files(path.read_text(encoding="utf-8"), path.parent)
    name = str(load_policy_yaml(spec).get("name"))
    existing = Policy.objects.filter(name=name).first()
    if existing:
        return existing
    _check_compiles(spec, name, 1)
    with transaction.atomic():
        if default:
            Policy.objects.filter(is_default=True).update(is_default=False)
        policy = Policy.objects.create(
            name=name,
            is_default=default or not Policy.objects.exists(),
            description=str(load_policy_yaml(spec).get("description") or ""),
        )
        version = _new_version(policy, actor, spec, f"Built-in pack {pack}", 1)
        record(
            action="policy.policy.create",
            actor=actor,
            actor_name="" if actor else "setup",
            obj=policy,
            after={"version": 1, "pack": pack, "sha256": version.spec_sha256},
        )
    return policy
