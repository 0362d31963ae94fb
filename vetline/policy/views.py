from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from vetline.core.forms import errors_as_text
from vetline.core.views_support import run_and_flash, run_for_form
from vetline.identity.models import Person
from vetline.identity.permissions import require
from vetline.identity.roles import Perm
from vetline.policy import actions, selectors
from vetline.policy.forms import (
    BadDomainsForm,
    EventForm,
    PolicyEditForm,
    PolicyImportForm,
    ScreenForm,
)
from vetline.policy.highlight import segments
from vetline.policy.models import Policy, PolicyVersion


def _user(request: HttpRequest) -> Person:
    return request.user  # type: ignore[return-value]


def _viewable(request: HttpRequest, name: str) -> Policy:
    require(_user(request), Perm.POLICY_VIEW)
    return selectors.get_policy(name)


def _split(raw: str) -> list[str]:
    return [p.strip() for p in raw.split(",") if p.strip()]


@login_required
def policy_list(request: HttpRequest) -> HttpResponse:
    require(_user(request), Perm.POLICY_VIEW)
    policies = [(p, p.current_version()) for p in Policy.objects.all()]
    return render(
        request,
        "policy/list.html",
        {
            "policies": policies,
            "can_manage": _user(request).can(Perm.POLICY_MANAGE),
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def policy_import(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    require(user, Perm.POLICY_MANAGE)
    form = PolicyImportForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        policy = run_for_form(
            request,
            lambda: actions.create_policy(
                actor=user, spec_yaml=form.cleaned_data["spec_yaml"], note="Imported"
            ),
            form=form,
            success=lambda p: f"Policy {p.name} created (version 1).",
        )
        if policy is not None:
            return redirect("policy:detail", policy.name)
    return render(request, "policy/import.html", {"form": form}, status=422 if form.errors else 200)


def _rules(policy: Policy) -> list[dict[str, Any]]:
    engine = selectors.compiled(policy.current_version())
    return [
        {
            "id": r.id,
            "kind": r.kind,
            "severity": r.severity.label,
            "draft": r.draft,
            "scopes": sorted(s.value for s in r.scopes),
            "explanation": r.explanation,
        }
        for r in engine.rules
    ]


@login_required
def policy_detail(request: HttpRequest, name: str) -> HttpResponse:
    policy = _viewable(request, name)
    rules = _rules(policy)
    version = policy.current_version()
    data = actions._validate(version.spec_yaml)
    return render(
        request,
        "policy/detail.html",
        {
            "policy": policy,
            "version": version,
            "rules": rules,
            "events": data.get("events") or [],
            "versions": policy.versions.select_related("created_by")[:50],
            "can_manage": _user(request).can(Perm.POLICY_MANAGE),
            "event_form": EventForm(),
            "domains_form": BadDomainsForm(
                link_rules=[r["id"] for r in rules if r["kind"] == "links"]
            ),
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def policy_edit(request: HttpRequest, name: str) -> HttpResponse:
    user = _user(request)
    require(user, Perm.POLICY_MANAGE)
    policy = selectors.get_policy(name)
    current = policy.current_version()
    form = PolicyEditForm(
        request.POST or None, initial={"spec_yaml": current.spec_yaml, "based_on": current.number}
    )
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        version = run_for_form(
            request,
            lambda: actions.save_policy_version(
                actor=user,
                policy=policy,
                spec_yaml=d["spec_yaml"],
                note=d["note"],
                based_on=d["based_on"],
            ),
            form=form,
            success=lambda v: f"Saved as version {v.number}.",
        )
        if version is not None:
            return redirect("policy:detail", policy.name)
    return render(
        request,
        "policy/edit.html",
        {"form": form, "policy": policy, "version": current},
        status=422 if form.errors else 200,
    )


@login_required
def version_detail(request: HttpRequest, name: str, number: int) -> HttpResponse:
    policy = _viewable(request, name)
    version = selectors.get_version(name, number)
    previous = policy.versions.filter(number__lt=number).order_by("-number").first()
    return render(
        request,
        "policy/version.html",
        {
            "policy": policy,
            "version": version,
            "previous": previous,
            "diff": selectors.diff_versions(previous, version),
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def policy_test(request: HttpRequest, name: str) -> HttpResponse:
    """Test a policy (or one rule) against pasted text; HTMX re-screens as you type."""
    policy = _viewable(request, name)
    rule_ids = [r.id for r in selectors.compiled(policy.current_version()).rules]
    form = ScreenForm(request.POST or None, rule_ids=rule_ids)
    context: dict[str, Any] = {"policy": policy, "form": form}
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        result = run_for_form(
            request,
            lambda: selectors.screen_text(
                text=d["text"],
                scope=d["scope"],
                policy=policy,
                rule_ids=[d["rule"]] if d["rule"] else None,
            ),
            form=form,
        )
        if result is not None:
            context.update(result_context(d["text"], result))
    if request.htmx:  # type: ignore[attr-defined]
        return render(request, "policy/_result.html", context)
    return render(request, "policy/test.html", context, status=422 if form.errors else 200)


def result_context(text: str, result: Any) -> dict[str, Any]:
    """What the highlight partial needs; reused by every page that shows a screening result."""
    hits = list(result.hits)
    segs = []
    for seg in segments(text, hits):
        covering = [hits[i] for i in seg.hits]
        top = max(covering, key=lambda h: h.severity) if covering else None
        segs.append(
            {"text": seg.text, "hits": covering, "top": top, "numbers": [i + 1 for i in seg.hits]}
        )
    return {"result": result, "segments": segs, "hits": hits}


@login_required
@require_POST
def rule_draft(request: HttpRequest, name: str, rule_id: str) -> HttpResponse:
    user = _user(request)
    require(user, Perm.POLICY_MANAGE)
    policy = selectors.get_policy(name)
    draft = request.POST.get("draft") == "1"
    run_and_flash(
        request,
        lambda: actions.set_rule_draft(actor=user, policy=policy, rule_id=rule_id, draft=draft),
        success=lambda v: (
            f"{rule_id} is now {'a draft' if draft else 'enforcing'} (version {v.number})."
        ),
    )
    return redirect("policy:detail", policy.name)


@login_required
@require_POST
def make_default(request: HttpRequest, name: str) -> HttpResponse:
    user = _user(request)
    require(user, Perm.POLICY_MANAGE)
    policy = actions.set_default_policy(actor=user, policy=selectors.get_policy(name))
    messages.success(request, f"{policy.name} is now the default policy.")
    return redirect("policy:detail", policy.name)


@login_required
@require_POST
def add_event(request: HttpRequest, name: str) -> HttpResponse:
    user = _user(request)
    require(user, Perm.POLICY_MANAGE)
    policy = selectors.get_policy(name)
    form = EventForm(request.POST)
    if form.is_valid():
        d = form.cleaned_data
        run_and_flash(
            request,
            lambda: actions.add_sensitive_event(
                actor=user,
                policy=policy,
                name=d["name"],
                keywords=_split(d["keywords"]),
                hashtags=_split(d["hashtags"]),
                start=d["start"],
                end=d["end"],
            ),
            success=lambda v: f"Event added (version {v.number}).",
        )
    else:
        messages.error(request, errors_as_text(form))
    return redirect("policy:detail", policy.name)


@login_required
@require_POST
def import_domains(request: HttpRequest, name: str) -> HttpResponse:
    user = _user(request)
    require(user, Perm.POLICY_MANAGE)
    policy = selectors.get_policy(name)
    links = [r["id"] for r in _rules(policy) if r["kind"] == "links"]
    form = BadDomainsForm(request.POST, request.FILES, link_rules=links)
    if form.is_valid():
        run_and_flash(
            request,
            lambda: actions.import_bad_domains(
                actor=user,
                policy=policy,
                rule_id=form.cleaned_data["rule"],
                file_text=form.cleaned_data["file"],
            ),
            success=lambda v: f"{v.note} (version {v.number}).",
        )
    else:
        messages.error(request, errors_as_text(form))
    return redirect("policy:detail", policy.name)


@login_required
def export_yaml(request: HttpRequest, name: str, number: int) -> HttpResponse:
    _viewable(request, name)
    return yaml_download(selectors.get_version(name, number))


def yaml_download(version: PolicyVersion) -> HttpResponse:
    """One stored version as a YAML file, byte for byte as it was saved."""
    response = HttpResponse(version.spec_yaml, content_type="application/yaml; charset=utf-8")
    name = f"{version.policy.name}-v{version.number}.yaml"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response
